"""Messages: send, edit, redact, pin, and mark into the main courante, each with its event.

A send carries a client id: the same author and id in a channel store one message, and a retry (even a
concurrent one) returns it with `duplicate: true`. Text is sealed with the tenant's envelope key
(record id = message id, purpose `chat-message/v<version>`) and indexed blind (`panicsafe.chat.search`).
"""

from __future__ import annotations

import base64
import uuid

import asyncpg

from panicsafe.chat import access
from panicsafe.chat import search as blind
from panicsafe.chat.domain import SendLimiter, Standing
from panicsafe.chat.reading import view_of
from panicsafe.chat.store import channels as channel_rows
from panicsafe.chat.store import messages as store
from panicsafe.chat.store import search as search_rows
from panicsafe.chat.store.channels import Channel
from panicsafe.contracts import chat
from panicsafe.contracts.actor import Actor
from panicsafe.contracts.chat import (
    ChatEventData,
    EditRequest,
    MarkRequest,
    MessageView,
    PinRequest,
    RedactRequest,
    SendReply,
    SendRequest,
    message_purpose,
)
from panicsafe.contracts.declarations import EventType
from panicsafe.contracts.errors import ErrorCode
from panicsafe.contracts.events import LOGBOOK_BODY_PURPOSE, LogbookKind, LogbookPart, Mode
from panicsafe.core.crypto import EnvelopeCipher
from panicsafe.core.db.database import Connection, Database
from panicsafe.core.errors import ServiceError, conflict, forbidden, invalid, not_found

# Event ids of marks are derived from the message: a retried mark can only ever be one entry.
MARK_NAMESPACE = uuid.UUID("5b0f3f4e-6c1d-4c55-9a43-8f1d7a2e9c10")
KIND_LABELS = {
    LogbookKind.DECISION: "Décision",
    LogbookKind.FACT: "Fait",
    LogbookKind.ACTION: "Action",
    LogbookKind.COMMUNICATION: "Communication",
}


def rate_limited() -> ServiceError:
    return ServiceError(
        ErrorCode.RATE_LIMITED, "Trop de messages envoyés en peu de temps : patientez quelques secondes."
    )


class Messages:
    def __init__(
        self, db: Database, cipher: EnvelopeCipher, keys: blind.SearchKeys, limiter: SendLimiter | None = None
    ) -> None:
        self.db = db
        self.cipher = cipher
        self.keys = keys
        self.limiter = limiter or SendLimiter()

    async def send(self, actor: Actor, request: SendRequest) -> SendReply:
        tenant = actor.tenant
        async with self.db.tenant(tenant) as conn:
            channel, me, mode = await access.writable(conn, actor, request.channel)
            existing = await store.message_by_client_id(conn, channel.id, me.user, request.client_id)
        if existing is not None:
            return SendReply(message=view_of(existing), duplicate=True)
        if not self.limiter.allow(f"{tenant}/{me.user}"):
            raise rate_limited()
        message_id = str(uuid.uuid4())
        body = await self.cipher.encrypt(tenant, message_id, request.text.encode(), purpose=message_purpose(1))
        key = await self.keys.key(tenant)
        terms = blind.terms(key, channel.crisis, blind.words(request.text))
        try:
            async with self.db.tenant(tenant) as conn:
                if request.reply_to is not None and await store.message_channel(conn, request.reply_to) != channel.id:
                    raise not_found("Le message auquel vous répondez n'est pas dans ce canal.")
                if request.mention_cells and not set(request.mention_cells) <= await channel_rows.cell_ids(
                    conn, channel.crisis
                ):
                    raise invalid("Cellule mentionnée inconnue pour cette crise.")
                seq, rev = await channel_rows.bump(conn, channel.id, new_message=True)
                row = await store.insert_message(
                    conn,
                    id=message_id,
                    tenant=tenant,
                    crisis_id=channel.crisis,
                    channel_id=channel.id,
                    seq=seq,
                    rev=rev,
                    client_id=request.client_id,
                    author=me.user,
                    author_label=me.label,
                    body=body,
                    reply_to=request.reply_to,
                    mention_users=sorted(set(request.mention_users)),
                    mention_cells=sorted(set(request.mention_cells)),
                    attachments=request.attachments,
                )
                if row is None:
                    raise _Duplicate
                posted = int(row["created_at"].timestamp() * 1_000_000)
                await search_rows.index_terms(conn, tenant, channel.crisis, channel.id, seq, posted, terms)
                view = view_of(row)
                data = ChatEventData(channel=channel.id, audience=channel.audience, message=view)
                await access.queue_event(conn, tenant, channel.crisis, mode, me, chat.MESSAGE_POSTED, data)
        except _Duplicate:
            async with self.db.tenant(tenant) as conn:
                again = await store.message_by_client_id(conn, channel.id, me.user, request.client_id)
            assert again is not None
            return SendReply(message=view_of(again), duplicate=True)
        return SendReply(message=view, duplicate=False)

    async def _message(
        self, conn: Connection, actor: Actor, message_id: str
    ) -> tuple[asyncpg.Record, Channel, Standing, Mode]:
        """A message to change, locked, in a channel the actor may write to."""
        channel_id = await access.channel_of(conn, message_id)
        channel, me, mode = await access.writable(conn, actor, channel_id, lock=True)
        row = await store.message(conn, message_id, lock=True)
        assert row is not None
        return row, channel, me, mode

    async def edit(self, actor: Actor, request: EditRequest) -> MessageView:
        tenant = actor.tenant
        key = await self.keys.key(tenant)
        async with self.db.tenant(tenant) as conn:
            row, channel, me, mode = await self._message(conn, actor, request.message)
            if row["author_id"] != me.user:
                raise forbidden("Seul l'auteur modifie son message.")
            if row["redacted_at"] is not None:
                raise conflict("Ce message a été retiré.")
            version = int(row["version"]) + 1
            body = await self.cipher.encrypt(tenant, row["id"], request.text.encode(), purpose=message_purpose(version))
            await store.keep_version(conn, tenant, row, me.label)
            _, rev = await channel_rows.bump(conn, channel.id, new_message=False)
            updated = await store.update_message(
                conn, row["id"], rev, "version = $3, body = $4, edited_at = clock_timestamp()", version, body
            )
            await search_rows.unindex(conn, channel.id, row["seq"])
            terms = blind.terms(key, channel.crisis, blind.words(request.text))
            posted = int(row["created_at"].timestamp() * 1_000_000)
            await search_rows.index_terms(conn, tenant, channel.crisis, channel.id, row["seq"], posted, terms)
            return await _changed(conn, tenant, channel, mode, me, chat.MESSAGE_EDITED, updated)

    async def redact(self, actor: Actor, request: RedactRequest) -> MessageView:
        tenant = actor.tenant
        async with self.db.tenant(tenant) as conn:
            row, channel, me, mode = await self._message(conn, actor, request.message)
            if row["author_id"] != me.user and not me.leads:
                raise forbidden("Seuls l'auteur et les responsables de crise retirent un message.")
            if row["redacted_at"] is not None:
                return view_of(row)
            await store.keep_version(conn, tenant, row, me.label)
            _, rev = await channel_rows.bump(conn, channel.id, new_message=False)
            label = me.label + (f" ({request.reason.strip()})" if request.reason.strip() else "")
            updated = await store.update_message(
                conn, row["id"], rev, "body = NULL, redacted_at = clock_timestamp(), redacted_by = $3", label[:300]
            )
            await search_rows.unindex(conn, channel.id, row["seq"])
            return await _changed(conn, tenant, channel, mode, me, chat.MESSAGE_REDACTED, updated)

    async def pin(self, actor: Actor, request: PinRequest) -> MessageView:
        tenant = actor.tenant
        async with self.db.tenant(tenant) as conn:
            row, channel, me, mode = await self._message(conn, actor, request.message)
            if row["redacted_at"] is not None and request.pinned:
                raise conflict("Ce message a été retiré.")
            if (row["pinned_at"] is not None) == request.pinned:
                return view_of(row)
            _, rev = await channel_rows.bump(conn, channel.id, new_message=False)
            if request.pinned:
                updated = await store.update_message(
                    conn, row["id"], rev, "pinned_at = clock_timestamp(), pinned_by = $3", me.label
                )
            else:
                updated = await store.update_message(conn, row["id"], rev, "pinned_at = NULL, pinned_by = NULL")
            return await _changed(conn, tenant, channel, mode, me, chat.MESSAGE_PINNED, updated)

    async def mark(self, actor: Actor, request: MarkRequest) -> MessageView:
        """Into the main courante: one event with a logbook part, whose id derives from the message."""
        tenant = actor.tenant
        async with self.db.tenant(tenant) as conn:
            row, channel, me, mode = await self._message(conn, actor, request.message)
            if row["redacted_at"] is not None:
                raise conflict("Ce message a été retiré.")
            if row["marked_kind"] is not None:
                if row["marked_kind"] == request.kind.value:
                    return view_of(row)  # already in the main courante: once is enough
                raise conflict(f"Ce message est déjà inscrit à la main courante ({row['marked_kind']}).")
            text = await self.cipher.decrypt(tenant, row["id"], row["body"], purpose=message_purpose(row["version"]))
            _, rev = await channel_rows.bump(conn, channel.id, new_message=False)
            updated = await store.update_message(
                conn,
                row["id"],
                rev,
                "marked_kind = $3, marked_at = clock_timestamp(), marked_by = $4",
                request.kind.value,
                me.label,
            )
            event_id = str(uuid.uuid5(MARK_NAMESPACE, row["id"]))
            sealed = await self.cipher.encrypt(tenant, event_id, text, purpose=LOGBOOK_BODY_PURPOSE)
            summary = (
                f"{KIND_LABELS[request.kind]} : message de {row['author_label']} (canal « {channel.name} ») "
                f"inscrit à la main courante par {me.label}."
            )
            part = LogbookPart(
                kind=request.kind,
                summary=summary[:500],
                author=me.label[:200],
                cell=channel.cell,
                occurred_at=row["created_at"],
                links={"message": row["id"], "channel": channel.id},
                body_sealed=base64.b64encode(sealed).decode(),
            )
            view = view_of(updated)
            data = ChatEventData(channel=channel.id, audience=channel.audience, message=view)
            await access.queue_event(conn, tenant, channel.crisis, mode, me, chat.MESSAGE_MARKED, data, part, event_id)
            return view


async def _changed(
    conn: Connection,
    tenant: str,
    channel: Channel,
    mode: Mode,
    me: Standing,
    kind: EventType[ChatEventData],
    row: asyncpg.Record,
) -> MessageView:
    """The changed message's view, its event queued."""
    view = view_of(row)
    data = ChatEventData(channel=channel.id, audience=channel.audience, message=view)
    await access.queue_event(conn, tenant, channel.crisis, mode, me, kind, data)
    return view


class _Duplicate(Exception):
    """A concurrent retry stored the same client id first: this transaction rolls back."""
