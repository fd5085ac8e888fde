"""Durable, idempotent JetStream consumers: every event's effect is applied exactly once.

A batch is fetched from a durable pull consumer; each event runs in its own savepoint of one
transaction that first records `(consumer, event_id)` in `processed_events`. An event already
recorded is skipped. Acks are sent only after the commit, so a crash at any point leads to a
redelivery that the record turns into a no-op.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import asyncpg
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import ValidationError

from panicsafe.contracts.events import CloudEvent
from panicsafe.core.bus.events import EVENTS_STREAM
from panicsafe.core.db.database import Connection, set_tenant
from panicsafe.core.telemetry import extract_context, tracer

log = logging.getLogger(__name__)

EventHandler = Callable[[Connection, CloudEvent], Awaitable[None]]
# Which events the handler acts on; the others are acknowledged without a database round trip.
EventFilter = Callable[[CloudEvent], bool]


def consumer_config(
    durable: str, filter_subjects: tuple[str, ...], *, batch_size: int = 200, ack_wait_s: float = 30.0
) -> ConsumerConfig:
    """A durable pull consumer's settings: the platform provisions declared ones with exactly these."""
    return ConsumerConfig(
        name=durable,
        durable_name=durable,
        filter_subjects=list(filter_subjects),
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=ack_wait_s,
        max_ack_pending=batch_size * 10,
        max_deliver=-1,
    )


class EventConsumer:
    """Applies `handler` to each event on `filter_subject` (one or several), once, inside the event's tenant."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        js: JetStreamContext,
        *,
        durable: str,
        filter_subject: str | tuple[str, ...],
        handler: EventHandler,
        batch_size: int = 200,
        ack_wait_s: float = 30.0,
        wants: EventFilter | None = None,
        ignore_services: frozenset[str] = frozenset(),
    ) -> None:
        self.pool = pool
        self.js = js
        self.durable = durable
        self.filter_subjects = (filter_subject,) if isinstance(filter_subject, str) else tuple(filter_subject)
        self.handler = handler
        self.batch_size = batch_size
        self.ack_wait_s = ack_wait_s
        self.wants = wants
        # Events of these services are acknowledged from their subject alone (never parsed): a
        # service's own events on a wide filter such as `evt.>`.
        self.ignore_services = ignore_services
        self.applied = 0
        self.skipped = 0
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        subscription = None
        backoff = 0.1
        while not self._stopping.is_set():
            try:
                if subscription is None:
                    # A declared consumer exists already (the platform provisioned it and the service
                    # may only pull from it); only an all-powerful test identity creates its own.
                    subscription = await self.js.pull_subscribe(
                        self.filter_subjects[0],
                        durable=self.durable,
                        stream=EVENTS_STREAM,
                        config=consumer_config(
                            self.durable,
                            self.filter_subjects,
                            batch_size=self.batch_size,
                            ack_wait_s=self.ack_wait_s,
                        ),
                    )
                try:
                    messages = await subscription.fetch(self.batch_size, timeout=1.0)
                except TimeoutError:
                    continue
                await self.apply_batch(messages)
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 (the server restarts, the database blips: retry, never drop)
                log.warning("consumer %s paused: %s", self.durable, exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=backoff)
                backoff = min(backoff * 2, 2.0)
        if subscription is not None:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    async def apply_batch(self, messages: list[Msg]) -> None:
        """Fast path: one transaction claims every id and applies the batch. If a handler fails,
        the batch is replayed event by event in savepoints, so one bad event spares the others."""
        events: list[tuple[Msg, CloudEvent]] = []
        no_op: list[Msg] = []
        for msg in messages:
            if self.ignore_services and _service_of(msg.subject) in self.ignore_services:
                no_op.append(msg)
                self.skipped += 1
                continue
            try:
                event = CloudEvent.model_validate_json(msg.data)
            except ValidationError:
                log.error("dropping malformed event on %s", msg.subject, extra={"subject": msg.subject})
                no_op.append(msg)  # a malformed message must not block the stream
                continue
            if self.wants is not None and not self.wants(event):
                no_op.append(msg)  # nothing to do: acknowledged as is
                self.skipped += 1
            else:
                events.append((msg, event))
        if not events:
            for msg in no_op:
                await msg.ack()
            return
        retry: list[Msg] = []
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                fresh = await self._claim(conn, [event.id for _, event in events])
                applied = await self._apply_all(conn, events, fresh)
        except Exception:  # noqa: BLE001 (a handler failed: isolate it below)
            log.warning("batch failed, applying one by one", extra={"service": self.durable})
            retry = await self._apply_one_by_one(events)
        else:
            self.applied += applied
            self.skipped += len(events) - applied
        for msg in no_op + [m for m, _ in events if m not in retry]:
            await msg.ack()
        for msg in retry:
            await msg.nak(delay=1.0)

    async def _claim(self, conn: Connection, ids: list[str]) -> set[str]:
        rows = await conn.fetch(
            "INSERT INTO processed_events (consumer, event_id) SELECT $1, unnest($2::uuid[]) "
            "ON CONFLICT DO NOTHING RETURNING event_id::text",
            self.durable,
            ids,
        )
        return {row["event_id"] for row in rows}

    async def _apply_all(self, conn: Connection, events: list[tuple[Msg, CloudEvent]], fresh: set[str]) -> int:
        applied = 0
        tenant = None
        for msg, event in events:
            if event.id not in fresh:
                continue
            fresh.discard(event.id)  # the same id twice in one batch applies once
            if event.tenantid != tenant:
                await set_tenant(conn, event.tenantid)
                tenant = event.tenantid
            await self._handle(event, msg, conn)
            applied += 1
        return applied

    async def _apply_one_by_one(self, events: list[tuple[Msg, CloudEvent]]) -> list[Msg]:
        failed: list[Msg] = []
        async with self.pool.acquire() as conn, conn.transaction():
            for msg, event in events:
                try:
                    async with conn.transaction():  # savepoint
                        if await self._claim(conn, [event.id]):
                            await set_tenant(conn, event.tenantid)
                            await self._handle(event, msg, conn)
                            self.applied += 1
                        else:
                            self.skipped += 1
                except Exception:
                    log.exception("event handler failed", extra={"event_id": event.id})
                    failed.append(msg)
        return failed

    async def _handle(self, event: CloudEvent, msg: Msg, conn: Connection) -> None:
        with tracer().start_as_current_span(f"consume {self.durable}", context=extract_context(msg.headers)) as span:
            span.set_attribute("messaging.message.id", event.id)
            await self.handler(conn, event)


async def prune_processed(pool: asyncpg.Pool, *, older_than_days: int = 14) -> int:
    """Forget ids older than any possible redelivery (JetStream acks them long before)."""
    result = await pool.execute(
        "DELETE FROM processed_events WHERE processed_at < clock_timestamp() - make_interval(days => $1)",
        older_than_days,
    )
    return int(str(result).split()[-1])


def _service_of(subject: str) -> str:
    """The service token of an event subject `evt.<tenant>.<crisis>.<service>.<type>` ("" if none)."""
    parts = subject.split(".")
    return parts[3] if len(parts) > 4 and parts[0] == "evt" else ""
