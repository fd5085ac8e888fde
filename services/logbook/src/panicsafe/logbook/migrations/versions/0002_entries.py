"""The main courante: logs, append-only entries, signed checkpoints, exports.

Revision ID: 0002
Revises: 0001

Append-only is enforced twice: the runtime role holds no UPDATE, DELETE or TRUNCATE on entries and
checkpoints, and triggers refuse them for every role, the owner included (a DBA who disables the
triggers is caught by the hash chain and the signed checkpoints). Only a log's head (`logs`) moves.
"""

from alembic import op

from panicsafe.core.db.rls import tenant_rls_statements

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# The checkpointer walks every tenant's heads (sizes and hashes, no content) in transactions that set
# app.logbook_scan = 'on'; every other statement sees only the current tenant's rows.
SCAN = "current_setting('app.logbook_scan', true) = 'on'"

STATEMENTS = [
    """CREATE TABLE logs (
        tenant_id uuid NOT NULL,
        crisis_id uuid NOT NULL,
        mode text NOT NULL CHECK (mode IN ('real', 'exercise')),
        size bigint NOT NULL DEFAULT 0 CHECK (size >= 0),
        chain_head bytea NOT NULL CHECK (length(chain_head) = 32),
        checkpointed_size bigint NOT NULL DEFAULT 0,
        last_append_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (crisis_id, mode)
    )""",
    "CREATE INDEX logs_pending ON logs (crisis_id) WHERE size > checkpointed_size",
    """CREATE TABLE entries (
        id uuid NOT NULL UNIQUE,
        tenant_id uuid NOT NULL,
        crisis_id uuid NOT NULL,
        mode text NOT NULL,
        seq bigint NOT NULL CHECK (seq >= 1),
        occurred_at timestamptz NOT NULL,
        recorded_at timestamptz NOT NULL,
        rekeyed boolean NOT NULL,
        author_id uuid,
        author_label text NOT NULL CHECK (length(author_label) BETWEEN 1 AND 200),
        source text NOT NULL CHECK (source ~ '^[a-z0-9_-]{1,32}$'),
        kind text NOT NULL CHECK (kind IN ('fact', 'decision', 'action', 'communication', 'system')),
        summary text NOT NULL CHECK (length(summary) BETWEEN 1 AND 500),
        body bytea NOT NULL,
        salt bytea NOT NULL CHECK (length(salt) = 16),
        body_commitment bytea NOT NULL CHECK (length(body_commitment) = 32),
        cell_id uuid,
        links jsonb NOT NULL DEFAULT '{}'::jsonb,
        corrects bigint,
        event_id uuid UNIQUE,
        leaf_hash bytea NOT NULL CHECK (length(leaf_hash) = 32),
        chain_hash bytea NOT NULL CHECK (length(chain_hash) = 32),
        PRIMARY KEY (crisis_id, mode, seq),
        FOREIGN KEY (crisis_id, mode) REFERENCES logs (crisis_id, mode),
        CHECK (corrects IS NULL OR corrects < seq)
    )""",
    "CREATE INDEX entries_by_kind ON entries (crisis_id, mode, kind, seq)",
    "CREATE INDEX entries_by_cell ON entries (crisis_id, mode, cell_id, seq)",
    "CREATE INDEX entries_by_author ON entries (crisis_id, mode, author_id, seq)",
    "CREATE INDEX entries_by_time ON entries (crisis_id, mode, occurred_at)",
    """CREATE TABLE checkpoints (
        tenant_id uuid NOT NULL,
        crisis_id uuid NOT NULL,
        mode text NOT NULL,
        tree_size bigint NOT NULL CHECK (tree_size >= 1),
        root_hash bytea NOT NULL CHECK (length(root_hash) = 32),
        chain_head bytea NOT NULL CHECK (length(chain_head) = 32),
        issued_at text NOT NULL,
        signature bytea NOT NULL CHECK (length(signature) = 64),
        key_version int NOT NULL,
        PRIMARY KEY (crisis_id, mode, tree_size),
        FOREIGN KEY (crisis_id, mode) REFERENCES logs (crisis_id, mode)
    )""",
    """CREATE TABLE exports (
        id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL,
        crisis_id uuid NOT NULL,
        mode text NOT NULL,
        requested_by uuid NOT NULL,
        format text NOT NULL CHECK (format IN ('pdf', 'csv', 'json')),
        filename text NOT NULL,
        content_type text NOT NULL,
        size bigint NOT NULL,
        sha256 text NOT NULL,
        chunks int NOT NULL,
        tree_size bigint NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL
    )""",
    # Append-only, for every role.
    """CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'the main courante is append-only: % on % refused', TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END $$""",
    """CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON entries
        FOR EACH ROW EXECUTE FUNCTION refuse_change()""",
    """CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON entries
        FOR EACH STATEMENT EXECUTE FUNCTION refuse_change()""",
    """CREATE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE ON checkpoints
        FOR EACH ROW EXECUTE FUNCTION refuse_change()""",
    """CREATE TRIGGER checkpoints_no_truncate BEFORE TRUNCATE ON checkpoints
        FOR EACH STATEMENT EXECUTE FUNCTION refuse_change()""",
    # A log's head only grows, and its chain head changes only with it.
    """CREATE FUNCTION logs_only_grow() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.tenant_id <> OLD.tenant_id OR NEW.size < OLD.size
           OR (NEW.size = OLD.size AND NEW.chain_head <> OLD.chain_head)
           OR NEW.checkpointed_size < OLD.checkpointed_size THEN
            RAISE EXCEPTION 'a log head only grows' USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NEW;
    END $$""",
    """CREATE TRIGGER logs_grow_only BEFORE UPDATE ON logs
        FOR EACH ROW EXECUTE FUNCTION logs_only_grow()""",
    """CREATE TRIGGER logs_no_delete BEFORE DELETE ON logs
        FOR EACH ROW EXECUTE FUNCTION refuse_change()""",
    *tenant_rls_statements("entries"),
    *tenant_rls_statements("checkpoints"),
    *tenant_rls_statements("exports"),
    *tenant_rls_statements("logs"),
    f"CREATE POLICY logs_scan ON logs FOR SELECT USING ({SCAN})",
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)
    # Default privileges granted the runtime role everything; take back what append-only forbids.
    app_role = op.get_bind().exec_driver_sql("SELECT current_schema()").scalar_one() + "_app"
    op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON entries, checkpoints FROM {app_role}")
    op.execute(f"REVOKE DELETE, TRUNCATE ON logs FROM {app_role}")
    op.execute(f"REVOKE UPDATE, TRUNCATE ON exports FROM {app_role}")
