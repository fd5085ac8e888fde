"""The `EVENTS` JetStream stream on `evt.>` and publishing CloudEvents into it."""

from __future__ import annotations

import asyncio
import logging
import time

from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

from panicsafe.contracts.events import CloudEvent
from panicsafe.core.telemetry import inject_headers

log = logging.getLogger(__name__)
EVENTS_STREAM = "EVENTS"
EVENTS_SUBJECTS = ["evt.>"]
DUPLICATE_WINDOW_S = 120.0


async def ensure_events_stream(js: JetStreamContext, *, replicas: int = 1) -> None:
    """Create or update the stream: file storage, deduplication by `Nats-Msg-Id`."""
    config = StreamConfig(
        name=EVENTS_STREAM,
        subjects=EVENTS_SUBJECTS,
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        duplicate_window=DUPLICATE_WINDOW_S,
        num_replicas=replicas,
    )
    try:
        await js.add_stream(config)
    except BadRequestError:
        await js.update_stream(config)


async def wait_events_stream(js: JetStreamContext, *, timeout: float = 60.0) -> None:
    """Wait until the platform has provisioned the stream (services may not create it)."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        try:
            await js.stream_info(EVENTS_STREAM)
            return
        except (NotFoundError, NatsTimeoutError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            log.info("waiting for the %s stream to be provisioned", EVENTS_STREAM)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)


def event_headers(event: CloudEvent) -> dict[str, str]:
    headers = {"Nats-Msg-Id": event.id, "Content-Type": "application/cloudevents+json"}
    if event.traceparent:
        headers["traceparent"] = event.traceparent
    else:
        inject_headers(headers)
    return headers


def encode_event(event: CloudEvent) -> bytes:
    return event.model_dump_json().encode()


async def publish_event(js: JetStreamContext, event: CloudEvent, *, timeout: float = 5.0) -> int:
    """Publish straight to JetStream and return the stream sequence (use the outbox for state changes)."""
    ack = await js.publish(event.nats_subject, encode_event(event), timeout=timeout, headers=event_headers(event))
    return int(ack.seq)
