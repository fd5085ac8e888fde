"""Gateway tests: the gateway runs as a real process against the session's real servers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from gwclient import GatewayUnderTest, gateway_of

from panicsafe.core.devstack import DevStack
from panicsafe.core.devstack.platform import Platform


@pytest.fixture(scope="session")
async def gateway(stack: DevStack, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[GatewayUnderTest]:
    platform = Platform(stack, tmp_path_factory.mktemp("gateway"), services=("gateway", "logbook", "chat"))
    await platform.start()
    try:
        async with gateway_of(platform) as gateway:
            yield gateway
    finally:
        platform.stop()
