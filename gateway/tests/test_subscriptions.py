"""The event hub against the real NATS: fan-out, isolation, slow consumers, shutdown."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

import pytest
import strawberry
from nats.aio.client import Client
from strawberry.types import Info

from panicsafe.contracts.events import NO_CRISIS, CloudEvent
from panicsafe.core.bus.events import publish_event
from panicsafe.core.errors import ServiceError
from panicsafe.gateway.graphql.limits import graphql_extensions
from panicsafe.gateway.subscriptions import SLOW_CONSUMER, EventHub, HubSubscription, SlowConsumerError

WAIT_S = 10.0


def event(tenant: str, crisis: str, n: int, short_type: str = "ping") -> CloudEvent:
    return CloudEvent(
        source="panicsafe/hubtest",
        type=f"fr.panicsafe.hubtest.{short_type}",
        tenantid=tenant,
        crisisid=crisis,
        data={"n": n},
    )


@strawberry.type
class Query:
    ok: bool = True


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def numbers(self, info: Info, tenant: str, crisis: str) -> AsyncGenerator[int, None]:
        hub: EventHub = info.context["hub"]
        async with hub.subscribe(tenant=tenant, crisis=crisis) as sub:
            async for received in sub:
                yield int(received.data["n"])


def ids() -> tuple[str, str]:
    return str(uuid.uuid4()), str(uuid.uuid4())


@pytest.fixture
async def hub(nc: Client) -> AsyncIterator[EventHub]:
    events_hub = EventHub(nc.jetstream())
    await events_hub.start()
    yield events_hub
    await events_hub.stop()


async def read(sub: HubSubscription, count: int) -> list[int]:
    """The `n` of the next `count` events."""
    got: list[int] = []
    async for received in sub:
        got.append(int(received.data["n"]))
        if len(got) == count:
            break
    return got


async def collect(sub: HubSubscription, into: list[int]) -> None:
    async for received in sub:
        into.append(int(received.data["n"]))


async def read_to_end(sub: HubSubscription) -> list[int]:
    return [int(received.data["n"]) async for received in sub]


async def test_every_subscriber_of_a_crisis_gets_every_event_in_order(nc: Client, hub: EventHub) -> None:
    tenant, crisis = ids()
    subs = [hub.subscribe(tenant=tenant, crisis=crisis) for _ in range(200)]
    readers = [asyncio.create_task(read(sub, 2)) for sub in subs]
    await publish_event(nc.jetstream(), event(tenant, crisis, 1))
    await publish_event(nc.jetstream(), event(tenant, crisis, 2))
    results = await asyncio.wait_for(asyncio.gather(*readers), WAIT_S)
    assert results == [[1, 2]] * 200
    assert hub.delivered == 400
    assert hub.dropped_subscribers == 0
    for sub in subs:
        sub.close()
    assert hub.subscriber_count == 0


async def test_a_stalled_subscriber_is_dropped_and_delays_no_one(nc: Client, hub: EventHub) -> None:
    tenant, crisis = ids()
    total = 40
    stalled = hub.subscribe(tenant=tenant, crisis=crisis, queue_size=4)  # never read until the end
    others = [hub.subscribe(tenant=tenant, crisis=crisis) for _ in range(199)]
    readers = [asyncio.create_task(read(sub, total)) for sub in others]
    js = nc.jetstream()
    for n in range(total):
        await publish_event(js, event(tenant, crisis, n))
    results = await asyncio.wait_for(asyncio.gather(*readers), WAIT_S)
    assert results == [list(range(total))] * 199

    assert stalled.dropped_reason == SLOW_CONSUMER
    assert stalled.closed
    assert hub.dropped_subscribers == 1
    assert hub.delivered == 199 * total + 4
    assert hub.subscriber_count == 199
    # The stalled client still gets what was buffered, then the error.
    buffered: list[int] = []
    with pytest.raises(SlowConsumerError) as raised:
        await asyncio.wait_for(collect(stalled, buffered), WAIT_S)
    assert buffered == [0, 1, 2, 3]
    assert isinstance(raised.value, ServiceError)
    assert raised.value.code == "unavailable"
    for sub in others:
        assert sub.dropped_reason is None
        sub.close()


async def test_events_of_other_crises_and_tenants_never_arrive(nc: Client, hub: EventHub) -> None:
    tenant_a, crisis_x = ids()
    tenant_b, crisis_y = ids()
    mine = hub.subscribe(tenant=tenant_a, crisis=crisis_x)
    tenant_wide = hub.subscribe(tenant=tenant_a, crisis=NO_CRISIS)
    js = nc.jetstream()
    await publish_event(js, event(tenant_a, crisis_y, 1))  # same tenant, other crisis
    await publish_event(js, event(tenant_b, crisis_x, 2))  # same crisis id, other tenant
    await publish_event(js, event(tenant_b, crisis_y, 3))
    await publish_event(js, event(tenant_a, NO_CRISIS, 4))  # tenant-wide
    await publish_event(js, event(tenant_a, crisis_x, 5))
    assert await asyncio.wait_for(read(mine, 1), WAIT_S) == [5]
    assert await asyncio.wait_for(read(tenant_wide, 1), WAIT_S) == [4]
    mine.close()
    tenant_wide.close()
    assert await asyncio.wait_for(read_to_end(mine), WAIT_S) == []
    assert await asyncio.wait_for(read_to_end(tenant_wide), WAIT_S) == []


async def test_a_forged_subject_or_malformed_message_is_skipped(
    nc: Client, hub: EventHub, caplog: pytest.LogCaptureFixture
) -> None:
    """Events are believed only from their owner: what its subject contradicts never reaches a client."""
    tenant_a, crisis_x = ids()
    tenant_b, crisis_y = ids()
    sub = hub.subscribe(tenant=tenant_a, crisis=crisis_x)
    js = nc.jetstream()
    caplog.set_level(logging.ERROR, logger="panicsafe.gateway.subscriptions")
    on = f"evt.{tenant_a}.{crisis_x}"
    await js.publish(f"{on}.hubtest.bad", b"not a cloud event")
    chat_says = CloudEvent(
        source="panicsafe/chat", type="fr.panicsafe.chat.ping", tenantid=tenant_a, crisisid=crisis_x, data={"n": 10}
    )
    forged = [
        (f"{on}.hubtest.ping", event(tenant_b, crisis_x, 11), "tenant_mismatch"),  # B's event on A's subject
        (f"{on}.hubtest.ping", event(tenant_a, crisis_y, 12), "crisis_mismatch"),  # another crisis's event
        (f"{on}.hubtest.ping", chat_says, "source_mismatch"),  # chat's event on hubtest's subject
        (f"{on}.chat.ping", event(tenant_a, crisis_x, 13), "source_mismatch"),  # hubtest's event on chat's
        (f"{on}.hubtest.ping", event(tenant_a, crisis_x, 14, "pong"), "type_mismatch"),
    ]
    for subject, body, _ in forged:
        await js.publish(subject, body.model_dump_json().encode())
    await publish_event(js, event(tenant_a, crisis_x, 2))
    assert await asyncio.wait_for(read(sub, 1), WAIT_S) == [2]
    assert (hub.malformed, hub.refused, hub.metrics()["refused"]) == (1, 1 + len(forged), 1 + len(forged))
    alerts = [r for r in caplog.records if getattr(r, "alert", None) == "event_refused"]
    assert [(r.levelno, r.subject, r.event_id, r.reason) for r in alerts] == [  # type: ignore[attr-defined]
        (logging.ERROR, f"{on}.hubtest.bad", None, "malformed"),
        *((logging.ERROR, subject, body.id, reason) for subject, body, reason in forged),
    ]
    sub.close()


async def test_accept_filters_per_subscriber(nc: Client, hub: EventHub) -> None:
    tenant, crisis = ids()
    odd = hub.subscribe(tenant=tenant, crisis=crisis, accept=lambda e: int(e.data["n"]) % 2 == 1)
    every = hub.subscribe(tenant=tenant, crisis=crisis)
    for n in range(6):
        await publish_event(nc.jetstream(), event(tenant, crisis, n))
    assert await asyncio.wait_for(read(every, 6), WAIT_S) == [0, 1, 2, 3, 4, 5]
    assert await asyncio.wait_for(read(odd, 3), WAIT_S) == [1, 3, 5]
    odd.close()
    every.close()


async def test_stop_ends_every_iterator(nc: Client) -> None:
    hub = EventHub(nc.jetstream())
    await hub.start()
    tenant, crisis = ids()
    subs = [hub.subscribe(tenant=tenant, crisis=crisis) for _ in range(20)]
    await publish_event(nc.jetstream(), event(tenant, crisis, 7))
    readers = [asyncio.create_task(read_to_end(sub)) for sub in subs]
    await asyncio.wait_for(_until(lambda: hub.delivered == 20), WAIT_S)
    await hub.stop()
    results = await asyncio.wait_for(asyncio.gather(*readers), WAIT_S)
    assert results == [[7]] * 20
    assert all(sub.closed and sub.dropped_reason is None for sub in subs)
    assert hub.subscriber_count == 0
    with pytest.raises(ServiceError):
        hub.subscribe(tenant=tenant, crisis=crisis)


async def test_context_manager_unregisters(hub: EventHub) -> None:
    tenant, crisis = ids()
    async with hub.subscribe(tenant=tenant, crisis=crisis.upper()) as sub:
        assert sub.crisis == crisis  # canonical form, as in subjects
        assert hub.subscriber_count == 1
    assert hub.subscriber_count == 0
    with pytest.raises(ServiceError):
        hub.subscribe(tenant="not-a-uuid", crisis=crisis)


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.01)


async def test_a_graphql_subscription_over_the_hub_ends_with_unavailable(nc: Client) -> None:
    hub = EventHub(nc.jetstream(), queue_size=4)
    await hub.start()
    try:
        schema = strawberry.Schema(
            query=Query, subscription=Subscription, extensions=graphql_extensions(development=False)
        )
        tenant, crisis = ids()
        stream = await schema.subscribe(
            f'subscription {{ numbers(tenant: "{tenant}", crisis: "{crisis}") }}', context_value={"hub": hub}
        )
        first = asyncio.create_task(anext(stream))  # starts the resolver, which subscribes
        await asyncio.wait_for(_until(lambda: hub.subscriber_count == 1), WAIT_S)
        for n in range(10):
            await publish_event(nc.jetstream(), event(tenant, crisis, n))
        results = [await asyncio.wait_for(first, WAIT_S)]
        await asyncio.wait_for(_until(lambda: hub.dropped_subscribers == 1), WAIT_S)
        results += await asyncio.wait_for(_all(stream), WAIT_S)
        assert [r.data["numbers"] for r in results if r.data] == [0, 1, 2, 3, 4]
        errors = [e for r in results for e in r.errors or []]
        assert [(e.message, e.extensions) for e in errors] == [(SlowConsumerError().message, {"code": "unavailable"})]
        assert hub.subscriber_count == 0
    finally:
        await hub.stop()


async def _all(stream: AsyncGenerator[Any, None]) -> list[Any]:
    return [result async for result in stream]
