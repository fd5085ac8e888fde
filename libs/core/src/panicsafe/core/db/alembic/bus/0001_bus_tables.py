"""Outbox and processed-event tables: the base of every service's schema, shipped once by core.

Revision ID: 0001
Revises:
"""

from alembic import op

from panicsafe.core.bus.outbox import OUTBOX_DDL

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in OUTBOX_DDL:
        op.execute(statement)
