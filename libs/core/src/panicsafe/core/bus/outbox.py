"""Transactional outbox: a state change and its event commit together, a relay publishes them.

Producers call `append_event(conn, event)` inside the transaction of their state change. The
relay takes batches in order under a per-schema advisory lock (one relay publishes at a time,
which keeps order), publishes them to JetStream with `Nats-Msg-Id` = event id, waits for every
ack, then deletes them in the same transaction. If the relay dies between publish and delete, the
batch is published again: JetStream's duplicate window and the consumers' idempotence absorb it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib

import asyncpg
from nats.js import JetStreamContext

from panicsafe.contracts.events import CloudEvent
from panicsafe.core.bus.events import encode_event, event_headers
from panicsafe.core.db.database import Connection

log = logging.getLogger(__name__)

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
]


def notify_channel(schema: str) -> str:
    return f"{schema}_outbox"


async def append_event(conn: Connection, event: CloudEvent) -> None:
    """Queue `event` in the current transaction: it is published if and only if the transaction commits."""
    schema = await conn.fetchval("SELECT current_schema()")
    await conn.execute(
        "INSERT INTO outbox (event_id, subject, payload, headers) VALUES ($1, $2, $3, $4)",
        event.id,
        event.nats_subject,
        encode_event(event),
        event_headers(event),  # the pool's jsonb codec encodes it
    )
    await conn.execute("SELECT pg_notify($1, '')", notify_channel(str(schema)))


class OutboxRelay:
    """Publishes one schema's outbox to JetStream, in order, until stopped."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        js: JetStreamContext,
        schema: str,
        *,
        listen_dsn: str | None = None,
        batch_size: int = 256,
        idle_poll_s: float = 1.0,
        publish_timeout_s: float = 5.0,
    ) -> None:
        self.pool = pool
        self.js = js
        self.schema = schema
        self.listen_dsn = listen_dsn
        self.batch_size = batch_size
        self.idle_poll_s = idle_poll_s
        self.publish_timeout_s = publish_timeout_s
        self.published = 0
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._lock_key = zlib.crc32(f"outbox:{schema}".encode())

    async def run(self) -> None:
        listener = await self._listen()
        backoff = 0.1
        try:
            while not self._stopping.is_set():
                try:
                    sent = await self.relay_once()
                    backoff = 0.1
                except Exception as exc:  # noqa: BLE001 (NATS or PostgreSQL away: keep the rows, retry later)
                    log.warning("outbox relay paused: %s", exc, extra={"service": self.schema})
                    await self._sleep(backoff)
                    backoff = min(backoff * 2, 2.0)
                    continue
                if sent < self.batch_size:
                    self._wake.clear()
                    await self._sleep(self.idle_poll_s)
        finally:
            if listener is not None:
                with contextlib.suppress(Exception):
                    await listener.close()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    async def _listen(self) -> asyncpg.Connection | None:
        if self.listen_dsn is None:
            return None
        try:
            conn = await asyncpg.connect(self.listen_dsn)
            await conn.add_listener(notify_channel(self.schema), lambda *_: self._wake.set())
            return conn
        except Exception as exc:  # noqa: BLE001 (polling still delivers; only latency suffers)
            log.warning("outbox listener unavailable, polling: %s", exc, extra={"service": self.schema})
            return None

    async def relay_once(self) -> int:
        """Publish one batch; return how many events left the outbox."""
        async with self.pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", self._lock_key):
                return 0
            rows = await conn.fetch(
                "SELECT seq, subject, payload, headers FROM outbox ORDER BY seq LIMIT $1", self.batch_size
            )
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
            await conn.execute("DELETE FROM outbox WHERE seq = ANY($1::bigint[])", [r["seq"] for r in rows])
        self.published += len(rows)
        return len(rows)
