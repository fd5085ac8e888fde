"""Logins belong to an organisation: each organisation gets a code, and each login ends with it.

Until now a login was unique across organisations, so an administrator who invited a login learned
whether another organisation used it ("Cet identifiant est déjà pris"). Now `tenants.code` (unique,
fixed at creation, derived from the name: `ght-demo`) completes every login: `jdupont@ght-demo`
(`identity.logins`). Logins stay unique, and only an organisation's own logins can clash with one it
invites. Existing organisations get a code from their name, existing accounts and invitations the
suffix of their organisation: they sign in with `login@code` from now on.

The tables are under forced row-level security, their owner included: the backfill runs with it
lifted for this transaction only (NO FORCE, then FORCE again), which needs no setting of the
application's.

Revision ID: 0008
Revises: 0006
"""

from alembic import op
from sqlalchemy import text

from panicsafe.gateway.identity.logins import CODE_SQL, STORED_LOGIN_SQL, code_candidates

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BACKFILLED = ("tenants", "users", "invitations")


def upgrade() -> None:
    bind = op.get_bind()
    # A login now names its organisation: whether it is taken is asked of the tenant in scope only.
    # The cross-tenant question (0007's `login_taken`) would be an oracle on other organisations' logins.
    op.execute("DROP FUNCTION IF EXISTS login_taken(text)")
    for table in BACKFILLED:
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE tenants ADD COLUMN code text")
    used: set[str] = set()
    for row in bind.execute(text("SELECT id, name FROM tenants ORDER BY created_at, id")).all():
        code = next(c for c in code_candidates(row.name) if c not in used)
        used.add(code)
        bind.execute(text("UPDATE tenants SET code = :code WHERE id = :id"), {"code": code, "id": row.id})
    op.execute("ALTER TABLE tenants ALTER COLUMN code SET NOT NULL")
    op.execute("ALTER TABLE tenants ADD CONSTRAINT tenants_code_key UNIQUE (code)")
    op.execute(f"ALTER TABLE tenants ADD CONSTRAINT tenants_code_check CHECK (code ~ '{CODE_SQL}')")
    op.execute("ALTER TABLE users DROP CONSTRAINT users_login_check")
    for table in ("users", "invitations"):
        op.execute(
            f"UPDATE {table} x SET login = x.login || '@' || t.code FROM tenants t "  # noqa: S608 (our table names)
            "WHERE t.id = x.tenant_id AND position('@' in x.login) = 0"
        )
    op.execute(f"ALTER TABLE users ADD CONSTRAINT users_login_check CHECK (login ~ '{STORED_LOGIN_SQL}')")
    for table in BACKFILLED:
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
