"""The benchmarks' raw NATS driver (`bench/natsload.py`) against the zero-trust bus: TLS verified
against the platform's CA, an nkey identity proved on the server's nonce, replies on the identity's
private inbox; and what it is refused."""

from __future__ import annotations

import asyncio
import importlib.util
import ssl
import sys
from pathlib import Path
from types import ModuleType

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from panicsafe.contracts import logbook
from panicsafe.contracts.catalog import GATEWAY
from panicsafe.core.bus.connection import NatsCredentials
from panicsafe.core.bus.identity import inbox_prefix
from panicsafe.core.devstack import DevStack
from panicsafe.core.devstack.natsd import identity_seed
from panicsafe.core.devstack.pki import CertificateAuthority

WAIT_S = 20.0


@pytest.fixture(scope="module")
def natsload() -> ModuleType:
    """`bench` is not an installed package: load the driver from its file."""
    path = Path(__file__).parents[1] / "bench" / "natsload.py"
    spec = importlib.util.spec_from_file_location("bench_natsload_under_test", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def test_requests_go_out_as_the_gateway_and_replies_come_back_on_its_inbox(
    stack: DevStack, nc: Client, natsload: ModuleType
) -> None:
    credentials = stack.nats.credentials(GATEWAY)
    seen: list[tuple[str, str | None]] = []

    async def answer(msg: Msg) -> None:
        seen.append((msg.reply, (msg.headers or {}).get("Authorization")))
        await msg.respond(b'{"ok":true}')

    # The harness plays the logbook: the subject is one the gateway may call.
    sub = await nc.subscribe(logbook.APPEND.subject, cb=answer)
    await nc.flush()
    requester = await natsload.RawRequester.connect(stack.nats.url, credentials)
    sender = await asyncio.to_thread(natsload.RawSender.connect, stack.nats.url, requester, credentials)
    replies: list[bytes] = []
    try:
        headers = natsload.header_block({"Authorization": "Bearer t"})
        for _ in range(3):
            sender.request(logbook.APPEND.subject, b"{}", headers, lambda reply, _at: replies.append(reply))
        await requester.drain(timeout=WAIT_S)
    finally:
        sender.close()
        await requester.close()
        await sub.unsubscribe()
    assert replies == [b'{"ok":true}'] * 3
    assert len(seen) == 3
    assert all(reply.startswith(f"{inbox_prefix(GATEWAY)}.") and auth == "Bearer t" for reply, auth in seen)


async def test_no_plain_text_no_stranger_no_borrowed_inbox(
    stack: DevStack, natsload: ModuleType, tmp_path: Path
) -> None:
    gateway = stack.nats.credentials(GATEWAY)
    # Without a CA to verify the server with, the driver does not connect at all.
    with pytest.raises(natsload.NatsProtocolError, match="no CA"):
        await natsload.RawRequester.connect(stack.nats.url, NatsCredentials(GATEWAY, gateway.seed, None))
    # A CA that did not sign the server: the TLS handshake fails.
    other_ca = str(CertificateAuthority(tmp_path / "other-ca").cert_file)
    with pytest.raises(ssl.SSLCertVerificationError):
        await natsload.RawRequester.connect(stack.nats.url, NatsCredentials(GATEWAY, gateway.seed, other_ca))
    # An nkey the server does not know: refused.
    stranger = identity_seed(stack.directory / "stranger-bench.nk")
    with pytest.raises(natsload.NatsProtocolError, match="refused"):
        await natsload.RawRequester.connect(stack.nats.url, NatsCredentials(GATEWAY, stranger, gateway.ca_file))
    # A sender under another identity would publish requests whose replies it may not read.
    requester = await natsload.RawRequester.connect(stack.nats.url, gateway)
    try:
        with pytest.raises(ValueError, match="as the requester"):
            natsload.RawSender.connect(stack.nats.url, requester, stack.nats.credentials("chat"))
        # The blocking sender is held to the same: its stranger nkey is refused.
        with pytest.raises(natsload.NatsProtocolError, match="refused"):
            await asyncio.to_thread(
                natsload.RawSender.connect,
                stack.nats.url,
                requester,
                NatsCredentials(GATEWAY, stranger, gateway.ca_file),
            )
    finally:
        await requester.close()
