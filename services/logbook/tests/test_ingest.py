"""Automatic writing survives crashes: 5,000 events, the logbook service SIGKILLed, NATS restarted.

The logbook service runs as a real process on a devstack of its own (this test restarts NATS).
Every event with a logbook part must end up in the main courante exactly once, in one gap-free order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
import uuid
from pathlib import Path

import asyncpg
import pytest

from panicsafe.contracts.events import CloudEvent, LogbookKind, LogbookPart
from panicsafe.core.bus.connection import connect_nats
from panicsafe.core.bus.events import publish_event
from panicsafe.core.devstack import DevStack
from panicsafe.core.devstack.platform import Platform

TOTAL = 5000
PUBLISHERS = 8


@pytest.mark.slow
async def test_every_event_is_written_exactly_once_across_crashes(tmp_path: Path) -> None:
    stack = DevStack(tmp_path / "stack", components=("nats", "postgres", "openbao", "s3")).start()
    platform = Platform(stack, tmp_path / "platform", services=("logbook",))
    try:
        await platform.start()
        tenant, crisis = str(uuid.uuid4()), str(uuid.uuid4())
        # The events' owner publishes them, with its own bus identity (the stream is the platform's).
        nc = await connect_nats(stack.nats.url, "pytest-publisher", stack.nats.credentials("sara"))
        js = nc.jetstream()
        published: list[str] = []
        next_n = 0

        async def publisher() -> None:
            nonlocal next_n
            while next_n < TOTAL:
                n = next_n
                next_n += 1
                event = CloudEvent(
                    source="panicsafe/sara",
                    type="fr.panicsafe.sara.fact_recorded",
                    tenantid=tenant,
                    crisisid=crisis,
                    data={"n": n},
                    logbook=LogbookPart(kind=LogbookKind.FACT, summary=f"Fait n° {n}"),
                )
                while True:  # a publish is retried until acknowledged (Nats-Msg-Id deduplicates)
                    try:
                        await publish_event(js, event, timeout=2.0)
                        break
                    except Exception:  # noqa: BLE001 (NATS is down on purpose)
                        await asyncio.sleep(0.1)
                published.append(event.id)

        async def chaos() -> None:
            while len(published) < TOTAL // 3:
                await asyncio.sleep(0.01)
            process = platform.processes["logbook"].process
            os.killpg(process.pid, signal.SIGKILL)  # the service dies mid-batch
            process.wait(10)
            while len(published) < TOTAL // 2:
                await asyncio.sleep(0.01)
            await asyncio.to_thread(stack.restart, "nats", crash=True, down_s=0.5)
            platform.spawn("logbook")

        await asyncio.gather(chaos(), *(publisher() for _ in range(PUBLISHERS)))
        assert len(set(published)) == TOTAL

        admin = await asyncpg.connect(stack.postgres.admin_dsn)
        try:
            deadline = time.monotonic() + 180
            count = 0
            while time.monotonic() < deadline:
                count = await admin.fetchval("SELECT count(*) FROM logbook.entries WHERE crisis_id = $1", crisis)
                if count >= TOTAL:
                    break
                await asyncio.sleep(0.5)
            await asyncio.sleep(1.0)  # anything late would show as a duplicate below
            rows = await admin.fetch(
                "SELECT seq, event_id::text AS event_id, summary FROM logbook.entries WHERE crisis_id = $1 "
                "ORDER BY seq",
                crisis,
            )
        finally:
            await admin.close()
        assert len(rows) == TOTAL, f"{len(rows)} entries for {TOTAL} events"
        assert [r["seq"] for r in rows] == list(range(1, TOTAL + 1))
        assert sorted(r["event_id"] for r in rows) == sorted(published)
        assert {r["summary"] for r in rows} == {f"Fait n° {n}" for n in range(TOTAL)}
        await nc.close()
    finally:
        with contextlib.suppress(Exception):
            platform.stop()
        stack.stop()


async def test_an_event_its_subject_contradicts_never_becomes_an_entry(tmp_path: Path) -> None:
    """Issue 15's forged decision: published on a subject its body contradicts, it is dead-lettered.

    The publisher holds the test harness's credentials, so NATS lets it publish anywhere under `evt.>`
    (a service's own credentials would confine it to its own subjects): only the consumer's check stands
    between a forged event and the signed main courante.
    """
    stack = DevStack(tmp_path / "stack", components=("nats", "postgres", "openbao", "s3"), harness=True).start()
    platform = Platform(stack, tmp_path / "platform", services=("logbook",))
    try:
        await platform.start()
        tenant, crisis = str(uuid.uuid4()), str(uuid.uuid4())
        other_tenant, other_crisis = str(uuid.uuid4()), str(uuid.uuid4())
        nc = await connect_nats(stack.nats.url, "pytest-forger", stack.nats.credentials("harness"))
        js = nc.jetstream()  # the stream exists: the platform provisioned it

        def decision(service: str, tenant_id: str, crisis_id: str) -> CloudEvent:
            return CloudEvent(
                source=f"panicsafe/{service}",
                type=f"fr.panicsafe.{service}.crisis_updated",
                tenantid=tenant_id,
                crisisid=crisis_id,
                logbook=LogbookPart(kind=LogbookKind.DECISION, summary="Décision : évacuation générale annulée"),
            )

        on = f"evt.{tenant}.{crisis}"
        gateway_on_chat = decision("gateway", tenant, crisis)
        other_tenants = decision("gateway", other_tenant, crisis)
        other_crisis_event = decision("gateway", tenant, other_crisis)
        chat_on_gateway = decision("chat", tenant, crisis)
        foreign_type = {**json.loads(gateway_on_chat.model_dump_json()), "source": "panicsafe/chat"}
        foreign_type["id"] = str(uuid.uuid4())
        forged = [
            (f"{on}.chat.crisis_updated", gateway_on_chat.model_dump_json().encode(), "source_mismatch"),
            (f"{on}.gateway.crisis_updated", chat_on_gateway.model_dump_json().encode(), "source_mismatch"),
            (f"{on}.gateway.crisis_updated", other_tenants.model_dump_json().encode(), "tenant_mismatch"),
            (f"{on}.gateway.crisis_updated", other_crisis_event.model_dump_json().encode(), "crisis_mismatch"),
            (f"{on}.chat.crisis_updated", json.dumps(foreign_type).encode(), "malformed"),
        ]
        for subject, payload, _ in forged:
            await js.publish(subject, payload, headers={"Nats-Msg-Id": str(uuid.uuid4())})
        genuine = CloudEvent(
            source="panicsafe/sara",
            type="fr.panicsafe.sara.fact_recorded",
            tenantid=tenant,
            crisisid=crisis,
            logbook=LogbookPart(kind=LogbookKind.FACT, summary="Fait authentique"),
        )
        await publish_event(js, genuine)  # after the forgeries: once it is written, they were seen
        await nc.close()

        admin = await asyncpg.connect(stack.postgres.admin_dsn)
        try:
            deadline = time.monotonic() + 60
            while not await admin.fetchval("SELECT count(*) FROM logbook.entries WHERE event_id = $1", genuine.id):
                assert time.monotonic() < deadline, "the genuine event was never written"
                await asyncio.sleep(0.2)
            entries = await admin.fetch(
                "SELECT event_id::text AS event_id, summary FROM logbook.entries "
                "WHERE tenant_id = ANY($1::uuid[]) OR crisis_id = ANY($2::uuid[])",
                [tenant, other_tenant],
                [crisis, other_crisis],
            )
            letters = await admin.fetch(
                "SELECT consumer, subject, payload, reason FROM logbook.dead_letters ORDER BY stream_seq"
            )
        finally:
            await admin.close()
        assert [(r["event_id"], r["summary"]) for r in entries] == [(genuine.id, "Fait authentique")]
        assert [(r["subject"], bytes(r["payload"]), r["reason"]) for r in letters] == forged
        assert {r["consumer"] for r in letters} == {"logbook-writer"}
    finally:
        with contextlib.suppress(Exception):
            platform.stop()
        stack.stop()
