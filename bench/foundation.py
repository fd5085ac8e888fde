"""Foundation: devstack start time, and outbox -> JetStream -> durable consumer throughput with fsync on.

The baseline is the rate of the same state change committed alone into the same PostgreSQL (no
event): what the outbox costs on top of the commit. NATS runs with `sync_interval: always` and
PostgreSQL with `synchronous_commit=on`.

The bench plays generic producers and consumers (its own table, tenant and durable consumer), which
no service identity may: it runs on a test stack with the all-powerful `harness` NATS identity (still
TLS and an nkey). `PANICSAFE_BENCH_EVENTS` shortens a smoke run.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from pathlib import Path

from bench.common import Figure, Result
from panicsafe.contracts.events import CloudEvent
from panicsafe.core.bus.connection import connect_nats
from panicsafe.core.bus.consumer import EventConsumer
from panicsafe.core.bus.identity import HARNESS
from panicsafe.core.bus.outbox import OutboxRelay, append_event
from panicsafe.core.db.database import Connection
from panicsafe.core.devstack import DevStack
from panicsafe.core.testing import make_schema

EVENTS = int(os.environ.get("PANICSAFE_BENCH_EVENTS", "10000"))
WRITERS = 16


async def measure(stack: DevStack, result: Result) -> None:
    schema = await make_schema(stack, "bench")
    owner = schema.owner_database()
    await owner.open()
    async with owner.transaction() as conn:
        await conn.execute("CREATE TABLE changes (id bigserial PRIMARY KEY, n int NOT NULL)")
        await conn.execute("CREATE TABLE applied (event_id uuid PRIMARY KEY, n int NOT NULL)")
    await owner.close()
    db = schema.database(max_size=WRITERS + 4)
    await db.open()
    nc = await connect_nats(stack.nats.url, "bench", stack.nats.credentials(HARNESS))
    js = nc.jetstream()  # the EVENTS stream: provisioned by the devstack
    tenant = str(uuid.uuid4())

    async def write(with_event: bool) -> float:
        async def writer(worker: int) -> None:
            for i in range(worker, EVENTS, WRITERS):
                async with db.transaction() as conn:
                    await conn.execute("INSERT INTO changes (n) VALUES ($1)", i)
                    if with_event:
                        await append_event(
                            conn,
                            CloudEvent(
                                source="panicsafe/bench",
                                type="fr.panicsafe.bench.changed",
                                tenantid=tenant,
                                data={"n": i},
                            ),
                        )

        started = time.perf_counter()
        await asyncio.gather(*(writer(w) for w in range(WRITERS)))
        return EVENTS / (time.perf_counter() - started)

    baseline = await write(with_event=False)

    async def effect(conn: Connection, event: CloudEvent) -> None:
        await conn.execute("INSERT INTO applied VALUES ($1, $2)", event.id, event.data["n"])

    consumer = EventConsumer(
        db.pool, js, durable=f"bench_{schema.schema}", filter_subject=f"evt.{tenant}.>", handler=effect
    )
    relay = OutboxRelay(db, js, schema.schema)
    tasks = [asyncio.create_task(consumer.run()), asyncio.create_task(relay.run())]
    started = time.perf_counter()
    produce_rate = await write(with_event=True)
    while await db.pool.fetchval("SELECT count(*) FROM applied") < EVENTS:  # noqa: ASYNC110 (polls the db)
        await asyncio.sleep(0.02)
    end_to_end = EVENTS / (time.perf_counter() - started)
    relay.stop()
    consumer.stop()
    await asyncio.gather(*tasks)
    await nc.close()
    await db.close()
    result.add(
        Figure(
            "state_changes_with_event_per_s",
            produce_rate,
            "1/s",
            baseline=("commit_without_event_per_s", baseline),
        )
    )
    result.add(
        Figure(
            "outbox_to_consumer_events_per_s",
            end_to_end,
            "1/s",
            target=">= 1000",
            baseline=("commit_without_event_per_s", baseline),
            met=end_to_end >= 1000,
        )
    )


def main() -> Result:
    result = Result("foundation")
    with tempfile.TemporaryDirectory(prefix="panicsafe-bench-") as folder:
        stack = DevStack(Path(folder) / "stack", harness=True)
        stack.start()
        try:
            result.add(
                Figure(
                    "devstack_start_s",
                    stack.startup_s["total"],
                    "s",
                    target="< 10",
                    met=stack.startup_s["total"] < 10,
                )
            )
            asyncio.run(measure(stack, result))
        finally:
            stack.stop()
    return result
