"""Automatic writing survives crashes: 5,000 events, the logbook service SIGKILLed, NATS restarted.

The logbook service runs as a real process on a devstack of its own (this test restarts NATS).
Every event with a logbook part must end up in the main courante exactly once, in one gap-free order.
"""

from __future__ import annotations

import asyncio
import contextlib
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
