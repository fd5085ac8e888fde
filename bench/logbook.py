"""Logbook: sustained appends through the real service, with fsync on, beside raw inserts; bundle verification.

- Appends: `CLIENTS` concurrent clients call `rpc.logbook.append` (actor token, NATS request/reply,
  group commit, body sealed under the tenant key, RFC 6962 leaf and chain hashes) on one crisis for
  `SECONDS`; every reply is timed. PostgreSQL runs with `synchronous_commit=on` and NATS with
  `sync_interval: always`; meanwhile checkpoints are signed every second and the entries announced
  on the bus (notices through the outbox and JetStream) every 50 ms.
- Baseline: the raw single-row INSERT rate of the same PostgreSQL, one row per transaction, same
  number of concurrent clients (what a log that commits each entry alone could reach at best).
- Verification: a 1,000,000-entry signed bundle checked by `python -m panicsafe.logbook.verify`.

The clients call the logbook as the gateway does in production: over TLS, under the gateway's nkey
identity and permissions, with the replies on its private inbox. `PANICSAFE_BENCH_DURATION_S`,
`PANICSAFE_BENCH_WARMUP_S` and `PANICSAFE_BENCH_VERIFY_ENTRIES` shorten a smoke run.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import asyncpg
import uvloop

from bench.common import Figure, Result
from bench.logbook_verify import measure_verify
from bench.natsload import RawRequester, RawSender, header_block
from panicsafe.contracts import logbook
from panicsafe.contracts.actor import Actor, CrisisMembership
from panicsafe.contracts.catalog import GATEWAY
from panicsafe.contracts.events import LogbookKind
from panicsafe.contracts.logbook import AppendEntryRequest
from panicsafe.core.bus.connection import connect_nats
from panicsafe.core.bus.rpc import RpcClient, subject_for
from panicsafe.core.devstack import DevStack
from panicsafe.core.devstack.platform import Platform
from panicsafe.core.tokens import TokenSigner

CLIENTS = 32  # sustained rate
LATENCY_CLIENTS = 8  # latency at a moderate load
TARGET_RATE = 1000.0  # appends/s offered in open loop: the target's "1,000 appends/s with p99 under 10 ms"
SECONDS = float(os.environ.get("PANICSAFE_BENCH_DURATION_S", "15"))
WARMUP_S = float(os.environ.get("PANICSAFE_BENCH_WARMUP_S", "2"))
VERIFY_ENTRIES = int(os.environ.get("PANICSAFE_BENCH_VERIFY_ENTRIES", "1000000"))
# Who calls the logbook in production: the gateway (the only service allowed to, by the catalog).
CALLER = GATEWAY


def actor_tokens(signer: TokenSigner, tenant: str, crisis: str, count: int) -> list[str]:
    """Tokens of `count` members of one crisis, as the gateway would sign them for the logbook."""
    return [
        signer.issue(
            Actor(
                subject=str(uuid.uuid4()),
                tenant=tenant,
                name=f"Agent {i}",
                memberships=[CrisisMembership(crisis=crisis, roles=["member"])],
            ),
            audience="panicsafe.logbook",
        )
        for i in range(count)
    ]


def append_request(crisis: str) -> AppendEntryRequest:
    return AppendEntryRequest(
        crisis=crisis,
        kind=LogbookKind.FACT,
        summary="Point de situation : 42 postes isolés, messagerie indisponible",
        body="Constat de la cellule SI, relevé à la main sur le poste de garde.",
    )


async def appends(platform: Platform, clients: int = CLIENTS) -> tuple[int, float, list[float]]:
    tenant, crisis = str(uuid.uuid4()), str(uuid.uuid4())
    signer = TokenSigner(platform.signing_key, ttl_s=300)
    nc = await connect_nats(platform.stack.nats.url, "bench-logbook", platform.stack.nats.credentials(CALLER))
    rpc = RpcClient(nc, timeout=10.0)
    latencies: list[float] = []
    count = 0
    try:
        tokens = actor_tokens(signer, tenant, crisis, clients)
        request = append_request(crisis)

        async def client(token: str, until: float, record: bool) -> None:
            nonlocal count
            while time.perf_counter() < until:
                started = time.perf_counter()
                await rpc.call(logbook.APPEND, request, token=token)
                if record:
                    latencies.append((time.perf_counter() - started) * 1000)
                    count += 1

        warm = time.perf_counter() + WARMUP_S
        await asyncio.gather(*(client(t, warm, False) for t in tokens))
        started = time.perf_counter()
        await asyncio.gather(*(client(t, started + SECONDS, True) for t in tokens))
        elapsed = time.perf_counter() - started
    finally:
        await nc.close()
    return count, elapsed, latencies


async def paced(platform: Platform, rate: float = TARGET_RATE, seconds: float = SECONDS) -> tuple[float, list[float]]:
    """Open loop: one append every 1/`rate` s on schedule, whatever the replies do (no coordinated
    omission: a late request is timed from when it should have left). Returns the rate achieved and
    every latency, in ms.

    The generator stays lean, since it shares the two cores with what it measures: the request is
    encoded once, sent by the raw protocol driver (`bench.natsload`) without a task per request, and
    a reply is only checked for success, not parsed. The schedule is kept by a thread (`time.sleep`
    wakes within tens of microseconds), not by the event loop: uvloop's timers count whole
    milliseconds and fire a shorter sleep at once, so pacing on them spins the loop between sends,
    a core's worth of busy waiting taken from the service measured. That thread also sends each
    request itself (`RawSender`, a socket of its own); the event loop only reads the replies."""
    tenant, crisis = str(uuid.uuid4()), str(uuid.uuid4())
    signer = TokenSigner(platform.signing_key, ttl_s=300)
    tokens = actor_tokens(signer, tenant, crisis, 16)
    payload = append_request(crisis).model_dump_json().encode()
    headers = [header_block({"Authorization": f"Bearer {token}"}) for token in tokens]
    subject = subject_for("logbook", "append")
    latencies: list[float] = []
    refused: list[bytes] = []
    credentials = platform.stack.nats.credentials(CALLER)
    requester = await RawRequester.connect(platform.stack.nats.url, credentials)
    sender = await asyncio.to_thread(RawSender.connect, platform.stack.nats.url, requester, credentials)

    def timed(due: float, record: bool) -> Callable[[bytes, float], None]:
        def done(reply: bytes, at: float) -> None:
            if not reply.startswith(b'{"ok":true'):
                refused.append(reply[:200])
            elif record:
                latencies.append((at - due) * 1000)

        return done

    try:
        for duration, record in ((WARMUP_S, False), (seconds, True)):
            start = time.perf_counter()
            total = int(duration * rate)

            def keep_schedule(start: float = start, total: int = total, record: bool = record) -> None:
                for n in range(total):
                    due = start + n / rate
                    ahead = due - time.perf_counter()
                    if ahead > 0:
                        time.sleep(ahead)
                    # Timed from `due`, however late it leaves.
                    sender.request(subject, payload, headers[n % len(headers)], timed(due, record))

            await asyncio.to_thread(keep_schedule)
            await requester.drain(timeout=10.0)
            elapsed = time.perf_counter() - start
            if requester.outstanding or refused:
                raise RuntimeError(f"{requester.outstanding} appends unanswered, refused: {refused[:1]!r}")
    finally:
        sender.close()
        await requester.close()
    return total / elapsed, latencies


async def settle(admin_dsn: str) -> None:
    """Between phases, as pgbench does before a run: vacuum and checkpoint, so that one phase's
    leftovers (dead outbox rows, autovacuum of tables that grew by tens of thousands of rows, dirty
    buffers) are not paid during the next one's measurement."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute("VACUUM (ANALYZE)")
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()
    await asyncio.sleep(1.0)


async def raw_inserts(admin_dsn: str) -> float:
    """Rows per second, one INSERT per transaction, CLIENTS connections, synchronous_commit on."""
    setup = await asyncpg.connect(admin_dsn)
    await setup.execute("CREATE TABLE IF NOT EXISTS bench_raw (id bigserial PRIMARY KEY, crisis uuid, summary text)")
    await setup.close()
    pool = await asyncpg.create_pool(admin_dsn, min_size=CLIENTS, max_size=CLIENTS)
    assert pool is not None
    crisis = uuid.uuid4()
    count = 0

    async def client(until: float) -> None:
        nonlocal count
        async with pool.acquire() as conn:
            while time.perf_counter() < until:
                await conn.execute("INSERT INTO bench_raw (crisis, summary) VALUES ($1, $2)", crisis, "x" * 60)
                count += 1

    try:
        async with pool.acquire() as conn:
            assert await conn.fetchval("SHOW synchronous_commit") == "on"
        started = time.perf_counter()
        await asyncio.gather(*(client(started + SECONDS) for _ in range(CLIENTS)))
        return count / (time.perf_counter() - started)
    finally:
        await pool.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> Result:
    result = Result("logbook")
    with tempfile.TemporaryDirectory(prefix="panicsafe-bench-") as folder:
        stack = DevStack(Path(folder) / "stack", components=("nats", "postgres", "openbao", "s3")).start()
        platform = Platform(stack, Path(folder) / "platform", services=("logbook",))
        try:
            asyncio.run(platform.start())
            # The clients run on uvloop too, as the services and the gateway do: a client's own loop
            # delay is counted in every latency it measures.
            admin = stack.postgres.admin_dsn
            count, elapsed, latencies = uvloop.run(appends(platform))
            uvloop.run(settle(admin))
            _, _, moderate = uvloop.run(appends(platform, LATENCY_CLIENTS))
            uvloop.run(settle(admin))
            offered, at_target = uvloop.run(paced(platform))
            uvloop.run(settle(admin))
            raw = uvloop.run(raw_inserts(admin))
        finally:
            platform.stop()
            stack.stop()
    rate = count / elapsed
    p50, p99 = statistics.median(latencies), percentile(latencies, 0.99)
    result.add(
        Figure("appends_per_s", rate, "1/s", target=">= 1000", baseline=("raw_insert_per_s", raw), met=rate >= 1000)
    )
    # At saturation (32 closed-loop clients, several times the target rate) latency is queueing
    # (Little's law): reported, not held to the target, which is p99 at 1,000 appends/s (below).
    result.add(Figure("append_p50_ms", p50, "ms"))
    result.add(Figure("append_p99_ms", p99, "ms"))
    low50, low99 = statistics.median(moderate), percentile(moderate, 0.99)
    result.add(Figure(f"append_p50_ms_{LATENCY_CLIENTS}_clients", low50, "ms"))
    result.add(Figure(f"append_p99_ms_{LATENCY_CLIENTS}_clients", low99, "ms", target="< 10", met=low99 < 10))
    at50, at99 = statistics.median(at_target), percentile(at_target, 0.99)
    result.add(
        Figure("paced_rate_per_s", offered, "1/s", target=f">= {TARGET_RATE:.0f}", met=offered >= 0.98 * TARGET_RATE)
    )
    result.add(Figure("append_p50_ms_at_1000_per_s", at50, "ms"))
    result.add(Figure("append_p99_ms_at_1000_per_s", at99, "ms", target="< 10", met=at99 < 10))
    verify = measure_verify(VERIFY_ENTRIES)
    result.add(Figure("verify_1m_entries_s", verify["verify_s"], "s"))
    result.add(Figure("verify_entries_per_s", verify["verify_entries_per_s"], "1/s"))
    result.notes += [
        f"rate, p50 and p99: {CLIENTS} concurrent clients over NATS RPC for {SECONDS:.0f} s "
        f"after {WARMUP_S:.0f} s of warm-up, "
        "one crisis; the clients, the logbook service, PostgreSQL, NATS and OpenBao share the machine's cores",
        f"the clients connect as the {CALLER} does: TLS, its nkey identity, its permissions and private inbox",
        f"the *_{LATENCY_CLIENTS}_clients figures: the same with {LATENCY_CLIENTS} clients",
        f"the *_at_1000_per_s figures: open loop, one append every {1000 / TARGET_RATE:.1f} ms on schedule for "
        f"{SECONDS:.0f} s (16 actors), each timed from when it was due: latency at the target rate, not at "
        "saturation (closed-loop clients measure queueing: at 32 of them, Little's law puts p50 near 32/rate)",
        "baseline: single-row INSERT, one per transaction, same PostgreSQL, same concurrency",
        "between phases the database is vacuumed and checkpointed (as pgbench does before a run)",
        f"verification: {verify['entries']} entries, bundle {verify['bundle_mb']:.0f} MB, verifier peak RSS "
        f"{verify['verify_peak_rss_mb']:.0f} MB, load before {verify['load_before']:.2f}",
    ]
    return result
