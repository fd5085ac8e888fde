"""Gateway tests: the gateway runs as a real process against the session's real servers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from gwclient import GatewayUnderTest

from panicsafe.core.db.database import Database
from panicsafe.core.devstack import DevStack
from panicsafe.core.devstack.platform import Platform


@pytest.fixture(scope="session")
async def gateway(stack: DevStack, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[GatewayUnderTest]:
    platform = Platform(stack, tmp_path_factory.mktemp("gateway"), services=("gateway", "logbook", "chat"))
    await platform.start()
    app_dsn = (platform.directory / "secrets" / "gateway" / "database_url").read_text()
    db = Database(app_dsn, "gateway")
    await db.open()
    try:
        yield GatewayUnderTest(
            url=platform.gateway_url,
            db=db,
            admin_dsn=stack.postgres.admin_dsn,
            log=Path(platform.processes["gateway"].log_path),
            directory=platform.directory,
        )
    finally:
        await db.close()
        platform.stop()
