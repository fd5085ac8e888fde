"""The main courante through the gateway, against the real gateway and logbook processes.

Automatic entries from crisis events, manual entries, filters, the live feed, signed exports that
verify offline, and refusals from the attacker's side (other tenant, other crisis, lower role, stale
second factor, someone else's export).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
import time
from pathlib import Path
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

PAGE = """query($c: ID!, $f: LogbookFilter, $after: Int, $first: Int!) {
  logbook(crisisId: $c, filter: $f, after: $after, first: $first) {
    size hasMore cursor
    entries { seq kind summary body author source cellId rekeyed corrects leafHash chainHash links }
  }
}"""
ADD = """mutation($c: ID!, $e: LogbookEntryInput!) {
  addLogbookEntry(crisisId: $c, entry: $e) { seq kind summary body author source }
}"""
EXPORT = """mutation($c: ID!, $f: ExportFormat!) {
  exportLogbook(crisisId: $c, format: $f) { id filename contentType size sha256 entries treeSize rootHash downloadPath }
}"""


@pytest.fixture(scope="module")
async def cell(gateway: GatewayUnderTest) -> dict[str, Any]:
    async with gateway.client() as client:
        director = await new_tenant_admin(gateway, client)
        crisis = await declare(client, director, f"Rançongiciel {secrets.token_hex(3)}")
        it_cell = next(c["id"] for c in crisis["cells"] if c["kind"] == "IT_OPERATIONS")
        medical = next(c["id"] for c in crisis["cells"] if c["kind"] == "MEDICAL_CONTINUITY")
        member = await invite_and_enrol(
            client, director, display_name="Inès Membre", crisis_id=crisis["id"], crisis_role="MEMBER"
        )
        liaison = await invite_and_enrol(
            client,
            director,
            display_name="Liaison ARS",
            crisis_id=crisis["id"],
            crisis_role="EXTERNAL_LIAISON",
            cell_ids=[medical],
        )
        outsider = await new_tenant_admin(gateway, client)
    return {
        "director": director,
        "crisis": crisis["id"],
        "it": it_cell,
        "medical": medical,
        "member": member,
        "liaison": liaison,
        "outsider": outsider,
    }


async def read_all(client: httpx.AsyncClient, account: Account, crisis: str, **filters: Any) -> list[dict[str, Any]]:
    data = await gql(client, account.session, PAGE, {"c": crisis, "f": filters or None, "first": 200})
    entries: list[dict[str, Any]] = data["logbook"]["entries"]
    return entries


async def wait_for(client: httpx.AsyncClient, account: Account, crisis: str, summary_part: str) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for entry in await read_all(client, account, crisis):
            if summary_part in entry["summary"]:
                return entry
        await asyncio.sleep(0.2)
    raise AssertionError(f"no entry with {summary_part!r}")


async def test_crisis_events_are_written_automatically(gateway: GatewayUnderTest, cell: dict[str, Any]) -> None:
    async with gateway.client() as client:
        declared = await wait_for(client, cell["director"], cell["crisis"], "Crise déclarée")
        assert declared["source"] == "gateway" and declared["kind"] == "DECISION"
        assert declared["author"] == "Admin Test"
        await gql(
            client,
            cell["director"].session,
            "mutation($id: ID!) { updateCrisis(id: $id, severity: CRITICAL) { id } }",
            {"id": cell["crisis"]},
        )
        change = await wait_for(client, cell["director"], cell["crisis"], "gravité majeure → critique")
        assert change["kind"] == "DECISION"
        assert set(json.loads(json.dumps(change["links"]))) == {"event"}


async def test_manual_entries_filters_and_need_to_know(gateway: GatewayUnderTest, cell: dict[str, Any]) -> None:
    crisis = cell["crisis"]
    async with gateway.client() as client:
        added = (
            await gql(
                client,
                cell["member"].session,
                ADD,
                {
                    "c": crisis,
                    "e": {
                        "kind": "DECISION",
                        "summary": "Coupure des accès VPN partenaires",
                        "body": "Décidé en cellule SI à 04h10.",
                        "cellId": cell["it"],
                    },
                },
            )
        )["addLogbookEntry"]
        assert added["author"] == "Inès Membre" and added["source"] == "manual"
        await gql(
            client,
            cell["member"].session,
            ADD,
            {
                "c": crisis,
                "e": {"kind": "FACT", "summary": "Dialyse : 12 patients à transférer", "cellId": cell["medical"]},
            },
        )
        decisions = await read_all(client, cell["member"], crisis, kinds=["DECISION"], text="vpn")
        assert [e["summary"] for e in decisions] == ["Coupure des accès VPN partenaires"]
        assert decisions[0]["body"] == "Décidé en cellule SI à 04h10."

        # The external liaison sees its own cell only, and cannot write elsewhere.
        seen = [e["summary"] for e in await read_all(client, cell["liaison"], crisis)]
        assert seen == ["Dialyse : 12 patients à transférer"]
        refused = await gql_raw(
            client,
            cell["liaison"].session,
            ADD,
            {"c": crisis, "e": {"kind": "FACT", "summary": "x", "cellId": cell["it"]}},
        )
        assert refused["errors"][0]["extensions"]["code"] == "forbidden"

        # Another tenant: refused, nothing leaks.
        for query, variables in (
            (PAGE, {"c": crisis, "first": 10}),
            (ADD, {"c": crisis, "e": {"kind": "FACT", "summary": "x"}}),
        ):
            body = await gql_raw(client, cell["outsider"].session, query, variables)
            assert body["errors"][0]["extensions"]["code"] == "forbidden"
            assert "VPN" not in json.dumps(body)

        bad = await gql_raw(client, cell["member"].session, ADD, {"c": crisis, "e": {"kind": "FACT", "summary": "  "}})
        assert bad["errors"][0]["extensions"]["code"] == "invalid"
        long = await gql_raw(
            client, cell["member"].session, ADD, {"c": crisis, "e": {"kind": "FACT", "summary": "x" * 501}}
        )
        assert long["errors"][0]["extensions"]["code"] == "invalid"


async def test_live_feed_delivers_new_entries_by_need_to_know(gateway: GatewayUnderTest, cell: dict[str, Any]) -> None:
    query = "subscription($c: ID!) { logbookEntries(crisisId: $c) { seq kind summary cellId author } }"
    crisis = cell["crisis"]
    async with (
        Subscription(gateway.url, cell["member"].session.access, query, {"c": crisis}) as member_feed,
        Subscription(gateway.url, cell["liaison"].session.access, query, {"c": crisis}) as liaison_feed,
        gateway.client() as client,
    ):
        await asyncio.sleep(0.3)
        await gql(
            client,
            cell["director"].session,
            ADD,
            {"c": crisis, "e": {"kind": "ACTION", "summary": "Cellule SI : restauration AD", "cellId": cell["it"]}},
        )
        await gql(
            client,
            cell["director"].session,
            ADD,
            {"c": crisis, "e": {"kind": "ACTION", "summary": "Transfert dialyse lancé", "cellId": cell["medical"]}},
        )
        got = [await member_feed.next_message(), await member_feed.next_message()]
        assert [m["payload"]["data"]["logbookEntries"]["summary"] for m in got] == [
            "Cellule SI : restauration AD",
            "Transfert dialyse lancé",
        ]
        first = await liaison_feed.next_message()
        assert first["payload"]["data"]["logbookEntries"]["summary"] == "Transfert dialyse lancé"


async def download(client: httpx.AsyncClient, account: Account, path: str) -> httpx.Response:
    return await client.get(path, headers={"Authorization": f"Bearer {account.session.access}"})


async def test_signed_exports_verify_offline(gateway: GatewayUnderTest, cell: dict[str, Any], tmp_path: Path) -> None:
    crisis = cell["crisis"]
    async with gateway.client() as client:
        await gql(
            client,
            cell["member"].session,
            ADD,
            {"c": crisis, "e": {"kind": "COMMUNICATION", "summary": "Communiqué de presse n°1 diffusé"}},
        )
        export = (await gql(client, cell["director"].session, EXPORT, {"c": crisis, "f": "JSON"}))["exportLogbook"]
        assert export["entries"] == export["treeSize"] >= 5
        response = await download(client, cell["director"], export["downloadPath"])
        assert response.status_code == 200
        assert response.headers["x-content-sha256"] == export["sha256"]
        bundle_path = tmp_path / "bundle.json"
        bundle_path.write_bytes(response.content)

        # Someone else's export: not theirs, whatever their role.
        for intruder in (cell["member"], cell["outsider"]):
            stolen = await download(client, intruder, export["downloadPath"])
            assert stolen.status_code == 404 and stolen.json()["error"]["code"] == "not_found"
        assert (await client.get(export["downloadPath"])).status_code == 401

        refused = await gql_raw(client, cell["member"].session, EXPORT, {"c": crisis, "f": "JSON"})
        assert refused["errors"][0]["extensions"]["code"] == "forbidden"

        pdf = (await gql(client, cell["director"].session, EXPORT, {"c": crisis, "f": "PDF"}))["exportLogbook"]
        pdf_file = await download(client, cell["director"], pdf["downloadPath"])
        assert pdf_file.status_code == 200 and pdf_file.content.startswith(b"%PDF")
        assert pdf_file.headers["content-type"] == "application/pdf"
        csv = (await gql(client, cell["director"].session, EXPORT, {"c": crisis, "f": "CSV"}))["exportLogbook"]
        csv_file = await download(client, cell["director"], csv["downloadPath"])
        assert "Communiqué de presse n°1 diffusé" in csv_file.content.decode("utf-8-sig")

    ok = subprocess.run(
        [sys.executable, "-m", "panicsafe.logbook.verify", str(bundle_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("OK")
    bundle = json.loads(bundle_path.read_text())
    bundle["entries"][2]["summary"] += "."
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(bundle, ensure_ascii=False))
    bad = subprocess.run(
        [sys.executable, "-m", "panicsafe.logbook.verify", str(tampered)], capture_output=True, text=True, check=False
    )
    assert bad.returncode == 1
    assert "entry 3" in bad.stdout + bad.stderr


async def test_export_needs_a_fresh_second_factor(gateway: GatewayUnderTest, cell: dict[str, Any]) -> None:
    director: Account = cell["director"]
    await gateway.admin_sql(
        "UPDATE gateway.sessions SET mfa_at = now() - interval '10 minutes' WHERE id = $1", director.session.session_id
    )
    async with gateway.client() as client:
        stale = await gql_raw(client, director.session, EXPORT, {"c": cell["crisis"], "f": "JSON"})
    assert stale["errors"][0]["extensions"]["code"] == "forbidden"
    assert "second facteur" in stale["errors"][0]["message"]


async def test_checkpoints_are_signed_automatically(gateway: GatewayUnderTest, cell: dict[str, Any]) -> None:
    """While entries arrive, the service signs a checkpoint at most every second, without being asked."""
    crisis = cell["crisis"]
    query = "query($c: ID!) { logbookCheckpoint(crisisId: $c) { treeSize rootHash signature publicKey issuedAt } }"
    async with gateway.client() as client:
        entry = {"kind": "FACT", "summary": "Relevé"}
        added = await gql(client, cell["member"].session, ADD, {"c": crisis, "e": entry})
        seq = added["addLogbookEntry"]["seq"]
        deadline = time.monotonic() + 10
        checkpoint = None
        while time.monotonic() < deadline:
            checkpoint = (await gql(client, cell["member"].session, query, {"c": crisis}))["logbookCheckpoint"]
            if checkpoint is not None and checkpoint["treeSize"] >= seq:
                break
            await asyncio.sleep(0.3)
        assert checkpoint is not None and checkpoint["treeSize"] >= seq
        assert len(bytes.fromhex(checkpoint["rootHash"])) == 32
        outsider = await gql_raw(client, cell["outsider"].session, query, {"c": crisis})
        assert outsider["errors"][0]["extensions"]["code"] == "forbidden"
