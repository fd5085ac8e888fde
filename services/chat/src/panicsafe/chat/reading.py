"""Reading a channel's messages: pages of history, changes since a revision, pins, kept versions.

Replies carry the sealed text (`body_sealed`), never the text: the gateway opens it for the person it
answers. `view_of` is the one conversion of a stored message to its wire form.
"""

from __future__ import annotations

import base64

import asyncpg

from panicsafe.chat import access
from panicsafe.chat.store import messages as store
from panicsafe.contracts.actor import Actor
from panicsafe.contracts.chat import (
    Attachment,
    ChangesRequest,
    ChannelRef,
    HistoryRequest,
    MessagePage,
    MessageRef,
    MessageView,
    VersionsReply,
    VersionView,
)
from panicsafe.contracts.events import LogbookKind
from panicsafe.core.db.database import Database
from panicsafe.core.errors import forbidden


def sealed_text(blob: bytes | None) -> str | None:
    return base64.b64encode(blob).decode() if blob is not None else None


def view_of(row: asyncpg.Record) -> MessageView:
    return MessageView(
        id=row["id"],
        channel=row["channel_id"],
        crisis=row["crisis_id"],
        seq=row["seq"],
        rev=row["rev"],
        client_id=row["client_id"],
        author_id=row["author_id"],
        author_label=row["author_label"],
        created_at=row["created_at"],
        version=row["version"],
        body_sealed=sealed_text(row["body"]),
        edited_at=row["edited_at"],
        redacted_at=row["redacted_at"],
        redacted_by=row["redacted_by"],
        reply_to=row["reply_to"],
        mention_users=list(row["mention_users"]),
        mention_cells=list(row["mention_cells"]),
        attachments=[Attachment.model_validate(a) for a in row["attachments"]],
        pinned_at=row["pinned_at"],
        pinned_by=row["pinned_by"],
        marked_kind=LogbookKind(row["marked_kind"]) if row["marked_kind"] else None,
        marked_at=row["marked_at"],
        marked_by=row["marked_by"],
    )


def page_of(rows: list[asyncpg.Record], first: int) -> MessagePage:
    """The first `first` rows; one more row fetched than asked says whether there are more."""
    return MessagePage(messages=[view_of(r) for r in rows[:first]], has_more=len(rows) > first)


class Reading:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def history(self, actor: Actor, request: HistoryRequest) -> MessagePage:
        async with self.db.tenant(actor.tenant) as conn:
            channel, _ = await access.readable(conn, actor, request.channel)
            rows = await store.history(
                conn, channel.id, after=request.after, before=request.before, limit=request.first + 1
            )
        return page_of(rows, request.first)

    async def changes(self, actor: Actor, request: ChangesRequest) -> MessagePage:
        async with self.db.tenant(actor.tenant) as conn:
            channel, _ = await access.readable(conn, actor, request.channel)
            rows = await store.changes(conn, channel.id, request.after_rev, request.first + 1)
        return page_of(rows, request.first)

    async def pinned(self, actor: Actor, request: ChannelRef) -> MessagePage:
        async with self.db.tenant(actor.tenant) as conn:
            channel, _ = await access.readable(conn, actor, request.channel)
            rows = await store.pinned(conn, channel.id)
        return MessagePage(messages=[view_of(r) for r in rows], has_more=False)

    async def versions(self, actor: Actor, request: MessageRef) -> VersionsReply:
        """The edit history; that of a retracted message only for the crisis' leaders (evidence)."""
        async with self.db.tenant(actor.tenant) as conn:
            _, me = await access.readable(conn, actor, await access.channel_of(conn, request.message))
            row = await store.message(conn, request.message)
            assert row is not None
            if row["redacted_at"] is not None and not me.leads:
                raise forbidden("L'historique d'un message retiré est réservé aux responsables de crise.")
            kept = await store.versions(conn, row["id"])
        versions = [
            VersionView(
                version=v["version"],
                body_sealed=base64.b64encode(v["body"]).decode(),
                edited_at=v["edited_at"],
                editor=v["editor"],
            )
            for v in kept
        ]
        return VersionsReply(message=view_of(row), versions=versions)
