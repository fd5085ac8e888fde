"""SQL of the `logbook` schema (the service's own; no other service reads it).

Appending numbers the new entries after the log's head, chains and hashes them, and writes them
with the head in one statement that succeeds only on that same head: entries of one log get one
gap-free order whatever the number of writers, processes or replicas. Their notices on the bus are
written apart, by the announcer (`announce`), with how far each log is announced.
"""

from __future__ import annotations

import secrets
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

import asyncpg

from panicsafe.contracts.errors import ErrorCode, FieldError
from panicsafe.contracts.events import CloudEvent, LogbookKind, Mode
from panicsafe.contracts.logbook import ENTRIES_RECORDED
from panicsafe.core.bus.outbox import INSERT_OUTBOX, outbox_row
from panicsafe.core.db.database import Connection
from panicsafe.core.errors import ServiceError
from panicsafe.logbook.evidence.leaf import LeafTemplate, body_commitment, chain_hash, format_time

ZERO_HASH = bytes(32)
# Notices of new entries for live views, written by the announcer (`announce`) a few times a second
# at most per log, whatever the rate of appends: the bus stays light under load.
MAX_NOTICE_ENTRIES = 200
MAX_ANNOUNCED = 2000  # per transaction; a backlog (after an outage) is announced over several

LogKey = tuple[str, str]  # (crisis, mode)


@dataclass(frozen=True, slots=True)
class Prepared:
    """What a draft contributes to a batch whatever its place, encoded once before the batch forms."""

    leaf: LeafTemplate
    commitment: bytes


@dataclass
class Draft:
    """An entry before it has its place in the log (body already sealed under the tenant key).

    Not changed once handed to the writer: `prepared` is computed from it once."""

    tenant: str
    crisis: str
    mode: Mode
    kind: LogbookKind
    summary: str
    body: str
    body_sealed: bytes
    occurred_at: datetime
    author_id: str | None
    author_label: str
    source: str
    cell: str | None = None
    links: dict[str, str] = field(default_factory=dict)
    corrects: int | None = None
    event_id: str | None = None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    salt: bytes = field(default_factory=lambda: secrets.token_bytes(16))
    rekeyed: bool = False

    @property
    def key(self) -> LogKey:
        return (self.crisis, self.mode.value)

    @cached_property
    def prepared(self) -> Prepared:
        commitment = body_commitment(self.salt, self.body)
        occurred_at = format_time(self.occurred_at)
        leaf = LeafTemplate.of_entry(
            tenant=self.tenant,
            crisis=self.crisis,
            occurred_at=occurred_at,
            rekeyed=self.rekeyed,
            author_id=self.author_id,
            author_label=self.author_label,
            source=self.source,
            kind=self.kind.value,
            mode=self.mode.value,
            summary=self.summary,
            body_commitment=commitment,
            cell=self.cell,
            links=self.links,
            corrects=self.corrects,
            event_id=self.event_id,
        )
        return Prepared(leaf, bytes.fromhex(commitment))


def field_error(code: ErrorCode, name: str, message: str) -> ServiceError:
    return ServiceError(code, message, [FieldError(field=name, message=message)])


@dataclass(frozen=True)
class Stored:
    """An entry as written: its place and hashes."""

    id: str
    crisis: str
    mode: str
    seq: int
    recorded_at: datetime
    leaf_hash: bytes
    chain_hash: bytes


class Heads:
    """The head this process last saw of each log: the guess `append` starts from.

    A wrong guess (another process or replica wrote meanwhile, this one just started, or a consumer
    transaction that wrote was rolled back) costs one more round trip, never a wrong entry:
    `append_entries` writes only on the head it was given, and otherwise answers the current one.
    """

    def __init__(self, max_logs: int = 4096) -> None:
        self.max_logs = max_logs
        self._heads: OrderedDict[LogKey, tuple[int, bytes]] = OrderedDict()

    def get(self, key: LogKey) -> tuple[int, bytes]:
        return self._heads.get(key, (0, ZERO_HASH))

    def set(self, key: LogKey, size: int, chain_head: bytes) -> None:
        self._heads[key] = (size, chain_head)
        self._heads.move_to_end(key)
        while len(self._heads) > self.max_logs:
            self._heads.popitem(last=False)


# Another writer moving the same head between our reading it and our write, this many times in a
# row, means something is wrong (a runaway writer): give up rather than spin.
MAX_ATTEMPTS = 50

APPEND = (
    "SELECT applied, size, chain_head FROM append_entries("
    "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,"
    " $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28)"
)


async def append(conn: Connection, drafts: Sequence[Draft], *, recorded_at: datetime, heads: Heads) -> list[Stored]:
    """Give the drafts, all of one log, their places at its end; returns them in the order given.

    One statement (`append_entries`, migrations 0003 and 0006) writes the entries and moves the head;
    on a connection with no transaction open, that is one round trip and one commit. The places and
    hashes are computed from `heads`' guess and computed again if the log had moved on. What does
    not depend on the place (each draft's leaf text and body commitment) was computed beforehand,
    see `Draft.prepared`.
    """
    keys = {draft.key for draft in drafts}
    if len(keys) != 1:
        raise ValueError("append takes the drafts of one log")
    return await _append_log(conn, keys.pop(), list(drafts), recorded_at, heads)


async def _append_log(
    conn: Connection, key: LogKey, drafts: list[Draft], recorded_at: datetime, heads: Heads
) -> list[Stored]:
    recorded_text = format_time(recorded_at)
    size, chain = heads.get(key)
    for _ in range(MAX_ATTEMPTS):
        placed = _place(key, drafts, size, chain, recorded_at, recorded_text)
        try:
            row = await conn.fetchrow(APPEND, *_append_args(key, drafts, placed, size, chain, recorded_at))
        except asyncpg.InsufficientPrivilegeError as exc:
            raise ServiceError(ErrorCode.FORBIDDEN, "this log belongs to another organisation") from exc
        assert row is not None
        size, chain = int(row["size"]), bytes(row["chain_head"])
        heads.set(key, size, chain)
        if row["applied"]:
            return placed
    raise ServiceError(ErrorCode.UNAVAILABLE, "le journal est très sollicité ; réessayez dans un instant")


def _append_args(
    key: LogKey, drafts: list[Draft], placed: list[Stored], size: int, chain: bytes, recorded_at: datetime
) -> list[Any]:
    """The parameters of `APPEND`: the batch as one array per column (and no notice: see `announce`)."""
    return [
        drafts[0].tenant,
        key[0],
        key[1],
        size,
        chain,
        recorded_at,
        [d.id for d in drafts],
        [s.seq for s in placed],
        [d.occurred_at for d in drafts],
        [d.rekeyed for d in drafts],
        [d.author_id for d in drafts],
        [d.author_label for d in drafts],
        [d.source for d in drafts],
        [d.kind.value for d in drafts],
        [d.summary for d in drafts],
        [d.body_sealed for d in drafts],
        [d.salt for d in drafts],
        [d.prepared.commitment for d in drafts],
        [d.cell for d in drafts],
        [d.links for d in drafts],
        [d.corrects for d in drafts],
        [d.event_id for d in drafts],
        [s.leaf_hash for s in placed],
        [s.chain_hash for s in placed],
        [],
        [],
        [],
        [],
    ]


def _place(
    key: LogKey, drafts: list[Draft], size: int, chain: bytes, recorded_at: datetime, recorded_text: str
) -> list[Stored]:
    """The drafts numbered after `size` and chained after `chain`."""
    placed = []
    for offset, draft in enumerate(drafts):
        seq = size + offset + 1
        if draft.corrects is not None and draft.corrects >= seq:
            raise field_error(ErrorCode.INVALID, "corrects", "une correction porte sur une entrée antérieure")
        leaf = draft.prepared.leaf.hash(seq, recorded_text)
        chain = chain_hash(chain, leaf)
        placed.append(Stored(draft.id, key[0], key[1], seq, recorded_at, leaf, chain))
    return placed


# -- notices ----------------------------------------------------------------------------------------


async def pending_announcements(conn: Connection, limit: int = 500) -> list[Any]:
    """Logs of every tenant with entries past their last notice (tenant, crisis, mode), least
    recently appended first: one statement, through a function that runs as the schema's owner
    (migration 0009: the runtime role itself sees only the tenant in scope), heads only."""
    return list(await conn.fetch("SELECT tenant, crisis, mode FROM logs_to_announce($1)", limit))


async def announce(conn: Connection, tenant: str, key: LogKey) -> int:
    """In a transaction scoped to `tenant`: queue the notices of the log's entries not yet announced
    and record that they are; returns how many entries. `claim_notices` (migration 0008) locks the
    log's `announced` row for the transaction, so two announcers (replicas) never announce the same
    entries, and a rollback leaves them to the next one."""
    rows = await conn.fetch("SELECT * FROM claim_notices($1, $2, $3, $4)", tenant, key[0], key[1], MAX_ANNOUNCED)
    if not rows:
        return 0
    # Not `append_event`: it would wake the relays before this commits (the caller wakes them).
    await conn.executemany(INSERT_OUTBOX, [outbox_row(event) for event in _notices(tenant, key, rows)])
    return len(rows)


def _notices(tenant: str, key: LogKey, rows: list[Any]) -> list[CloudEvent]:
    """Notices on the bus for live views: the new entries' places and log lines, never their bodies.

    `data` is `EntriesRecorded`, written as plain dicts on this hot path (the tests parse it back)."""
    mode = Mode(key[1])
    return [
        CloudEvent(
            source=ENTRIES_RECORDED.source,
            type=ENTRIES_RECORDED.type,
            tenantid=tenant,
            crisisid=key[0],
            mode=mode,
            data={
                "mode": mode.value,
                "entries": [
                    {
                        "seq": int(row["seq"]),
                        "kind": row["kind"],
                        "summary": row["summary"],
                        "cell": row["cell"],
                        "source": row["source"],
                        "author": row["author_label"],
                        "occurred_at": format_time(row["occurred_at"]),
                    }
                    for row in rows[start : start + MAX_NOTICE_ENTRIES]
                ],
            },
        )
        for start in range(0, len(rows), MAX_NOTICE_ENTRIES)
    ]


# -- reading ----------------------------------------------------------------------------------------

ENTRY_COLUMNS = (
    "id::text, tenant_id::text, crisis_id::text, mode, seq, occurred_at, recorded_at, rekeyed, author_id::text, "
    "author_label, source, kind, summary, body, salt, body_commitment, cell_id::text, links, corrects, "
    "event_id::text, leaf_hash, chain_hash"
)


@dataclass(frozen=True)
class Filters:
    kinds: Sequence[str] = ()
    cell: str | None = None
    author: str | None = None
    source: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None
    visible_cells: Sequence[str] | None = None  # None: everything; else only the entries of these cells


def _where(key: LogKey, filters: Filters) -> tuple[list[str], list[Any]]:
    clauses = ["crisis_id = $1", "mode = $2"]
    args: list[Any] = [key[0], key[1]]

    def bind(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if filters.kinds:
        clauses.append(f"kind = ANY({bind(list(filters.kinds))}::text[])")
    if filters.cell is not None:
        clauses.append(f"cell_id = {bind(filters.cell)}::uuid")
    if filters.author is not None:
        clauses.append(f"author_id = {bind(filters.author)}::uuid")
    if filters.source is not None:
        clauses.append(f"source = {bind(filters.source)}")
    if filters.since is not None:
        clauses.append(f"occurred_at >= {bind(filters.since)}")
    if filters.until is not None:
        clauses.append(f"occurred_at < {bind(filters.until)}")
    if filters.text is not None:
        escaped = filters.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        clauses.append(f"summary ILIKE {bind('%' + escaped + '%')}")
    if filters.visible_cells is not None:
        clauses.append(f"cell_id = ANY({bind(list(filters.visible_cells))}::uuid[])")
    return clauses, args


async def page(
    conn: Connection, key: LogKey, filters: Filters, *, after: int | None, before: int | None, limit: int
) -> tuple[list[Any], bool]:
    """Entries in seq order after `after` (forwards) or before `before` (backwards, newest first)."""
    clauses, args = _where(key, filters)
    if after is not None:
        args.append(after)
        clauses.append(f"seq > ${len(args)}")
    if before is not None:
        args.append(before)
        clauses.append(f"seq < ${len(args)}")
    order = "DESC" if before is not None and after is None else "ASC"
    args.append(limit + 1)
    rows = await conn.fetch(
        f"SELECT {ENTRY_COLUMNS} FROM entries WHERE {' AND '.join(clauses)} ORDER BY seq {order} LIMIT ${len(args)}",  # noqa: S608 (clauses are ours, values bound)
        *args,
    )
    return list(rows[:limit]), len(rows) > limit


async def entries_range(conn: Connection, key: LogKey, first: int, last: int) -> list[Any]:
    return list(
        await conn.fetch(
            f"SELECT {ENTRY_COLUMNS} FROM entries WHERE crisis_id = $1 AND mode = $2 AND seq BETWEEN $3 AND $4 "  # noqa: S608
            "ORDER BY seq",
            key[0],
            key[1],
            first,
            last,
        )
    )


async def head(conn: Connection, key: LogKey) -> tuple[int, bytes] | None:
    row = await conn.fetchrow("SELECT size, chain_head FROM logs WHERE crisis_id = $1 AND mode = $2", key[0], key[1])
    return None if row is None else (int(row["size"]), bytes(row["chain_head"]))


async def leaf_hashes(conn: Connection, key: LogKey, after: int, upto: int) -> list[bytes]:
    rows = await conn.fetch(
        "SELECT leaf_hash FROM entries WHERE crisis_id = $1 AND mode = $2 AND seq > $3 AND seq <= $4 ORDER BY seq",
        key[0],
        key[1],
        after,
        upto,
    )
    return [bytes(r["leaf_hash"]) for r in rows]


async def entry_exists(conn: Connection, key: LogKey, seq: int) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT 1 FROM entries WHERE crisis_id = $1 AND mode = $2 AND seq = $3", key[0], key[1], seq
        )
    )


# -- checkpoints -------------------------------------------------------------------------------------

CHECKPOINT_COLUMNS = "tree_size, root_hash, chain_head, issued_at, signature, key_version"


async def latest_checkpoint(conn: Connection, key: LogKey) -> Any:
    return await conn.fetchrow(
        f"SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE crisis_id = $1 AND mode = $2 "  # noqa: S608
        "ORDER BY tree_size DESC LIMIT 1",
        key[0],
        key[1],
    )


async def checkpoints_upto(conn: Connection, key: LogKey, size: int) -> list[Any]:
    return list(
        await conn.fetch(
            f"SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE crisis_id = $1 AND mode = $2 "  # noqa: S608
            "AND tree_size <= $3 ORDER BY tree_size",
            key[0],
            key[1],
            size,
        )
    )


async def insert_checkpoint(
    conn: Connection,
    tenant: str,
    key: LogKey,
    *,
    tree_size: int,
    root: bytes,
    chain_head: bytes,
    issued_at: str,
    signature: bytes,
    key_version: int,
) -> bool:
    """Store a signed checkpoint; False if one of that size was already there (another replica's)."""
    return bool(
        await conn.fetchval(
            "INSERT INTO checkpoints (tenant_id, crisis_id, mode, tree_size, root_hash, chain_head, issued_at, "
            "signature, key_version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING "
            "RETURNING true",
            tenant,
            key[0],
            key[1],
            tree_size,
            root,
            chain_head,
            issued_at,
            signature,
            key_version,
        )
    )


async def pending_checkpoints(conn: Connection, limit: int = 500) -> list[Any]:
    """Logs of every tenant with entries past their last checkpoint (tenant, crisis, mode), least
    recently appended first: one statement, through a function that runs as the schema's owner
    (migration 0009: the runtime role itself sees only the tenant in scope), heads only."""
    return list(await conn.fetch("SELECT tenant, crisis, mode FROM logs_to_checkpoint($1)", limit))
