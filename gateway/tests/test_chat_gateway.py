"""The crisis chat through the gateway, against the real gateway, chat and logbook processes.

Two members talking live, a reconnecting client resuming without gaps or doubles, stable error codes,
the main courante fed by a marked message exactly once, no text in the logs, and every refusal played
from the attacker's side (other tenant, other crisis, other cell, removed member, guessed ids).
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from typing import Any

import httpx
import pytest
from gwclient import (
    Account,
    GatewayUnderTest,
    Subscription,
    declare,
    gql,
    gql_raw,
    invite_and_enrol,
    new_tenant_admin,
)

CHANNELS = """query($c: ID!) { chatChannels(crisisId: $c) {
  id kind name cellId memberIds lastSeq lastRev readSeq unread unreadMentions writable } }"""
SEND = """mutation($i: SendMessageInput!) { sendMessage(input: $i) {
  duplicate message { id seq rev text author channelId } } }"""
HISTORY = """query($ch: ID!, $after: Int) { chatHistory(channelId: $ch, after: $after, first: 200) {
  hasMore messages { id seq rev text author redactedAt markedKind } } }"""
UPDATES = """subscription($c: ID!, $r: [ChannelCursor!]) { chatUpdates(crisisId: $c, resume: $r) {
  kind channelId message { id seq rev text version redactedAt } } }"""
SEARCH = """query($c: ID!, $t: String!) { chatSearch(crisisId: $c, text: $t) { messages { id text } } }"""


@pytest.fixture(scope="module")
async def room(gateway: GatewayUnderTest) -> dict[str, Any]:
    async with gateway.client() as client:
        director = await new_tenant_admin(gateway, client)
        crisis = await declare(client, director, f"Cyberattaque {secrets.token_hex(3)}")
        it_cell = next(c["id"] for c in crisis["cells"] if c["kind"] == "IT_OPERATIONS")
        medical = next(c["id"] for c in crisis["cells"] if c["kind"] == "MEDICAL_CONTINUITY")
        alice = await invite_and_enrol(
            client, director, display_name="Alice SI", crisis_id=crisis["id"], crisis_role="MEMBER", cell_ids=[it_cell]
        )
        bob = await invite_and_enrol(
            client, director, display_name="Bob SI", crisis_id=crisis["id"], crisis_role="MEMBER", cell_ids=[it_cell]
        )
        liaison = await invite_and_enrol(
            client,
            director,
            display_name="Liaison ARS",
            crisis_id=crisis["id"],
            crisis_role="EXTERNAL_LIAISON",
            cell_ids=[medical],
        )
        other_crisis = await declare(client, director, "Crise voisine")
        neighbour = await invite_and_enrol(
            client, director, display_name="Autre crise", crisis_id=other_crisis["id"], crisis_role="MEMBER"
        )
        outsider = await new_tenant_admin(gateway, client)
        channels = await channels_of(client, director, crisis["id"])
    by_kind = {c["kind"]: c["id"] for c in channels if c["kind"] != "CELL"}
    by_cell = {c["cellId"]: c["id"] for c in channels if c["kind"] == "CELL"}
    return {
        "director": director,
        "crisis": crisis["id"],
        "it_cell": it_cell,
        "alice": alice,
        "bob": bob,
        "liaison": liaison,
        "neighbour": neighbour,
        "outsider": outsider,
        "all": by_kind["CRISIS"],
        "external": by_kind["EXTERNAL"],
        "it": by_cell[it_cell],
        "medical": by_cell[medical],
    }


async def channels_of(client: httpx.AsyncClient, account: Account, crisis: str) -> list[dict[str, Any]]:
    for _ in range(50):
        body = await gql_raw(client, account.session, CHANNELS, {"c": crisis})
        if not body.get("errors"):
            found: list[dict[str, Any]] = body["data"]["chatChannels"]
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(body)


async def send(
    client: httpx.AsyncClient, account: Account, channel: str, text: str, client_id: str | None = None
) -> dict[str, Any]:
    variables = {"i": {"channelId": channel, "clientId": client_id or secrets.token_urlsafe(12), "text": text}}
    data = await gql(client, account.session, SEND, variables)
    result: dict[str, Any] = data["sendMessage"]
    return result


def error_code(body: dict[str, Any]) -> str:
    code: str = body["errors"][0]["extensions"]["code"]
    return code


async def next_update(feed: Subscription, timeout: float = 10.0) -> dict[str, Any]:
    message = await feed.next_message(timeout)
    assert message["type"] == "next", message
    update: dict[str, Any] = message["payload"]["data"]["chatUpdates"]
    return update


async def test_default_channels_follow_need_to_know(gateway: GatewayUnderTest, room: dict[str, Any]) -> None:
    async with gateway.client() as client:
        director = {c["kind"] for c in await channels_of(client, room["director"], room["crisis"])}
        alice = await channels_of(client, room["alice"], room["crisis"])
        liaison = await channels_of(client, room["liaison"], room["crisis"])
    assert director == {"CRISIS", "CELL", "EXTERNAL"}
    assert {c["id"] for c in alice} == {room["all"], room["external"], room["it"]}
    assert {c["id"] for c in liaison} == {room["external"], room["medical"]}


async def test_two_members_talk_live_and_a_retry_is_stored_once(
    gateway: GatewayUnderTest, room: dict[str, Any]
) -> None:
    async with (
        gateway.client() as client,
        Subscription(gateway.url, room["bob"].session.access, UPDATES, {"c": room["crisis"]}) as bob_feed,
    ):
        await asyncio.sleep(0.3)
        client_id = secrets.token_urlsafe(12)
        first = await send(client, room["alice"], room["it"], "Les sauvegardes hors ligne sont intactes.", client_id)
        retry = await send(client, room["alice"], room["it"], "Les sauvegardes hors ligne sont intactes.", client_id)
        assert not first["duplicate"] and retry["duplicate"]
        assert retry["message"]["id"] == first["message"]["id"]
        update = await next_update(bob_feed)
        assert update["kind"] == "POSTED" and update["channelId"] == room["it"]
        assert update["message"]["text"] == "Les sauvegardes hors ligne sont intactes."
        second = await send(client, room["director"], room["it"], "Merci, on garde ce plan.")
        update = await next_update(bob_feed)
        assert update["message"]["id"] == second["message"]["id"]  # the retry produced nothing in between
        bob_channels = await channels_of(client, room["bob"], room["crisis"])
    it = next(c for c in bob_channels if c["id"] == room["it"])
    assert it["unread"] >= 2


async def test_reconnecting_client_resumes_without_gap_or_double(
    gateway: GatewayUnderTest, room: dict[str, Any]
) -> None:
    async with gateway.client() as client:
        seen: dict[str, dict[str, Any]] = {}
        last_rev = 0
        async with Subscription(gateway.url, room["bob"].session.access, UPDATES, {"c": room["crisis"]}) as feed:
            await asyncio.sleep(0.3)
            early = [await send(client, room["alice"], room["all"], f"point {n}") for n in range(3)]
            for _ in early:
                update = await next_update(feed)
                seen[update["message"]["id"]] = update["message"]
                last_rev = max(last_rev, update["message"]["rev"])
        # Offline: new messages and an edit of an old one.
        missed = [await send(client, room["alice"], room["all"], f"pendant la coupure {n}") for n in range(4)]
        edited = await gql(
            client,
            room["alice"].session,
            "mutation($m: ID!, $t: String!) { editMessage(messageId: $m, text: $t) { id version rev } }",
            {"m": early[0]["message"]["id"], "t": "point 0 (corrigé)"},
        )
        cursor = [{"channelId": room["all"], "afterRev": last_rev}]
        async with Subscription(
            gateway.url, room["bob"].session.access, UPDATES, {"c": room["crisis"], "r": cursor}
        ) as feed:
            resumed = [await next_update(feed) for _ in range(5)]
            live = await send(client, room["alice"], room["all"], "de retour en direct")
            after = await next_update(feed)
            with pytest.raises(asyncio.TimeoutError):
                await next_update(feed, timeout=1.0)  # nothing doubled
    assert [u["kind"] for u in resumed] == ["SYNCED"] * 5
    assert [u["message"]["id"] for u in resumed] == [m["message"]["id"] for m in missed] + [early[0]["message"]["id"]]
    assert resumed[-1]["message"]["text"] == "point 0 (corrigé)"
    assert resumed[-1]["message"]["version"] == edited["editMessage"]["version"] == 2
    assert after["kind"] == "POSTED" and after["message"]["id"] == live["message"]["id"]
    revs = [u["message"]["rev"] for u in resumed] + [after["message"]["rev"]]
    assert revs == list(range(last_rev + 1, last_rev + 7))  # every revision once, in order


async def test_bad_input_gets_stable_codes(gateway: GatewayUnderTest, room: dict[str, Any]) -> None:
    async with gateway.client() as client:
        alice = room["alice"]
        for text, code in (("", "invalid"), ("   ", "invalid"), ("x" * 10_001, "invalid")):
            body = await gql_raw(
                client, alice.session, SEND, {"i": {"channelId": room["it"], "clientId": "abcdefgh", "text": text}}
            )
            assert error_code(body) == code, body
        body = await gql_raw(
            client, alice.session, SEND, {"i": {"channelId": str(uuid.uuid4()), "clientId": "abcdefgh", "text": "x"}}
        )
        assert error_code(body) == "not_found"
        body = await gql_raw(
            client, alice.session, SEND, {"i": {"channelId": room["medical"], "clientId": "abcdefgh", "text": "x"}}
        )
        assert error_code(body) == "forbidden"
        body = await gql_raw(
            client, alice.session, SEND, {"i": {"channelId": "pas-un-uuid", "clientId": "abcdefgh", "text": "x"}}
        )
        assert error_code(body) == "invalid"
        # The per-person send rate: a burst well above it is cut with a clear error, others still write.
        codes, messages = [], []
        for n in range(300):
            body = await gql_raw(
                client,
                room["bob"].session,
                SEND,
                {"i": {"channelId": room["external"], "clientId": secrets.token_urlsafe(12), "text": f"rafale {n}"}},
            )
            codes.append(error_code(body) if body.get("errors") else "ok")
            if body.get("errors"):
                messages.append(body["errors"][0]["message"])
                break
        assert codes[0] == "ok" and codes[-1] == "rate_limited", codes
        assert "patientez" in messages[-1]
        stored = (await gql(client, alice.session, HISTORY, {"ch": room["external"], "after": 0}))["chatHistory"]
        bursts = [m for m in stored["messages"] if m["text"].startswith("rafale ")]
        assert len(bursts) == codes.count("ok")  # the refused one left nothing behind
        ok = await send(client, room["director"], room["external"], "le directeur écrit toujours")
        assert ok["message"]["seq"] >= 1
        history = (await gql(client, alice.session, HISTORY, {"ch": room["it"], "after": 0}))["chatHistory"]
        assert all(m["text"] != "x" for m in history["messages"])  # nothing half-written


async def test_outsiders_cannot_read_search_subscribe_or_guess(gateway: GatewayUnderTest, room: dict[str, Any]) -> None:
    marker = f"Secret{secrets.token_hex(4)}"
    async with gateway.client() as client:
        await send(client, room["alice"], room["it"], f"Mot de passe provisoire {marker}")
        for persona in ("outsider", "neighbour"):
            account = room[persona]
            body = await gql_raw(client, account.session, CHANNELS, {"c": room["crisis"]})
            assert error_code(body) == "forbidden"
            body = await gql_raw(client, account.session, HISTORY, {"ch": room["it"], "after": 0})
            assert error_code(body) in ("forbidden", "not_found") and marker not in str(body)
            body = await gql_raw(client, account.session, SEARCH, {"c": room["crisis"], "t": marker})
            assert error_code(body) == "forbidden"
            body = await gql_raw(client, account.session, HISTORY, {"ch": str(uuid.uuid4()), "after": 0})
            assert error_code(body) in ("forbidden", "not_found")
        # A member of the crisis, but not of the cell: the cell's channel stays closed.
        liaison = room["liaison"]
        body = await gql_raw(client, liaison.session, HISTORY, {"ch": room["it"], "after": 0})
        assert error_code(body) == "forbidden" and marker not in str(body)
        body = await gql(client, liaison.session, SEARCH, {"c": room["crisis"], "t": marker})
        assert body["chatSearch"]["messages"] == []
        found = await gql(client, room["bob"].session, SEARCH, {"c": room["crisis"], "t": marker.lower()})
        assert [m["text"] for m in found["chatSearch"]["messages"]] == [f"Mot de passe provisoire {marker}"]
    for persona in ("outsider", "neighbour"):
        async with Subscription(gateway.url, room[persona].session.access, UPDATES, {"c": room["crisis"]}) as feed:
            message = await feed.next_message()
            assert message["type"] == "error" or (message["type"] == "next" and message["payload"].get("errors"))
    async with (
        gateway.client() as client,
        Subscription(gateway.url, liaison.session.access, UPDATES, {"c": room["crisis"]}) as feed,
    ):
        await asyncio.sleep(0.3)
        await send(client, room["alice"], room["it"], f"encore {marker}")
        visible = await send(client, room["director"], room["external"], "message pour les liaisons")
        update = await next_update(feed)
        assert update["message"]["id"] == visible["message"]["id"]  # the cell's message never reached them


async def test_membership_removal_takes_effect_at_once(gateway: GatewayUnderTest, room: dict[str, Any]) -> None:
    async with gateway.client() as client:
        carol = await invite_and_enrol(
            client,
            room["director"],
            display_name="Carole SI",
            crisis_id=room["crisis"],
            crisis_role="MEMBER",
            cell_ids=[room["it_cell"]],
        )
        async with Subscription(gateway.url, carol.session.access, UPDATES, {"c": room["crisis"]}) as feed:
            await asyncio.sleep(0.3)
            await send(client, room["alice"], room["it"], "avant le retrait")
            assert (await next_update(feed))["message"]["text"] == "avant le retrait"
            await gql(
                client,
                room["director"].session,
                """mutation($c: ID!, $cell: ID!, $u: ID!) {
                  setCellMembership(crisisId: $c, cellId: $cell, userId: $u, member: false) }""",
                {"c": room["crisis"], "cell": room["it_cell"], "u": carol.user_id},
            )
            body = await gql_raw(client, carol.session, HISTORY, {"ch": room["it"], "after": 0})
            assert error_code(body) == "forbidden"  # same access token, refused now
            await asyncio.sleep(0.5)
            await send(client, room["alice"], room["it"], "après le retrait de la cellule")
            public = await send(client, room["alice"], room["all"], "pour toute la cellule de crise")
            assert (await next_update(feed))["message"]["id"] == public["message"]["id"]
            await gql(
                client,
                room["director"].session,
                "mutation($c: ID!, $u: ID!) { removeCrisisMember(crisisId: $c, userId: $u) }",
                {"c": room["crisis"], "u": carol.user_id},
            )
            ended = await feed.next_message()
            assert ended["type"] == "error" or (ended["type"] == "next" and ended["payload"].get("errors")), ended


async def test_marking_a_message_writes_one_main_courante_entry(
    gateway: GatewayUnderTest, room: dict[str, Any]
) -> None:
    mark = "mutation($m: ID!, $k: LogbookKind!) { markMessage(messageId: $m, kind: $k) { id markedKind markedBy } }"
    async with gateway.client() as client:
        sent = await send(client, room["alice"], room["it"], "Décision : isoler le réseau d'imagerie")
        message_id = sent["message"]["id"]
        first = await gql(client, room["director"].session, mark, {"m": message_id, "k": "DECISION"})
        again = await gql(client, room["bob"].session, mark, {"m": message_id, "k": "DECISION"})
        assert first["markMessage"]["markedKind"] == again["markMessage"]["markedKind"] == "DECISION"
        clash = await gql_raw(client, room["bob"].session, mark, {"m": message_id, "k": "FACT"})
        assert error_code(clash) == "conflict"
        query = """query($c: ID!) { logbook(crisisId: $c, first: 200) { entries { seq kind source body links } } }"""
        linked: list[dict[str, Any]] = []
        for _ in range(100):
            entries = (await gql(client, room["director"].session, query, {"c": room["crisis"]}))["logbook"]["entries"]
            linked = [e for e in entries if e["links"].get("message") == message_id]
            if linked:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # a second entry, were there one, would have landed by now
        entries = (await gql(client, room["director"].session, query, {"c": room["crisis"]}))["logbook"]["entries"]
        linked = [e for e in entries if e["links"].get("message") == message_id]
        assert len(linked) == 1
        entry = linked[0]
        assert entry["kind"] == "DECISION" and entry["source"] == "chat"
        assert entry["body"] == "Décision : isoler le réseau d'imagerie"
        assert entry["links"]["channel"] == room["it"]


async def test_no_message_text_in_logs(gateway: GatewayUnderTest, room: dict[str, Any]) -> None:
    marker = f"Confidentiel{secrets.token_hex(5)}"
    async with gateway.client() as client:
        sent = await send(client, room["alice"], room["it"], f"Patient {marker} transféré")
        await gql(
            client,
            room["director"].session,
            "mutation($m: ID!) { markMessage(messageId: $m, kind: FACT) { id } }",
            {"m": sent["message"]["id"]},
        )
        await asyncio.sleep(1.0)
    logs = gateway.directory / "logs"
    texts = {p.name: p.read_text(errors="replace") for p in logs.glob("*.log")}
    assert {"chat.log", "gateway.log", "logbook.log"} <= set(texts)
    assert not [name for name, text in texts.items() if marker in text]
    rows = await gateway.admin_sql("SELECT t::text AS line FROM chat.messages t WHERE id = $1", sent["message"]["id"])
    assert rows and marker not in rows[0]["line"]


async def test_resume_skips_channels_one_cannot_read(gateway: GatewayUnderTest, room: dict[str, Any]) -> None:
    """A cursor naming a channel the subscriber may not read (or a guessed id) resumes nothing there,
    reveals nothing, and does not break the resumption of the others."""
    async with gateway.client() as client:
        hidden = await send(client, room["alice"], room["it"], "réservé à la cellule SI")
        visible = await send(client, room["director"], room["external"], "pour les liaisons aussi")
    cursor = [
        {"channelId": room["it"], "afterRev": 0},
        {"channelId": str(uuid.uuid4()), "afterRev": 0},
        {"channelId": room["external"], "afterRev": visible["message"]["rev"] - 1},
    ]
    async with Subscription(
        gateway.url, room["liaison"].session.access, UPDATES, {"c": room["crisis"], "r": cursor}
    ) as feed:
        first = await next_update(feed)
        assert first["kind"] == "SYNCED" and first["message"]["id"] == visible["message"]["id"]
        with pytest.raises(asyncio.TimeoutError):
            await next_update(feed, timeout=1.0)
    assert hidden["message"]["id"] != first["message"]["id"]
