"""The main courante's core against real PostgreSQL and OpenBao: order, proofs, append-only, need-to-know.

Proofs are checked here by a verifier written from RFC 9162 §2.1.3.2 and §2.1.4.2, independent of
`panicsafe.logbook.evidence.merkle`; signatures with `cryptography` and the public key from OpenBao.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from lbhelpers import LogbookUnderTest, member

from panicsafe.contracts.actor import Actor
from panicsafe.contracts.errors import ErrorCode
from panicsafe.contracts.events import CloudEvent, LogbookKind, LogbookPart, Mode
from panicsafe.contracts.logbook import (
    ENTRIES_RECORDED,
    AppendEntryRequest,
    ConsistencyProofRequest,
    ExportFormat,
    ExportRequest,
    InclusionProofRequest,
    ListEntriesRequest,
    LogRef,
    journal_of,
)
from panicsafe.core.errors import ServiceError
from panicsafe.logbook import store
from panicsafe.logbook.core import LogbookCore
from panicsafe.logbook.evidence.leaf import checkpoint_message, format_time
from panicsafe.logbook.exports import build_bundle
from panicsafe.logbook.store import Draft
from panicsafe.logbook.verify import verify_bundle

PRODUCERS = 50
PER_PRODUCER = 10


# -- an independent RFC 6962 / RFC 9162 verifier ----------------------------------------------------


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def rfc_verify_inclusion(leaf: bytes, index: int, size: int, path: list[bytes], root: bytes) -> bool:
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _node(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def rfc_root(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) of RFC 6962 §2.1, recursively, from the leaf hashes."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return _node(rfc_root(leaves[:k]), rfc_root(leaves[k:]))


def rfc_verify_consistency(m: int, n: int, root_m: bytes, root_n: bytes, path: list[bytes]) -> bool:
    if m == n:
        return root_m == root_n and not path
    if m == 0 or m > n or not path:
        return False
    if m & (m - 1) == 0:  # m a power of two: its root starts the path
        path = [root_m, *path]
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = _node(c, fr), _node(c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _node(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == root_m and sr == root_n


# -- helpers -------------------------------------------------------------------------------------------


def entry(crisis: str, summary: str, **extra: object) -> AppendEntryRequest:
    return AppendEntryRequest(crisis=crisis, kind=LogbookKind.FACT, summary=summary, body=f"corps {summary}", **extra)


async def codes_of(call: object) -> ErrorCode:
    with pytest.raises(ServiceError) as caught:
        await call  # type: ignore[misc]
    return caught.value.code


# -- tests ---------------------------------------------------------------------------------------------


async def test_fifty_concurrent_producers_get_one_gap_free_order_and_every_proof_verifies(
    logbook: LogbookUnderTest,
) -> None:
    tenant, crisis = str(uuid.uuid4()), str(uuid.uuid4())
    core = logbook.core
    actors = [member(tenant, crisis, name=f"Producteur {i}") for i in range(PRODUCERS)]

    async def produce(i: int) -> list[int]:
        seqs = []
        for j in range(PER_PRODUCER):
            view = await core.append_manual(actors[i], entry(crisis, f"p{i}-e{j}"))
            seqs.append(view.seq)
        return seqs

    results = await asyncio.gather(*(produce(i) for i in range(PRODUCERS)))
    total = PRODUCERS * PER_PRODUCER
    assert sorted(s for seqs in results for s in seqs) == list(range(1, total + 1))
    for seqs in results:  # each producer's own entries keep their order
        assert seqs == sorted(seqs)

    checkpoint = await core.checkpoint(tenant, (crisis, "real"))
    assert checkpoint is not None and checkpoint.tree_size == total
    public = Ed25519PublicKey.from_public_bytes(await core.signer.public_key(tenant, checkpoint.key_version))
    public.verify(
        checkpoint.signature,
        checkpoint_message(
            tenant, crisis, total, checkpoint.root_hash.hex(), checkpoint.chain_head.hex(), checkpoint.issued_at
        ),
    )

    reader = actors[0]
    pages, after = [], 0
    while True:
        page = await core.list_entries(reader, ListEntriesRequest(crisis=crisis, after=after, first=200))
        pages += page.entries
        if not page.has_more:
            break
        after = page.entries[-1].seq
    assert [e.seq for e in pages] == list(range(1, total + 1))
    assert {e.summary for e in pages} == {f"p{i}-e{j}" for i in range(PRODUCERS) for j in range(PER_PRODUCER)}
    chain = bytes(32)
    for e in pages:  # the hash chain, recomputed from the stored leaf hashes
        chain = hashlib.sha256(chain + bytes.fromhex(e.leaf_hash)).digest()
        assert chain.hex() == e.chain_hash
    assert chain == checkpoint.chain_head

    for seq in (1, 2, 3, 64, 65, 255, 256, 257, total - 1, total):
        proof = await core.inclusion_proof(reader, InclusionProofRequest(crisis=crisis, seq=seq))
        assert proof.root_hash == checkpoint.root_hash.hex()
        path = [bytes.fromhex(h) for h in proof.path]
        assert rfc_verify_inclusion(bytes.fromhex(proof.leaf_hash), seq - 1, total, path, checkpoint.root_hash)
        if path:  # a flipped byte anywhere in the path breaks it
            bad = [path[0][:5] + bytes([path[0][5] ^ 1]) + path[0][6:], *path[1:]]
            assert not rfc_verify_inclusion(bytes.fromhex(proof.leaf_hash), seq - 1, total, bad, checkpoint.root_hash)
    for m in (1, 7, 64, 100, 333, total):
        proof = await core.consistency_proof(reader, ConsistencyProofRequest(crisis=crisis, from_size=m, to_size=total))
        path = [bytes.fromhex(h) for h in proof.path]
        assert rfc_verify_consistency(m, total, bytes.fromhex(proof.from_root), checkpoint.root_hash, path)
        assert not rfc_verify_consistency(m, total, bytes(32), checkpoint.root_hash, path) or m == total

    bundle = await build_bundle(
        core, reader_lead(tenant, crisis), ExportRequest(crisis=crisis, format=ExportFormat.JSON, title="Test")
    )
    assert verify_bundle(bundle).ok


async def test_logs_appended_together_each_keep_their_own_gap_free_order(logbook: LogbookUnderTest) -> None:
    """Appends to several logs at once (two organisations, a crisis's real and exercise logs) share
    the writer's batches, one statement per log: each log still numbers and chains its own."""
    tenants = [str(uuid.uuid4()) for _ in range(2)]
    crises = [str(uuid.uuid4()) for _ in range(2)]
    logs = [
        (tenants[0], crises[0], Mode.REAL),
        (tenants[0], crises[0], Mode.EXERCISE),
        (tenants[1], crises[1], Mode.REAL),
    ]

    async def produce(i: int) -> list[tuple[int, int]]:
        out = []
        for j in range(8):
            log_index = (i + j) % len(logs)
            tenant, crisis, mode = logs[log_index]
            view = await logbook.core.append_manual(member(tenant, crisis), entry(crisis, f"{i}-{j}", mode=mode))
            out.append((log_index, view.seq))
        return out

    results = [pair for part in await asyncio.gather(*(produce(i) for i in range(12))) for pair in part]
    for index, (tenant, crisis, mode) in enumerate(logs):
        seqs = sorted(seq for log_index, seq in results if log_index == index)
        assert seqs == list(range(1, len(seqs) + 1))
        page = await logbook.core.list_entries(
            member(tenant, crisis), ListEntriesRequest(crisis=crisis, mode=mode, first=100)
        )
        chain = bytes(32)
        for e in page.entries:
            chain = hashlib.sha256(chain + bytes.fromhex(e.leaf_hash)).digest()
            assert chain.hex() == e.chain_hash
        assert len(page.entries) == len(seqs)


async def test_replicas_with_stale_heads_still_write_one_gap_free_chain(logbook: LogbookUnderTest) -> None:
    """Three cores on one database (replicas), each starting from the head it last saw: most of their
    guesses are wrong, none may cost an entry, a gap or a broken chain. One of them first saw a head
    that never committed (a consumer transaction written and then rolled back)."""
    tenant, crisis = str(uuid.uuid4()), str(uuid.uuid4())
    replicas = [logbook.core] + [LogbookCore(logbook.db, logbook.core.cipher, logbook.core.signer) for _ in range(2)]
    for replica in replicas[1:]:
        replica.start()
    try:
        await replicas[1].append_manual(member(tenant, crisis), entry(crisis, "avant"))
        event = CloudEvent(
            source="panicsafe/gateway",
            type="fr.panicsafe.gateway.cell_created",
            tenantid=tenant,
            crisisid=crisis,
            logbook=LogbookPart(kind=LogbookKind.SYSTEM, summary="Cellule créée puis annulée"),
        )

        async def ingest_then_fail() -> None:
            async with logbook.db.tenant(tenant) as conn:
                await replicas[1].ingest(conn, event)
                raise RuntimeError("the consumer's batch failed after writing")

        with pytest.raises(RuntimeError):
            await ingest_then_fail()
        assert replicas[1].heads.get((crisis, "real"))[0] == 2  # a head that never committed

        actors = [member(tenant, crisis, name=f"Producteur {i}") for i in range(15)]

        async def produce(i: int) -> list[int]:
            return [
                (await replicas[(i + j) % 3].append_manual(actors[i], entry(crisis, f"r{i}-{j}"))).seq
                for j in range(13)
            ]

        results = await asyncio.gather(*(produce(i) for i in range(15)))
    finally:
        for replica in replicas[1:]:
            await replica.stop()
    total = 1 + 15 * 13
    assert sorted(s for seqs in results for s in seqs) == list(range(2, total + 1))
    page = await logbook.core.list_entries(actors[0], ListEntriesRequest(crisis=crisis, first=200))
    assert [e.seq for e in page.entries] == list(range(1, total + 1))
    assert "Cellule créée puis annulée" not in {e.summary for e in page.entries}
    chain = bytes(32)
    for e in page.entries:
        chain = hashlib.sha256(chain + bytes.fromhex(e.leaf_hash)).digest()
        assert chain.hex() == e.chain_hash
    bundle = await build_bundle(
        logbook.core, reader_lead(tenant, crisis), ExportRequest(crisis=crisis, format=ExportFormat.JSON, title="T")
    )
    assert verify_bundle(bundle).ok


async def test_the_append_statement_refuses_entries_that_do_not_follow_the_head(logbook: LogbookUnderTest) -> None:
    """`append_entries` checks what the writer computed: a batch with a gap, an empty one, or one sent
    in a transaction scoped to another tenant is refused and nothing is written; the same batch with
    its places right is written."""
    tenant, crisis = str(uuid.uuid4()), str(uuid.uuid4())
    key = (crisis, "real")
    await logbook.core.append_manual(member(tenant, crisis), entry(crisis, "premier"))
    size, head = logbook.core.heads.get(key)
    now = datetime.now(UTC)
    drafts = [
        Draft(
            tenant=tenant,
            crisis=crisis,
            mode=Mode.REAL,
            kind=LogbookKind.FACT,
            summary=f"écrite à la main {i}",
            body="",
            body_sealed=b"",
            occurred_at=now,
            author_id=None,
            author_label="Test",
            source="manual",
        )
        for i in range(2)
    ]
    placed = store._place(key, drafts, size, head, now, format_time(now))
    args = store._append_args(key, drafts, placed, size, head, now)
    seqs = args[7]
    assert seqs == [size + 1, size + 2]
    gap = [*args[:7], [size + 1, size + 3], *args[8:]]
    empty = args[:6] + [[] for _ in args[6:]]

    async with logbook.db.autocommit() as conn:
        for batch in (gap, empty):
            with pytest.raises(asyncpg.InvalidParameterValueError, match="without a gap"):
                await conn.fetchrow(store.APPEND, *batch)
    with pytest.raises(asyncpg.RaiseError, match="scoped to another tenant"):
        async with logbook.db.tenant(str(uuid.uuid4())) as conn:
            await conn.fetchrow(store.APPEND, *args)
    async with logbook.db.tenant(tenant) as conn:
        assert await store.head(conn, key) == (size, head)
    async with logbook.db.autocommit() as conn:
        written = await conn.fetchrow(store.APPEND, *args)
    assert written is not None and written["applied"] and written["size"] == size + 2
    page = await logbook.core.list_entries(member(tenant, crisis), ListEntriesRequest(crisis=crisis))
    assert [e.summary for e in page.entries] == ["premier", "écrite à la main 0", "écrite à la main 1"]
    assert [e.leaf_hash for e in page.entries[1:]] == [p.leaf_hash.hex() for p in placed]


async def outbox_rows(logbook: LogbookUnderTest) -> list[asyncpg.Record]:
    """Every queued event, every tenant's, in outbox order: read as the database's administrator,
    since the service's own role sees only its transaction's tenant there (row-level security)."""
    conn = await asyncpg.connect(logbook.admin_dsn)
    try:
        return await conn.fetch(f"SELECT subject, payload FROM {logbook.roles.schema}.outbox ORDER BY seq")
    finally:
        await conn.close()


async def notices_of(logbook: LogbookUnderTest, crisis: str) -> list[list[int]]:
    """The seqs of each notice queued for `crisis`, in outbox order."""
    rows = await outbox_rows(logbook)
    out = []
    for row in rows:
        event = CloudEvent.model_validate_json(bytes(row["payload"]))
        if event.crisisid == crisis and ENTRIES_RECORDED.matches(event):
            assert row["subject"] == event.nats_subject
            out.append([e.seq for e in ENTRIES_RECORDED.parse(event).entries])  # the declared payload
    return out


async def test_every_entry_is_announced_once_in_order_whichever_replica_announces(
    logbook: LogbookUnderTest,
) -> None:
    """Two replicas append to one log and both announce, again and again, while the appends go on;
    an announcement rolled back (a crash before its commit) announces nothing. Every entry ends in
    exactly one notice, notices in order, each a run of consecutive entries without their bodies."""
    tenant, crisis = str(uuid.uuid4()), str(uuid.uuid4())
    replicas = [logbook.core, LogbookCore(logbook.db, logbook.core.cipher, logbook.core.signer)]
    replicas[1].start()
    try:
        await replicas[0].append_manual(member(tenant, crisis), entry(crisis, "premier"))

        async def announce_then_crash() -> None:
            async with logbook.db.tenant(tenant) as conn:
                assert await store.announce(conn, tenant, (crisis, "real")) == 1
                raise RuntimeError("crashed before the commit")

        with pytest.raises(RuntimeError):
            await announce_then_crash()
        assert await notices_of(logbook, crisis) == []

        async def produce(i: int) -> None:
            for j in range(10):
                await replicas[i % 2].append_manual(member(tenant, crisis), entry(crisis, f"p{i}-{j}"))

        async def announce(replica: LogbookCore) -> None:
            for _ in range(15):
                await replica.announce_pending()
                await asyncio.sleep(0.005)

        await asyncio.gather(*(produce(i) for i in range(6)), *(announce(r) for r in replicas))
        for replica in replicas:
            await replica.announce_pending()
    finally:
        await replicas[1].stop()
    notices = await notices_of(logbook, crisis)
    assert [seq for notice in notices for seq in notice] == list(range(1, 62))
    assert all(notice == list(range(notice[0], notice[0] + len(notice))) for notice in notices)
    payloads = [bytes(r["payload"]) for r in await outbox_rows(logbook)]
    assert not any(b"corps " in payload for payload in payloads)  # bodies never leave in a notice


async def test_an_announcer_waits_for_the_one_announcing_the_same_log(logbook: LogbookUnderTest) -> None:
    """Two announcers on one log at once (replicas): the second waits for the first's transaction,
    then finds nothing left to announce."""
    tenant, crisis = str(uuid.uuid4()), str(uuid.uuid4())
    await logbook.core.append_manual(member(tenant, crisis), entry(crisis, "premier"))
    async with logbook.db.tenant(tenant) as conn:
        assert await store.announce(conn, tenant, (crisis, "real")) == 1
    for i in range(3):
        await logbook.core.append_manual(member(tenant, crisis), entry(crisis, f"e{i}"))
    announced, release = asyncio.Event(), asyncio.Event()

    async def announcer(hold: bool) -> int:
        async with logbook.db.tenant(tenant) as conn:
            count = await store.announce(conn, tenant, (crisis, "real"))
            if hold:
                announced.set()
                await release.wait()
            return count

    first = asyncio.create_task(announcer(hold=True))
    await announced.wait()
    second = asyncio.create_task(announcer(hold=False))
    await asyncio.sleep(0.3)
    assert not second.done()  # waiting on the first's lock
    release.set()
    assert (await first, await second) == (3, 0)
    assert await notices_of(logbook, crisis) == [[1], [2, 3, 4]]


async def test_the_announcer_wakes_on_an_append(logbook: LogbookUnderTest) -> None:
    """Running, the announcer sleeps until an append (here longer than the test could wait), then
    announces after its interval, the appends of that interval together."""
    tenant, crisis = str(uuid.uuid4()), str(uuid.uuid4())
    core = LogbookCore(logbook.db, logbook.core.cipher, logbook.core.signer)
    core.start()
    await core.announce_pending()  # what other tests left
    announcer = asyncio.create_task(core.run_announcer(interval_s=0.2, idle_s=600))
    try:
        await asyncio.sleep(0.1)
        await asyncio.gather(*(core.append_manual(member(tenant, crisis), entry(crisis, f"e{i}")) for i in range(5)))
        for _ in range(100):
            if await notices_of(logbook, crisis):
                break
            await asyncio.sleep(0.05)
        assert await notices_of(logbook, crisis) == [[1, 2, 3, 4, 5]]
    finally:
        await core.stop()
        await announcer
    assert announcer.done()


async def test_under_steady_appends_the_writer_waits_for_the_next_one_to_share_a_commit(
    logbook: LogbookUnderTest,
) -> None:
    """Group commit's gathering, made visible by a window of 30 s instead of 1 ms. The first append
    of a quiet log is written at once. One that follows it closely waits, alone, for the next, and
    both share one statement (one `recorded_at`). Stopping the service writes a waiting one at once."""
    tenant, crisis = str(uuid.uuid4()), str(uuid.uuid4())
    core = LogbookCore(logbook.db, logbook.core.cipher, logbook.core.signer)
    core.writer.gather_s = 30.0
    core.start()
    actor = member(tenant, crisis)
    try:
        first = await asyncio.wait_for(core.append_manual(actor, entry(crisis, "a")), 10)
        second = asyncio.create_task(core.append_manual(actor, entry(crisis, "b")))
        await asyncio.sleep(0.3)
        assert not second.done()  # waiting for a companion
        third = await asyncio.wait_for(core.append_manual(actor, entry(crisis, "c")), 10)
        second_view = await second
        assert (first.seq, second_view.seq, third.seq) == (1, 2, 3)
        assert second_view.recorded_at == third.recorded_at != first.recorded_at
        fourth = asyncio.create_task(core.append_manual(actor, entry(crisis, "d")))
        await asyncio.sleep(0.3)
        assert not fourth.done()
    finally:
        await asyncio.wait_for(core.stop(), 10)
    assert (await fourth).seq == 4


async def test_committed_entries_extend_the_cached_tree_in_order(logbook: LogbookUnderTest) -> None:
    """The writer hands each committed batch to the cached Merkle tree (no second's worth of leaves
    to read back and hash at checkpoint time); the tree it grows is the one the database holds."""
    tenant, crisis = str(uuid.uuid4()), str(uuid.uuid4())
    core, key = logbook.core, (crisis, "real")
    actors = [member(tenant, crisis, name=f"Agent {i}") for i in range(8)]
    await core.append_manual(actors[0], entry(crisis, "premier"))
    assert (await core.checkpoint(tenant, key)) is not None  # the tree is cached at size 1
    await asyncio.gather(*(core.append_manual(a, entry(crisis, f"{a.name} {j}")) for a in actors for j in range(5)))
    assert core.trees._trees[key].size == 41  # grown as the batches committed, not read back
    checkpoint = await core.checkpoint(tenant, key)
    page = await core.list_entries(actors[0], ListEntriesRequest(crisis=crisis, first=200))
    leaves = [bytes.fromhex(e.leaf_hash) for e in page.entries]
    assert checkpoint is not None and checkpoint.tree_size == 41
    assert checkpoint.root_hash == rfc_root(leaves)


def reader_lead(tenant: str, crisis: str) -> Actor:
    return member(tenant, crisis, role="director", name="Directrice")


async def test_entries_are_append_only_for_every_role(logbook: LogbookUnderTest) -> None:
    tenant, crisis = str(uuid.uuid4()), str(uuid.uuid4())
    await logbook.core.append_manual(member(tenant, crisis), entry(crisis, "à ne pas modifier"))
    assert await logbook.core.checkpoint(tenant, (crisis, "real")) is not None
    schema = logbook.roles.schema
    app = await asyncpg.connect(logbook.db.dsn)
    owner = await asyncpg.connect(logbook.owner_dsn)
    try:
        for conn in (app, owner):
            await conn.execute(f"SET search_path TO {schema}")
            await conn.execute("SELECT set_config('app.tenant_id', $1, false)", tenant)
            for statement in (
                "UPDATE entries SET summary = 'modifié'",
                "DELETE FROM entries",
                "TRUNCATE entries",
                "UPDATE checkpoints SET tree_size = 99",
                "DELETE FROM logs",
                "UPDATE logs SET size = 0",
            ):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(statement)
        rows = await app.fetch("SELECT summary FROM entries WHERE crisis_id = $1", crisis)
        assert [r["summary"] for r in rows] == ["à ne pas modifier"]
    finally:
        await app.close()
        await owner.close()


async def test_one_changed_byte_in_postgresql_is_named_by_the_verifier(logbook: LogbookUnderTest) -> None:
    tenant, crisis = str(uuid.uuid4()), str(uuid.uuid4())
    writer = member(tenant, crisis)
    for i in range(1, 21):
        await logbook.core.append_manual(writer, entry(crisis, f"Constat numéro {i:02d}"))
    lead = reader_lead(tenant, crisis)
    request = ExportRequest(crisis=crisis, format=ExportFormat.JSON, title="Test")
    assert verify_bundle(await build_bundle(logbook.core, lead, request)).ok
    # A superuser bypasses privileges and triggers (replica mode): exactly what tamper evidence is for.
    admin = await asyncpg.connect(logbook.admin_dsn)
    try:
        await admin.execute("SET session_replication_role = replica")
        await admin.execute(
            f"UPDATE {logbook.roles.schema}.entries SET summary = 'Constat numéro 1X' "
            "WHERE crisis_id = $1 AND seq = 13",
            crisis,
        )
    finally:
        await admin.close()
    report = verify_bundle(await build_bundle(logbook.core, lead, request))
    assert not report.ok
    assert report.first_failing_seq == 13


async def test_need_to_know_is_decided_again_by_the_service(logbook: LogbookUnderTest) -> None:
    tenant, crisis, other_tenant = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    cell_a, cell_b = str(uuid.uuid4()), str(uuid.uuid4())
    core = logbook.core
    writer = member(tenant, crisis)
    await core.append_manual(writer, entry(crisis, "visible cellule A", cell=cell_a))
    await core.append_manual(writer, entry(crisis, "secret cellule B", cell=cell_b))
    await core.append_manual(writer, entry(crisis, "toute la crise"))

    limited = member(tenant, crisis, role="patients_representative", cells=(cell_a,))
    page = await core.list_entries(limited, ListEntriesRequest(crisis=crisis))
    assert [e.summary for e in page.entries] == ["visible cellule A"]
    assert await codes_of(core.append_manual(limited, entry(crisis, "intrus", cell=cell_b))) == ErrorCode.FORBIDDEN
    assert await codes_of(core.append_manual(limited, entry(crisis, "sans cellule"))) == ErrorCode.FORBIDDEN
    assert await codes_of(core.inclusion_proof(limited, InclusionProofRequest(crisis=crisis, seq=2))) == (
        ErrorCode.NOT_FOUND
    )

    observer = member(tenant, crisis, role="observer")
    assert len((await core.list_entries(observer, ListEntriesRequest(crisis=crisis))).entries) == 3
    assert await codes_of(core.append_manual(observer, entry(crisis, "observateur"))) == ErrorCode.FORBIDDEN

    stranger = member(tenant, str(uuid.uuid4()))  # same tenant, another crisis
    assert await codes_of(core.list_entries(stranger, ListEntriesRequest(crisis=crisis))) == ErrorCode.FORBIDDEN
    assert await codes_of(core.latest_checkpoint(stranger, LogRef(crisis=crisis))) == ErrorCode.FORBIDDEN

    # Another tenant whose token claims the victim's crisis id: row-level security hides everything,
    # and appending to a log of another tenant is refused.
    forged = member(other_tenant, crisis, role="director")
    page = await core.list_entries(forged, ListEntriesRequest(crisis=crisis))
    assert page.entries == [] and page.size == 0
    assert await codes_of(core.append_manual(forged, entry(crisis, "injection"))) == ErrorCode.FORBIDDEN
    assert await codes_of(core.inclusion_proof(forged, InclusionProofRequest(crisis=crisis, seq=1))) == (
        ErrorCode.NOT_FOUND
    )
    page = await core.list_entries(writer, ListEntriesRequest(crisis=crisis))
    assert [e.summary for e in page.entries] == ["visible cellule A", "secret cellule B", "toute la crise"]


async def test_filters_corrections_and_rekeyed_entries(logbook: LogbookUnderTest) -> None:
    tenant, crisis = str(uuid.uuid4()), str(uuid.uuid4())
    core = logbook.core
    alice, bob = member(tenant, crisis, name="Alice"), member(tenant, crisis, name="Bob")
    first = await core.append_manual(alice, entry(crisis, "Messagerie chiffrée"))
    two_hours_ago = datetime.now(UTC) - timedelta(hours=2)
    paper = await core.append_manual(
        bob,
        AppendEntryRequest(
            crisis=crisis,
            kind=LogbookKind.DECISION,
            summary="Bascule papier 100% (saisie du cahier)",
            occurred_at=two_hours_ago,
        ),
    )
    assert paper.rekeyed and not first.rekeyed
    assert paper.occurred_at == two_hours_ago
    correction = await core.append_manual(
        alice,
        AppendEntryRequest(crisis=crisis, kind=LogbookKind.FACT, summary="Messagerie chiffrée et VPN", corrects=1),
    )
    assert correction.corrects == first.seq
    assert (
        await codes_of(
            core.append_manual(
                alice, AppendEntryRequest(crisis=crisis, kind=LogbookKind.FACT, summary="x", corrects=99)
            )
        )
        == ErrorCode.NOT_FOUND
    )
    future = datetime.now(UTC) + timedelta(hours=1)
    assert (
        await codes_of(
            core.append_manual(
                alice, AppendEntryRequest(crisis=crisis, kind=LogbookKind.FACT, summary="x", occurred_at=future)
            )
        )
        == ErrorCode.INVALID
    )

    def page(**filters: object) -> object:
        return core.list_entries(alice, ListEntriesRequest(crisis=crisis, **filters))

    assert [e.seq for e in (await page(kinds=[LogbookKind.DECISION])).entries] == [2]  # type: ignore[attr-defined]
    assert [e.seq for e in (await page(author=bob.subject)).entries] == [2]  # type: ignore[attr-defined]
    assert [e.seq for e in (await page(text="vpn")).entries] == [3]  # type: ignore[attr-defined]
    assert [e.seq for e in (await page(text="%")).entries] == [2]  # type: ignore[attr-defined]
    assert [e.seq for e in (await page(since=datetime.now(UTC) - timedelta(minutes=5))).entries] == [1, 3]  # type: ignore[attr-defined]
    newest = await page(before=10**9, first=2)
    assert [e.seq for e in newest.entries] == [3, 2] and newest.has_more  # type: ignore[attr-defined]
    assert (await page()).entries[0].body == "corps Messagerie chiffrée"  # type: ignore[attr-defined]


async def test_exercise_entries_never_reach_a_real_crisis_log(logbook: LogbookUnderTest) -> None:
    tenant, crisis = str(uuid.uuid4()), str(uuid.uuid4())
    core = logbook.core
    await core.append_manual(member(tenant, crisis), entry(crisis, "réel"))
    exercise_event = CloudEvent(
        source="panicsafe/sara",
        type="fr.panicsafe.sara.inject",
        tenantid=tenant,
        crisisid=crisis,
        mode=Mode.EXERCISE,
        logbook=LogbookPart(kind=LogbookKind.FACT, summary="EXERCICE : injection rançongiciel"),
    )
    async with logbook.db.tenant(tenant) as conn:
        await core.ingest(conn, exercise_event)
    lead = reader_lead(tenant, crisis)
    real = await build_bundle(core, lead, ExportRequest(crisis=crisis, format=ExportFormat.JSON, title="Réel"))
    assert [e["summary"] for e in real["entries"]] == ["réel"]
    drill = await build_bundle(
        core, lead, ExportRequest(crisis=crisis, mode=Mode.EXERCISE, format=ExportFormat.JSON, title="Exercice")
    )
    assert [e["summary"] for e in drill["entries"]] == ["EXERCICE : injection rançongiciel"]
    assert drill["entries"][0]["mode"] == "exercise" and drill["entries"][0]["links"] == {"event": exercise_event.id}
    assert verify_bundle(real).ok and verify_bundle(drill).ok


async def test_sealed_event_body_is_stored_encrypted_and_read_back(logbook: LogbookUnderTest) -> None:
    tenant, crisis = str(uuid.uuid4()), str(uuid.uuid4())
    core = logbook.core
    event_id = str(uuid.uuid4())
    secret = "Décision : transfert des dialyses vers le CH voisin, contact Dr Martin 06 00 00 00 00"
    sealed = await core.cipher.encrypt(tenant, event_id, secret.encode(), purpose="logbook-body")
    event = CloudEvent(
        id=event_id,
        source="panicsafe/chat",
        type="fr.panicsafe.chat.message_marked",
        tenantid=tenant,
        crisisid=crisis,
        actorid=str(uuid.uuid4()),
        logbook=LogbookPart(
            kind=LogbookKind.DECISION,
            summary="Message marqué comme décision",
            author="Dr Durand",
            links={"message": "m-1"},
            body_sealed=base64.b64encode(sealed).decode(),
        ),
    )
    async with logbook.db.tenant(tenant) as conn:
        await core.ingest(conn, event)
    page = await core.list_entries(member(tenant, crisis), ListEntriesRequest(crisis=crisis))
    assert page.entries[0].body == secret
    assert page.entries[0].author_label == "Dr Durand" and page.entries[0].source == "chat"
    assert page.entries[0].links == {"message": "m-1", "event": event_id}
    admin = await asyncpg.connect(logbook.admin_dsn)
    try:
        dump = await admin.fetch(
            f"SELECT body::text, summary FROM {logbook.roles.schema}.entries WHERE crisis_id = $1", crisis
        )
    finally:
        await admin.close()
    assert "dialyses" not in repr(dump) and "Martin" not in repr(dump)


async def test_each_tenant_has_its_own_journal_for_account_events(logbook: LogbookUnderTest) -> None:
    core = logbook.core
    tenants = [str(uuid.uuid4()), str(uuid.uuid4())]
    for tenant in tenants:  # account events of two tenants: no crisis, one journal each
        for what in ("Connexion de Alice (mot de passe + TOTP).", "Déconnexion."):
            event = CloudEvent(
                source="panicsafe/gateway",
                type="fr.panicsafe.gateway.login",
                tenantid=tenant,
                actorid=str(uuid.uuid4()),
                logbook=LogbookPart(kind=LogbookKind.SYSTEM, summary=what),
            )
            async with logbook.db.tenant(tenant) as conn:
                await core.ingest(conn, event)
    admin = Actor(subject=str(uuid.uuid4()), tenant=tenants[0], tenant_roles=["admin"])
    page = await core.list_entries(admin, ListEntriesRequest(crisis=journal_of(tenants[0])))
    assert [(e.seq, e.summary) for e in page.entries] == [
        (1, "Connexion de Alice (mot de passe + TOTP)."),
        (2, "Déconnexion."),
    ]
    plain = Actor(subject=str(uuid.uuid4()), tenant=tenants[0], tenant_roles=["member"])
    assert await codes_of(core.list_entries(plain, ListEntriesRequest(crisis=journal_of(tenants[0])))) == (
        ErrorCode.FORBIDDEN
    )
    other_admin = Actor(subject=str(uuid.uuid4()), tenant=tenants[1], tenant_roles=["admin"])
    assert await codes_of(core.list_entries(other_admin, ListEntriesRequest(crisis=journal_of(tenants[0])))) == (
        ErrorCode.FORBIDDEN
    )
    assert await codes_of(core.append_manual(admin, entry(journal_of(tenants[0]), "écriture"))) == ErrorCode.FORBIDDEN


async def test_announcing_another_tenants_log_is_refused_and_the_scans_leave_no_scan_mode(
    logbook: LogbookUnderTest,
) -> None:
    """From the attacker's side: in a transaction of its own tenant, a tenant claims the notices of
    another tenant's log, under either tenant's id. Refused, and nothing is marked: the victim's log
    is announced as before. The scans of every tenant's heads run in a scan mode that ends with
    them: in the attacker's transaction just after one, the victim's log and mark stay hidden."""
    victim, attacker, crisis = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    await logbook.core.append_manual(member(victim, crisis), entry(crisis, "premier"))
    for claimed in (attacker, victim):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with logbook.db.tenant(attacker) as conn:
                await store.announce(conn, claimed, (crisis, "real"))
    async with logbook.db.tenant(attacker) as conn:
        scanned = await store.pending_announcements(conn)
        await store.pending_checkpoints(conn)
        assert (victim, crisis, "real") in [(r["tenant"], r["crisis"], r["mode"]) for r in scanned]
        assert await conn.fetchval("SELECT count(*) FROM logs WHERE crisis_id = $1", crisis) == 0
        assert await conn.fetchval("SELECT count(*) FROM announced WHERE crisis_id = $1", crisis) == 0
    async with logbook.db.tenant(victim) as conn:
        assert await store.announce(conn, victim, (crisis, "real")) == 1
    assert await notices_of(logbook, crisis) == [[1]]
