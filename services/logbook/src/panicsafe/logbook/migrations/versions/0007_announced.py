"""Notices of new entries are written by an announcer, no longer by each appended batch.

Revision ID: 0007
Revises: 0006

Each appended batch used to queue its own notice in the outbox: at 1,000 appends/s, some 350
notices a second for the relay to read, publish to JetStream (an fsync each) and delete, and for
every consumer of `evt.>` to receive. Measured side by side, those notices cost about 15 % of a core
on a 2-core machine, and the appends' tail latency with it. Now the announcer of each log notices
what was appended since its last notice, at most every few tens of milliseconds, in one
transaction that queues the notice and records how far the log is announced (`announced`). A crash
between the two is impossible (one transaction); a crash before it leaves the entries to the next
announcer, whichever replica it runs on, so every entry is announced once.

Existing logs start as announced up to their current size (their entries were announced by the
batches that wrote them).
"""

from alembic import op

from panicsafe.core.db.rls import tenant_rls_statements

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SCAN = "current_setting('app.logbook_scan', true) = 'on'"


def upgrade() -> None:
    op.execute(
        """CREATE TABLE announced (
            tenant_id uuid NOT NULL,
            crisis_id uuid NOT NULL,
            mode text NOT NULL,
            size bigint NOT NULL CHECK (size >= 0),
            PRIMARY KEY (crisis_id, mode),
            FOREIGN KEY (crisis_id, mode) REFERENCES logs (crisis_id, mode)
        )"""
    )
    # Before row-level security applies to it; `logs` is read in the scan mode its policy allows.
    op.execute("SELECT set_config('app.logbook_scan', 'on', true)")
    op.execute(
        "INSERT INTO announced (tenant_id, crisis_id, mode, size) SELECT tenant_id, crisis_id, mode, size FROM logs"
    )
    op.execute("SELECT set_config('app.logbook_scan', '', true)")
    for statement in tenant_rls_statements("announced"):
        op.execute(statement)
    op.execute(f"CREATE POLICY announced_scan ON announced FOR SELECT USING ({SCAN})")
    app_role = op.get_bind().exec_driver_sql("SELECT current_schema()").scalar_one() + "_app"
    op.execute(f"REVOKE DELETE, TRUNCATE ON announced FROM {app_role}")
