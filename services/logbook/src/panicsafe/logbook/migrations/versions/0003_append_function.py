"""`append_entries`: a batch of entries appended to one log in a single statement.

Revision ID: 0003
Revises: 0002

The writer used to lock the log's head (`SELECT ... FOR UPDATE`), then insert and move the head,
inside an explicit transaction: four round trips per batch (begin and tenant, lock, write, commit),
and the lock held across two of them. Now it computes the entries' places and hashes from the head
it last saw, and this function moves the head only if it is still that one (`size` and `chain_head`
compared under the row lock the UPDATE takes), then writes the entries and their notice. If another
writer moved the head meanwhile, nothing is written and the function returns the current head for
the caller to compute again. Called on its own, the statement is its own transaction: one round
trip, one commit.

Like `Database.tenant`, it sets the tenant of row-level security with `set_config(..., true)`;
inside a transaction already scoped to a tenant, it must be the same one. A crisis id of another
tenant's log is refused: row-level security hides that head, and the insert of a new head conflicts.
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

FUNCTION = """
CREATE FUNCTION append_entries(
    p_tenant uuid, p_crisis uuid, p_mode text, p_size bigint, p_head bytea, p_recorded_at timestamptz,
    p_ids uuid[], p_seqs bigint[], p_occurred_at timestamptz[], p_rekeyed boolean[], p_author_ids uuid[],
    p_author_labels text[], p_sources text[], p_kinds text[], p_summaries text[], p_bodies bytea[],
    p_salts bytea[], p_commitments bytea[], p_cells uuid[], p_links jsonb[], p_corrects bigint[],
    p_event_ids uuid[], p_leaf_hashes bytea[], p_chain_hashes bytea[],
    p_notice_ids uuid[], p_notice_subjects text[], p_notice_payloads bytea[], p_notice_headers jsonb[])
RETURNS TABLE (applied boolean, size bigint, chain_head bytea)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    scope text := coalesce(current_setting('app.tenant_id', true), '');
    n bigint := cardinality(p_ids);
    new_size bigint := p_size + cardinality(p_ids);
    new_head bytea := p_chain_hashes[cardinality(p_chain_hashes)];
BEGIN
    IF scope NOT IN ('', p_tenant::text) THEN
        RAISE EXCEPTION 'append_entries: the transaction is scoped to another tenant';
    END IF;
    IF n = 0 OR p_seqs <> ARRAY(SELECT generate_series(p_size + 1, p_size + n)) THEN
        RAISE EXCEPTION 'append_entries: entries must follow the head without a gap'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM set_config('app.tenant_id', p_tenant::text, true);

    IF p_size = 0 THEN
        INSERT INTO logs (tenant_id, crisis_id, mode, size, chain_head, last_append_at)
        VALUES (p_tenant, p_crisis, p_mode, new_size, new_head, p_recorded_at)
        ON CONFLICT DO NOTHING;
    ELSE
        UPDATE logs SET size = new_size, chain_head = new_head, last_append_at = p_recorded_at
        WHERE crisis_id = p_crisis AND mode = p_mode AND size = p_size AND chain_head = p_head;
    END IF;

    IF NOT FOUND THEN
        -- Not the head we expected: say what it is now (nothing was written).
        RETURN QUERY SELECT false, l.size, l.chain_head FROM logs l
            WHERE l.crisis_id = p_crisis AND l.mode = p_mode;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'append_entries: this log belongs to another organisation'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN;
    END IF;

    INSERT INTO entries (id, tenant_id, crisis_id, mode, seq, occurred_at, recorded_at, rekeyed, author_id,
        author_label, source, kind, summary, body, salt, body_commitment, cell_id, links, corrects, event_id,
        leaf_hash, chain_hash)
    SELECT e.id, p_tenant, p_crisis, p_mode, e.seq, e.occurred_at, p_recorded_at, e.rekeyed, e.author_id,
        e.author_label, e.source, e.kind, e.summary, e.body, e.salt, e.commitment, e.cell, e.links, e.corrects,
        e.event_id, e.leaf_hash, e.chain_hash
    FROM unnest(p_ids, p_seqs, p_occurred_at, p_rekeyed, p_author_ids, p_author_labels, p_sources, p_kinds,
        p_summaries, p_bodies, p_salts, p_commitments, p_cells, p_links, p_corrects, p_event_ids,
        p_leaf_hashes, p_chain_hashes)
        AS e(id, seq, occurred_at, rekeyed, author_id, author_label, source, kind, summary, body, salt,
             commitment, cell, links, corrects, event_id, leaf_hash, chain_hash);

    INSERT INTO outbox (event_id, subject, payload, headers)
    SELECT * FROM unnest(p_notice_ids, p_notice_subjects, p_notice_payloads, p_notice_headers);

    RETURN QUERY SELECT true, new_size, new_head;
END $$
"""


def upgrade() -> None:
    op.execute(FUNCTION)
    # A log's head row is rewritten by every append. With `size` in an index (even only in the
    # predicate of `logs_pending`), no update of it could be HOT: each one added index entries
    # for the same row, and under a sustained load the head lookup walked thousands of dead ones.
    # The checkpointer's scan of heads needs no index (one row per crisis and mode).
    op.execute("DROP INDEX logs_pending")
    op.execute("ALTER TABLE logs SET (fillfactor = 50)")
