"""The outbox under row-level security; the relay reads and deletes through two narrow functions.

The outbox holds event payloads (tenant data) and had none: any statement of the application role
could read every tenant's pending events. Now that role may queue events, sees only those of the
tenant its transaction is scoped to, and changes none; the relay goes through `outbox_batch` and
`outbox_forget`, which run as the schema's owner (see `panicsafe.core.bus.outbox`). The first
revision of the bus branch: every schema gets it, beside its own revisions (`upgrade heads`).
`processed_events` stays as it is: it holds no tenant data.

Revision ID: bus0002
Revises: 0001
"""

from alembic import op

from panicsafe.core.bus.outbox import OUTBOX_RLS_DDL

revision = "bus0002"
down_revision = "0001"
branch_labels = ("bus",)
depends_on = None


def upgrade() -> None:
    for statement in OUTBOX_RLS_DDL:
        op.execute(statement)
