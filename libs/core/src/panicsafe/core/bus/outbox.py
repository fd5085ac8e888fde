"""Transactional outbox: a state change and its event commit together, a relay publishes them.

Producers call `append_event(conn, event)` inside the transaction of their state change (one INSERT;
it also wakes this process's relays). One relay per schema leads at a time: it holds a connection
with the schema's session-level advisory lock (the other replicas' relays wait for it, and take over
when that connection ends, since PostgreSQL then releases the lock). A waiting relay woken by a
write in its own process tells the leader with a PostgreSQL notification on the schema's channel.
The leader reads a batch in order, publishes it to JetStream with `Nats-Msg-Id` = event id, waits
for every ack, then deletes exactly those rows: two round trips to PostgreSQL per batch. If the
relay dies between publish and delete, the batch is published again: JetStream's duplicate window
and the consumers' idempotence absorb it. Two relays publishing the same rows at once (a leader
whose connection was cut while it published) still reach the stream in order: each sends in order,
and the first copy of each id wins.

The outbox holds event payloads, which are tenant data, so the application role may not read it at
large: under row-level security (`OUTBOX_RLS_DDL`, core's bus revision 2) it may queue any event but
sees only the pending events of the tenant its transaction is scoped to, and updates or deletes
none. The relay, which must read and delete every tenant's events, does so through two narrow
`SECURITY DEFINER` functions (`outbox_batch`, `outbox_forget`: the oldest rows in order, and exactly
the rows it published), which run as the schema's owner; a policy admits that role alone, which the
application role cannot become. No setting the application role can write widens what it sees.
`processed_events` holds no tenant data (a consumer name, a random event id, a time) and has none.
"""

from __future__ import annotations

import asyncio
import logging
import zlib

import asyncpg
from nats.js import JetStreamContext

from panicsafe.contracts.events import CloudEvent
from panicsafe.core.bus.events import encode_event, event_headers
from panicsafe.core.db.database import TENANT_SETTING, Connection, Database

log = logging.getLogger(__name__)
FAST_POLL_S = 0.002

# The relay's only way to the outbox once it is under row-level security: run as the schema's owner
# (SECURITY DEFINER), with the schema's search path pinned so that no temporary object stands in.
OUTBOX_RELAY_FUNCTIONS = [
    """CREATE OR REPLACE FUNCTION outbox_batch(p_limit integer)
    RETURNS TABLE (seq bigint, subject text, payload bytea, headers jsonb)
    LANGUAGE sql STABLE SECURITY DEFINER AS $$
        SELECT o.seq, o.subject, o.payload, o.headers FROM outbox o ORDER BY o.seq LIMIT p_limit
    $$""",
    """CREATE OR REPLACE FUNCTION outbox_forget(p_seqs bigint[]) RETURNS integer
    LANGUAGE sql SECURITY DEFINER AS $$
        WITH gone AS (DELETE FROM outbox WHERE seq = ANY(p_seqs) RETURNING 1) SELECT count(*)::integer FROM gone
    $$""",
    """DO $$ BEGIN
        EXECUTE format('ALTER FUNCTION outbox_batch(integer) SET search_path = %I, pg_temp', current_schema());
        EXECUTE format('ALTER FUNCTION outbox_forget(bigint[]) SET search_path = %I, pg_temp', current_schema());
    END $$""",
    "REVOKE ALL ON FUNCTION outbox_batch(integer), outbox_forget(bigint[]) FROM PUBLIC",
]

OUTBOX_DDL = [
    """CREATE TABLE IF NOT EXISTS outbox (
        seq bigserial PRIMARY KEY,
        event_id uuid NOT NULL UNIQUE,
        subject text NOT NULL,
        payload bytea NOT NULL,
        headers jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp()
    )""",
    """CREATE TABLE IF NOT EXISTS processed_events (
        consumer text NOT NULL,
        event_id uuid NOT NULL,
        processed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (consumer, event_id)
    )""",
    "CREATE INDEX IF NOT EXISTS processed_events_age ON processed_events (processed_at)",
    *OUTBOX_RELAY_FUNCTIONS,
]


# The outbox under row-level security (see the module's docstring): applied by core's bus revision 2.
# Forced, so that its owner is bound too; the relay's policy names the role its functions run as.
_OUTBOX_TENANT = f"split_part(subject, '.', 2) = NULLIF(current_setting('{TENANT_SETTING}', true), '')"
OUTBOX_RLS_DDL = [
    *OUTBOX_RELAY_FUNCTIONS,
    "ALTER TABLE outbox ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE outbox FORCE ROW LEVEL SECURITY",
    # Queueing reveals nothing: any transaction may (producers run in tenant scope, identity lookups...).
    "DROP POLICY IF EXISTS outbox_queue ON outbox",
    "CREATE POLICY outbox_queue ON outbox FOR INSERT WITH CHECK (true)",
    # A transaction sees the events of its own tenant (subject `evt.<tenant>.<crisis>.<service>.<type>`).
    "DROP POLICY IF EXISTS outbox_own_tenant ON outbox",
    f"CREATE POLICY outbox_own_tenant ON outbox FOR SELECT USING ({_OUTBOX_TENANT})",
    "DROP POLICY IF EXISTS outbox_relay ON outbox",
    """DO $$ BEGIN
        EXECUTE format('CREATE POLICY outbox_relay ON outbox TO %s USING (true) WITH CHECK (true)',
                       (SELECT proowner::regrole FROM pg_proc WHERE oid = 'outbox_batch(integer)'::regprocedure));
    END $$""",
]


# Relays of this process: a write wakes them at once (PostgreSQL NOTIFY would serialise commits).
_local_relays: set[OutboxRelay] = set()


OUTBOX_COLUMNS = "event_id, subject, payload, headers"
INSERT_OUTBOX = "INSERT INTO outbox (event_id, subject, payload, headers) VALUES ($1, $2, $3, $4)"


def outbox_row(event: CloudEvent) -> tuple[str, str, bytes, dict[str, str]]:
    """The values of `OUTBOX_COLUMNS` for `event` (headers as a mapping: the pool's jsonb codec encodes it)."""
    return event.id, event.nats_subject, encode_event(event), event_headers(event)


def wake_relays() -> None:
    """Call after queueing outbox rows by hand (`append_event` does it): this process's relays look at once."""
    for relay in _local_relays:
        relay.wake()  # before the commit: the relay re-polls quickly until the row is visible


async def append_event(conn: Connection, event: CloudEvent) -> None:
    """Queue `event` in the current transaction: it is published if and only if the transaction commits."""
    await conn.execute(INSERT_OUTBOX, *outbox_row(event))
    wake_relays()


class OutboxRelay:
    """Publishes one schema's outbox to JetStream, in order, until stopped."""

    def __init__(
        self,
        db: Database,
        js: JetStreamContext,
        schema: str,
        *,
        batch_size: int = 256,
        idle_poll_s: float = 1.0,
        publish_timeout_s: float = 5.0,
        repoll: bool = True,
    ) -> None:
        self.db = db
        self.js = js
        self.schema = schema
        self.batch_size = batch_size
        self.idle_poll_s = idle_poll_s
        self.publish_timeout_s = publish_timeout_s
        # `append_event` wakes the relay before its transaction commits, so a read may come too
        # early: the relay polls again every few ms after each read (backing off when nothing
        # comes). A producer that wakes the relays only after its commit (the logbook's announcer)
        # turns that off: the relay then reads when woken, or after `idle_poll_s`.
        self.repoll = repoll
        self.published = 0
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._lock_key = zlib.crc32(f"outbox:{schema}".encode())
        self._channel = f"panicsafe_outbox_{schema}"

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Publish until stopped. After activity it polls every few ms (unless `repoll` is off),
        backing off to `idle_poll_s`; writers in other processes (replicas) are therefore picked up
        within that bound, and at once when their relay, a standby, passes their wake on."""
        _local_relays.add(self)
        backoff = 0.1
        try:
            while not self._stopping.is_set():
                try:
                    # A connection of its own, outside the pool: closing it ends the lock and the
                    # LISTEN together, whether this relay stops or the connection breaks.
                    conn = await self.db.connect()
                    try:
                        if await self._lead(conn):
                            await conn.add_listener(self._channel, self._told)
                            await self._publish_while_leading(conn)
                    finally:
                        await _close(conn)
                    backoff = 0.1
                except Exception as exc:  # noqa: BLE001 (NATS or PostgreSQL away: keep the rows, retry later)
                    log.warning("outbox relay paused: %s", exc, extra={"service": self.schema})
                    await self._sleep(backoff)
                    backoff = min(backoff * 2, 2.0)
        finally:
            _local_relays.discard(self)

    async def _lead(self, conn: Connection) -> bool:
        """Wait until this relay holds the schema's lock on `conn` (False: stopped first).

        Meanwhile, a write in this process (a wake) is passed on to the leader with a notification
        on the schema's channel, which the leader listens to: it publishes at once what another
        replica wrote, instead of at its next poll."""
        woken = False
        while not self._stopping.is_set():
            self._wake.clear()
            if await conn.fetchval("SELECT pg_try_advisory_lock($1)", self._lock_key):
                return True
            if woken:
                await conn.execute("SELECT pg_notify($1, '')", self._channel)
            woken = await self._sleep(self.idle_poll_s)
        return False

    def _told(self, *_: object) -> None:
        """A standby relay's notification (asyncpg listener: connection, pid, channel, payload)."""
        self._wake.set()

    async def _publish_while_leading(self, conn: Connection) -> None:
        delay = FAST_POLL_S
        while not self._stopping.is_set():
            self._wake.clear()
            sent = await self._publish_batch(conn)
            if sent == self.batch_size:
                continue
            if not self.repoll:
                await self._sleep(self.idle_poll_s)
                continue
            woken = await self._sleep(FAST_POLL_S if sent else delay)
            delay = FAST_POLL_S if (sent or woken) else min(delay * 2, self.idle_poll_s)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def _sleep(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True when woken by a write."""
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        except TimeoutError:
            return False
        return True

    async def relay_once(self) -> int:
        """Publish one batch if no other relay leads; return how many events left the outbox."""
        async with self.db.pool.acquire() as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", self._lock_key):
                return 0
            try:
                return await self._publish_batch(conn)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", self._lock_key)

    async def _publish_batch(self, conn: Connection) -> int:
        """On a connection holding the lock: publish the oldest rows, then delete exactly them."""
        rows = await conn.fetch("SELECT seq, subject, payload, headers FROM outbox_batch($1)", self.batch_size)
        if not rows:
            return 0
        # Sent back to back on one connection, so they reach the stream in outbox order.
        acks = [
            self.js.publish(
                row["subject"],
                bytes(row["payload"]),
                timeout=self.publish_timeout_s,
                headers=row["headers"],
            )
            for row in rows
        ]
        await asyncio.gather(*acks)
        # Exactly these rows: a lower seq may belong to a transaction that committed after the read.
        await conn.execute("SELECT outbox_forget($1::bigint[])", [r["seq"] for r in rows])
        self.published += len(rows)
        return len(rows)


async def _close(conn: asyncpg.Connection) -> None:
    try:
        await asyncio.wait_for(conn.close(), timeout=2.0)
    except Exception:  # noqa: BLE001 (a broken connection: drop it)
        conn.terminate()
