"""SQL of the `logbook` schema (the service's own; no other service reads it).

Appending takes the log's head row `FOR UPDATE`, numbers the new entries after it, chains and
hashes them, writes them with one statement, and moves the head: entries of one log get one
gap-free order whatever the number of writers, processes or replicas. Every call runs inside the
caller's tenant-scoped transaction, so the entries, the head and the outbox notice commit together.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from panicsafe.contracts.errors import ErrorCode, FieldError
from panicsafe.contracts.events import CloudEvent, LogbookKind, Mode, event_type
from panicsafe.core.bus.outbox import OUTBOX_COLUMNS, outbox_row
from panicsafe.core.db.database import Connection
from panicsafe.core.errors import ServiceError
from panicsafe.logbook.evidence.leaf import body_commitment, chain_hash, format_time, leaf_hash_of

ZERO_HASH = bytes(32)
# One notice per appended batch and log keeps the bus light under load; clients refetch by cursor.
NOTICE_TYPE = "entries_recorded"
MAX_NOTICE_ENTRIES = 200

LogKey = tuple[str, str]  # (crisis, mode)


@dataclass
class Draft:
    """An entry before it has its place in the log (body already sealed under the tenant key)."""

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


def leaf_fields(draft: Draft, seq: int, recorded_at: datetime, commitment: str) -> dict[str, Any]:
    """The exact content one leaf commits to (the verifier rebuilds it from an export)."""
    return {
        "v": 1,
        "tenant": draft.tenant,
        "crisis": draft.crisis,
        "seq": seq,
        "occurred_at": format_time(draft.occurred_at),
        "recorded_at": format_time(recorded_at),
        "rekeyed": draft.rekeyed,
        "author": {"id": draft.author_id, "label": draft.author_label},
        "source": draft.source,
        "kind": draft.kind.value,
        "mode": draft.mode.value,
        "summary": draft.summary,
        "body_commitment": commitment,
        "cell": draft.cell,
        "links": dict(draft.links),
        "corrects": draft.corrects,
        "event_id": draft.event_id,
    }


LOCK_HEAD = "SELECT tenant_id::text AS tenant, size, chain_head FROM logs WHERE crisis_id = $1 AND mode = $2 FOR UPDATE"


async def _lock_head(conn: Connection, tenant: str, key: LogKey) -> tuple[int, bytes]:
    """Lock the log's head (creating it on the first entry): one round trip once the log exists."""
    row = await conn.fetchrow(LOCK_HEAD, key[0], key[1])
    if row is None:
        await conn.execute(
            "INSERT INTO logs (tenant_id, crisis_id, mode, chain_head) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            tenant,
            key[0],
            key[1],
            ZERO_HASH,
        )
        row = await conn.fetchrow(LOCK_HEAD, key[0], key[1])
    if row is None or row["tenant"] != tenant:
        # The crisis id belongs to another tenant (RLS hides its head, the insert conflicted).
        raise ServiceError(ErrorCode.FORBIDDEN, "this log belongs to another organisation")
    return int(row["size"]), bytes(row["chain_head"])


async def append(conn: Connection, drafts: Sequence[Draft], *, recorded_at: datetime) -> list[Stored]:
    """Give each draft its place at the end of its log; returns them in the order given.

    The caller wakes the outbox relays once the transaction has committed (`wake_relays`): woken
    before, they would poll for rows not yet visible while the commit is on its way.

    Per log, two round trips whatever the number of entries: lock the head, then one statement
    that inserts the entries, moves the head and queues the notice.
    """
    by_log: dict[LogKey, list[int]] = {}
    for index, draft in enumerate(drafts):
        by_log.setdefault(draft.key, []).append(index)
    stored: list[Stored | None] = [None] * len(drafts)
    for key, indexes in by_log.items():
        tenant = drafts[indexes[0]].tenant
        size, chain = await _lock_head(conn, tenant, key)
        rows: list[tuple[Any, ...]] = []
        for offset, index in enumerate(indexes):
            draft = drafts[index]
            seq = size + offset + 1
            if draft.corrects is not None and draft.corrects >= seq:
                raise field_error(ErrorCode.INVALID, "corrects", "une correction porte sur une entrée antérieure")
            commitment = body_commitment(draft.salt, draft.body)
            leaf = leaf_hash_of(leaf_fields(draft, seq, recorded_at, commitment))
            chain = chain_hash(chain, leaf)
            rows.append(_row(draft, seq, recorded_at, bytes.fromhex(commitment), leaf, chain))
            stored[index] = Stored(draft.id, key[0], key[1], seq, recorded_at, leaf, chain)
        log_stored = [entry for i in indexes if (entry := stored[i]) is not None]
        notices = [outbox_row(event) for event in _notices([drafts[i] for i in indexes], log_stored)]
        await conn.execute(
            APPEND,
            *(list(column) for column in zip(*rows, strict=True)),
            size + len(indexes),
            chain,
            recorded_at,
            key[0],
            key[1],
            *(list(column) for column in zip(*notices, strict=True)),
        )
    return [s for s in stored if s is not None]


# Entries, head and notices in one statement (data-modifying CTEs share the transaction's snapshot;
# the head row is already locked by `_lock_head`).
APPEND = f"""
WITH new_entries AS (
    INSERT INTO entries (id, tenant_id, crisis_id, mode, seq, occurred_at, recorded_at, rekeyed, author_id,
        author_label, source, kind, summary, body, salt, body_commitment, cell_id, links, corrects, event_id,
        leaf_hash, chain_hash)
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::bigint[], $6::timestamptz[],
        $7::timestamptz[], $8::boolean[], $9::uuid[], $10::text[], $11::text[], $12::text[], $13::text[],
        $14::bytea[], $15::bytea[], $16::bytea[], $17::uuid[], $18::jsonb[], $19::bigint[], $20::uuid[],
        $21::bytea[], $22::bytea[])
), moved_head AS (
    UPDATE logs SET size = $23, chain_head = $24, last_append_at = $25 WHERE crisis_id = $26 AND mode = $27
), notices AS (
    INSERT INTO outbox ({OUTBOX_COLUMNS}) SELECT * FROM unnest($28::uuid[], $29::text[], $30::bytea[], $31::jsonb[])
)
SELECT 1
"""  # noqa: S608 (only our own column list is formatted in)


def _row(
    draft: Draft, seq: int, recorded_at: datetime, commitment: bytes, leaf: bytes, chain: bytes
) -> tuple[Any, ...]:
    return (
        draft.id,
        draft.tenant,
        draft.crisis,
        draft.mode.value,
        seq,
        draft.occurred_at,
        recorded_at,
        draft.rekeyed,
        draft.author_id,
        draft.author_label,
        draft.source,
        draft.kind.value,
        draft.summary,
        draft.body_sealed,
        draft.salt,
        commitment,
        draft.cell,
        draft.links,
        draft.corrects,
        draft.event_id,
        leaf,
        chain,
    )


def _notices(drafts: list[Draft], stored: list[Stored]) -> list[CloudEvent]:
    """Notices on the bus for live views: the new entries' places and log lines, never their bodies."""
    first = drafts[0]
    events = []
    for start in range(0, len(drafts), MAX_NOTICE_ENTRIES):
        part = zip(drafts[start : start + MAX_NOTICE_ENTRIES], stored[start : start + MAX_NOTICE_ENTRIES], strict=True)
        events.append(
            CloudEvent(
                source="panicsafe/logbook",
                type=event_type("logbook", NOTICE_TYPE),
                tenantid=first.tenant,
                crisisid=first.crisis,
                mode=first.mode,
                data={
                    "mode": first.mode.value,
                    "entries": [
                        {
                            "seq": s.seq,
                            "kind": d.kind.value,
                            "summary": d.summary,
                            "cell": d.cell,
                            "source": d.source,
                            "author": d.author_label,
                            "occurred_at": format_time(d.occurred_at),
                        }
                        for d, s in part
                    ],
                },
            )
        )
    return events


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
) -> None:
    await conn.execute(
        "INSERT INTO checkpoints (tenant_id, crisis_id, mode, tree_size, root_hash, chain_head, issued_at, "
        "signature, key_version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
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
    await conn.execute(
        "UPDATE logs SET checkpointed_size = GREATEST(checkpointed_size, $3) WHERE crisis_id = $1 AND mode = $2",
        key[0],
        key[1],
        tree_size,
    )


async def pending_checkpoints(conn: Connection, limit: int = 500) -> list[Any]:
    """Logs of every tenant with entries past their last checkpoint (heads only, no content)."""
    await conn.execute("SELECT set_config('app.logbook_scan', 'on', true)")
    return list(
        await conn.fetch(
            "SELECT tenant_id::text AS tenant, crisis_id::text AS crisis, mode FROM logs "
            "WHERE size > checkpointed_size ORDER BY last_append_at LIMIT $1",
            limit,
        )
    )
