"""A version per user, bumped by every change to what a principal is made of.

A principal (`auth.principal`) is the session, the user and the user's memberships. Triggers bump
`authz_versions.version` of the users concerned in the very transaction of the change, whichever code
makes it: a gateway process may then keep a principal for as long as the version it was read with is
still the current one, and checking that costs one indexed read.

The table holds no tenant data (user ids and counters) and is not under row-level security: it is read
before the tenant is known to be the caller's. Only the trigger function (run as the owner) writes it.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# table, column naming the user, the events that change a principal
WATCHED = (
    ("sessions", "user_id", "UPDATE OF user_id, expires_at, mfa_at, revoked_at OR DELETE"),
    ("users", "id", "UPDATE OF id, login, display_name, tenant_role, status OR DELETE"),
    ("crisis_members", "user_id", "INSERT OR UPDATE OR DELETE"),
    ("cell_members", "user_id", "INSERT OR UPDATE OR DELETE"),
    ("regional_supervisors", "user_id", "INSERT OR UPDATE OR DELETE"),
)


def upgrade() -> None:
    schema = op.get_bind().exec_driver_sql("SELECT current_schema()").scalar_one()
    op.execute("CREATE TABLE authz_versions (user_id uuid PRIMARY KEY, version bigint NOT NULL)")
    op.execute(
        """CREATE FUNCTION bump_authz_version() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
        DECLARE
            affected uuid[] := '{}';
        BEGIN
            IF TG_OP <> 'INSERT' THEN
                affected := affected || (to_jsonb(OLD) ->> TG_ARGV[0])::uuid;
            END IF;
            IF TG_OP <> 'DELETE' THEN
                affected := affected || (to_jsonb(NEW) ->> TG_ARGV[0])::uuid;
            END IF;
            INSERT INTO authz_versions (user_id, version)
                SELECT DISTINCT u, 1 FROM unnest(affected) AS u
                ON CONFLICT (user_id) DO UPDATE SET version = authz_versions.version + 1;
            RETURN NULL;
        END $$"""
    )
    # Run as the owner, which alone writes the versions; pg_temp last, so that no temporary table of
    # the session can stand in for `authz_versions`.
    op.execute(f"ALTER FUNCTION bump_authz_version() SET search_path = {schema}, pg_temp")
    for table, column, events in WATCHED:
        op.execute(
            f"CREATE TRIGGER {table}_authz_version AFTER {events} ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION bump_authz_version('{column}')"
        )
    op.execute(f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON authz_versions FROM {schema}_app")
