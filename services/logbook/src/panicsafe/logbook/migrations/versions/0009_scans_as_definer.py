"""The checkpointer's and the announcer's scans run as the schema's owner; the scan mode is gone.

Revision ID: 0009
Revises: 0008

`logs_to_announce` and `logs_to_checkpoint` (0008) read every tenant's log heads by setting
`app.logbook_scan = 'on'`, which the policies `logs_scan`, `announced_scan` and `checkpoints_scan`
honoured. Any statement of the runtime role could set it too, and see every tenant's heads at will.
Now the two functions are `SECURITY DEFINER`: they run as `<schema>_owner`, the one role a policy
lets read `logs`, `announced` and `checkpoints` across tenants (heads, sizes, hashes, signatures: no
entry, no content), and the runtime role cannot become it. The scan policies go: on these tables,
as on every other, only the tenant in scope (`app.tenant_id`) opens rows to the runtime role. Each
function answers one question (the logs with entries past their last notice, past their last
checkpoint), with its search path pinned; only the runtime role may call them.
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

SCAN_FUNCTION = """
CREATE OR REPLACE FUNCTION {name}(p_limit integer) RETURNS TABLE (tenant text, crisis text, mode text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = {schema}, pg_temp AS $$
    SELECT l.tenant_id::text, l.crisis_id::text, l.mode FROM logs l
    {condition}
    ORDER BY l.last_append_at LIMIT p_limit
$$"""

TO_ANNOUNCE = (
    "LEFT JOIN announced a ON a.crisis_id = l.crisis_id AND a.mode = l.mode WHERE l.size > coalesce(a.size, 0)"
)
TO_CHECKPOINT = (
    "WHERE l.size > coalesce((SELECT max(c.tree_size) FROM checkpoints c "
    "WHERE c.crisis_id = l.crisis_id AND c.mode = l.mode), 0)"
)
HEAD_TABLES = ("logs", "announced", "checkpoints")


def upgrade() -> None:
    schema = op.get_bind().exec_driver_sql("SELECT current_schema()").scalar_one()
    owner, app = f"{schema}_owner", f"{schema}_app"
    for table in HEAD_TABLES:
        op.execute(f"DROP POLICY {table}_scan ON {table}")
        # Row-level security stays forced on the owner too: this policy is its only way across tenants.
        op.execute(f"CREATE POLICY {table}_definer_scan ON {table} FOR SELECT TO {owner} USING (true)")
    for name, condition in (("logs_to_announce", TO_ANNOUNCE), ("logs_to_checkpoint", TO_CHECKPOINT)):
        op.execute(SCAN_FUNCTION.format(name=name, schema=schema, condition=condition))
        op.execute(f"REVOKE ALL ON FUNCTION {name}(integer) FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {name}(integer) TO {app}")
