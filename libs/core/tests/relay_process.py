"""A standalone outbox relay, run as its own process so that tests can SIGKILL it."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from panicsafe.core.bus.connection import NatsCredentials, connect_nats
from panicsafe.core.bus.outbox import OutboxRelay
from panicsafe.core.db.database import Database


async def main(dsn: str, schema: str, nats_url: str, seed_file: str, ca_file: str) -> None:
    db = Database(dsn, schema)
    await db.open()
    credentials = NatsCredentials("harness", Path(seed_file).read_text().strip(), ca_file)
    nc = await connect_nats(nats_url, "relay-process", credentials)
    relay = OutboxRelay(db, nc.jetstream(), schema, batch_size=100)
    await relay.run()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
