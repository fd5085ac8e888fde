"""Events are believed only from their owner: a consumer dead-letters what its subject contradicts.

Against the real NATS and PostgreSQL: forged events (published straight to the stream, as a process
holding some service's credentials could) are never handled, recorded once in `dead_letters` (core's
bus revision `bus0003`), raise the `event_refused` alert, and are acknowledged once, never redelivered.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any

import asyncpg
import pytest
from nats.aio.client import Client
from nats.js.api import AckPolicy, ConsumerConfig

from panicsafe.contracts.events import CloudEvent
from panicsafe.core.bus.consumer import EVENT_REFUSED, EventConsumer
from panicsafe.core.bus.events import EVENTS_STREAM, encode_event, publish_event
from panicsafe.core.db.database import Connection
from panicsafe.core.db.migrations import upgrade
from panicsafe.core.devstack import DevStack
from panicsafe.core.testing import ProvisionedSchema, make_schema

ACK_WAIT_S = 1.0


async def migrated(stack: DevStack) -> ProvisionedSchema:
    """A schema with core's bus revisions (dead letters included), as every service schema has."""
    schema = await make_schema(stack, "dl")
    await asyncio.to_thread(upgrade, None, schema.owner_dsn, schema.schema)
    return schema


def gateway_event(tenant: str, crisis: str, short_type: str = "crisis_updated", **fields: Any) -> CloudEvent:
    return CloudEvent(
        source="panicsafe/gateway",
        type=f"fr.panicsafe.gateway.{short_type}",
        tenantid=tenant,
        crisisid=crisis,
        data={"summary": "Décision : évacuation générale annulée"},
        **fields,
    )


async def publish_raw(nc: Client, subject: str, payload: bytes) -> None:
    """What a process with publishing rights on `subject` can put there: anything."""
    await nc.jetstream().publish(subject, payload, headers={"Nats-Msg-Id": str(uuid.uuid4())})


async def dead_letters(schema: ProvisionedSchema) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(schema.admin_dsn)
    try:
        return await conn.fetch(
            f"SELECT consumer, stream_seq, subject, event_id, reason, detail, payload, headers "
            f"FROM {schema.schema}.dead_letters ORDER BY stream_seq"
        )
    finally:
        await conn.close()


async def wait_for(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_forged_events_are_dead_lettered_with_an_alert_and_never_handled(
    stack: DevStack, nc: Client, caplog: pytest.LogCaptureFixture
) -> None:
    schema = await migrated(stack)
    tenant, crisis = str(uuid.uuid4()), str(uuid.uuid4())
    other_tenant, other_crisis = str(uuid.uuid4()), str(uuid.uuid4())
    db = schema.database()
    await db.open()
    handled: list[str] = []

    async def effect(conn: Connection, event: CloudEvent) -> None:
        handled.append(event.id)

    durable = f"dur_{schema.schema}"
    consumer = EventConsumer(
        db.pool,
        nc.jetstream(),
        durable=durable,
        filter_subject=f"evt.{tenant}.>",
        handler=effect,
        ack_wait_s=ACK_WAIT_S,
    )
    on = f"evt.{tenant}.{crisis}"
    # Chat's event published on the gateway's subject (the attack of issue 15, seen from the subject side).
    chat_body = CloudEvent(
        source="panicsafe/chat", type="fr.panicsafe.chat.crisis_updated", tenantid=tenant, crisisid=crisis
    )
    # The gateway's event on chat's subject (what chat's own credentials allow it to publish).
    gateway_on_chat = gateway_event(tenant, crisis, "crisis_closed")
    other_tenants = gateway_event(other_tenant, crisis)  # another tenant's event on this tenant's subject
    other_crisis_event = gateway_event(tenant, other_crisis)
    closed_as_updated = gateway_event(tenant, crisis, "crisis_closed")  # a type the subject does not name
    # A type of another service than the event's own source, on that source's subject.
    foreign_type = {**json.loads(encode_event(gateway_event(tenant, crisis))), "source": "panicsafe/chat"}
    not_a_uuid_id = gateway_event(tenant, crisis, id="not-a-uuid")
    good = gateway_event(tenant, crisis)
    forged = [
        (f"{on}.gateway.crisis_updated", encode_event(chat_body), "source_mismatch", chat_body.id),
        (f"{on}.chat.crisis_closed", encode_event(gateway_on_chat), "source_mismatch", gateway_on_chat.id),
        (f"{on}.gateway.crisis_updated", encode_event(other_tenants), "tenant_mismatch", other_tenants.id),
        (f"{on}.gateway.crisis_updated", encode_event(other_crisis_event), "crisis_mismatch", other_crisis_event.id),
        (f"{on}.gateway.crisis_updated", encode_event(closed_as_updated), "type_mismatch", closed_as_updated.id),
        (f"{on}.chat.crisis_updated", json.dumps(foreign_type).encode(), "malformed", foreign_type["id"]),
        (f"{on}.gateway.crisis_updated", b'{"id": "x", not json', "malformed", None),
        (f"{on}.gateway.crisis_updated", encode_event(not_a_uuid_id), "malformed", "not-a-uuid"),
        # What PostgreSQL text cannot hold must not make the record fail (it would be retried forever).
        (f"{on}.gateway.crisis_updated", b'{"id": "a\\u0000b\\ud800", "type": 1}', "malformed", "a\ufffdb?"),
    ]
    caplog.set_level(logging.ERROR, logger="panicsafe.core.bus.consumer")
    task = asyncio.create_task(consumer.run())
    try:
        for subject, payload, _, _ in forged[:4]:
            await publish_raw(nc, subject, payload)
        await publish_event(nc.jetstream(), good)
        for subject, payload, _, _ in forged[4:]:
            await publish_raw(nc, subject, payload)
        await wait_for(lambda: consumer.applied == 1 and consumer.refused == len(forged))
        await asyncio.sleep(ACK_WAIT_S * 2.5)  # anything left unacknowledged would be delivered again
        info = await nc.jetstream().consumer_info(EVENTS_STREAM, durable)
        # The app role may record a refusal, not read any back.
        async with db.transaction() as conn:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch("SELECT payload FROM dead_letters")
    finally:
        consumer.stop()
        await asyncio.wait_for(task, 10)
        await db.close()

    assert handled == [good.id]
    assert (consumer.applied, consumer.refused, consumer.skipped) == (1, len(forged), 0)
    assert (info.num_ack_pending, info.num_redelivered, info.num_pending) == (0, 0, 0)
    assert info.delivered.consumer_seq == len(forged) + 1  # each delivered once
    rows = await dead_letters(schema)
    assert [(r["subject"], bytes(r["payload"]), r["reason"], r["event_id"]) for r in rows] == forged
    assert {r["consumer"] for r in rows} == {durable}
    assert all(json.loads(r["headers"])["Nats-Msg-Id"] for r in rows)
    assert rows[0]["detail"] == f"the event names {on}.chat.crisis_updated"
    alerts = [r for r in caplog.records if getattr(r, "alert", None) == EVENT_REFUSED]
    assert [(r.levelno, r.subject, r.event_id, r.reason) for r in alerts] == [  # type: ignore[attr-defined]
        (logging.ERROR, subject, event_id, reason) for subject, _, reason, event_id in forged
    ]


async def test_a_refused_message_delivered_again_is_recorded_once(stack: DevStack, nc: Client) -> None:
    """Should the consumer die between recording and acknowledging, the redelivery adds no row."""
    schema = await migrated(stack)
    tenant, crisis = str(uuid.uuid4()), str(uuid.uuid4())
    db = schema.database()
    await db.open()

    async def effect(conn: Connection, event: CloudEvent) -> None:
        raise AssertionError("a refused event was handled")

    js = nc.jetstream()
    durable = f"dur_{schema.schema}"
    consumer = EventConsumer(db.pool, js, durable=durable, filter_subject=f"evt.{tenant}.>", handler=effect)
    forged = gateway_event(str(uuid.uuid4()), crisis)
    await publish_raw(nc, f"evt.{tenant}.{crisis}.gateway.crisis_updated", encode_event(forged))
    subscription = await js.pull_subscribe(
        f"evt.{tenant}.>",
        durable=f"raw_{schema.schema}",
        stream=EVENTS_STREAM,
        config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, ack_wait=ACK_WAIT_S),
    )

    async def crash() -> None:
        raise ConnectionError("the process died before acknowledging")

    try:
        first = await subscription.fetch(1, timeout=5)
        first[0].ack = crash  # type: ignore[method-assign]
        with pytest.raises(ConnectionError):
            await consumer.apply_batch(first)  # recorded, never acknowledged
        again = await subscription.fetch(1, timeout=ACK_WAIT_S * 5)  # delivered again after ack_wait
        assert again[0].metadata.num_delivered == 2
        await consumer.apply_batch(again)
        await asyncio.sleep(ACK_WAIT_S * 2)
        with pytest.raises(TimeoutError):
            await subscription.fetch(1, timeout=0.5)  # acknowledged this time: nothing comes back
    finally:
        await subscription.unsubscribe()
        await db.close()
    rows = await dead_letters(schema)
    assert [(r["event_id"], r["reason"], r["stream_seq"]) for r in rows] == [
        (forged.id, "tenant_mismatch", first[0].metadata.sequence.stream)
    ]
