"""Who is calling: the access token's session, checked against the database on every request."""

from __future__ import annotations

from panicsafe.contracts.errors import ErrorCode
from panicsafe.core.db.database import Database
from panicsafe.core.errors import ServiceError
from panicsafe.gateway.auth.access import AccessTokens
from panicsafe.gateway.domain.models import CrisisRole, TenantRole
from panicsafe.gateway.domain.policy import CrisisAccess, Principal

SESSION_SQL = (
    "SELECT s.mfa_at, u.login, u.display_name, u.tenant_role, "
    "(SELECT region FROM regional_supervisors r WHERE r.user_id = u.id) AS region "
    "FROM sessions s JOIN users u ON u.id = s.user_id "
    "WHERE s.id = $1 AND s.user_id = $2 AND s.revoked_at IS NULL AND s.expires_at > now() "
    "AND u.status = 'active'"
)
MEMBERSHIPS_SQL = (
    "SELECT m.crisis_id::text AS crisis_id, m.role, "
    "COALESCE(array_agg(c.cell_id::text) FILTER (WHERE c.cell_id IS NOT NULL), '{}') AS cells "
    "FROM crisis_members m LEFT JOIN cell_members c ON c.crisis_id = m.crisis_id AND c.user_id = m.user_id "
    "WHERE m.user_id = $1 GROUP BY m.crisis_id, m.role"
)


async def load_principal(db: Database, tokens: AccessTokens, bearer: str) -> Principal:
    claims = tokens.verify(bearer)
    async with db.tenant(claims.tenant_id) as conn:
        row = await conn.fetchrow(SESSION_SQL, claims.session_id, claims.user_id)
        if row is None:
            raise ServiceError(ErrorCode.UNAUTHENTICATED, "Session révoquée ou expirée.")
        memberships = await conn.fetch(MEMBERSHIPS_SQL, claims.user_id)
    crises = {
        m["crisis_id"]: CrisisAccess(m["crisis_id"], CrisisRole(m["role"]), frozenset(m["cells"])) for m in memberships
    }
    return Principal(
        user_id=claims.user_id,
        tenant_id=claims.tenant_id,
        session_id=claims.session_id,
        login=row["login"],
        display_name=row["display_name"],
        tenant_role=TenantRole(row["tenant_role"]),
        mfa_at=row["mfa_at"],
        crises=crises,
        supervisor_region=row["region"],
    )
