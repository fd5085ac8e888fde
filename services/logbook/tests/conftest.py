"""Logbook tests: the service's core against the session's real PostgreSQL and OpenBao."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest
from lbhelpers import LogbookUnderTest

from panicsafe.core.crypto import EnvelopeCipher
from panicsafe.core.db.database import Database
from panicsafe.core.db.migrations import upgrade_async
from panicsafe.core.db.provision import ServiceRoles, provision_service
from panicsafe.core.devstack import DevStack
from panicsafe.core.testing import ServiceKeys
from panicsafe.logbook.app import MIGRATIONS
from panicsafe.logbook.core import LogbookCore
from panicsafe.logbook.signing import TransitSigner


@pytest.fixture(scope="module")
async def logbook(stack: DevStack) -> AsyncIterator[LogbookUnderTest]:
    """A freshly migrated logbook schema of its own, and the core running on it."""
    pg = stack.postgres
    roles = ServiceRoles(f"lb_{secrets.token_hex(4)}", secrets.token_urlsafe(16), secrets.token_urlsafe(16))
    await provision_service(pg.admin_dsn, roles)
    owner_dsn = roles.owner_dsn(pg.host, pg.port, pg.database)
    await upgrade_async(MIGRATIONS, owner_dsn, roles.schema)
    db = Database(roles.app_dsn(pg.host, pg.port, pg.database), roles.schema, max_size=12)
    await db.open()
    keys = ServiceKeys(stack, "logbook")  # the logbook's own OpenBao identity (tenant keys made by the gateway's)
    core = LogbookCore(db, EnvelopeCipher(keys), TransitSigner(keys.session))
    core.start()
    try:
        yield LogbookUnderTest(core, db, roles, owner_dsn, pg.admin_dsn)
    finally:
        await core.stop()
        await db.close()
