"""Durable, idempotent JetStream consumers: every event's effect is applied exactly once.

A batch is fetched from a durable pull consumer; each event runs in its own savepoint of one
transaction that first records `(consumer, event_id)` in `processed_events`. An event already
recorded is skipped. Acks are sent only after the commit, so a crash at any point leads to a
redelivery that the record turns into a no-op.

Events are believed only from their owner. NATS lets a service publish only on its own subjects
(`evt.*.*.<service>.>`); the consumer checks that every event says what its subject says (tenant,
crisis, source service and type, `subject_disagreement`). A message that does not, or is not a
CloudEvent at all, is refused: never handled, recorded in `dead_letters` with the reason, logged
at ERROR with the alert `event_refused`, then acknowledged, so it is neither lost nor retried.
`dead_letters` has no row-level security, as the tenant a refused message names cannot be trusted:
the application role may insert into it and nothing more; operators read it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import ValidationError

from panicsafe.contracts.events import CloudEvent, Refusal, subject_disagreement
from panicsafe.core.bus.events import EVENTS_STREAM
from panicsafe.core.db.database import Connection, set_tenant
from panicsafe.core.telemetry import extract_context, tracer

log = logging.getLogger(__name__)

# The alert an operator watches for (the log's `alert` field): an event refused by a consumer.
EVENT_REFUSED = "event_refused"

# Refused messages, one row per (consumer, stream sequence): a redelivery is recorded once. The
# application role may only insert (and read the two columns its conflict check needs).
DEAD_LETTERS_DDL = [
    """CREATE TABLE IF NOT EXISTS dead_letters (
        id bigserial PRIMARY KEY,
        consumer text NOT NULL,
        stream_seq bigint,
        subject text NOT NULL,
        event_id text,
        reason text NOT NULL,
        detail text NOT NULL DEFAULT '',
        payload bytea NOT NULL,
        headers jsonb,
        refused_at timestamptz NOT NULL DEFAULT clock_timestamp()
    )""",
    "CREATE UNIQUE INDEX IF NOT EXISTS dead_letters_once ON dead_letters (consumer, stream_seq)",
    "CREATE INDEX IF NOT EXISTS dead_letters_age ON dead_letters (refused_at)",
    """DO $$ BEGIN
        EXECUTE format('REVOKE ALL ON dead_letters FROM %I', current_schema() || '_app');
        EXECUTE format('GRANT INSERT ON dead_letters TO %I', current_schema() || '_app');
        -- ON CONFLICT reads the arbiter index's columns: these two, no payload.
        EXECUTE format('GRANT SELECT (consumer, stream_seq) ON dead_letters TO %I', current_schema() || '_app');
    END $$""",
]
INSERT_DEAD_LETTERS = """INSERT INTO dead_letters
        (consumer, stream_seq, subject, event_id, reason, detail, payload, headers)
    SELECT $1, r.seq, r.subject, r.event_id, r.reason, r.detail, r.payload, r.headers::jsonb
    FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bytea[], $8::text[])
        AS r(seq, subject, event_id, reason, detail, payload, headers)
    ON CONFLICT (consumer, stream_seq) DO NOTHING"""

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
        self.refused = 0  # dead-lettered: malformed, or saying something other than their subject
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
        the batch is replayed event by event in savepoints, so one bad event spares the others.
        Refused messages are dead-lettered first (see the module's docstring)."""
        events: list[tuple[Msg, CloudEvent]] = []
        no_op: list[Msg] = []
        refused: list[_Refused] = []
        for msg in messages:
            if self.ignore_services and _service_of(msg.subject) in self.ignore_services:
                no_op.append(msg)
                self.skipped += 1
                continue
            checked = _check(msg)
            if isinstance(checked, _Refused):
                refused.append(checked)
            elif self.wants is not None and not self.wants(checked):
                no_op.append(msg)  # nothing to do: acknowledged as is
                self.skipped += 1
            else:
                events.append((msg, checked))
        if refused:
            await self._dead_letter(refused)  # a failure here acks nothing: the batch comes back
            no_op.extend(r.msg for r in refused)
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

    async def _dead_letter(self, refused: list[_Refused]) -> None:
        """Record the refused messages durably, then raise the alert for each."""
        await self.pool.execute(
            INSERT_DEAD_LETTERS,
            self.durable,
            [r.stream_seq for r in refused],
            [_text(r.msg.subject) for r in refused],
            [r.event_id for r in refused],
            [str(r.reason) for r in refused],
            [r.detail for r in refused],
            [bytes(r.msg.data) for r in refused],
            [_headers_json(r.msg) for r in refused],
        )
        for r in refused:
            self.refused += 1
            log.error(
                "%s: consumer %s refused event %s on %s: %s %s",
                EVENT_REFUSED,
                self.durable,
                r.event_id,
                r.msg.subject,
                r.reason,
                r.detail,
                extra={
                    "alert": EVENT_REFUSED,
                    "service": self.durable,
                    "subject": r.msg.subject,
                    "event_id": r.event_id,
                    "reason": str(r.reason),
                },
            )

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


@dataclass(frozen=True)
class _Refused:
    msg: Msg
    reason: Refusal
    detail: str
    event_id: str | None
    stream_seq: int | None


def _check(msg: Msg) -> CloudEvent | _Refused:
    """The event `msg` carries, if it is one and says what its subject says."""
    try:
        event = CloudEvent.model_validate_json(msg.data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'event'}: {e['msg']}" for e in errors[:3])
        return _refused(msg, Refusal.MALFORMED, detail, _raw_id(msg.data))
    try:
        uuid.UUID(event.id)  # `processed_events` records ids as UUIDs: another id could never be claimed
    except ValueError:
        return _refused(msg, Refusal.MALFORMED, "id: not a UUID", event.id)
    reason = subject_disagreement(msg.subject, event)
    if reason is not None:
        return _refused(msg, reason, f"the event names {event.nats_subject}", event.id)
    return event


def _refused(msg: Msg, reason: Refusal, detail: str, event_id: str | None) -> _Refused:
    try:
        stream_seq: int | None = msg.metadata.sequence.stream
    except Exception:  # noqa: BLE001 (not a JetStream delivery: recorded without a sequence)
        stream_seq = None
    return _Refused(msg, reason, _text(detail, 1000), None if event_id is None else _text(event_id, 100), stream_seq)


def _text(value: str, limit: int = 1000) -> str:
    """`value` as PostgreSQL text takes it: a forged message must not make its own record fail
    (NUL and lone surrogates are refused by PostgreSQL: the refusal would be retried forever)."""
    return value[:limit].encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")


def _headers_json(msg: Msg) -> str | None:
    if not msg.headers:
        return None
    return json.dumps({_text(k, 200): _text(v, 1000) for k, v in msg.headers.items()})


def _raw_id(data: bytes) -> str | None:
    """The `id` a malformed message claims, if any, for the alert (never trusted)."""
    try:
        raw = json.loads(data)
    except (ValueError, RecursionError):
        return None
    value = raw.get("id") if isinstance(raw, dict) else None
    return value if isinstance(value, str) else None


def _service_of(subject: str) -> str:
    """The service token of an event subject `evt.<tenant>.<crisis>.<service>.<type>` ("" if none)."""
    parts = subject.split(".")
    return parts[3] if len(parts) > 4 and parts[0] == "evt" else ""
