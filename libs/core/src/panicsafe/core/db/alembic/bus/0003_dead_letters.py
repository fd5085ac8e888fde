"""Dead letters: what a consumer refused (malformed, or not saying what its subject says).

Events are believed only from their owner (see `panicsafe.core.bus.consumer`): a refused message is
never handled, it is recorded here with the reason, an alert is logged, and it is acknowledged. The
table has no row-level security, since the tenant a refused message names cannot be trusted; the
application role may insert rows and read none of their contents (operators do).

Revision ID: bus0003
Revises: bus0002
"""

from alembic import op

from panicsafe.core.bus.consumer import DEAD_LETTERS_DDL

revision = "bus0003"
down_revision = "bus0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in DEAD_LETTERS_DDL:
        op.execute(statement)
