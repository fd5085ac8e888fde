"""Chat tests: the service's parts against the session's real PostgreSQL and OpenBao."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest
from chathelpers import ChatUnderTest

from panicsafe.chat.app import MIGRATIONS
from panicsafe.chat.channels import Channels
from panicsafe.chat.domain import SendLimiter
from panicsafe.chat.messages import Messages
from panicsafe.chat.reading import Reading
from panicsafe.chat.search import Search, SearchKeys
from panicsafe.core.crypto import EnvelopeCipher
from panicsafe.core.db.database import Database
from panicsafe.core.db.migrations import upgrade_async
from panicsafe.core.db.provision import ServiceRoles, provision_service
from panicsafe.core.devstack import DevStack
from panicsafe.core.testing import ServiceKeys


@pytest.fixture(scope="module")
async def chat(stack: DevStack) -> AsyncIterator[ChatUnderTest]:
    """A freshly migrated chat schema of its own, and the service's parts running on it."""
    pg = stack.postgres
    roles = ServiceRoles(f"chat_{secrets.token_hex(4)}", secrets.token_urlsafe(16), secrets.token_urlsafe(16))
    await provision_service(pg.admin_dsn, roles)
    await upgrade_async(MIGRATIONS, roles.owner_dsn(pg.host, pg.port, pg.database), roles.schema)
    db = Database(roles.app_dsn(pg.host, pg.port, pg.database), roles.schema, max_size=12)
    await db.open()
    transit = ServiceKeys(stack, "chat")  # chat's own OpenBao identity (tenant keys made by the gateway's)
    cipher = EnvelopeCipher(transit)
    keys = SearchKeys(db, transit)
    try:
        yield ChatUnderTest(
            channels=Channels(db),
            messages=Messages(db, cipher, keys, SendLimiter(rate=1000, burst=1000)),
            reading=Reading(db),
            search=Search(db, keys),
            cipher=cipher,
            db=db,
            roles=roles,
            admin_dsn=pg.admin_dsn,
        )
    finally:
        await db.close()
