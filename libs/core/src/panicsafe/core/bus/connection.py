"""NATS connection with endless reconnects: the bus outlives a restart of the server.

Every connection of the platform is authenticated and encrypted: TLS verified against the
platform's CA, an nkey identity (its seed read from a file), replies on the identity's private
inbox prefix (see `panicsafe.core.bus.identity`).
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass

from nats.aio.client import Client

from panicsafe.core.bus.identity import inbox_prefix

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NatsCredentials:
    """How one identity connects: its nkey seed, the CA that signed the server, its inbox prefix."""

    identity: str
    seed: str | None = None  # "SU..." (never logged)
    ca_file: str | None = None

    def __repr__(self) -> str:
        return f"NatsCredentials({self.identity}, seed={'set' if self.seed else 'none'}, ca={self.ca_file})"

    def tls_context(self) -> ssl.SSLContext | None:
        if not self.ca_file:
            return None
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context


async def connect_nats(url: str, name: str, credentials: NatsCredentials | None = None) -> Client:
    """Connect, reconnecting forever; pending publishes are buffered while disconnected."""
    client = Client()

    async def on_disconnect() -> None:
        if not (client.is_closed or client.is_draining):  # a clean close is not news
            log.warning("nats disconnected", extra={"service": name})

    async def on_reconnect() -> None:
        log.info("nats reconnected", extra={"service": name})

    async def on_error(error: Exception) -> None:
        log.warning("nats error: %s", error, extra={"service": name})

    options: dict[str, object] = {}
    if credentials is not None:
        options["inbox_prefix"] = inbox_prefix(credentials.identity)
        if credentials.seed:
            options["nkeys_seed_str"] = credentials.seed
        tls = credentials.tls_context()
        if tls is not None:
            options["tls"] = tls
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
        **options,  # type: ignore[arg-type]
    )
    return client
