"""Attacks on the bus from a process on the same host: without credentials, or with one service's.

Each refusal is observed positively (the server's permission violation, or a refused connection);
where a message must *not* arrive, a barrier message sent after it on a subject the attacker may
read proves that it would have arrived by then (NATS keeps one publisher's order).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError

from panicsafe.contracts import gateway
from panicsafe.contracts.catalog import SERVICES
from panicsafe.contracts.events import LogbookKind, LogbookPart
from panicsafe.contracts.gateway import CrisisChanged
from panicsafe.core.bus.connection import NatsCredentials
from panicsafe.core.bus.identity import inbox_prefix
from panicsafe.core.devstack import DevStack

WAIT_S = 20.0  # an upper bound for conditions we wait for, never a sleep


@dataclass
class Intruder:
    """A connection under one identity, and the errors the server sent it."""

    nc: Client
    errors: asyncio.Queue[str] = field(default_factory=asyncio.Queue)

    async def violation(self, subject: str) -> str:
        """Wait for the server's permission violation naming `subject`."""
        while True:
            error = await asyncio.wait_for(self.errors.get(), WAIT_S)
            if "permissions violation" in error and subject.lower() in error:  # nats-py lowercases it
                return error


async def connect_as(stack: DevStack, identity: str) -> Intruder:
    creds = stack.nats.credentials(identity)
    intruder = Intruder(nc=Client())

    async def on_error(error: Exception) -> None:
        intruder.errors.put_nowait(str(error))

    await intruder.nc.connect(
        servers=[stack.nats.url],
        name=f"intruder-{identity}",
        nkeys_seed_str=creds.seed,
        tls=NatsCredentials(identity, creds.seed, creds.ca_file).tls_context(),
        inbox_prefix=inbox_prefix(identity),
        allow_reconnect=False,
        error_cb=on_error,
    )
    return intruder


@pytest.fixture
async def chat(stack: DevStack) -> AsyncIterator[Intruder]:
    intruder = await connect_as(stack, "chat")
    yield intruder
    await intruder.nc.close()


async def barrier(harness: Client, listener: Client, subject: str) -> None:
    """Everything `harness` published before now has reached `listener` once this returns."""
    arrived = asyncio.Event()

    async def on_barrier(_: Msg) -> None:
        arrived.set()

    sub = await listener.subscribe(subject, cb=on_barrier)
    await listener.flush()
    await harness.publish(subject, b"barrier")
    await harness.flush()
    await asyncio.wait_for(arrived.wait(), WAIT_S)
    await sub.unsubscribe()


async def _refused(**options: object) -> Exception:
    async def quiet(_: Exception) -> None:
        return None

    try:
        nc = await nats.connect(allow_reconnect=False, connect_timeout=3, error_cb=quiet, **options)  # type: ignore[arg-type]
    except (NatsError, OSError, TimeoutError) as exc:
        return exc
    await nc.close()
    raise AssertionError(f"NATS accepted a connection with {sorted(options)}")


async def test_no_credentials_no_entry(stack: DevStack) -> None:
    ca = stack.nats.credentials("launcher").tls_context()
    # TLS but no identity: authorization violation.
    refused = await _refused(servers=[stack.nats.url], tls=ca)
    assert "authorization" in str(refused).lower() or "auth" in type(refused).__name__.lower()
    # No TLS at all: the server requires it before anything else.
    plain = stack.nats.url.replace("tls://", "nats://")
    await _refused(servers=[plain])
    # A made-up nkey the server does not know.
    from panicsafe.core.devstack.natsd import identity_seed

    stranger = identity_seed(stack.directory / "stranger.nk")
    await _refused(servers=[stack.nats.url], tls=ca, nkeys_seed_str=stranger)


async def test_a_service_cannot_read_another_services_calls_or_replies(
    stack: DevStack, nc: Client, chat: Intruder
) -> None:
    leaked: list[str] = []

    async def keep(msg: Msg) -> None:
        leaked.append(msg.subject)

    for subject in ("rpc.logbook.>", "rpc.gateway.>", "_INBOX.>", f"{inbox_prefix('gateway')}.>", ">"):
        await chat.nc.subscribe(subject, cb=keep)
        await chat.violation(subject)
    # A logbook call and a reply to the gateway pass while chat listens: chat sees neither.
    await nc.publish("rpc.logbook.list", b"{}")
    await nc.publish(f"{inbox_prefix('gateway')}.abc.1", b'{"ok":true}')
    await barrier(nc, chat.nc, "rpc.chat.barrier")
    assert leaked == []


async def test_a_service_cannot_call_what_it_did_not_declare(chat: Intruder) -> None:
    for subject in (gateway.BOOTSTRAP_DEMO.subject, "rpc.logbook.append", "rpc.sara.health"):
        await chat.nc.publish(subject, b"{}")
        await chat.violation(subject)


async def test_a_service_cannot_publish_another_services_events(stack: DevStack, nc: Client, chat: Intruder) -> None:
    tenant, crisis = str(uuid.uuid4()), str(uuid.uuid4())
    forged = gateway.CRISIS_UPDATED.event(
        CrisisChanged(status="active", severity="major"),
        tenant=tenant,
        crisis=crisis,
        logbook=LogbookPart(kind=LogbookKind.DECISION, summary="Décision : évacuation générale annulée"),
    )
    subject = gateway.CRISIS_UPDATED.subjects(tenant, crisis)
    seen: list[Msg] = []

    async def keep(msg: Msg) -> None:
        seen.append(msg)

    await nc.subscribe(f"evt.{tenant}.>", cb=keep)
    await nc.flush()
    await chat.nc.publish(subject, forged.model_dump_json().encode())
    await chat.violation(subject)
    # Its own events pass (the control: the identity works, only the subject is refused).
    own = f"evt.{tenant}.{crisis}.chat.message_posted"
    await chat.nc.publish(own, b"{}")
    await chat.nc.flush()

    async def arrived() -> None:
        while not any(m.subject == own for m in seen):
            await asyncio.sleep(0.01)

    await asyncio.wait_for(arrived(), WAIT_S)
    assert [m.subject for m in seen] == [own]


async def test_a_service_reads_only_the_events_it_declared(stack: DevStack, chat: Intruder) -> None:
    js = chat.nc.jetstream(timeout=2)
    # No plain subscription to the event subjects...
    await chat.nc.subscribe("evt.>")
    await chat.violation("evt.>")
    # ...no consumer of its own making (ephemeral or durable) on the stream...
    with pytest.raises((NatsError, TimeoutError)):
        await js.subscribe("evt.>", stream="EVENTS", ordered_consumer=True)
    await chat.violation("$JS.API.CONSUMER.CREATE.EVENTS")
    with pytest.raises((NatsError, TimeoutError)):
        await js.pull_subscribe("evt.>", durable="chat-everything", stream="EVENTS")
    # ...and no pulling from another service's consumer, which reads everything.
    with pytest.raises((NatsError, TimeoutError)):
        await js.consumer_info("EVENTS", "logbook-writer")
    await chat.violation("$JS.API.CONSUMER.INFO.EVENTS.logbook-writer")
    # Its own declared consumer is there for it, with exactly the declared filters.
    info = await js.consumer_info("EVENTS", "chat-provisioner")
    declared = next(s for entry in SERVICES for s in entry.subscriptions if s.durable == "chat-provisioner")
    assert sorted(info.config.filter_subjects or []) == sorted(declared.filter_subjects)


async def test_the_launcher_only_asks_health(stack: DevStack) -> None:
    launcher = await connect_as(stack, "launcher")
    try:
        for subject in ("rpc.chat.send", "rpc.logbook.list", "evt.t.c.gateway.crisis_declared"):
            await launcher.nc.publish(subject, b"{}")
            await launcher.violation(subject)
        await launcher.nc.subscribe("rpc.chat.>")
        await launcher.violation("rpc.chat.>")
    finally:
        await launcher.nc.close()


def test_the_server_configuration_has_no_anonymous_user(stack: DevStack) -> None:
    config = json.loads((stack.directory / "nats" / "nats.conf").read_text())
    users = config["authorization"]["users"]
    assert all(set(user) == {"nkey", "permissions"} for user in users)  # no user/password, no anonymous
    assert "no_auth_user" not in config and "tls" in config
    assert len({user["nkey"] for user in users}) == len(users)  # one identity each
