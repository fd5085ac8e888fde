"""The outbox under row-level security (core's bus revision `bus0002`): the application role queues
events of any tenant, reads only its own tenant's, changes none; the relay still publishes them all."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
from nats.aio.client import Client

from panicsafe.contracts.events import CloudEvent
from panicsafe.core.bus.consumer import EventConsumer
from panicsafe.core.bus.outbox import OutboxRelay, append_event
from panicsafe.core.db.database import Connection
from panicsafe.core.db.migrations import upgrade
from panicsafe.core.devstack import DevStack
from panicsafe.core.testing import ProvisionedSchema, make_schema


def changed(tenant: str, n: int) -> CloudEvent:
    return CloudEvent(
        source="panicsafe/outboxtest", type="fr.panicsafe.outboxtest.changed", tenantid=tenant, data={"n": n}
    )


async def migrated(stack: DevStack) -> ProvisionedSchema:
    """A schema with core's bus revisions only, as a service without tables of its own has."""
    schema = await make_schema(stack, "obr")
    await asyncio.to_thread(upgrade, None, schema.owner_dsn, schema.schema)
    return schema


async def admin_count(schema: ProvisionedSchema) -> int:
    conn = await asyncpg.connect(schema.admin_dsn)
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {schema.schema}.outbox"))
    finally:
        await conn.close()


async def test_the_application_role_sees_only_its_tenants_pending_events(stack: DevStack) -> None:
    schema = await migrated(stack)
    mine, theirs = str(uuid.uuid4()), str(uuid.uuid4())
    db = schema.database()
    await db.open()
    try:
        for tenant in (mine, theirs):
            async with db.tenant(tenant) as conn:
                await append_event(conn, changed(tenant, 1))
        async with db.transaction() as conn:  # no tenant in scope (an identity lookup, say): queueing works
            await append_event(conn, changed(theirs, 2))
        assert await admin_count(schema) == 3

        async with db.tenant(mine) as conn:
            rows = await conn.fetch("SELECT subject FROM outbox")
            assert [r["subject"].split(".")[1] for r in rows] == [mine]
            assert await conn.execute("DELETE FROM outbox") == "DELETE 0"
            assert await conn.execute("UPDATE outbox SET subject = 'x'") == "UPDATE 0"
            # Settings the role may write widen nothing.
            await conn.execute("SELECT set_config('app.identity', 'lookup', true)")
            assert len(await conn.fetch("SELECT 1 FROM outbox")) == 1
        async with db.transaction() as conn:
            assert await conn.fetch("SELECT 1 FROM outbox") == []
        assert await admin_count(schema) == 3
    finally:
        await db.close()


async def test_the_relay_publishes_every_tenants_events_and_consumers_apply_them(stack: DevStack, nc: Client) -> None:
    schema = await migrated(stack)
    tenants = [str(uuid.uuid4()) for _ in range(3)]
    db = schema.database()
    await db.open()
    applied: list[str] = []

    async def effect(conn: Connection, event: CloudEvent) -> None:
        applied.append(event.tenantid)

    consumers = [
        EventConsumer(
            db.pool, nc.jetstream(), durable=f"rls_{schema.schema}_{i}", filter_subject=f"evt.{t}.>", handler=effect
        )
        for i, t in enumerate(tenants)
    ]
    tasks: list[asyncio.Task[None]] = []
    try:
        for n, tenant in enumerate(tenants):
            async with db.tenant(tenant) as conn:
                await append_event(conn, changed(tenant, n))
        assert await OutboxRelay(db, nc.jetstream(), schema.schema).relay_once() == 3
        assert await admin_count(schema) == 0
        tasks = [asyncio.create_task(c.run()) for c in consumers]
        deadline = time.monotonic() + 20
        while len(applied) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert sorted(applied) == sorted(tenants)
        async with db.transaction() as conn:  # processed_events: ids only, no tenant data, no RLS
            assert await conn.fetchval("SELECT count(*) FROM processed_events") == 3
    finally:
        for consumer in consumers:
            consumer.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        await db.close()
