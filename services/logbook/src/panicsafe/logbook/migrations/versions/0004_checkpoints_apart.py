"""Checkpoints no longer touch a log's head row.

Revision ID: 0004
Revises: 0003

The checkpointer used to record `checkpointed_size` on the head row, so every checkpoint took that
row's lock for a transaction of several round trips, and the appends of that log waited behind it.
Which logs need a checkpoint is now read from `checkpoints` itself (its primary key gives each log's
largest tree size), the column goes, and the head trigger no longer mentions it. Like `logs`,
`checkpoints` is visible to the checkpointer's scan across tenants: sizes, hashes and signatures,
no content.
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCAN = "current_setting('app.logbook_scan', true) = 'on'"


def upgrade() -> None:
    op.execute(
        """CREATE OR REPLACE FUNCTION logs_only_grow() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.tenant_id <> OLD.tenant_id OR NEW.size < OLD.size
               OR (NEW.size = OLD.size AND NEW.chain_head <> OLD.chain_head) THEN
                RAISE EXCEPTION 'a log head only grows' USING ERRCODE = 'insufficient_privilege';
            END IF;
            RETURN NEW;
        END $$"""
    )
    op.execute("ALTER TABLE logs DROP COLUMN checkpointed_size")
    op.execute(f"CREATE POLICY checkpoints_scan ON checkpoints FOR SELECT USING ({SCAN})")
