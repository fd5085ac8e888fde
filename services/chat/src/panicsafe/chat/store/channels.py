"""SQL of crises, channels, their members and read markers.

A channel's row also numbers its messages and changes (`bump`): its lock orders the channel's writers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from panicsafe.contracts.chat import Audience, ChannelKind
from panicsafe.core.db.database import Connection

DEFAULT_CHANNELS = (
    (ChannelKind.CRISIS, "Cellule de crise"),
    (ChannelKind.EXTERNAL, "Liaisons externes"),
)
KIND_ORDER = {"crisis": 0, "cell": 1, "external": 2, "private": 3, "direct": 4}

CHANNEL_COLUMNS = """c.id::text, c.crisis_id::text, c.kind, c.name, c.cell_id::text, c.created_at,
    c.last_seq, c.last_rev,
    ARRAY(SELECT m.user_id::text FROM channel_members m WHERE m.channel_id = c.id ORDER BY m.user_id) AS members"""


@dataclass(frozen=True)
class Channel:
    id: str
    crisis: str
    kind: ChannelKind
    name: str
    cell: str | None
    members: list[str]
    last_seq: int
    last_rev: int
    created_at: Any

    @property
    def audience(self) -> Audience:
        return Audience(kind=self.kind, cell=self.cell, members=self.members)

    @classmethod
    def of(cls, row: asyncpg.Record) -> Channel:
        return cls(
            id=row["id"],
            crisis=row["crisis_id"],
            kind=ChannelKind(row["kind"]),
            name=row["name"],
            cell=row["cell_id"],
            members=list(row["members"]),
            last_seq=row["last_seq"],
            last_rev=row["last_rev"],
            created_at=row["created_at"],
        )


# -- crises and channels ---------------------------------------------------------------------------


async def crisis(conn: Connection, crisis_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT crisis_id::text, mode, closed FROM crises WHERE crisis_id = $1", crisis_id)


async def upsert_crisis(conn: Connection, tenant: str, crisis_id: str, mode: str) -> None:
    await conn.execute(
        "INSERT INTO crises (crisis_id, tenant_id, mode) VALUES ($1, $2, $3) ON CONFLICT (crisis_id) DO NOTHING",
        crisis_id,
        tenant,
        mode,
    )


async def close_crisis(conn: Connection, crisis_id: str) -> None:
    await conn.execute("UPDATE crises SET closed = true WHERE crisis_id = $1", crisis_id)


async def insert_default_channel(conn: Connection, tenant: str, crisis_id: str, kind: str, name: str) -> str | None:
    """The crisis-wide and external channels; None when it already exists."""
    value: str | None = await conn.fetchval(
        "INSERT INTO channels (id, tenant_id, crisis_id, kind, name) VALUES (gen_random_uuid(), $1, $2, $3, $4) "
        "ON CONFLICT (crisis_id, kind) WHERE kind IN ('crisis', 'external') DO NOTHING RETURNING id::text",
        tenant,
        crisis_id,
        kind,
        name,
    )
    return value


async def insert_cell_channel(conn: Connection, tenant: str, crisis_id: str, cell: str, name: str) -> str | None:
    value: str | None = await conn.fetchval(
        "INSERT INTO channels (id, tenant_id, crisis_id, kind, name, cell_id) "
        "VALUES (gen_random_uuid(), $1, $2, 'cell', $3, $4) "
        "ON CONFLICT (crisis_id, cell_id) WHERE kind = 'cell' DO NOTHING RETURNING id::text",
        tenant,
        crisis_id,
        name[:120],
        cell,
    )
    return value


async def insert_channel(
    conn: Connection,
    *,
    tenant: str,
    crisis_id: str,
    kind: str,
    name: str,
    cell: str | None,
    direct_key: str | None,
    created_by: str,
    members: list[str],
) -> str | None:
    """A private or direct channel with its members; None when that direct conversation already exists."""
    channel_id: str | None = await conn.fetchval(
        "INSERT INTO channels (id, tenant_id, crisis_id, kind, name, cell_id, direct_key, created_by) "
        "VALUES (gen_random_uuid(), $1, $2, $3, $4, $5, $6, $7) "
        "ON CONFLICT (crisis_id, direct_key) WHERE kind = 'direct' DO NOTHING RETURNING id::text",
        tenant,
        crisis_id,
        kind,
        name,
        cell,
        direct_key,
        created_by,
    )
    if channel_id is not None:
        await add_members(conn, tenant, channel_id, members)
    return channel_id


async def direct_channel(conn: Connection, crisis_id: str, direct_key: str) -> str | None:
    value: str | None = await conn.fetchval(
        "SELECT id::text FROM channels WHERE crisis_id = $1 AND kind = 'direct' AND direct_key = $2",
        crisis_id,
        direct_key,
    )
    return value


async def add_members(conn: Connection, tenant: str, channel_id: str, users: list[str]) -> None:
    if users:
        await conn.execute(
            "INSERT INTO channel_members (channel_id, user_id, tenant_id) SELECT $1, unnest($2::uuid[]), $3 "
            "ON CONFLICT DO NOTHING",
            channel_id,
            users,
            tenant,
        )


async def remove_members(conn: Connection, channel_id: str, users: list[str]) -> None:
    if users:
        await conn.execute(
            "DELETE FROM channel_members WHERE channel_id = $1 AND user_id = ANY($2::uuid[])", channel_id, users
        )


async def channels(conn: Connection, crisis_id: str) -> list[Channel]:
    rows = await conn.fetch(f"SELECT {CHANNEL_COLUMNS} FROM channels c WHERE c.crisis_id = $1", crisis_id)  # noqa: S608 (only our column lists are formatted in)
    found = [Channel.of(r) for r in rows]
    found.sort(key=lambda c: (KIND_ORDER[c.kind.value], c.name, c.id))
    return found


async def channel(conn: Connection, channel_id: str, *, lock: bool = False) -> Channel | None:
    suffix = " FOR UPDATE OF c" if lock else ""
    row = await conn.fetchrow(f"SELECT {CHANNEL_COLUMNS} FROM channels c WHERE c.id = $1{suffix}", channel_id)  # noqa: S608 (only our column lists are formatted in)
    return Channel.of(row) if row else None


async def cell_ids(conn: Connection, crisis_id: str) -> set[str]:
    rows = await conn.fetch("SELECT cell_id::text FROM channels WHERE crisis_id = $1 AND kind = 'cell'", crisis_id)
    return {r["cell_id"] for r in rows}


async def bump(conn: Connection, channel_id: str, *, new_message: bool) -> tuple[int, int]:
    """Take the channel's next revision (and next message number): the row lock orders its writers."""
    row = await conn.fetchrow(
        "UPDATE channels SET last_rev = last_rev + 1, last_seq = last_seq + $2::int WHERE id = $1 "
        "RETURNING last_seq, last_rev",
        channel_id,
        1 if new_message else 0,
    )
    assert row is not None
    return int(row["last_seq"]), int(row["last_rev"])


# -- read markers ----------------------------------------------------------------------------------


async def read_markers(conn: Connection, user: str, channel_ids: list[str]) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT channel_id::text, seq FROM read_markers WHERE user_id = $1 AND channel_id = ANY($2::uuid[])",
        user,
        channel_ids,
    )
    return {r["channel_id"]: int(r["seq"]) for r in rows}


async def unread(
    conn: Connection, user: str, cells: list[str], markers: dict[str, int], channel_ids: list[str]
) -> dict[str, tuple[int, int]]:
    """(unread, unread mentions of me or my cells) per channel, others' live messages only."""
    rows = await conn.fetch(
        """SELECT m.channel_id::text AS channel,
                  count(*) AS unread,
                  count(*) FILTER (WHERE $2::uuid = ANY(m.mention_users) OR m.mention_cells && $3::uuid[]) AS mentions
           FROM unnest($4::uuid[], $5::bigint[]) AS v(channel_id, read_seq)
           JOIN messages m ON m.channel_id = v.channel_id AND m.seq > v.read_seq
           WHERE m.author_id <> $1::uuid AND m.redacted_at IS NULL
           GROUP BY m.channel_id""",
        user,
        user,
        cells,
        channel_ids,
        [markers.get(c, 0) for c in channel_ids],
    )
    return {r["channel"]: (int(r["unread"]), int(r["mentions"])) for r in rows}


async def set_read_marker(conn: Connection, tenant: str, channel_id: str, user: str, seq: int) -> int:
    """Markers only move forward; returns the marker as it now is."""
    value = await conn.fetchval(
        "INSERT INTO read_markers (channel_id, user_id, tenant_id, seq) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (channel_id, user_id) DO UPDATE SET seq = GREATEST(read_markers.seq, EXCLUDED.seq), "
        "updated_at = now() RETURNING seq",
        channel_id,
        user,
        tenant,
        seq,
    )
    return int(value)
