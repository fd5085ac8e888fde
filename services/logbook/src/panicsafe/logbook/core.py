"""The main courante's behaviour: append, read, prove, checkpoint, ingest events, export.

`LogbookCore` is built from a database, the tenant cipher, a signer and (for exports) an object
store; the RPC handlers and the event consumer call it, and tests drive it directly as well.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from panicsafe.contracts.actor import Actor
from panicsafe.contracts.errors import ErrorCode
from panicsafe.contracts.events import LOGBOOK_BODY_PURPOSE, NO_CRISIS, CloudEvent, LogbookKind, Mode, canonical_uuid
from panicsafe.contracts.logbook import (
    AppendEntryRequest,
    CheckpointView,
    ConsistencyProofReply,
    ConsistencyProofRequest,
    EntryPage,
    EntryView,
    InclusionProofReply,
    InclusionProofRequest,
    ListEntriesRequest,
    LogRef,
    journal_of,
)
from panicsafe.core.bus.outbox import wake_relays
from panicsafe.core.crypto import EnvelopeCipher
from panicsafe.core.db.database import Connection, Database
from panicsafe.core.errors import ServiceError, not_found
from panicsafe.logbook import store
from panicsafe.logbook.access import reader, writer
from panicsafe.logbook.evidence.leaf import checkpoint_message, format_time
from panicsafe.logbook.evidence.merkle import MerkleLog
from panicsafe.logbook.signing import TransitSigner
from panicsafe.logbook.store import Draft, LogKey, Stored, field_error
from panicsafe.logbook.writer import GroupCommitWriter

log = logging.getLogger(__name__)

# An entry whose occurred_at is older than this when written was re-keyed (from paper, after the fact).
REKEYED_AFTER = timedelta(minutes=2)
CLOCK_SKEW = timedelta(minutes=2)
SYSTEM_AUTHOR = "PanicSAFE"


def key_of(ref: LogRef) -> LogKey:
    return (ref.crisis, ref.mode.value)


class TreeCache:
    """In-memory Merkle trees of the most recently used logs, extended from the database as they grow.

    Only committed leaves are loaded, in seq order, and a log never changes below its size, so a
    cached tree is never stale, only short.
    """

    def __init__(self, max_logs: int = 256) -> None:
        self.max_logs = max_logs
        self._trees: OrderedDict[LogKey, MerkleLog] = OrderedDict()
        self._locks: dict[LogKey, asyncio.Lock] = {}

    async def tree(self, conn: Connection, key: LogKey, size: int) -> MerkleLog:
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            tree = self._trees.get(key)
            if tree is None:
                tree = MerkleLog()
                self._trees[key] = tree
                while len(self._trees) > self.max_logs:
                    evicted, _ = self._trees.popitem(last=False)
                    self._locks.pop(evicted, None)
            self._trees.move_to_end(key)
            if tree.size < size:
                leaves = await store.leaf_hashes(conn, key, tree.size, size)
                if len(leaves) != size - tree.size:
                    raise ServiceError(ErrorCode.INTERNAL, "the log has a gap")
                tree.extend(leaves)
            return tree

    def offer(self, entries: list[Stored]) -> None:
        """Committed entries, as the writer commits them: a cached tree that ends just before one
        takes its leaf now, so the checkpointer finds it current instead of hashing a second's worth
        of leaves at once. Skipped while the tree is being extended from the database."""
        for entry in entries:
            key = (entry.crisis, entry.mode)
            tree = self._trees.get(key)
            lock = self._locks.get(key)
            if tree is not None and not (lock is not None and lock.locked()) and tree.size == entry.seq - 1:
                tree.append(entry.leaf_hash)


@dataclass(frozen=True)
class Checkpoint:
    tenant: str
    crisis: str
    mode: str
    tree_size: int
    root_hash: bytes
    chain_head: bytes
    issued_at: str
    signature: bytes
    key_version: int

    @classmethod
    def from_row(cls, tenant: str, key: LogKey, row: Any) -> Checkpoint:
        return cls(
            tenant,
            key[0],
            key[1],
            int(row["tree_size"]),
            bytes(row["root_hash"]),
            bytes(row["chain_head"]),
            row["issued_at"],
            bytes(row["signature"]),
            int(row["key_version"]),
        )


class LogbookCore:
    def __init__(self, db: Database, cipher: EnvelopeCipher, signer: TransitSigner) -> None:
        self.db = db
        self.cipher = cipher
        self.signer = signer
        self.trees = TreeCache()
        self.heads = store.Heads()
        self.writer = GroupCommitWriter(db, self.heads, committed=self._committed)
        self._stopping = asyncio.Event()
        self._appended = asyncio.Event()  # entries were written: the announcer has work

    def _committed(self, entries: list[Stored]) -> None:
        self.trees.offer(entries)
        self._appended.set()

    def start(self) -> None:
        self.writer.start()

    async def stop(self) -> None:
        self._stopping.set()
        self._appended.set()  # the announcer sees the stop at once
        await self.writer.close()
        await self.signer.close()

    # -- writing ------------------------------------------------------------------------------------

    async def seal(self, tenant: str, entry_id: str, body: str) -> bytes:
        if not body:
            return b""
        return await self.cipher.encrypt(tenant, entry_id, body.encode(), purpose=LOGBOOK_BODY_PURPOSE)

    async def append_manual(self, actor: Actor, request: AppendEntryRequest) -> EntryView:
        writer(actor, request.crisis, request.cell)
        now = datetime.now(UTC)
        occurred = request.occurred_at.astimezone(UTC) if request.occurred_at else now
        if occurred > now + CLOCK_SKEW:
            raise field_error(ErrorCode.INVALID, "occurred_at", "la date de l'événement est dans le futur")
        key = key_of(request)
        if request.corrects is not None:
            async with self.db.tenant(actor.tenant) as conn:
                if not await store.entry_exists(conn, key, request.corrects):
                    raise field_error(ErrorCode.NOT_FOUND, "corrects", "l'entrée à corriger n'existe pas")
        entry_id = str(uuid.uuid4())
        draft = Draft(
            id=entry_id,
            tenant=actor.tenant,
            crisis=request.crisis,
            mode=request.mode,
            kind=request.kind,
            summary=request.summary,
            body=request.body,
            body_sealed=await self.seal(actor.tenant, entry_id, request.body),
            occurred_at=occurred,
            author_id=_uuid_or_none(actor.subject),
            author_label=actor.name or actor.subject,
            source="manual",
            cell=request.cell,
            corrects=request.corrects,
            rekeyed=now - occurred > REKEYED_AFTER,
        )
        stored = await self.writer.append(draft)
        return _view_of_draft(draft, stored)

    async def ingest(self, conn: Connection, event: CloudEvent) -> None:
        """The consumer's handler: one entry for every event with a logbook part (not our own notices)."""
        part = event.logbook
        if part is None or event.service == "logbook":
            return
        body, sealed, links = "", b"", dict(part.links)
        if part.body_sealed:
            sealed = base64.b64decode(part.body_sealed)
            try:
                body = (
                    await self.cipher.decrypt(event.tenantid, event.id, sealed, purpose=LOGBOOK_BODY_PURPOSE)
                ).decode()
            except (ServiceError, UnicodeDecodeError):
                # Never block the stream on one bad body: the entry says the body was unreadable.
                log.error("unreadable logbook body", extra={"event_id": event.id})
                body, sealed, links["body"] = "", b"", "unreadable"
        links["event"] = event.id
        draft = Draft(
            id=event.id,
            tenant=event.tenantid,
            crisis=event.crisisid if event.crisisid != NO_CRISIS else journal_of(event.tenantid),
            mode=event.mode,
            kind=part.kind,
            summary=part.summary,
            body=body,
            body_sealed=sealed,
            occurred_at=(part.occurred_at or event.time).astimezone(UTC),
            author_id=_uuid_or_none(event.actorid),
            author_label=part.author or (SYSTEM_AUTHOR if event.actorid is None else event.actorid),
            source=event.service,
            cell=part.cell,
            links=links,
            event_id=event.id,
        )
        await store.append(conn, [draft], recorded_at=datetime.now(UTC), heads=self.heads)
        self._appended.set()  # inside the consumer's transaction: announced once committed

    # -- reading ------------------------------------------------------------------------------------

    async def list_entries(self, actor: Actor, request: ListEntriesRequest) -> EntryPage:
        access = reader(actor, request.crisis)
        filters = store.Filters(
            kinds=[k.value for k in request.kinds],
            cell=request.cell,
            author=request.author,
            source=request.source,
            since=request.since,
            until=request.until,
            text=request.text,
            visible_cells=None if access.visible_cells is None else sorted(access.visible_cells),
        )
        key = key_of(request)
        async with self.db.tenant(actor.tenant) as conn:
            rows, more = await store.page(
                conn, key, filters, after=request.after, before=request.before, limit=request.first
            )
            current = await store.head(conn, key)
        entries = [await self.view(row) for row in rows]
        return EntryPage(entries=entries, size=current[0] if current else 0, has_more=more)

    async def body_of(self, row: Any) -> str | None:
        sealed = bytes(row["body"])
        if not sealed:
            return ""
        try:
            plain = await self.cipher.decrypt(row["tenant_id"], row["id"], sealed, purpose=LOGBOOK_BODY_PURPOSE)
            return plain.decode()
        except (ServiceError, UnicodeDecodeError):
            return None

    async def view(self, row: Any) -> EntryView:
        return EntryView(
            id=row["id"],
            crisis=row["crisis_id"],
            mode=Mode(row["mode"]),
            seq=row["seq"],
            occurred_at=row["occurred_at"],
            recorded_at=row["recorded_at"],
            rekeyed=row["rekeyed"],
            author_id=row["author_id"],
            author_label=row["author_label"],
            source=row["source"],
            kind=LogbookKind(row["kind"]),
            summary=row["summary"],
            body=await self.body_of(row),
            cell=row["cell_id"],
            links=row["links"],
            corrects=row["corrects"],
            leaf_hash=bytes(row["leaf_hash"]).hex(),
            chain_hash=bytes(row["chain_hash"]).hex(),
        )

    # -- proofs and checkpoints ------------------------------------------------------------------------

    async def inclusion_proof(self, actor: Actor, request: InclusionProofRequest) -> InclusionProofReply:
        access = reader(actor, request.crisis)
        key = key_of(request)
        async with self.db.tenant(actor.tenant) as conn:
            current = await store.head(conn, key)
            size = request.tree_size or (current[0] if current else 0)
            if current is None or size > current[0] or request.seq > size:
                raise not_found("aucune entrée à ce numéro pour cette taille d'arbre")
            rows = await store.entries_range(conn, key, request.seq, request.seq)
            if not rows or not access.sees_cell(rows[0]["cell_id"]):
                raise not_found("aucune entrée à ce numéro pour cette taille d'arbre")
            tree = await self.trees.tree(conn, key, size)
        return InclusionProofReply(
            seq=request.seq,
            tree_size=size,
            leaf_hash=bytes(rows[0]["leaf_hash"]).hex(),
            root_hash=tree.root(size).hex(),
            path=[h.hex() for h in tree.inclusion_proof(request.seq - 1, size)],
        )

    async def consistency_proof(self, actor: Actor, request: ConsistencyProofRequest) -> ConsistencyProofReply:
        reader(actor, request.crisis)
        if request.from_size > request.to_size:
            raise field_error(ErrorCode.INVALID, "from_size", "from_size doit être inférieur ou égal à to_size")
        key = key_of(request)
        async with self.db.tenant(actor.tenant) as conn:
            current = await store.head(conn, key)
            if current is None or request.to_size > current[0]:
                raise not_found("l'arbre n'a pas encore cette taille")
            tree = await self.trees.tree(conn, key, request.to_size)
        return ConsistencyProofReply(
            from_size=request.from_size,
            to_size=request.to_size,
            from_root=tree.root(request.from_size).hex(),
            to_root=tree.root(request.to_size).hex(),
            path=[h.hex() for h in tree.consistency_proof(request.from_size, request.to_size)],
        )

    async def latest_checkpoint(self, actor: Actor, ref: LogRef) -> CheckpointView | None:
        reader(actor, ref.crisis)
        key = key_of(ref)
        async with self.db.tenant(actor.tenant) as conn:
            row = await store.latest_checkpoint(conn, key)
        if row is None:
            return None
        return await self.checkpoint_view(Checkpoint.from_row(actor.tenant, key, row))

    async def checkpoint_view(self, cp: Checkpoint) -> CheckpointView:
        public = await self.signer.public_key(cp.tenant, cp.key_version)
        return CheckpointView(
            crisis=cp.crisis,
            mode=Mode(cp.mode),
            tree_size=cp.tree_size,
            root_hash=cp.root_hash.hex(),
            chain_head=cp.chain_head.hex(),
            issued_at=cp.issued_at,
            signature=base64.b64encode(cp.signature).decode(),
            key_version=cp.key_version,
            public_key=base64.b64encode(public).decode(),
        )

    async def checkpoint(self, tenant: str, key: LogKey) -> Checkpoint | None:
        """A signed checkpoint covering the whole log as it is now (the latest one if it already does)."""
        async with self.db.tenant(tenant) as conn:
            current = await store.head(conn, key)
            latest = await store.latest_checkpoint(conn, key)
            if current is None or current[0] == 0:
                return None
            size, chain_head = current
            if latest is not None and int(latest["tree_size"]) >= size:
                return Checkpoint.from_row(tenant, key, latest)
            tree = await self.trees.tree(conn, key, size)
        root = tree.root(size)
        issued_at = format_time(datetime.now(UTC))
        message = checkpoint_message(tenant, key[0], size, root.hex(), chain_head.hex(), issued_at)
        signature, version = await self.signer.sign(tenant, message)
        # Its own short transaction, away from the log's head: appends never wait for a checkpoint.
        async with self.db.tenant(tenant) as conn:
            stored = await store.insert_checkpoint(
                conn,
                tenant,
                key,
                tree_size=size,
                root=root,
                chain_head=chain_head,
                issued_at=issued_at,
                signature=signature,
                key_version=version,
            )
            if not stored:  # another replica signed this size first: that one is the checkpoint
                return Checkpoint.from_row(tenant, key, await store.latest_checkpoint(conn, key))
        return Checkpoint(tenant, key[0], key[1], size, root, chain_head, issued_at, signature, version)

    async def checkpoint_pending(self) -> int:
        """Sign a checkpoint for every log that grew since its last one; returns how many."""
        async with self.db.autocommit() as conn:  # one statement, no tenant: the scan is the function's
            pending = await store.pending_checkpoints(conn)
        done = 0
        for row in pending:
            try:
                await self.checkpoint(row["tenant"], (row["crisis"], row["mode"]))
                done += 1
            except ServiceError as exc:
                log.warning("checkpoint failed: %s", exc, extra={"crisis": row["crisis"]})
        return done

    async def run_checkpointer(self, interval_s: float = 1.0) -> None:
        """At most one checkpoint per log and interval, and only while entries arrive."""
        while not self._stopping.is_set():
            try:
                await self.checkpoint_pending()
            except Exception as exc:  # noqa: BLE001 (OpenBao or PostgreSQL blips: try again next round)
                log.warning("checkpointer paused: %s", exc)
            await _wait(self._stopping, interval_s)

    # -- notices ------------------------------------------------------------------------------------

    async def announce_pending(self) -> int:
        """Queue the notices of every log with entries not yet announced; returns how many entries."""
        async with self.db.autocommit() as conn:  # one statement, no tenant: the scan is the function's
            pending = await store.pending_announcements(conn)
        announced = 0
        for row in pending:
            async with self.db.tenant(row["tenant"]) as conn:
                announced += await store.announce(conn, row["tenant"], (row["crisis"], row["mode"]))
        if announced:
            wake_relays()  # the notices are committed: publish them now
        return announced

    async def run_announcer(self, interval_s: float = 0.05, idle_s: float = 1.0) -> None:
        """Announce new entries: once woken by an append, after `interval_s` for the appends that
        follow to share the notice; every `idle_s` in any case (another replica's appends, a
        consumer transaction committed after it woke us, a backlog left by a crash)."""
        while not self._stopping.is_set():
            self._appended.clear()
            try:
                await self.announce_pending()
            except Exception as exc:  # noqa: BLE001 (PostgreSQL blips: try again next round)
                log.warning("announcer paused: %s", exc)
            if await _wait(self._appended, idle_s):  # set by a commit, or by `stop`
                await _wait(self._stopping, interval_s)


async def _wait(event: asyncio.Event, timeout: float) -> bool:
    """Wait until `event` is set or `timeout` passes; True if it was set."""
    try:
        await asyncio.wait_for(event.wait(), timeout=timeout)
    except TimeoutError:
        return False
    return True


def _uuid_or_none(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return canonical_uuid(value)
    except ValueError:
        return None


def _view_of_draft(draft: Draft, stored: Stored) -> EntryView:
    return EntryView(
        id=draft.id,
        crisis=draft.crisis,
        mode=draft.mode,
        seq=stored.seq,
        occurred_at=draft.occurred_at,
        recorded_at=stored.recorded_at,
        rekeyed=draft.rekeyed,
        author_id=draft.author_id,
        author_label=draft.author_label,
        source=draft.source,
        kind=draft.kind,
        summary=draft.summary,
        body=draft.body,
        cell=draft.cell,
        links=draft.links,
        corrects=draft.corrects,
        leaf_hash=stored.leaf_hash.hex(),
        chain_hash=stored.chain_hash.hex(),
    )
