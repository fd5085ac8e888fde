"""NATS restarted mid-conversation: a reconnecting client resumes and misses no message, none twice.

The gateway and the chat service run as real processes on a devstack of their own (this test
restarts NATS). The sender retries each message with its client id until it is acknowledged, as the
web client does; the reader resubscribes with its last revision whenever its feed ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from pathlib import Path
from typing import Any

import pytest
from gwclient import Subscription, declare, gateway_of, gql, gql_raw, invite_and_enrol, new_tenant_admin

from panicsafe.core.devstack import DevStack
from panicsafe.core.devstack.platform import Platform

BEFORE, DURING, AFTER = 10, 20, 10
SEND = """mutation($i: SendMessageInput!) { sendMessage(input: $i) { duplicate message { id rev } } }"""
UPDATES = """subscription($c: ID!, $r: [ChannelCursor!]) { chatUpdates(crisisId: $c, resume: $r) {
  kind channelId message { id rev text } } }"""


@pytest.mark.slow
async def test_nats_restart_mid_conversation(tmp_path: Path) -> None:
    stack = DevStack(tmp_path / "stack", components=("nats", "postgres", "openbao")).start()
    platform = Platform(stack, tmp_path / "platform", services=("gateway", "chat"), gateway_workers=1)
    try:
        await platform.start()
        async with gateway_of(platform) as gateway, gateway.client() as client:
            alice = await new_tenant_admin(gateway, client)
            crisis = (await declare(client, alice, "Coupure du bus"))["id"]
            bob = await invite_and_enrol(client, alice, display_name="Bob", crisis_id=crisis, crisis_role="MEMBER")
            channels: list[dict[str, Any]] = []
            for _ in range(100):
                body = await gql_raw(
                    client, alice.session, "query($c: ID!) { chatChannels(crisisId: $c) { id kind } }", {"c": crisis}
                )
                channels = (body.get("data") or {}).get("chatChannels") or []
                if channels:
                    break
                await asyncio.sleep(0.1)
            channel = next(c["id"] for c in channels if c["kind"] == "CRISIS")

            received: list[tuple[str, int]] = []  # (message id, rev) in delivery order, across reconnections
            last_rev = 0
            subscribed = asyncio.Event()

            async def reader() -> None:
                nonlocal last_rev
                while True:
                    cursor = [{"channelId": channel, "afterRev": last_rev}]
                    try:
                        async with Subscription(
                            gateway.url, bob.session.access, UPDATES, {"c": crisis, "r": cursor}
                        ) as feed:
                            subscribed.set()
                            while True:
                                message = await feed.next_message(timeout=120)
                                if message["type"] != "next" or message["payload"].get("errors"):
                                    break  # the feed ended: resubscribe from the last revision
                                update = message["payload"]["data"]["chatUpdates"]
                                if update["message"] is None:
                                    continue
                                received.append((update["message"]["id"], update["message"]["rev"]))
                                last_rev = max(last_rev, update["message"]["rev"])
                    except Exception:  # noqa: BLE001 (the gateway is reconnecting: try again)
                        await asyncio.sleep(0.5)

            async def send(n: int) -> str:
                variables = {
                    "i": {"channelId": channel, "clientId": f"msg-{n:04d}-{secrets.token_hex(3)}", "text": f"n° {n}"}
                }
                while True:  # retried with the same client id until stored
                    with contextlib.suppress(Exception):
                        body = await gql_raw(client, alice.session, SEND, variables)
                        if not body.get("errors"):
                            return str(body["data"]["sendMessage"]["message"]["id"])
                    await asyncio.sleep(0.2)

            task = asyncio.create_task(reader())
            await asyncio.wait_for(subscribed.wait(), 30)
            await asyncio.sleep(0.3)
            sent = [await send(n) for n in range(BEFORE)]
            restart = asyncio.create_task(asyncio.to_thread(stack.restart, "nats", crash=True, down_s=1.0))
            sent += [await send(n) for n in range(BEFORE, BEFORE + DURING)]
            await restart
            sent += [await send(n) for n in range(BEFORE + DURING, BEFORE + DURING + AFTER)]
            for _ in range(600):
                if {m for m, _ in received} >= set(sent):
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)  # anything doubled would arrive now
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            ids = [m for m, _ in received]
            assert len(set(sent)) == BEFORE + DURING + AFTER
            assert set(ids) == set(sent)  # nothing missed
            assert len(ids) == len(set(ids))  # nothing delivered twice
            revs = [r for _, r in received]
            assert revs == sorted(revs)
            history = await gql(
                client,
                bob.session,
                "query($ch: ID!) { chatHistory(channelId: $ch, after: 0, first: 200) { messages { id seq } } }",
                {"ch": channel},
            )
            seqs = [m["seq"] for m in history["chatHistory"]["messages"]]
            assert seqs == list(range(1, len(sent) + 1))  # retries stored nothing twice
    finally:
        platform.stop()
        stack.stop()
