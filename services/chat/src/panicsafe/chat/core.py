"""The chat's behaviour: channels, messages, edits, redactions, pins, marks, read markers, search.

`ChatCore` is built from a database, the tenant cipher and the search keys; the RPC handlers and the
event consumer call it, and tests drive it directly. Every operation decides need-to-know again from
the actor token (the gateway decided first) and writes its state change and its event in one
transaction (outbox), so nothing is half-written.
"""

from __future__ import annotations

import base64
import logging
import uuid
from typing import Any

import asyncpg

from panicsafe.chat import search as blind
from panicsafe.chat.domain import SendLimiter, Standing, standing
from panicsafe.chat.store import channels as channel_rows
from panicsafe.chat.store import messages as message_rows
from panicsafe.chat.store import search as search_rows
from panicsafe.chat.store.channels import Channel
from panicsafe.contracts import chat, gateway
from panicsafe.contracts.actor import Actor
from panicsafe.contracts.chat import (
    Attachment,
    Audience,
    CellRef,
    ChangesRequest,
    ChannelKind,
    ChannelList,
    ChannelRef,
    ChannelView,
    ChatEventData,
    CreateChannelRequest,
    CrisisRef,
    EditRequest,
    HistoryRequest,
    MarkRequest,
    MessagePage,
    MessageRef,
    MessageView,
    PinRequest,
    ProvisionRequest,
    ReadMarkerRequest,
    RedactRequest,
    SearchRequest,
    SendReply,
    SendRequest,
    SetMembersRequest,
    VersionsReply,
    VersionView,
    message_purpose,
)
from panicsafe.contracts.declarations import EventType
from panicsafe.contracts.errors import ErrorCode
from panicsafe.contracts.events import LOGBOOK_BODY_PURPOSE, NO_CRISIS, CloudEvent, LogbookKind, LogbookPart, Mode
from panicsafe.core.bus.outbox import append_event
from panicsafe.core.crypto import EnvelopeCipher
from panicsafe.core.db.database import Connection, Database
from panicsafe.core.errors import ServiceError, conflict, forbidden, invalid, not_found

log = logging.getLogger(__name__)

# Event ids of marks are derived from the message: a retried mark can only ever be one entry.
MARK_NAMESPACE = uuid.UUID("5b0f3f4e-6c1d-4c55-9a43-8f1d7a2e9c10")
KIND_LABELS = {
    LogbookKind.DECISION: "Décision",
    LogbookKind.FACT: "Fait",
    LogbookKind.ACTION: "Action",
    LogbookKind.COMMUNICATION: "Communication",
}
NO_CHANNEL = "Canal introuvable."


def rate_limited() -> ServiceError:
    return ServiceError(
        ErrorCode.RATE_LIMITED, "Trop de messages envoyés en peu de temps : patientez quelques secondes."
    )


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


class ChatCore:
    def __init__(
        self, db: Database, cipher: EnvelopeCipher, keys: blind.SearchKeys, limiter: SendLimiter | None = None
    ) -> None:
        self.db = db
        self.cipher = cipher
        self.keys = keys
        self.limiter = limiter or SendLimiter()

    # -- crises and their default channels --------------------------------------------------------

    async def provision(self, tenant: str, request: ProvisionRequest) -> int:
        """The crisis and its default channels (whole cell, one per cell, external), created once."""
        async with self.db.tenant(tenant) as conn:
            return await self.provision_in(conn, tenant, request)

    async def provision_in(self, conn: Connection, tenant: str, request: ProvisionRequest) -> int:
        await channel_rows.upsert_crisis(conn, tenant, request.crisis, request.mode.value)
        created: list[tuple[str, ChannelKind, str, str | None]] = []
        for kind, name in channel_rows.DEFAULT_CHANNELS:
            channel_id = await channel_rows.insert_default_channel(conn, tenant, request.crisis, kind.value, name)
            if channel_id:
                created.append((channel_id, kind, name, None))
        for cell in request.cells:
            channel_id = await channel_rows.insert_cell_channel(conn, tenant, request.crisis, cell.id, cell.name)
            if channel_id:
                created.append((channel_id, ChannelKind.CELL, cell.name, cell.id))
        for channel_id, kind, name, cell_id in created:
            data = ChatEventData(channel=channel_id, audience=Audience(kind=kind, cell=cell_id), channel_name=name)
            await self._event(conn, tenant, request.crisis, request.mode, None, chat.CHANNEL_CREATED, data)
        return len(created)

    async def close_crisis(self, conn: Connection, crisis: str) -> None:
        await channel_rows.close_crisis(conn, crisis)

    async def _crisis(self, conn: Connection, crisis: str) -> tuple[Mode, bool]:
        row = await channel_rows.crisis(conn, crisis)
        if row is None:
            raise not_found("Messagerie de cette crise pas encore prête.")
        return Mode(row["mode"]), bool(row["closed"])

    # -- channels ---------------------------------------------------------------------------------

    async def list_channels(self, actor: Actor, request: CrisisRef) -> ChannelList:
        me = standing(actor, request.crisis)
        async with self.db.tenant(actor.tenant) as conn:
            await self._crisis(conn, request.crisis)
            visible = [c for c in await channel_rows.channels(conn, request.crisis) if me.reads(c.audience)]
            ids = [c.id for c in visible]
            markers = await channel_rows.read_markers(conn, me.user, ids)
            counts = await channel_rows.unread(conn, me.user, sorted(me.cells), markers, ids)
        return ChannelList(
            channels=[self._channel_view(me, c, markers.get(c.id, 0), counts.get(c.id, (0, 0))) for c in visible]
        )

    def _channel_view(self, me: Standing, c: Channel, read_seq: int, counts: tuple[int, int]) -> ChannelView:
        return ChannelView(
            id=c.id,
            crisis=c.crisis,
            kind=c.kind,
            name=c.name,
            cell=c.cell,
            members=c.members,
            last_seq=c.last_seq,
            last_rev=c.last_rev,
            read_seq=read_seq,
            unread=counts[0],
            unread_mentions=counts[1],
            writable=me.may_write(c.audience),
            created_at=c.created_at,
        )

    async def create_channel(self, actor: Actor, request: CreateChannelRequest) -> ChannelView:
        """Private channels within one cell, and direct conversations; the gateway checked that the
        members belong to the crisis (and to the cell)."""
        me = standing(actor, request.crisis)
        if not me.writes:
            raise forbidden("Les observateurs lisent sans écrire.")
        members = sorted({*request.members, me.user})
        name = request.name.strip()
        direct_key = None
        if request.kind == ChannelKind.PRIVATE:
            if request.cell is None:
                raise invalid("Un canal privé appartient à une cellule.")
            if not (me.leads or request.cell in me.cells):
                raise forbidden("Créez un canal privé dans une de vos cellules.")
            if not name:
                raise invalid("Donnez un nom au canal.")
        elif request.kind == ChannelKind.DIRECT:
            if len(members) != 2 or request.cell is not None:
                raise invalid("Une conversation directe réunit deux personnes.")
            direct_key = ":".join(members)
            name = name or "Conversation directe"
        else:
            raise invalid("Seuls les canaux privés et les conversations directes se créent à la main.")
        async with self.db.tenant(actor.tenant) as conn:
            mode, closed = await self._crisis(conn, request.crisis)
            if closed:
                raise conflict("La crise est close.")
            if request.cell is not None and request.cell not in await channel_rows.cell_ids(conn, request.crisis):
                raise not_found("Cellule inconnue pour cette crise.")
            channel_id = await channel_rows.insert_channel(
                conn,
                tenant=actor.tenant,
                crisis_id=request.crisis,
                kind=request.kind.value,
                name=name[:120],
                cell=request.cell,
                direct_key=direct_key,
                created_by=me.user,
                members=members,
            )
            if channel_id is None:  # that direct conversation exists: the same one is returned
                assert direct_key is not None
                channel_id = await channel_rows.direct_channel(conn, request.crisis, direct_key)
                assert channel_id is not None
            else:
                created = await channel_rows.channel(conn, channel_id)
                assert created is not None
                data = ChatEventData(channel=channel_id, audience=created.audience, channel_name=created.name)
                await self._event(conn, actor.tenant, request.crisis, mode, me, chat.CHANNEL_CREATED, data)
            found = await channel_rows.channel(conn, channel_id)
        assert found is not None
        return self._channel_view(me, found, 0, (0, 0))

    async def get_channel(self, actor: Actor, request: ChannelRef) -> ChannelView:
        async with self.db.tenant(actor.tenant) as conn:
            channel, me = await self._readable(conn, actor, request.channel)
            markers = await channel_rows.read_markers(conn, me.user, [channel.id])
            counts = await channel_rows.unread(conn, me.user, sorted(me.cells), markers, [channel.id])
        return self._channel_view(me, channel, markers.get(channel.id, 0), counts.get(channel.id, (0, 0)))

    async def set_members(self, actor: Actor, request: SetMembersRequest) -> ChannelView:
        async with self.db.tenant(actor.tenant) as conn:
            channel, me = await self._readable(conn, actor, request.channel, lock=True)
            if channel.kind != ChannelKind.PRIVATE:
                raise invalid("Seuls les membres d'un canal privé se choisissent.")
            if not me.may_write(channel.audience):
                raise forbidden("Réservé aux membres du canal.")
            mode, _ = await self._crisis(conn, channel.crisis)
            await channel_rows.add_members(conn, actor.tenant, channel.id, sorted(set(request.add)))
            await channel_rows.remove_members(conn, channel.id, sorted(set(request.remove)))
            updated = await channel_rows.channel(conn, channel.id)
            assert updated is not None
            if not updated.members:
                raise invalid("Un canal privé garde au moins un membre.")
            data = ChatEventData(channel=channel.id, audience=updated.audience, channel_name=updated.name)
            await self._event(conn, actor.tenant, channel.crisis, mode, me, chat.CHANNEL_MEMBERS_CHANGED, data)
        return self._channel_view(me, updated, 0, (0, 0))

    async def _readable(
        self, conn: Connection, actor: Actor, channel_id: str, *, lock: bool = False
    ) -> tuple[Channel, Standing]:
        """The channel, if the actor may read it; an unknown channel and a hidden one look the same."""
        channel = await channel_rows.channel(conn, channel_id, lock=lock)
        if channel is None:
            raise not_found(NO_CHANNEL)
        membership = actor.membership(channel.crisis)
        if membership is None:
            raise not_found(NO_CHANNEL)
        me = standing(actor, channel.crisis)
        if not me.reads(channel.audience):
            raise forbidden("Ce canal est réservé à ses membres.")
        return channel, me

    async def _writable(
        self, conn: Connection, actor: Actor, channel_id: str, *, lock: bool = False
    ) -> tuple[Channel, Standing, Mode]:
        channel, me = await self._readable(conn, actor, channel_id, lock=lock)
        if not me.may_write(channel.audience):
            raise forbidden("Vous lisez ce canal sans pouvoir y écrire.")
        mode, closed = await self._crisis(conn, channel.crisis)
        if closed:
            raise conflict("La crise est close : la messagerie est en lecture seule.")
        return channel, me, mode

    # -- messages ---------------------------------------------------------------------------------

    async def send(self, actor: Actor, request: SendRequest) -> SendReply:
        tenant = actor.tenant
        async with self.db.tenant(tenant) as conn:
            channel, me, mode = await self._writable(conn, actor, request.channel)
            existing = await message_rows.message_by_client_id(conn, channel.id, me.user, request.client_id)
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
                if (
                    request.reply_to is not None
                    and await message_rows.message_channel(conn, request.reply_to) != channel.id
                ):
                    raise not_found("Le message auquel vous répondez n'est pas dans ce canal.")
                if request.mention_cells and not set(request.mention_cells) <= await channel_rows.cell_ids(
                    conn, channel.crisis
                ):
                    raise invalid("Cellule mentionnée inconnue pour cette crise.")
                seq, rev = await channel_rows.bump(conn, channel.id, new_message=True)
                row = await message_rows.insert_message(
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
                await self._event(conn, tenant, channel.crisis, mode, me, chat.MESSAGE_POSTED, data)
        except _Duplicate:
            async with self.db.tenant(tenant) as conn:
                again = await message_rows.message_by_client_id(conn, channel.id, me.user, request.client_id)
            assert again is not None
            return SendReply(message=view_of(again), duplicate=True)
        return SendReply(message=view, duplicate=False)

    async def _channel_of(self, conn: Connection, message_id: str) -> str:
        channel_id = await message_rows.message_channel(conn, message_id)
        if channel_id is None:
            raise not_found("Message introuvable.")
        return channel_id

    async def _message(
        self, conn: Connection, actor: Actor, message_id: str
    ) -> tuple[asyncpg.Record, Channel, Standing, Mode]:
        """A message to change, locked, in a channel the actor may write to."""
        channel, me, mode = await self._writable(conn, actor, await self._channel_of(conn, message_id), lock=True)
        row = await message_rows.message(conn, message_id, lock=True)
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
            await message_rows.keep_version(conn, tenant, row, me.label)
            _, rev = await channel_rows.bump(conn, channel.id, new_message=False)
            updated = await message_rows.update_message(
                conn, row["id"], rev, "version = $3, body = $4, edited_at = clock_timestamp()", version, body
            )
            await search_rows.unindex(conn, channel.id, row["seq"])
            terms = blind.terms(key, channel.crisis, blind.words(request.text))
            posted = int(row["created_at"].timestamp() * 1_000_000)
            await search_rows.index_terms(conn, tenant, channel.crisis, channel.id, row["seq"], posted, terms)
            return await self._changed(conn, tenant, channel, mode, me, chat.MESSAGE_EDITED, updated)

    async def redact(self, actor: Actor, request: RedactRequest) -> MessageView:
        tenant = actor.tenant
        async with self.db.tenant(tenant) as conn:
            row, channel, me, mode = await self._message(conn, actor, request.message)
            if row["author_id"] != me.user and not me.leads:
                raise forbidden("Seuls l'auteur et les responsables de crise retirent un message.")
            if row["redacted_at"] is not None:
                return view_of(row)
            await message_rows.keep_version(conn, tenant, row, me.label)
            _, rev = await channel_rows.bump(conn, channel.id, new_message=False)
            label = me.label + (f" ({request.reason.strip()})" if request.reason.strip() else "")
            updated = await message_rows.update_message(
                conn, row["id"], rev, "body = NULL, redacted_at = clock_timestamp(), redacted_by = $3", label[:300]
            )
            await search_rows.unindex(conn, channel.id, row["seq"])
            return await self._changed(conn, tenant, channel, mode, me, chat.MESSAGE_REDACTED, updated)

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
                updated = await message_rows.update_message(
                    conn, row["id"], rev, "pinned_at = clock_timestamp(), pinned_by = $3", me.label
                )
            else:
                updated = await message_rows.update_message(conn, row["id"], rev, "pinned_at = NULL, pinned_by = NULL")
            return await self._changed(conn, tenant, channel, mode, me, chat.MESSAGE_PINNED, updated)

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
            updated = await message_rows.update_message(
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
            await self._event(conn, tenant, channel.crisis, mode, me, chat.MESSAGE_MARKED, data, part, event_id)
            return view

    async def _changed(
        self,
        conn: Connection,
        tenant: str,
        channel: Channel,
        mode: Mode,
        me: Standing,
        kind: EventType[ChatEventData],
        row: asyncpg.Record,
    ) -> MessageView:
        view = view_of(row)
        data = ChatEventData(channel=channel.id, audience=channel.audience, message=view)
        await self._event(conn, tenant, channel.crisis, mode, me, kind, data)
        return view

    async def _event(
        self,
        conn: Connection,
        tenant: str,
        crisis: str,
        mode: Mode,
        me: Standing | None,
        kind: EventType[ChatEventData],
        data: ChatEventData,
        logbook: LogbookPart | None = None,
        event_id: str | None = None,
    ) -> None:
        fields: dict[str, Any] = {}
        if event_id is not None:
            fields["id"] = event_id
        await append_event(
            conn,
            kind.event(
                data,
                tenant=tenant,
                crisis=crisis,
                actor=me.user if me else None,
                mode=mode,
                logbook=logbook,
                **fields,
            ),
        )

    # -- reading ----------------------------------------------------------------------------------

    async def history(self, actor: Actor, request: HistoryRequest) -> MessagePage:
        async with self.db.tenant(actor.tenant) as conn:
            channel, _ = await self._readable(conn, actor, request.channel)
            rows = await message_rows.history(
                conn, channel.id, after=request.after, before=request.before, limit=request.first + 1
            )
        return MessagePage(messages=[view_of(r) for r in rows[: request.first]], has_more=len(rows) > request.first)

    async def changes(self, actor: Actor, request: ChangesRequest) -> MessagePage:
        async with self.db.tenant(actor.tenant) as conn:
            channel, _ = await self._readable(conn, actor, request.channel)
            rows = await message_rows.changes(conn, channel.id, request.after_rev, request.first + 1)
        return MessagePage(messages=[view_of(r) for r in rows[: request.first]], has_more=len(rows) > request.first)

    async def pinned(self, actor: Actor, request: ChannelRef) -> MessagePage:
        async with self.db.tenant(actor.tenant) as conn:
            channel, _ = await self._readable(conn, actor, request.channel)
            rows = await message_rows.pinned(conn, channel.id)
        return MessagePage(messages=[view_of(r) for r in rows], has_more=False)

    async def versions(self, actor: Actor, request: MessageRef) -> VersionsReply:
        """The edit history; that of a retracted message only for the crisis' leaders (evidence)."""
        async with self.db.tenant(actor.tenant) as conn:
            _, me = await self._readable(conn, actor, await self._channel_of(conn, request.message))
            row = await message_rows.message(conn, request.message)
            assert row is not None
            if row["redacted_at"] is not None and not me.leads:
                raise forbidden("L'historique d'un message retiré est réservé aux responsables de crise.")
            kept = await message_rows.versions(conn, row["id"])
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

    async def mark_read(self, actor: Actor, request: ReadMarkerRequest) -> ChannelView:
        async with self.db.tenant(actor.tenant) as conn:
            channel, me = await self._readable(conn, actor, request.channel)
            seq = await channel_rows.set_read_marker(
                conn, actor.tenant, channel.id, me.user, min(request.seq, channel.last_seq)
            )
            counts = await channel_rows.unread(conn, me.user, sorted(me.cells), {channel.id: seq}, [channel.id])
        return self._channel_view(me, channel, seq, counts.get(channel.id, (0, 0)))

    async def search(self, actor: Actor, request: SearchRequest) -> MessagePage:
        me = standing(actor, request.crisis)
        query_words = blind.words(request.text)
        if not query_words:
            raise invalid("Cherchez au moins un mot de deux lettres.")
        key = await self.keys.key(actor.tenant)
        terms = blind.terms(key, request.crisis, query_words)
        async with self.db.tenant(actor.tenant) as conn:
            visible = [c for c in await channel_rows.channels(conn, request.crisis) if me.reads(c.audience)]
            ids = [c.id for c in visible]
            if request.channel is not None:
                if request.channel not in ids:
                    raise not_found(NO_CHANNEL)
                ids = [request.channel]
            rows = await search_rows.search(conn, request.crisis, terms, ids, request.first + 1)
        return MessagePage(messages=[view_of(r) for r in rows[: request.first]], has_more=len(rows) > request.first)

    # -- events of the gateway ----------------------------------------------------------------------

    async def on_gateway_event(self, conn: Connection, event: CloudEvent) -> None:
        """Default channels when a crisis is declared, a channel when a cell is created, read-only when closed."""
        if event.crisisid == NO_CRISIS:
            return
        if gateway.CRISIS_DECLARED.matches(event) or gateway.CELL_CREATED.matches(event):
            cells = [CellRef(id=c["id"], name=c["name"], kind=c["kind"]) for c in event.data.get("cells") or []]
            request = ProvisionRequest(crisis=event.crisisid, mode=event.mode, cells=cells)
            await self.provision_in(conn, event.tenantid, request)
        elif gateway.CRISIS_CLOSED.matches(event):
            await self.close_crisis(conn, event.crisisid)


class _Duplicate(Exception):
    """A concurrent retry stored the same client id first: this transaction rolls back."""
