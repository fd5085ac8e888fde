"""The announcer's statements become functions: one round trip to find the logs, one to claim a log's entries.

Revision ID: 0008
Revises: 0007

The announcer runs up to twenty times a second while entries arrive. Each run took eleven round
trips (begin, scan mode, scan, commit; then begin and tenant, create the log's `announced` row,
lock it, read the entries, queue the notice, move the mark, commit), each a wake-up of the service
and of a PostgreSQL backend on cores the appends need. With these functions a run takes five: the
scan, then begin and tenant, `claim_notices`, the notice, commit.

- `logs_to_announce(limit)` and `logs_to_checkpoint(limit)`: the logs of every tenant with entries
  past their last notice (their last checkpoint), in the scan mode the policies of `logs`,
  `announced` and `checkpoints` allow (heads only, no content). The mode is set for the scan and
  cleared after it, so it never outlives the call, even inside a longer transaction. Any caller
  could set that mode itself: the functions give no right the service's role did not have.
- `claim_notices(tenant, crisis, mode, limit)`: in the caller's transaction (scoped to the tenant:
  row-level security applies, the function runs with the caller's rights), lock the log's
  `announced` row, read up to `limit` entries after its mark, move the mark past them and return
  them. The caller queues their notice in the same transaction, so entries are announced exactly
  once: a second announcer waits on the lock and then finds the mark moved; a rollback leaves both
  the mark and the outbox as they were.
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SCAN_FUNCTION = """
CREATE FUNCTION {name}(p_limit integer) RETURNS TABLE (tenant text, crisis text, mode text)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('app.logbook_scan', 'on', true);
    RETURN QUERY
        SELECT l.tenant_id::text, l.crisis_id::text, l.mode FROM logs l
        {condition}
        ORDER BY l.last_append_at LIMIT p_limit;
    PERFORM set_config('app.logbook_scan', '', true);
END
$$"""

TO_ANNOUNCE = (
    "LEFT JOIN announced a ON a.crisis_id = l.crisis_id AND a.mode = l.mode WHERE l.size > coalesce(a.size, 0)"
)
TO_CHECKPOINT = (
    "WHERE l.size > coalesce((SELECT max(c.tree_size) FROM checkpoints c "
    "WHERE c.crisis_id = l.crisis_id AND c.mode = l.mode), 0)"
)

CLAIM_FUNCTION = """
CREATE FUNCTION claim_notices(p_tenant uuid, p_crisis uuid, p_mode text, p_limit integer)
RETURNS TABLE (
    seq bigint, kind text, summary text, cell text, source text, author_label text, occurred_at timestamptz
)
LANGUAGE plpgsql AS $$
DECLARE
    v_done bigint;
    v_last bigint;
BEGIN
    -- Only a log of the transaction's tenant (row-level security hides the others): a mark made
    -- for another tenant's log would stop that log's own announcer.
    IF NOT EXISTS (SELECT 1 FROM logs l WHERE l.crisis_id = p_crisis AND l.mode = p_mode AND l.tenant_id = p_tenant) THEN
        RAISE EXCEPTION 'log % is not in this tenant''s scope', p_crisis USING ERRCODE = 'insufficient_privilege';
    END IF;
    INSERT INTO announced (tenant_id, crisis_id, mode, size) VALUES (p_tenant, p_crisis, p_mode, 0)
        ON CONFLICT DO NOTHING;
    SELECT a.size INTO v_done FROM announced a WHERE a.crisis_id = p_crisis AND a.mode = p_mode FOR UPDATE;
    -- Batches commit whole and in order (the head's lock), so what is visible after the mark is a
    -- run with no gap; `v_last` bounds the read below to the run seen here.
    SELECT max(r.seq) INTO v_last FROM (
        SELECT e.seq FROM entries e WHERE e.crisis_id = p_crisis AND e.mode = p_mode AND e.seq > v_done
        ORDER BY e.seq LIMIT p_limit
    ) r;
    IF v_last IS NULL THEN
        RETURN;
    END IF;
    UPDATE announced a SET size = v_last WHERE a.crisis_id = p_crisis AND a.mode = p_mode;
    RETURN QUERY
        SELECT e.seq, e.kind, e.summary, e.cell_id::text, e.source, e.author_label, e.occurred_at
        FROM entries e
        WHERE e.crisis_id = p_crisis AND e.mode = p_mode AND e.seq > v_done AND e.seq <= v_last
        ORDER BY e.seq;
END
$$"""


def upgrade() -> None:
    op.execute(SCAN_FUNCTION.format(name="logs_to_announce", condition=TO_ANNOUNCE))
    op.execute(SCAN_FUNCTION.format(name="logs_to_checkpoint", condition=TO_CHECKPOINT))
    op.execute(CLAIM_FUNCTION)


def downgrade() -> None:
    op.execute("DROP FUNCTION claim_notices(uuid, uuid, text, integer)")
    op.execute("DROP FUNCTION logs_to_checkpoint(integer)")
    op.execute("DROP FUNCTION logs_to_announce(integer)")
