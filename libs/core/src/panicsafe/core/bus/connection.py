"""NATS connection with endless reconnects: the bus outlives a restart of the server."""

from __future__ import annotations

import logging

from nats.aio.client import Client

log = logging.getLogger(__name__)


async def connect_nats(url: str, name: str) -> Client:
    """Connect, reconnecting forever; pending publishes are buffered while disconnected."""
    client = Client()

    async def on_disconnect() -> None:
        if not (client.is_closed or client.is_draining):  # a clean close is not news
            log.warning("nats disconnected", extra={"service": name})

    async def on_reconnect() -> None:
        log.info("nats reconnected", extra={"service": name})

    async def on_error(error: Exception) -> None:
        log.warning("nats error: %s", error, extra={"service": name})

    await client.connect(
        servers=[url],
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.2,  # type: ignore[arg-type]  # annotated int, used as a sleep: floats work
        connect_timeout=2,
        allow_reconnect=True,
        pending_size=64 * 1024 * 1024,
        disconnected_cb=on_disconnect,
        reconnected_cb=on_reconnect,
        error_cb=on_error,
    )
    return client
