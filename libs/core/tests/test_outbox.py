"""No lost events: outbox, relay and durable consumer across a NATS restart and a killed relay."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import pytest
from nats.aio.client import Client

from panicsafe.contracts.events import CloudEvent, LogbookKind, LogbookPart
from panicsafe.core.bus.consumer import EventConsumer
from panicsafe.core.bus.outbox import INSERT_OUTBOX, OutboxRelay, append_event, outbox_row
from panicsafe.core.db.database import Connection
from panicsafe.core.devstack import DevStack
from panicsafe.core.testing import ProvisionedSchema, make_schema

TOTAL = 2000
PRODUCERS = 8


def start_relay(schema: ProvisionedSchema, stack: DevStack) -> subprocess.Popen[bytes]:
    script = Path(__file__).with_name("relay_process.py")
    return subprocess.Popen(
        [
            sys.executable,
            str(script),
            schema.app_dsn,
            schema.schema,
            stack.nats.url,
            str(stack.nats.seed_file("harness")),
            stack.nats.ca_file,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def changed(tenant: str, n: int) -> CloudEvent:
    """The test's event: change number `n` of `tenant`."""
    return CloudEvent(
        source="panicsafe/outboxtest", type="fr.panicsafe.outboxtest.changed", tenantid=tenant, data={"n": n}
    )


async def create_tables(schema: ProvisionedSchema) -> None:
    owner = schema.owner_database()
    await owner.open()
    try:
        async with owner.transaction() as conn:
            await conn.execute("CREATE TABLE changes (id bigserial PRIMARY KEY, n int NOT NULL)")
            # The effect is deliberately not idempotent: a duplicate delivery would show.
            await conn.execute("CREATE TABLE applied (event_id uuid NOT NULL, n int NOT NULL)")
            await conn.execute("CREATE TABLE totals (k text PRIMARY KEY, count bigint NOT NULL)")
            await conn.execute("INSERT INTO totals VALUES ('events', 0)")
    finally:
        await owner.close()


async def test_every_event_applied_exactly_once(stack: DevStack, nc: Client) -> None:
    schema = await make_schema(stack, "ob")
    await create_tables(schema)
    tenant = str(uuid.uuid4())
    db = schema.database(max_size=12)
    await db.open()

    async def effect(conn: Connection, event: CloudEvent) -> None:
        await conn.execute("INSERT INTO applied VALUES ($1, $2)", event.id, event.data["n"])
        await conn.execute("UPDATE totals SET count = count + 1 WHERE k = 'events'")

    consumer = EventConsumer(
        db.pool,
        nc.jetstream(),
        durable=f"dur_{schema.schema}",
        filter_subject=f"evt.{tenant}.>",
        handler=effect,
    )
    consumer_task = asyncio.create_task(consumer.run())
    relay = start_relay(schema, stack)
    produced = 0

    async def produce(worker: int) -> None:
        nonlocal produced
        for i in range(worker, TOTAL, PRODUCERS):
            async with db.transaction() as conn:
                await conn.execute("INSERT INTO changes (n) VALUES ($1)", i)
                await append_event(
                    conn,
                    CloudEvent(
                        source="panicsafe/outboxtest",
                        type="fr.panicsafe.outboxtest.changed",
                        tenantid=tenant,
                        data={"n": i},
                        logbook=LogbookPart(kind=LogbookKind.SYSTEM, summary=f"changement {i}"),
                    ),
                )
            produced += 1

    async def faults() -> None:
        nonlocal relay
        while produced < TOTAL // 3:
            await asyncio.sleep(0.01)
        await asyncio.to_thread(stack.restart, "nats", down_s=0.5)  # the bus goes away mid-stream
        while produced < (2 * TOTAL) // 3:
            await asyncio.sleep(0.01)
        relay.send_signal(signal.SIGKILL)  # the relay dies without any clean-up
        relay.wait(5)
        relay = start_relay(schema, stack)

    started = time.monotonic()
    try:
        await asyncio.gather(*(produce(w) for w in range(PRODUCERS)), faults())
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            count = await db.pool.fetchval("SELECT count(*) FROM applied")
            if count >= TOTAL:
                break
            await asyncio.sleep(0.2)
        elapsed = time.monotonic() - started
        await asyncio.sleep(1.5)  # let any late duplicate arrive before counting
        rows = await db.pool.fetchval("SELECT count(*) FROM applied")
        distinct = await db.pool.fetchval("SELECT count(DISTINCT event_id) FROM applied")
        numbers = await db.pool.fetchval("SELECT count(DISTINCT n) FROM applied")
        total = await db.pool.fetchval("SELECT count FROM totals WHERE k = 'events'")
        left = await db.pool.fetchval("SELECT count(*) FROM outbox")
    finally:
        relay.send_signal(signal.SIGKILL)
        relay.wait(5)
        consumer.stop()
        await asyncio.wait_for(consumer_task, 10)
        await db.close()
    print(f"\noutbox->consumer: {TOTAL} events in {elapsed:.2f} s with a NATS restart and a relay kill")
    assert (rows, distinct, numbers, total, left) == (TOTAL, TOTAL, TOTAL, TOTAL, 0)


async def test_rolled_back_change_publishes_nothing(stack: DevStack, nc: Client, schema: ProvisionedSchema) -> None:
    tenant = str(uuid.uuid4())
    db = schema.database()
    await db.open()
    try:
        event = CloudEvent(source="panicsafe/outboxtest", type="fr.panicsafe.outboxtest.changed", tenantid=tenant)
        try:
            async with db.transaction() as conn:
                await append_event(conn, event)
                raise RuntimeError("the state change failed")
        except RuntimeError:
            pass
        kept = CloudEvent(source="panicsafe/outboxtest", type="fr.panicsafe.outboxtest.kept", tenantid=tenant)
        async with db.transaction() as conn:
            await append_event(conn, kept)
        relay = OutboxRelay(db, nc.jetstream(), schema.schema)
        assert await relay.relay_once() == 1
        subscription = await nc.jetstream().pull_subscribe(f"evt.{tenant}.>", durable=f"d{schema.schema}")
        messages = await subscription.fetch(10, timeout=2)
        assert [CloudEvent.model_validate_json(m.data).id for m in messages] == [kept.id]
        assert messages[0].headers is not None and messages[0].headers["Nats-Msg-Id"] == kept.id
    finally:
        await db.close()


async def test_republished_batch_is_deduplicated_by_jetstream(
    stack: DevStack, nc: Client, schema: ProvisionedSchema
) -> None:
    """A relay that dies after publishing but before deleting publishes again: the stream keeps one copy."""
    tenant = str(uuid.uuid4())
    db = schema.database()
    await db.open()
    try:
        async with db.transaction() as conn:
            for i in range(5):
                await append_event(
                    conn,
                    changed(tenant, i),
                )
        relay = OutboxRelay(db, nc.jetstream(), schema.schema)
        rows = await db.pool.fetch("SELECT subject, payload, headers FROM outbox ORDER BY seq")
        for row in rows:  # the first, interrupted attempt
            await nc.jetstream().publish(row["subject"], bytes(row["payload"]), headers=row["headers"])
        assert await relay.relay_once() == 5
        info = await nc.jetstream().stream_info("EVENTS", subjects_filter=f"evt.{tenant}.>")
        assert sum((info.state.subjects or {}).values()) == 5
    finally:
        await db.close()


async def test_failing_handler_spares_the_batch_and_is_retried(stack: DevStack, nc: Client) -> None:
    schema = await make_schema(stack, "ob")
    await create_tables(schema)
    tenant = str(uuid.uuid4())
    db = schema.database()
    await db.open()
    failures = {"left": 1}

    async def effect(conn: Connection, event: CloudEvent) -> None:
        await conn.execute("INSERT INTO applied VALUES ($1, $2)", event.id, event.data["n"])
        if event.data["n"] == 3 and failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("transient failure of one event")

    consumer = EventConsumer(
        db.pool,
        nc.jetstream(),
        durable=f"dur_{schema.schema}",
        filter_subject=f"evt.{tenant}.>",
        handler=effect,
    )
    try:
        async with db.transaction() as conn:
            for i in range(10):
                await append_event(
                    conn,
                    changed(tenant, i),
                )
        await OutboxRelay(db, nc.jetstream(), schema.schema).relay_once()
        task = asyncio.create_task(consumer.run())
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and await db.pool.fetchval("SELECT count(*) FROM applied") < 10:
            await asyncio.sleep(0.1)
        consumer.stop()
        await asyncio.wait_for(task, 10)
        numbers = [r["n"] for r in await db.pool.fetch("SELECT n FROM applied ORDER BY n")]
    finally:
        await db.close()
    assert failures["left"] == 0
    assert numbers == list(range(10))  # the failed one retried once, nothing applied twice


async def test_one_relay_leads_and_a_standby_takes_over(stack: DevStack, nc: Client) -> None:
    """Two relays of one schema (two replicas): one publishes, the other waits; when the leader's
    connection is cut, and later when the leader stops, publishing goes on, every event once, in order."""
    schema = await make_schema(stack, "ob")
    tenant = str(uuid.uuid4())
    db = schema.database()
    await db.open()
    js = nc.jetstream()
    first = OutboxRelay(db, js, schema.schema, idle_poll_s=0.1)
    second = OutboxRelay(db, js, schema.schema, idle_poll_s=0.1)
    tasks: list[asyncio.Task[None]] = []
    written = 0

    async def write(count: int) -> None:
        nonlocal written
        for _ in range(count):
            async with db.transaction() as conn:
                await append_event(
                    conn,
                    changed(tenant, written),
                )
            written += 1

    async def published(total: int) -> None:
        deadline = time.monotonic() + 20
        while first.published + second.published < total:
            assert time.monotonic() < deadline, (first.published, second.published, total)
            await asyncio.sleep(0.02)

    admin = await asyncpg.connect(schema.admin_dsn)
    try:
        tasks.append(asyncio.create_task(first.run()))
        await write(10)
        await published(10)
        tasks.append(asyncio.create_task(second.run()))
        await write(10)
        await published(20)
        assert (first.published, second.published) == (20, 0)  # the standby waited

        # The leader's connection is cut (a network failure): whichever relay leads next goes on.
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND pid IN (SELECT pid FROM pg_stat_activity WHERE application_name = $1)",
            schema.schema,
        )
        assert killed == 1
        await write(10)
        await published(30)

        # The leader stops (a replica scaled down): the other takes over.
        leader, standby = (first, second) if first.published > 20 else (second, first)
        before = standby.published
        leader.stop()
        await write(10)
        await published(40)
        assert standby.published == before + 10
    finally:
        for relay in (first, second):
            relay.stop()
        await asyncio.gather(*tasks)
        await admin.close()
        await db.close()
    subscription = await js.pull_subscribe(f"evt.{tenant}.>", durable=f"d{schema.schema}")
    messages = await subscription.fetch(100, timeout=2)
    assert [CloudEvent.model_validate_json(m.data).data["n"] for m in messages] == list(range(40))


async def test_a_consumer_acknowledges_the_ignored_services_events_unread(stack: DevStack, nc: Client) -> None:
    """The logbook reads `evt.>` but not its own notices: they are acknowledged from their subject."""
    schema = await make_schema(stack, "ob")
    await create_tables(schema)
    tenant = str(uuid.uuid4())
    db = schema.database()
    await db.open()
    seen: list[str] = []

    async def effect(conn: Connection, event: CloudEvent) -> None:
        seen.append(event.service)

    consumer = EventConsumer(
        db.pool,
        nc.jetstream(),
        durable=f"dur_{schema.schema}",
        filter_subject=f"evt.{tenant}.>",
        handler=effect,
        ignore_services=frozenset({"logbook"}),
    )
    try:
        async with db.transaction() as conn:
            for service in ("gateway", "logbook", "chat", "logbook"):
                await append_event(
                    conn,
                    CloudEvent(source=f"panicsafe/{service}", type=f"fr.panicsafe.{service}.done", tenantid=tenant),
                )
        await OutboxRelay(db, nc.jetstream(), schema.schema).relay_once()
        task = asyncio.create_task(consumer.run())
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and consumer.applied + consumer.skipped < 4:
            await asyncio.sleep(0.05)
        consumer.stop()
        await asyncio.wait_for(task, 10)
    finally:
        await db.close()
    assert sorted(seen) == ["chat", "gateway"]
    assert (consumer.applied, consumer.skipped) == (2, 2)


async def test_a_write_in_a_standby_replica_reaches_the_leader_at_once(stack: DevStack, nc: Client) -> None:
    """Replicas each wake only their own relay. The standby passes the wake on (a PostgreSQL
    notification): the leader publishes then, not at its next idle poll (30 s here)."""
    schema = await make_schema(stack, "ob")
    tenant = str(uuid.uuid4())
    db = schema.database()
    await db.open()
    js = nc.jetstream()
    leader = OutboxRelay(db, js, schema.schema, idle_poll_s=30.0)
    standby = OutboxRelay(db, js, schema.schema, idle_poll_s=30.0)
    tasks = [asyncio.create_task(leader.run())]
    try:
        deadline = time.monotonic() + 10
        while not await db.pool.fetchval(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
            "WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = $1",
            schema.schema,
        ):  # the leader holds the lock
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        tasks.append(asyncio.create_task(standby.run()))
        await asyncio.sleep(0.5)  # the standby found the lock taken: it waits (30 s between tries)
        for n in range(3):
            event = changed(tenant, n)
            async with db.transaction() as conn:  # written "in the standby's process": only it is woken
                await conn.execute(INSERT_OUTBOX, *outbox_row(event))
            standby.wake()
            deadline = time.monotonic() + 5
            while leader.published < n + 1:
                assert time.monotonic() < deadline, "the leader was not told"
                await asyncio.sleep(0.02)
        assert standby.published == 0
    finally:
        leader.stop()
        standby.stop()
        await asyncio.gather(*tasks)
        await db.close()


async def test_a_relay_without_repoll_reads_only_when_woken(
    stack: DevStack, nc: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`repoll=False`, for producers that wake the relay once their rows are committed (the logbook's
    announcer): after a batch the relay reads nothing until the next wake or idle poll (30 s here), so
    a row committed without a wake waits, and a wake publishes it at once."""
    schema = await make_schema(stack, "ob")
    tenant = str(uuid.uuid4())
    db = schema.database()
    await db.open()
    relay = OutboxRelay(db, nc.jetstream(), schema.schema, idle_poll_s=30.0, repoll=False)
    reads = 0
    publish_batch = relay._publish_batch

    async def counted(conn: Connection) -> int:
        nonlocal reads
        reads += 1
        return await publish_batch(conn)

    monkeypatch.setattr(relay, "_publish_batch", counted)

    async def commit(n: int) -> None:
        async with db.transaction() as conn:
            await conn.execute(INSERT_OUTBOX, *outbox_row(changed(tenant, n)))

    async def published(total: int) -> None:
        deadline = time.monotonic() + 5
        while relay.published < total:
            assert time.monotonic() < deadline, (relay.published, total)
            await asyncio.sleep(0.01)

    task = asyncio.create_task(relay.run())
    try:
        await commit(0)
        relay.wake()
        await published(1)
        await asyncio.sleep(0.2)  # a wake that came while the relay first read is spent by now
        before = reads
        await commit(1)  # committed, but nobody wakes the relay
        await asyncio.sleep(0.5)
        assert (relay.published, reads) == (1, before)
        relay.wake()
        await published(2)
        assert reads == before + 1
    finally:
        relay.stop()
        await task
        await db.close()
