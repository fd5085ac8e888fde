"""SQL of the blind index: each message's keyed word hashes, the search over them, the wrapped keys."""

from __future__ import annotations

import asyncpg

from panicsafe.chat.store.messages import MESSAGE_COLUMNS
from panicsafe.core.db.database import Connection


async def index_terms(
    conn: Connection, tenant: str, crisis_id: str, channel_id: str, seq: int, posted: int, terms: list[bytes]
) -> None:
    if terms:
        await conn.execute(
            "INSERT INTO search_terms (tenant_id, crisis_id, term, posted, channel_id, seq) "
            "SELECT $1, $2, unnest($3::bytea[]), $4, $5, $6 ON CONFLICT DO NOTHING",
            tenant,
            crisis_id,
            terms,
            posted,
            channel_id,
            seq,
        )


async def unindex(conn: Connection, channel_id: str, seq: int) -> None:
    await conn.execute("DELETE FROM search_terms WHERE channel_id = $1 AND seq = $2", channel_id, seq)


async def search(
    conn: Connection, crisis_id: str, terms: list[bytes], channel_ids: list[str], limit: int
) -> list[asyncpg.Record]:
    """Messages of `channel_ids` holding every term, newest first."""
    return await conn.fetch(
        f"""WITH hits AS (
               SELECT channel_id, seq, max(posted) AS posted FROM search_terms
               WHERE crisis_id = $1 AND term = ANY($2::bytea[]) AND channel_id = ANY($3::uuid[])
               GROUP BY channel_id, seq HAVING count(*) = $4
               ORDER BY max(posted) DESC LIMIT $5)
           SELECT {MESSAGE_COLUMNS} FROM hits JOIN messages m USING (channel_id, seq)
           ORDER BY hits.posted DESC, m.seq DESC""",  # noqa: S608 (only our column lists are formatted in)
        crisis_id,
        terms,
        channel_ids,
        len(terms),
        limit,
    )


async def wrapped_key(conn: Connection, tenant: str) -> str | None:
    """The tenant's search key as its transit key wrapped it; None before the first one is stored."""
    value: str | None = await conn.fetchval("SELECT wrapped FROM search_keys WHERE tenant_id = $1", tenant)
    return value


async def insert_wrapped_key(conn: Connection, tenant: str, wrapped: str) -> None:
    """The first key stored for a tenant stays: a concurrent process' key is dropped."""
    await conn.execute(
        "INSERT INTO search_keys (tenant_id, wrapped) VALUES ($1, $2) ON CONFLICT DO NOTHING", tenant, wrapped
    )
