"""SQL of messages: their rows, kept versions, and the pages read from a channel."""

from __future__ import annotations

from typing import Any

import asyncpg

from panicsafe.contracts.chat import Attachment
from panicsafe.core.db.database import Connection

MESSAGE_COLUMNS = """id::text, channel_id::text, crisis_id::text, seq, rev, client_id, author_id::text,
    author_label, created_at, version, body, edited_at, redacted_at, redacted_by, reply_to::text,
    mention_users::text[], mention_cells::text[], attachments, pinned_at, pinned_by, marked_kind,
    marked_at, marked_by"""


async def message_by_client_id(conn: Connection, channel_id: str, author: str, client_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE channel_id = $1 AND author_id = $2 AND client_id = $3",  # noqa: S608 (only our column lists are formatted in)
        channel_id,
        author,
        client_id,
    )


async def message(conn: Connection, message_id: str, *, lock: bool = False) -> asyncpg.Record | None:
    suffix = " FOR UPDATE" if lock else ""
    return await conn.fetchrow(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1{suffix}", message_id)  # noqa: S608 (only our column lists are formatted in)


async def message_channel(conn: Connection, message_id: str) -> str | None:
    value: str | None = await conn.fetchval("SELECT channel_id::text FROM messages WHERE id = $1", message_id)
    return value


async def insert_message(
    conn: Connection,
    *,
    id: str,
    tenant: str,
    crisis_id: str,
    channel_id: str,
    seq: int,
    rev: int,
    client_id: str,
    author: str,
    author_label: str,
    body: bytes,
    reply_to: str | None,
    mention_users: list[str],
    mention_cells: list[str],
    attachments: list[Attachment],
) -> asyncpg.Record | None:
    """None when a concurrent retry stored the same client id first."""
    return await conn.fetchrow(
        f"""INSERT INTO messages (id, tenant_id, crisis_id, channel_id, seq, rev, client_id, author_id,
               author_label, body, reply_to, mention_users, mention_cells, attachments)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::uuid[], $13::uuid[], $14::jsonb)
           ON CONFLICT (channel_id, author_id, client_id) DO NOTHING
           RETURNING {MESSAGE_COLUMNS}""",  # noqa: S608 (only our column lists are formatted in)
        id,
        tenant,
        crisis_id,
        channel_id,
        seq,
        rev,
        client_id,
        author,
        author_label,
        body,
        reply_to,
        mention_users,
        mention_cells,
        [a.model_dump(mode="json") for a in attachments],
    )


async def update_message(conn: Connection, message_id: str, rev: int, assignments: str, *args: Any) -> asyncpg.Record:
    """`assignments` uses $3, $4, ...: a fixed SQL fragment of this module, never user input."""
    row = await conn.fetchrow(
        f"UPDATE messages SET rev = $2, {assignments} WHERE id = $1 RETURNING {MESSAGE_COLUMNS}",  # noqa: S608 (only our column lists are formatted in)
        message_id,
        rev,
        *args,
    )
    assert row is not None
    return row


async def keep_version(conn: Connection, tenant: str, row: asyncpg.Record, editor: str) -> None:
    """The text being replaced or redacted, kept sealed as it was (its own version number)."""
    await conn.execute(
        "INSERT INTO message_versions (message_id, tenant_id, version, body, edited_at, editor) "
        "VALUES ($1, $2, $3, $4, clock_timestamp(), $5) ON CONFLICT DO NOTHING",
        row["id"],
        tenant,
        row["version"],
        row["body"],
        editor,
    )


async def versions(conn: Connection, message_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT version, body, edited_at, editor FROM message_versions WHERE message_id = $1 ORDER BY version",
        message_id,
    )


async def history(
    conn: Connection, channel_id: str, *, after: int | None, before: int | None, limit: int
) -> list[asyncpg.Record]:
    if after is not None:
        return await conn.fetch(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE channel_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",  # noqa: S608 (only our column lists are formatted in)
            channel_id,
            after,
            limit,
        )
    return await conn.fetch(
        f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE channel_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3",  # noqa: S608 (only our column lists are formatted in)
        channel_id,
        before if before is not None else 2**62,
        limit,
    )


async def changes(conn: Connection, channel_id: str, after_rev: int, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE channel_id = $1 AND rev > $2 ORDER BY rev LIMIT $3",  # noqa: S608 (only our column lists are formatted in)
        channel_id,
        after_rev,
        limit,
    )


async def pinned(conn: Connection, channel_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE channel_id = $1 AND pinned_at IS NOT NULL ORDER BY seq",  # noqa: S608 (only our column lists are formatted in)
        channel_id,
    )
