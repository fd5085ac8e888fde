"""Typed RPC over a real NATS: round trip, invalid bodies, actors, no responder, timeouts."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator

import pytest
from nats.aio.client import Client
from pydantic import BaseModel, Field

from panicsafe.contracts.actor import Actor, CrisisMembership
from panicsafe.contracts.declarations import Operation
from panicsafe.contracts.errors import ErrorCode
from panicsafe.core.bus.rpc import RpcClient, RpcContext, RpcRouter, RpcServer, serve
from panicsafe.core.errors import ServiceError, not_found
from panicsafe.core.tokens import SigningKey, TokenSigner, TokenVerifier


class EchoRequest(BaseModel):
    text: str = Field(min_length=1, max_length=50)
    times: int = Field(default=1, ge=1, le=5)


class EchoReply(BaseModel):
    text: str
    actor: str | None = None


def echo(service: str) -> Operation[EchoRequest, EchoReply]:
    return Operation(service, "echo", EchoRequest, EchoReply, "Repeat a text (public)", public=True)


def whoami(service: str) -> Operation[EchoRequest, EchoReply]:
    return Operation(service, "whoami", EchoRequest, EchoReply, "Who the actor token says the caller is")


def make_router(name: str) -> RpcRouter:
    router = RpcRouter(name)

    @router.handle(echo(name))
    async def echo_handler(request: EchoRequest, ctx: RpcContext) -> EchoReply:
        if request.text == "missing":
            raise not_found("no such thing")
        if request.text == "boom":
            raise RuntimeError("secret internal detail")
        if request.text == "slow":
            await asyncio.sleep(2)
        return EchoReply(text=request.text * request.times, actor=ctx.actor.subject if ctx.actor else None)

    @router.handle(whoami(name))
    async def whoami_handler(request: EchoRequest, ctx: RpcContext) -> EchoReply:
        actor = ctx.require_actor()
        return EchoReply(text=actor.tenant, actor=actor.subject)

    return router


@pytest.fixture
async def served(nc: Client) -> AsyncIterator[tuple[str, TokenSigner]]:
    name = f"t{secrets.token_hex(4)}"
    key = SigningKey.generate()
    verifier = TokenVerifier(audience=f"panicsafe.{name}")
    verifier.add_key(key.kid, key.public_key)
    service: RpcServer = await serve(nc, make_router(name), version="1.0.0", verifier=verifier)
    yield name, TokenSigner(key)
    await service.stop()


async def test_typed_round_trip(nc: Client, served: tuple[str, TokenSigner]) -> None:
    name, _ = served
    reply = await RpcClient(nc).call(echo(name), EchoRequest(text="ab", times=3))
    assert reply == EchoReply(text="ababab", actor=None)


async def test_invalid_body_names_the_field(nc: Client, served: tuple[str, TokenSigner]) -> None:
    name, _ = served
    raw = await RpcClient(nc).call_raw(echo(name).subject, json.dumps({"text": "x", "times": 9}).encode())
    envelope = json.loads(raw)
    assert envelope["ok"] is False
    assert envelope["error"]["code"] == "invalid"
    assert [f["field"] for f in envelope["error"]["fields"]] == ["times"]
    assert "times" in envelope["error"]["message"]


async def test_malformed_json_is_invalid(nc: Client, served: tuple[str, TokenSigner]) -> None:
    name, _ = served
    envelope = json.loads(await RpcClient(nc).call_raw(echo(name).subject, b"{not json"))
    assert envelope["error"]["code"] == "invalid"


async def test_domain_error_keeps_its_code(nc: Client, served: tuple[str, TokenSigner]) -> None:
    name, _ = served
    with pytest.raises(ServiceError) as caught:
        await RpcClient(nc).call(echo(name), EchoRequest(text="missing"))
    assert caught.value.code == ErrorCode.NOT_FOUND
    assert caught.value.message == "no such thing"


async def test_bug_answers_internal_without_details(nc: Client, served: tuple[str, TokenSigner]) -> None:
    name, _ = served
    raw = await RpcClient(nc).call_raw(echo(name).subject, b'{"text": "boom"}')
    envelope = json.loads(raw)
    assert envelope["error"]["code"] == "internal"
    assert "secret internal detail" not in raw.decode()
    assert "Traceback" not in raw.decode()


async def test_no_responder_is_unavailable_fast(nc: Client) -> None:
    started = time.monotonic()
    with pytest.raises(ServiceError) as caught:
        await RpcClient(nc, timeout=3.0).call(echo("nobody"), EchoRequest(text="x"))
    assert caught.value.code == ErrorCode.UNAVAILABLE
    assert time.monotonic() - started < 3.0


async def test_slow_responder_is_unavailable_after_timeout(nc: Client, served: tuple[str, TokenSigner]) -> None:
    name, _ = served
    with pytest.raises(ServiceError) as caught:
        await RpcClient(nc).call(echo(name), EchoRequest(text="slow"), timeout=0.3)
    assert caught.value.code == ErrorCode.UNAVAILABLE
    assert "0.3" in caught.value.message


async def test_a_slow_call_does_not_delay_the_others(nc: Client, served: tuple[str, TokenSigner]) -> None:
    """Requests are handled concurrently: a 2 s call leaves the service free for quick ones."""
    name, _ = served
    client = RpcClient(nc)
    slow = asyncio.create_task(client.call(echo(name), EchoRequest(text="slow"), timeout=5))
    await asyncio.sleep(0.1)
    replies = await asyncio.gather(*(client.call(echo(name), EchoRequest(text=f"q{i}")) for i in range(20)))
    assert [r.text for r in replies] == [f"q{i}" for i in range(20)]
    assert not slow.done()  # served one at a time, the quick calls would have waited for it
    assert (await slow).text == "slow"


async def test_actor_endpoint_needs_a_valid_token(nc: Client, served: tuple[str, TokenSigner]) -> None:
    name, signer = served
    client = RpcClient(nc)
    with pytest.raises(ServiceError) as caught:
        await client.call(whoami(name), EchoRequest(text="x"))
    assert caught.value.code == ErrorCode.UNAUTHENTICATED

    actor = Actor(
        subject="u-1",
        tenant="3f0c1f5e-3f43-4b8f-9f5e-2a1c2b3d4e5f",
        memberships=[CrisisMembership(crisis="c-1", roles=["director"])],
    )
    token = signer.issue(actor, audience=f"panicsafe.{name}")
    reply = await client.call(whoami(name), EchoRequest(text="x"), token=token)
    assert reply == EchoReply(text=actor.tenant, actor="u-1")

    other = signer.issue(actor, audience="panicsafe.someone-else")
    with pytest.raises(ServiceError) as refused:
        await client.call(whoami(name), EchoRequest(text="x"), token=other)
    assert refused.value.code == ErrorCode.UNAUTHENTICATED


async def test_replicas_share_the_load_in_a_queue_group(nc: Client) -> None:
    name = f"t{secrets.token_hex(4)}"
    seen: list[str] = []

    def replica(tag: str) -> RpcRouter:
        router = RpcRouter(name)

        @router.handle(echo(name))
        async def echo_handler(request: EchoRequest, ctx: RpcContext) -> EchoReply:
            seen.append(tag)
            return EchoReply(text=tag)

        return router

    services = [await serve(nc, replica(tag), version="1.0.0", verifier=None) for tag in ("a", "b")]
    try:
        client = RpcClient(nc)
        for _ in range(40):
            await client.call(echo(name), EchoRequest(text="x"))
    finally:
        for service in services:
            await service.stop()
    assert len(seen) == 40  # each request answered once, not once per replica
    assert set(seen) == {"a", "b"}
