"""The principal cache under concurrency: requests of one session interleave around the database check."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from panicsafe.gateway.auth.access import AccessClaims
from panicsafe.gateway.auth.principal import PrincipalCache
from panicsafe.gateway.domain.models import TenantRole
from panicsafe.gateway.domain.policy import Principal


class InterleavingDatabase:
    """Answers the version check, after running `meanwhile` (another request of the same session)."""

    def __init__(self, version: int, meanwhile: Any) -> None:
        self.version = version
        self.meanwhile = meanwhile

    async def read(self, query: str, *args: Any) -> dict[str, Any]:
        self.meanwhile()
        return {"authz_version": self.version, "now": datetime.now(UTC)}


def principal() -> Principal:
    return Principal(
        user_id=str(uuid.uuid4()),
        tenant_id=str(uuid.uuid4()),
        session_id=str(uuid.uuid4()),
        login="agent",
        display_name="Agent",
        tenant_role=TenantRole.MEMBER,
        mfa_at=None,
    )


async def test_an_entry_evicted_during_the_check_is_not_an_error() -> None:
    cache = PrincipalCache(size=1)
    mine = principal()
    cache.remember(mine, version=3, expires_at=datetime.now(UTC) + timedelta(hours=1))
    claims = AccessClaims(user_id=mine.user_id, tenant_id=mine.tenant_id, session_id=mine.session_id)
    other = principal()
    evict = lambda: cache.remember(other, version=1, expires_at=datetime.now(UTC) + timedelta(hours=1))  # noqa: E731
    assert await cache.current(InterleavingDatabase(3, evict), claims) is mine  # type: ignore[arg-type]


async def test_a_stale_entry_does_not_drop_a_newer_one() -> None:
    cache = PrincipalCache()
    mine = principal()
    later = datetime.now(UTC) + timedelta(hours=1)
    cache.remember(mine, version=3, expires_at=later)
    claims = AccessClaims(user_id=mine.user_id, tenant_id=mine.tenant_id, session_id=mine.session_id)
    # Meanwhile another request read version 4 and remembered the session afresh.
    renewed = lambda: cache.remember(mine, version=4, expires_at=later)  # noqa: E731
    assert await cache.current(InterleavingDatabase(4, renewed), claims) is None  # the entry it held was stale
    assert await cache.current(InterleavingDatabase(4, lambda: None), claims) is mine  # the newer one stayed
