"""In-process fan-out of platform events to GraphQL subscriptions.

One JetStream consumer per gateway process (an ordered push consumer on `EVENTS`, new events only)
feeds every live subscription: each event is handed to the subscribers of its (tenant, crisis), and
to no one else, through a bounded queue per subscriber. Handing over never waits: a subscriber whose
queue is full is dropped on the spot (`slow_consumer`) and its iterator ends with
`SlowConsumerError` once it has read what was buffered, so one stalled client never delays the
others. The client resubscribes and catches up with a query.

Nothing here is durable: a subscription sees the events published while it is registered. Events
are frozen models shared by every queue, never copied.

Events are believed only from their owner: an event whose subject does not say what the event says
(its tenant, crisis, source service and type: `subject_disagreement`), or a message that is no
CloudEvent, is dropped before dispatch, counted (`refused`) and logged at ERROR with the alert
`event_refused`, like the durable consumers (which also dead-letter it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from types import TracebackType
from typing import NoReturn

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from pydantic import ValidationError

from panicsafe.contracts.errors import ErrorCode
from panicsafe.contracts.events import NO_CRISIS, CloudEvent, Refusal, canonical_uuid, subject_disagreement
from panicsafe.core.bus.consumer import EVENT_REFUSED
from panicsafe.core.bus.events import EVENTS_STREAM
from panicsafe.core.errors import ServiceError, invalid, unavailable

log = logging.getLogger(__name__)

Accept = Callable[[CloudEvent], bool]
Key = tuple[str, str]

SLOW_CONSUMER = "slow_consumer"


class SlowConsumerError(ServiceError):
    """The subscription fell too far behind and was dropped; resubscribe and refetch."""

    def __init__(self) -> None:
        super().__init__(
            ErrorCode.UNAVAILABLE,
            "subscription dropped: events arrived faster than they were read; subscribe again",
        )


class HubSubscription:
    """The events of one (tenant, crisis) for one client, in order, as an async iterator.

    Registered as soon as `EventHub.subscribe` returns; events are buffered until read.
    """

    def __init__(self, hub: EventHub, key: Key, accept: Accept | None, queue_size: int) -> None:
        self.tenant, self.crisis = key
        self.dropped_reason: str | None = None
        self._hub = hub
        self._key = key
        self._accept = accept
        # `None` marks the end; it is queued only when there is room (see `_end`).
        self._queue: asyncio.Queue[CloudEvent | None] = asyncio.Queue(queue_size)
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop receiving; events already buffered can still be read, then iteration ends."""
        if not self._closed:
            self._hub._remove(self)
            self._end()

    def _end(self) -> None:
        self._closed = True
        with contextlib.suppress(asyncio.QueueFull):
            # A reader waiting on an empty queue wakes up. A full queue has no waiting reader:
            # it will see `_closed` once it has drained the queue.
            self._queue.put_nowait(None)

    def _offer(self, event: CloudEvent) -> bool:
        """Queue `event` without waiting; False when the queue is full."""
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            return False
        return True

    def _finish(self) -> NoReturn:
        if self.dropped_reason == SLOW_CONSUMER:
            raise SlowConsumerError
        raise StopAsyncIteration

    def __aiter__(self) -> HubSubscription:
        return self

    async def __anext__(self) -> CloudEvent:
        if self._closed and self._queue.empty():
            self._finish()
        item = await self._queue.get()
        if item is None:
            self._finish()
        return item

    async def __aenter__(self) -> HubSubscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class EventHub:
    """One JetStream consumer for the process, fanned out to subscribers by (tenant, crisis)."""

    def __init__(self, js: JetStreamContext, *, queue_size: int = 256, subject: str = "evt.>") -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self.js = js
        self.queue_size = queue_size
        self.subject = subject
        self.received = 0
        self.malformed = 0  # refused as not a CloudEvent
        self.refused = 0  # every refused message: malformed, or saying other than its subject
        self.replayed = 0
        self.delivered = 0
        self.dropped_subscribers = 0
        self._subscribers: dict[Key, dict[HubSubscription, None]] = {}
        self._subscription: JetStreamContext.PushSubscription | None = None
        self._stopped = False
        self._last_sequence = 0

    @property
    def running(self) -> bool:
        return self._subscription is not None and not self._stopped

    @property
    def subscriber_count(self) -> int:
        return sum(len(subscribers) for subscribers in self._subscribers.values())

    def metrics(self) -> dict[str, int]:
        return {
            "received": self.received,
            "malformed": self.malformed,
            "refused": self.refused,
            "replayed": self.replayed,
            "delivered": self.delivered,
            "dropped_subscribers": self.dropped_subscribers,
            "subscribers": self.subscriber_count,
        }

    async def start(self) -> None:
        """Create the process's consumer: ordered (gap-free, recreated after a loss), new events only."""
        if self._stopped:
            raise RuntimeError("an event hub cannot be restarted")
        if self._subscription is not None:
            return
        # Should the ordered consumer be recreated before its first event (the server restarted),
        # it would start over from the first sequence: anything up to here is skipped.
        info = await self.js.stream_info(EVENTS_STREAM)
        self._last_sequence = info.state.last_seq
        self._subscription = await self.js.subscribe(
            self.subject,
            stream=EVENTS_STREAM,
            cb=self._on_message,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.NEW,
        )

    async def stop(self) -> None:
        """Unsubscribe from JetStream and end every subscription (each still drains its buffer)."""
        self._stopped = True
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            with contextlib.suppress(Exception):  # the connection may already be closed
                await subscription.unsubscribe()
        subscribers = [sub for group in self._subscribers.values() for sub in group]
        self._subscribers.clear()
        for sub in subscribers:
            sub._end()

    def subscribe(
        self,
        *,
        tenant: str,
        crisis: str,
        accept: Accept | None = None,
        queue_size: int | None = None,
    ) -> HubSubscription:
        """Register a subscriber to the events of `crisis` (or `_`, the tenant-wide events) of `tenant`.

        `accept` filters further (it runs in the dispatch loop: keep it cheap and non-blocking);
        `queue_size` overrides the hub's default for this subscriber.
        """
        if self._stopped:
            raise unavailable("the event hub is stopped")
        try:
            key = (canonical_uuid(tenant), crisis if crisis == NO_CRISIS else canonical_uuid(crisis))
        except ValueError as exc:
            raise invalid("tenant and crisis must be UUIDs") from exc
        size = self.queue_size if queue_size is None else queue_size
        if size < 1:
            raise ValueError("queue_size must be at least 1")
        sub = HubSubscription(self, key, accept, size)
        self._subscribers.setdefault(key, {})[sub] = None
        return sub

    def _remove(self, sub: HubSubscription) -> None:
        group = self._subscribers.get(sub._key)
        if group is not None:
            group.pop(sub, None)
            if not group:
                del self._subscribers[sub._key]

    async def _on_message(self, msg: Msg) -> None:
        self.received += 1
        try:
            event = self._event_of(msg)
            if event is not None:
                self.dispatch(event)
        except Exception:  # one bad message must not stop the hub
            log.exception("event hub failed on a message", extra={"subject": msg.subject})
        # Let the readers run between two events of a burst, so a healthy client drains its
        # queue as the events come rather than after the whole burst.
        await asyncio.sleep(0)

    def _event_of(self, msg: Msg) -> CloudEvent | None:
        sequence = msg.metadata.sequence.stream
        if sequence <= self._last_sequence:
            self.replayed += 1  # already handed over, or older than the hub
            return None
        self._last_sequence = sequence
        try:
            event = CloudEvent.model_validate_json(msg.data)
        except ValidationError:
            self.malformed += 1
            self._refuse(msg, Refusal.MALFORMED, None)
            return None
        reason = subject_disagreement(msg.subject, event)
        if reason is not None:
            self._refuse(msg, reason, event.id)
            return None
        return event

    def _refuse(self, msg: Msg, reason: Refusal, event_id: str | None) -> None:
        self.refused += 1
        log.error(
            "%s: the event hub dropped event %s on %s: %s",
            EVENT_REFUSED,
            event_id,
            msg.subject,
            reason,
            extra={
                "alert": EVENT_REFUSED,
                "service": "gateway-hub",
                "subject": msg.subject,
                "event_id": event_id,
                "reason": str(reason),
            },
        )

    def dispatch(self, event: CloudEvent) -> None:
        """Hand `event` to the subscribers of its (tenant, crisis), never waiting on any of them."""
        group = self._subscribers.get((event.tenantid, event.crisisid))
        if not group:
            return
        for sub in tuple(group):
            if sub._accept is not None:
                try:
                    if not sub._accept(event):
                        continue
                except Exception:
                    log.exception("subscription filter failed", extra={"event_id": event.id})
                    continue
            if sub._offer(event):
                self.delivered += 1
            else:
                self._drop(sub)

    def _drop(self, sub: HubSubscription) -> None:
        sub.dropped_reason = SLOW_CONSUMER
        self._remove(sub)
        sub._end()
        self.dropped_subscribers += 1
        log.warning(
            "dropping a slow subscriber of %s/%s (%d events buffered)",
            sub.tenant,
            sub.crisis,
            sub._queue.qsize(),
            extra={"tenant": sub.tenant, "crisis": sub.crisis},
        )
