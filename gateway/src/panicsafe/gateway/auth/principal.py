"""Who is calling: the access token's session, checked against the database on every request.

A principal may be remembered between requests (`PrincipalCache`), but never trusted without a look
at the database: each request reads the user's authz version, which triggers bump in the very
transaction of any change to the user's sessions, account or memberships (migration 0004), whoever
makes it and in whichever gateway process. A removed membership or a revoked session therefore takes
effect on the next request, as without the cache.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from asyncpg import Record

from panicsafe.contracts.errors import ErrorCode
from panicsafe.core.db.database import Database
from panicsafe.core.errors import ServiceError
from panicsafe.gateway.auth.access import AccessClaims, AccessTokens
from panicsafe.gateway.domain.models import CrisisRole, TenantRole
from panicsafe.gateway.domain.policy import CrisisAccess, Principal

# The session (unrevoked, unexpired, of an active user) and the user's crisis memberships in one
# statement: `memberships` is a JSON list of {crisis_id, role, cells}. `authz_version` is read in the
# same snapshot, so it names exactly this state.
PRINCIPAL_SQL = (
    "SELECT s.mfa_at, s.expires_at, u.login, u.display_name, u.tenant_role, "
    "(SELECT region FROM regional_supervisors r WHERE r.user_id = u.id) AS region, "
    "(SELECT COALESCE(json_agg(json_build_object('crisis_id', m.crisis_id, 'role', m.role, 'cells', "
    " ARRAY(SELECT c.cell_id::text FROM cell_members c WHERE c.crisis_id = m.crisis_id AND c.user_id = m.user_id))),"
    " '[]') FROM crisis_members m WHERE m.user_id = u.id) AS memberships, "
    "COALESCE((SELECT v.version FROM authz_versions v WHERE v.user_id = u.id), 0) AS authz_version "
    "FROM sessions s JOIN users u ON u.id = s.user_id "
    "WHERE s.id = $1 AND s.user_id = $2 AND s.revoked_at IS NULL AND s.expires_at > now() "
    "AND u.status = 'active'"
)
# Whether a remembered principal still holds: its user's current authz version, and the database's
# clock for the session's expiry. Outside any tenant: `authz_versions` holds no tenant data.
STILL_CURRENT_SQL = (
    "SELECT COALESCE((SELECT version FROM authz_versions WHERE user_id = $1), 0) AS authz_version, now() AS now"
)
CACHE_SIZE = 4096


async def load_principal(
    db: Database, tokens: AccessTokens, bearer: str, cache: PrincipalCache | None = None
) -> Principal:
    """The caller of `bearer`, or `unauthenticated`; `cache` saves rebuilding an unchanged principal."""
    claims = tokens.verify(bearer)
    if cache is not None:
        remembered = await cache.current(db, claims)
        if remembered is not None:
            return remembered
    async with db.tenant(claims.tenant_id) as conn:
        row = await conn.fetchrow(PRINCIPAL_SQL, claims.session_id, claims.user_id)
    if row is None:
        raise ServiceError(ErrorCode.UNAUTHENTICATED, "Session révoquée ou expirée.")
    principal = _principal(claims, row)
    if cache is not None:
        cache.remember(principal, version=row["authz_version"], expires_at=row["expires_at"])
    return principal


def _principal(claims: AccessClaims, row: Record) -> Principal:
    crises = {
        m["crisis_id"]: CrisisAccess(m["crisis_id"], CrisisRole(m["role"]), frozenset(m["cells"]))
        for m in row["memberships"]
    }
    return Principal(
        user_id=claims.user_id,
        tenant_id=claims.tenant_id,
        session_id=claims.session_id,
        login=row["login"],
        display_name=row["display_name"],
        tenant_role=TenantRole(row["tenant_role"]),
        mfa_at=row["mfa_at"],
        crises=MappingProxyType(crises),  # shared by the requests of the session: read-only
        supervisor_region=row["region"],
    )


@dataclass(frozen=True)
class _Remembered:
    principal: Principal
    version: int  # the user's authz version the principal was read with
    expires_at: datetime  # the session's


class PrincipalCache:
    """Principals by session (the most recently used `size`), each valid while its user's authz
    version is unchanged and its session unexpired, which `current` checks in one round trip."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._entries: OrderedDict[str, _Remembered] = OrderedDict()

    async def current(self, db: Database, claims: AccessClaims) -> Principal | None:
        """The remembered principal of the claims' session if it still holds, else None."""
        entry = self._entries.get(claims.session_id)
        if entry is None:
            return None
        principal = entry.principal
        if (principal.user_id, principal.tenant_id) != (claims.user_id, claims.tenant_id):
            return None  # not the session's user and tenant: the database decides
        row = await db.read(STILL_CURRENT_SQL, claims.user_id)
        assert row is not None  # a SELECT without FROM returns one row
        if row["authz_version"] != entry.version or row["now"] >= entry.expires_at:
            if self._entries.get(claims.session_id) is entry:
                self._entries.pop(claims.session_id)
            return None
        # Other requests of the session ran during the round trip: the entry may have been replaced,
        # dropped or evicted meanwhile (200 subscriptions opening at once do that).
        if claims.session_id in self._entries:
            self._entries.move_to_end(claims.session_id)
        return principal

    def remember(self, principal: Principal, *, version: int, expires_at: datetime) -> None:
        self._entries[principal.session_id] = _Remembered(principal, version, expires_at)
        self._entries.move_to_end(principal.session_id)
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)
