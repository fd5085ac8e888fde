"""Subscriptions over graphql-transport-ws: need-to-know at subscribe time and while streaming."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from gwclient import (
    Account,
    GatewayUnderTest,
    Subscription,
    declare,
    gql,
    invite_and_enrol,
    login_with_totp,
    new_tenant_admin,
)

from panicsafe.gateway.domain.wording import severity_label

EVENTS = "subscription($c: ID!) { crisisEvents(crisisId: $c) { type service summary logbookKind mode } }"


@pytest.fixture(scope="module")
async def crisis(gateway: GatewayUnderTest) -> dict[str, Any]:
    async with gateway.client() as client:
        admin = await new_tenant_admin(gateway, client)
        declared = await declare(client, admin, f"Crise suivie {secrets.token_hex(3)}")
        member = await invite_and_enrol(client, admin, crisis_id=declared["id"], crisis_role="MEMBER")
        outsider = await new_tenant_admin(gateway, client)
        neighbour = await invite_and_enrol(client, admin)
        revoked = await login_with_totp(client, member)
        await client.post(
            "/auth/logout", headers={"Cookie": f"ps_refresh={revoked.refresh}", "X-PanicSAFE-CSRF": revoked.csrf}
        )
    return {
        "admin": admin,
        "id": declared["id"],
        "member": member,
        "outsider": outsider,
        "neighbour": neighbour,
        "revoked_token": revoked.access,
    }


async def change_severity(gateway: GatewayUnderTest, admin: Account, crisis_id: str, severity: str) -> None:
    async with gateway.client() as client:
        await gql(
            client,
            admin.session,
            "mutation($id: ID!, $s: Severity!) { updateCrisis(id: $id, severity: $s) { id } }",
            {"id": crisis_id, "s": severity},
        )


async def drain(sub: Subscription, *, seconds: float) -> list[dict[str, Any]]:
    """Whatever arrives within `seconds` (until the socket closes)."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            seen.append(await sub.next_message(timeout=left))
        except (TimeoutError, ConnectionError):
            break
        except Exception as exc:
            if type(exc).__name__.startswith("ConnectionClosed"):
                break
            raise
    return seen


async def next_event(sub: Subscription, timeout: float = 10.0) -> dict[str, Any]:
    message = await sub.next_message(timeout)
    assert message["type"] == "next", message
    assert not message["payload"].get("errors"), message
    event: dict[str, Any] = message["payload"]["data"]["crisisEvents"]
    return event


def severity_set_to(severity: str) -> Callable[[dict[str, Any]], bool]:
    """The crisis_updated event that set this severity (its summary says `gravité X → Y`)."""
    change = f"→ {severity_label(severity.lower())}"
    return lambda event: event["type"] == "crisis_updated" and change in event["summary"]


async def event_where(
    sub: Subscription, wanted: Callable[[dict[str, Any]], bool], timeout: float = 30.0
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The first event `wanted`, and those before it. Earlier events of this module may still be in
    flight when a subscription opens (the outbox, JetStream and the hub run behind on a busy
    machine): a live feed may deliver them, so a test looks for its own event rather than the first."""
    deadline = time.monotonic() + timeout
    before: list[dict[str, Any]] = []
    while True:
        event = await next_event(sub, timeout=max(0.1, deadline - time.monotonic()))
        if wanted(event):
            return event, before
        before.append(event)


async def until_subscribed(
    gateway: GatewayUnderTest, admin: Account, crisis_id: str, subs: list[Subscription], timeout: float = 60.0
) -> None:
    """Wait until each subscription is registered on its hub: a registered one receives events, so the
    crisis' severity is changed again until every subscriber has received something."""
    pending = list(subs)
    deadline = time.monotonic() + timeout
    severities = ("MINOR", "MAJOR")
    round_ = 0
    while pending:
        assert time.monotonic() < deadline, f"{len(pending)} subscriptions never received an event"
        await change_severity(gateway, admin, crisis_id, severities[round_ % 2])
        round_ += 1
        got = await asyncio.gather(*(next_event(sub, timeout=3.0) for sub in pending), return_exceptions=True)
        for result in got:
            if isinstance(result, BaseException) and not isinstance(result, TimeoutError):
                raise result
        pending = [sub for sub, result in zip(pending, got, strict=True) if isinstance(result, TimeoutError)]


async def test_member_receives_crisis_events(gateway: GatewayUnderTest, crisis: dict[str, Any]) -> None:
    async with Subscription(gateway.url, crisis["member"].session.access, EVENTS, {"c": crisis["id"]}) as sub:
        await until_subscribed(gateway, crisis["admin"], crisis["id"], [sub])
        await change_severity(gateway, crisis["admin"], crisis["id"], "CRITICAL")
        event, _ = await event_where(sub, severity_set_to("CRITICAL"))
    assert event["type"] == "crisis_updated"
    assert event["service"] == "gateway"
    assert event["logbookKind"] == "decision"
    assert "gravité" in event["summary"]


@pytest.mark.parametrize("persona", ["outsider", "neighbour", "revoked", "anonymous", "garbage"])
async def test_attackers_cannot_subscribe(gateway: GatewayUnderTest, crisis: dict[str, Any], persona: str) -> None:
    token = {
        "outsider": crisis["outsider"].session.access,
        "neighbour": crisis["neighbour"].session.access,
        "revoked": crisis["revoked_token"],
        "anonymous": None,
        "garbage": "not.a.token",
    }[persona]
    async with Subscription(gateway.url, token, EVENTS, {"c": crisis["id"]}) as sub:
        message = await sub.next_message()
        assert message["type"] in ("error", "next"), message
        errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
        assert errors[0]["extensions"]["code"] in ("forbidden", "unauthenticated")
        await change_severity(gateway, crisis["admin"], crisis["id"], "MAJOR")
        later = await drain(sub, seconds=1.5)
        assert [m for m in later if m.get("payload", {}).get("data")] == []


async def test_removed_member_stream_ends_at_once(gateway: GatewayUnderTest, crisis: dict[str, Any]) -> None:
    admin = crisis["admin"]
    async with gateway.client() as client:
        member = await invite_and_enrol(client, admin, crisis_id=crisis["id"], crisis_role="MEMBER")
    async with Subscription(gateway.url, member.session.access, EVENTS, {"c": crisis["id"]}) as sub:
        await until_subscribed(gateway, admin, crisis["id"], [sub])
        async with gateway.client() as client:
            await gql(
                client,
                admin.session,
                "mutation($c: ID!, $u: ID!) { removeCrisisMember(crisisId: $c, userId: $u) }",
                {"c": crisis["id"], "u": member.user_id},
            )
        # Events from before the removal (this member's own enrolment, the severity changes of the
        # wait above) may still arrive first; the removal itself may not.
        message = await sub.next_message(timeout=30)
        while message["type"] == "next" and message["payload"].get("data"):
            summary = message["payload"]["data"]["crisisEvents"]["summary"] or ""  # notices have none
            assert "a retiré un membre" not in summary, message
            message = await sub.next_message(timeout=30)
    assert message["type"] == "next"
    assert message["payload"]["errors"][0]["extensions"]["code"] == "forbidden"
    assert message["payload"].get("data") is None  # the removal event itself is not delivered to them


async def test_two_hundred_websocket_subscribers_receive_an_event(
    gateway: GatewayUnderTest, crisis: dict[str, Any]
) -> None:
    token = crisis["member"].session.access
    subscriptions = [Subscription(gateway.url, token, EVENTS, {"c": crisis["id"]}) for _ in range(200)]
    opened: list[Subscription] = []
    try:
        for batch in range(0, 200, 50):
            opened += await asyncio.gather(*(s.__aenter__() for s in subscriptions[batch : batch + 50]))
        await until_subscribed(gateway, crisis["admin"], crisis["id"], opened)
        started = time.monotonic()
        await change_severity(gateway, crisis["admin"], crisis["id"], "SIGNIFICANT")
        found = await asyncio.gather(*(event_where(s, severity_set_to("SIGNIFICANT"), timeout=60) for s in opened))
        events = [event for event, _ in found]
        elapsed = time.monotonic() - started
    finally:
        await asyncio.gather(*(s.__aexit__() for s in opened), return_exceptions=True)
    assert len(events) == 200
    assert all(e["type"] == "crisis_updated" for e in events)
    print(f"\n200 WebSocket subscribers received the event within {elapsed * 1000:.0f} ms")


NOTICES = "subscription($c: ID!) { crisisEvents(crisisId: $c) { type service data } }"
ADD_ENTRY = "mutation($c: ID!, $e: LogbookEntryInput!) { addLogbookEntry(crisisId: $c, entry: $e) { seq } }"


async def add_entry(client: httpx.AsyncClient, author: Account, crisis_id: str, summary: str, cell: str | None) -> None:
    entry = {"kind": "FACT", "summary": summary, "cellId": cell}
    await gql(client, author.session, ADD_ENTRY, {"c": crisis_id, "e": entry})


def notice_with(text: str) -> Callable[[dict[str, Any]], bool]:
    """A logbook notice one of whose entries has `text` in its summary."""
    return lambda event: event["type"] == "entries_recorded" and any(
        text in entry["summary"] for entry in event["data"]["entries"]
    )


async def test_a_cell_only_role_gets_only_its_cells_entries_of_a_notice(gateway: GatewayUnderTest) -> None:
    """A patients' representative sees the entries of their own cell: a notice that also carries
    crisis-wide entries reaches them with their cell's entries only (as `logbookEntries` does)."""
    async with gateway.client() as client:
        admin = await new_tenant_admin(gateway, client)
        declared = await declare(client, admin, f"Crise cloisonnée {secrets.token_hex(3)}")
        crisis_id, cell = declared["id"], declared["cells"][0]["id"]
        representative = await invite_and_enrol(
            client, admin, crisis_id=crisis_id, crisis_role="PATIENTS_REPRESENTATIVE", cell_ids=[cell]
        )
        async with (
            Subscription(gateway.url, admin.session.access, NOTICES, {"c": crisis_id}) as everything,
            Subscription(gateway.url, representative.session.access, NOTICES, {"c": crisis_id}) as own_cell,
        ):
            await until_subscribed(gateway, admin, crisis_id, [everything])
            for ping in range(20):  # the representative sees no severity change: an entry of their cell
                await add_entry(client, admin, crisis_id, f"ping {ping}", cell)
                try:
                    await next_event(own_cell, timeout=3.0)
                    break
                except TimeoutError:
                    continue
            else:
                raise AssertionError("the representative's subscription never received an event")

            # Entries written together share a notice (one per log every 50 ms): retry until one did.
            for attempt in range(10):
                marker = f"{attempt}-{secrets.token_hex(3)}"
                await asyncio.gather(
                    *(add_entry(client, admin, crisis_id, f"SECRET crise {marker} {n}", None) for n in range(3)),
                    add_entry(client, admin, crisis_id, f"cellule {marker}", cell),
                )
                notice, _ = await event_where(everything, notice_with(f"cellule {marker}"))
                if any("SECRET" in entry["summary"] for entry in notice["data"]["entries"]):
                    break
            else:
                raise AssertionError("no notice mixed crisis-wide and cell entries")

            seen, before = await event_where(own_cell, notice_with(f"cellule {marker}"))
            await add_entry(client, admin, crisis_id, f"fin {marker}", cell)
            last, between = await event_where(own_cell, notice_with(f"fin {marker}"))

    delivered = [*before, seen, *between, last]
    assert all(event["type"] == "entries_recorded" for event in delivered)
    entries = [entry for event in delivered for entry in event["data"]["entries"]]
    assert not [entry for entry in entries if "SECRET" in entry["summary"] or entry["cell"] != cell], entries
    assert [entry["summary"] for entry in seen["data"]["entries"]] == [f"cellule {marker}"]
