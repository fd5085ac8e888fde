"""Channels, messages (text sealed), edit history, read markers, blind search index.

Revision ID: 0002
Revises: 0001

No message text is stored in clear: `messages.body` and `message_versions.body` are envelope
ciphertexts under the tenant key; `search_terms` holds keyed hashes of normalised words (see
`panicsafe.chat.search`). Every table is under row-level security by tenant.
"""

from alembic import op

from panicsafe.core.db.rls import tenant_rls_statements

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

STATEMENTS = [
    """CREATE TABLE crises (
        crisis_id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL,
        mode text NOT NULL CHECK (mode IN ('real', 'exercise')),
        closed boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now()
    )""",
    """CREATE TABLE channels (
        id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL,
        crisis_id uuid NOT NULL REFERENCES crises (crisis_id),
        kind text NOT NULL CHECK (kind IN ('crisis', 'cell', 'external', 'private', 'direct')),
        name text NOT NULL CHECK (length(name) BETWEEN 1 AND 120),
        cell_id uuid,
        direct_key text,
        created_by uuid,
        created_at timestamptz NOT NULL DEFAULT now(),
        last_seq bigint NOT NULL DEFAULT 0,
        last_rev bigint NOT NULL DEFAULT 0,
        CHECK ((kind IN ('cell', 'private')) = (cell_id IS NOT NULL)),
        CHECK ((kind = 'direct') = (direct_key IS NOT NULL))
    )""",
    # One default channel of each kind per crisis (one per cell), one direct conversation per pair.
    "CREATE UNIQUE INDEX channels_default ON channels (crisis_id, kind) WHERE kind IN ('crisis', 'external')",
    "CREATE UNIQUE INDEX channels_cell ON channels (crisis_id, cell_id) WHERE kind = 'cell'",
    "CREATE UNIQUE INDEX channels_direct ON channels (crisis_id, direct_key) WHERE kind = 'direct'",
    "CREATE INDEX channels_by_crisis ON channels (crisis_id)",
    """CREATE TABLE channel_members (
        channel_id uuid NOT NULL REFERENCES channels (id),
        user_id uuid NOT NULL,
        tenant_id uuid NOT NULL,
        added_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (channel_id, user_id)
    )""",
    "CREATE INDEX channel_members_by_user ON channel_members (user_id)",
    """CREATE TABLE messages (
        id uuid NOT NULL UNIQUE,
        tenant_id uuid NOT NULL,
        crisis_id uuid NOT NULL,
        channel_id uuid NOT NULL REFERENCES channels (id),
        seq bigint NOT NULL CHECK (seq >= 1),
        rev bigint NOT NULL CHECK (rev >= 1),
        client_id text NOT NULL,
        author_id uuid NOT NULL,
        author_label text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        version int NOT NULL DEFAULT 1,
        body bytea,
        edited_at timestamptz,
        redacted_at timestamptz,
        redacted_by text,
        reply_to uuid,
        mention_users uuid[] NOT NULL DEFAULT '{}',
        mention_cells uuid[] NOT NULL DEFAULT '{}',
        attachments jsonb NOT NULL DEFAULT '[]'::jsonb,
        pinned_at timestamptz,
        pinned_by text,
        marked_kind text CHECK (marked_kind IN ('fact', 'decision', 'action', 'communication')),
        marked_at timestamptz,
        marked_by text,
        PRIMARY KEY (channel_id, seq),
        UNIQUE (channel_id, author_id, client_id),
        CHECK ((body IS NULL) = (redacted_at IS NOT NULL))
    )""",
    "CREATE UNIQUE INDEX messages_by_rev ON messages (channel_id, rev)",
    "CREATE INDEX messages_pinned ON messages (channel_id, seq) WHERE pinned_at IS NOT NULL",
    """CREATE TABLE message_versions (
        message_id uuid NOT NULL REFERENCES messages (id),
        tenant_id uuid NOT NULL,
        version int NOT NULL,
        body bytea NOT NULL,
        edited_at timestamptz NOT NULL,
        editor text NOT NULL,
        PRIMARY KEY (message_id, version)
    )""",
    """CREATE TABLE read_markers (
        channel_id uuid NOT NULL REFERENCES channels (id),
        user_id uuid NOT NULL,
        tenant_id uuid NOT NULL,
        seq bigint NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (channel_id, user_id)
    )""",
    # Blind index: keyed hashes of words, newest first within a term.
    """CREATE TABLE search_terms (
        tenant_id uuid NOT NULL,
        crisis_id uuid NOT NULL,
        term bytea NOT NULL CHECK (length(term) = 16),
        posted bigint NOT NULL,
        channel_id uuid NOT NULL,
        seq bigint NOT NULL,
        PRIMARY KEY (crisis_id, term, posted, channel_id, seq)
    )""",
    "CREATE INDEX search_terms_by_message ON search_terms (channel_id, seq)",
    # The tenant's search key, wrapped by its transit key (OpenBao unwraps it).
    """CREATE TABLE search_keys (
        tenant_id uuid PRIMARY KEY,
        wrapped text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    )""",
    *tenant_rls_statements("crises"),
    *tenant_rls_statements("channels"),
    *tenant_rls_statements("channel_members"),
    *tenant_rls_statements("messages"),
    *tenant_rls_statements("message_versions"),
    *tenant_rls_statements("read_markers"),
    *tenant_rls_statements("search_terms"),
    *tenant_rls_statements("search_keys"),
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)
    app_role = op.get_bind().exec_driver_sql("SELECT current_schema()").scalar_one() + "_app"
    # Edit history and keys are never rewritten; messages are never deleted (a redaction is a tombstone).
    op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON message_versions, search_keys FROM {app_role}")
    op.execute(f"REVOKE DELETE, TRUNCATE ON messages, channels, crises FROM {app_role}")
