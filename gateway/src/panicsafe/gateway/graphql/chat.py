"""The crisis chat through the gateway: channels, messages, search, and a live feed that resumes.

The gateway decides first with the policy module, then calls the chat service with a fresh actor
token; the service decides need-to-know again. Message text reaches the gateway sealed (from the
service's replies and from events alike) and is opened here, for the person being answered, with the
tenant key: it never crosses the bus in clear on its way out. Opened texts are kept briefly in memory
so that a message fanned out to a hundred subscribers is decrypted once.
"""

from __future__ import annotations

import base64
import contextlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

import strawberry
from pydantic import ValidationError

from panicsafe.contracts import chat
from panicsafe.contracts.chat import (
    Attachment,
    Audience,
    ChangesRequest,
    ChannelKind,
    ChannelList,
    ChannelRef,
    ChannelView,
    ChatEventData,
    CreateChannelRequest,
    CrisisRef,
    HistoryRequest,
    MessagePage,
    MessageRef,
    MessageView,
    ProvisionRequest,
    ReadMarkerRequest,
    SearchRequest,
    SendRequest,
    SetMembersRequest,
    may_read,
    message_purpose,
)
from panicsafe.contracts.chat import CellRef as CellRefModel
from panicsafe.contracts.declarations import Operation, Rep, Req
from panicsafe.contracts.errors import ErrorCode
from panicsafe.contracts.events import CloudEvent, Mode
from panicsafe.core.errors import ServiceError, forbidden, invalid, not_found
from panicsafe.gateway.domain.models import LEADING_ROLES
from panicsafe.gateway.domain.policy import Principal
from panicsafe.gateway.graphql.common import GInfo, LogbookKind, validated
from panicsafe.gateway.store import tenancy

LEADING = frozenset(r.value for r in LEADING_ROLES)
MAX_RESUME_PAGES = 50  # 10,000 changes per channel; beyond, the client reloads the history

strawberry.enum(ChannelKind, name="ChatChannelKind", description="Nature d'un canal de discussion.")


@strawberry.enum(description="Ce qui arrive à un message (ou à un canal) dans le flux en direct.")
class ChatUpdateKind(StrEnum):
    POSTED = "posted"
    EDITED = "edited"
    REDACTED = "redacted"
    PINNED = "pinned"
    MARKED = "marked"
    SYNCED = "synced"  # a message as it is now, delivered on resuming
    CHANNEL = "channel"  # a channel was opened or its members changed


KINDS = {
    chat.MESSAGE_POSTED.type: ChatUpdateKind.POSTED,
    chat.MESSAGE_EDITED.type: ChatUpdateKind.EDITED,
    chat.MESSAGE_REDACTED.type: ChatUpdateKind.REDACTED,
    chat.MESSAGE_PINNED.type: ChatUpdateKind.PINNED,
    chat.MESSAGE_MARKED.type: ChatUpdateKind.MARKED,
    chat.CHANNEL_CREATED.type: ChatUpdateKind.CHANNEL,
    chat.CHANNEL_MEMBERS_CHANGED.type: ChatUpdateKind.CHANNEL,
}


@strawberry.type(description="Un canal de la crise, avec ce qui n'a pas été lu.")
class ChatChannel:
    id: strawberry.ID
    kind: ChannelKind
    name: str
    cell_id: strawberry.ID | None
    member_ids: list[strawberry.ID]
    last_seq: int
    last_rev: int = strawberry.field(description="Dernière révision : reprendre le flux à partir d'elle.")
    read_seq: int
    unread: int
    unread_mentions: int
    writable: bool


@strawberry.type(description="Une pièce jointe : une version d'un document du coffre.")
class ChatAttachment:
    document_id: strawberry.ID
    version: int
    title: str


@strawberry.type(description="Un message. Un message retiré garde sa place (texte nul, retiré par qui et quand).")
class ChatMessage:
    id: strawberry.ID
    channel_id: strawberry.ID
    seq: int
    rev: int
    client_id: str
    author_id: strawberry.ID | None
    author: str
    created_at: datetime
    version: int
    text: str | None
    edited_at: datetime | None
    redacted_at: datetime | None
    redacted_by: str | None
    reply_to: strawberry.ID | None
    mention_user_ids: list[strawberry.ID]
    mention_cell_ids: list[strawberry.ID]
    attachments: list[ChatAttachment]
    pinned_at: datetime | None
    pinned_by: str | None
    marked_kind: LogbookKind | None
    marked_at: datetime | None
    marked_by: str | None


@strawberry.type
class ChatMessagePage:
    messages: list[ChatMessage]
    has_more: bool


@strawberry.type(description="Le message enregistré ; `duplicate` si ce clientId l'était déjà (rien de nouveau).")
class SendMessageResult:
    message: ChatMessage
    duplicate: bool


@strawberry.type(description="Une version antérieure d'un message.")
class ChatMessageVersion:
    version: int
    text: str | None
    edited_at: datetime
    editor: str


@strawberry.type(description="Un changement dans la messagerie de la crise.")
class ChatUpdate:
    kind: ChatUpdateKind
    channel_id: strawberry.ID
    message: ChatMessage | None
    channel_name: str | None


@strawberry.input(description="Où reprendre un canal : la dernière révision reçue.")
class ChannelCursor:
    channel_id: strawberry.ID
    after_rev: int


@strawberry.input
class AttachmentInput:
    document_id: strawberry.ID
    version: int
    title: str = ""


@strawberry.input(description="Un message ; clientId (8 à 64 caractères) rend un nouvel envoi sans effet.")
class SendMessageInput:
    channel_id: strawberry.ID
    client_id: str
    text: str
    reply_to: strawberry.ID | None = None
    mention_user_ids: list[strawberry.ID] | None = None
    mention_cell_ids: list[strawberry.ID] | None = None
    attachments: list[AttachmentInput] | None = None


# -- opening sealed texts --------------------------------------------------------------------------


class OpenedTexts:
    """Texts opened recently, by (tenant, message, version): one decryption per message per process."""

    def __init__(self, size: int = 2048) -> None:
        self.size = size
        self._texts: OrderedDict[tuple[str, str, int], str | None] = OrderedDict()

    async def text(self, info: GInfo, tenant: str, view: MessageView) -> str | None:
        if view.body_sealed is None:
            return None
        key = (tenant, view.id, view.version)
        if key in self._texts:
            self._texts.move_to_end(key)
            return self._texts[key]
        text = await open_text(info, tenant, view.id, view.version, view.body_sealed)
        self._texts[key] = text
        while len(self._texts) > self.size:
            self._texts.popitem(last=False)
        return text


OPENED = OpenedTexts()


async def open_text(info: GInfo, tenant: str, message_id: str, version: int, sealed: str) -> str | None:
    """None when it cannot be opened (the tenant was shredded, or the ciphertext altered)."""
    try:
        blob = base64.b64decode(sealed)
        plain = await info.context.services.auth.cipher.decrypt(
            tenant, message_id, blob, purpose=message_purpose(version)
        )
        return plain.decode()
    except (ServiceError, ValueError):
        return None


async def message(info: GInfo, tenant: str, view: MessageView) -> ChatMessage:
    return ChatMessage(
        id=strawberry.ID(view.id),
        channel_id=strawberry.ID(view.channel),
        seq=view.seq,
        rev=view.rev,
        client_id=view.client_id,
        author_id=strawberry.ID(view.author_id) if view.author_id else None,
        author=view.author_label,
        created_at=view.created_at,
        version=view.version,
        text=await OPENED.text(info, tenant, view),
        edited_at=view.edited_at,
        redacted_at=view.redacted_at,
        redacted_by=view.redacted_by,
        reply_to=strawberry.ID(view.reply_to) if view.reply_to else None,
        mention_user_ids=[strawberry.ID(u) for u in view.mention_users],
        mention_cell_ids=[strawberry.ID(c) for c in view.mention_cells],
        attachments=[
            ChatAttachment(document_id=strawberry.ID(a.document), version=a.version, title=a.title)
            for a in view.attachments
        ],
        pinned_at=view.pinned_at,
        pinned_by=view.pinned_by,
        marked_kind=view.marked_kind,
        marked_at=view.marked_at,
        marked_by=view.marked_by,
    )


async def page(info: GInfo, tenant: str, result: MessagePage) -> ChatMessagePage:
    return ChatMessagePage(messages=[await message(info, tenant, m) for m in result.messages], has_more=result.has_more)


def channel(view: ChannelView) -> ChatChannel:
    return ChatChannel(
        id=strawberry.ID(view.id),
        kind=view.kind,
        name=view.name,
        cell_id=strawberry.ID(view.cell) if view.cell else None,
        member_ids=[strawberry.ID(m) for m in view.members],
        last_seq=view.last_seq,
        last_rev=view.last_rev,
        read_seq=view.read_seq,
        unread=view.unread,
        unread_mentions=view.unread_mentions,
        writable=view.writable,
    )


# -- calls -----------------------------------------------------------------------------------------


async def _call(info: GInfo, principal: Principal, operation: Operation[Req, Rep], request: Req) -> Rep:
    return await info.context.services.call(principal, operation, request)


async def list_channels(info: GInfo, principal: Principal, crisis_id: str) -> list[ChatChannel]:
    request = CrisisRef(crisis=crisis_id)
    try:
        found = await _call(info, principal, chat.CHANNELS, request)
    except ServiceError as exc:
        if exc.code != ErrorCode.NOT_FOUND:
            raise
        found = await provision(info, principal, crisis_id)  # declared an instant ago: open it now
    return [channel(c) for c in found.channels]


async def provision(info: GInfo, principal: Principal, crisis_id: str) -> ChannelList:
    async with info.context.services.db.tenant(principal.tenant_id) as conn:
        row = await tenancy.crisis(conn, crisis_id)
        if row is None:
            raise forbidden("Vous n'êtes pas membre de cette crise.")
        cells = await tenancy.cells(conn, crisis_id)
    request = ProvisionRequest(
        crisis=crisis_id,
        mode=Mode(row["mode"]),
        cells=[CellRefModel(id=str(c["id"]), name=c["name"], kind=c["kind"]) for c in cells],
    )
    return await _call(info, principal, chat.PROVISION, request)


async def send(info: GInfo, principal: Principal, data: SendMessageInput) -> SendMessageResult:
    request = validated(
        lambda: SendRequest(
            channel=str(data.channel_id),
            client_id=data.client_id,
            text=data.text,
            reply_to=str(data.reply_to) if data.reply_to else None,
            mention_users=[str(u) for u in data.mention_user_ids or []],
            mention_cells=[str(c) for c in data.mention_cell_ids or []],
            attachments=[
                Attachment(document=str(a.document_id), version=a.version, title=a.title)
                for a in data.attachments or []
            ],
        )
    )
    reply = await _call(info, principal, chat.SEND, request)
    return SendMessageResult(message=await message(info, principal.tenant_id, reply.message), duplicate=reply.duplicate)


async def change(
    info: GInfo, principal: Principal, operation: Operation[Req, MessageView], build: Callable[[], Req]
) -> ChatMessage:
    view = await _call(info, principal, operation, validated(build))
    return await message(info, principal.tenant_id, view)


async def history(
    info: GInfo, principal: Principal, channel_id: str, before: int | None, after: int | None, first: int
) -> ChatMessagePage:
    request = validated(lambda: HistoryRequest(channel=channel_id, before=before, after=after, first=first))
    return await page(info, principal.tenant_id, await _call(info, principal, chat.HISTORY, request))


async def pinned(info: GInfo, principal: Principal, channel_id: str) -> list[ChatMessage]:
    request = validated(lambda: ChannelRef(channel=channel_id))
    result = await _call(info, principal, chat.PINNED, request)
    return [await message(info, principal.tenant_id, m) for m in result.messages]


async def search(
    info: GInfo, principal: Principal, crisis_id: str, text: str, channel_id: str | None, first: int
) -> ChatMessagePage:
    request = validated(lambda: SearchRequest(crisis=crisis_id, text=text, channel=channel_id, first=first))
    return await page(info, principal.tenant_id, await _call(info, principal, chat.SEARCH, request))


async def versions(info: GInfo, principal: Principal, message_id: str) -> list[ChatMessageVersion]:
    request = validated(lambda: MessageRef(message=message_id))
    reply = await _call(info, principal, chat.VERSIONS, request)
    out = [
        ChatMessageVersion(
            version=v.version,
            text=await open_text(info, principal.tenant_id, reply.message.id, v.version, v.body_sealed),
            edited_at=v.edited_at,
            editor=v.editor,
        )
        for v in reply.versions
    ]
    current = reply.message
    if current.body_sealed is not None:
        out.append(
            ChatMessageVersion(
                version=current.version,
                text=await OPENED.text(info, principal.tenant_id, current),
                edited_at=current.edited_at or current.created_at,
                editor=current.author_label,
            )
        )
    return out


async def mark_read(info: GInfo, principal: Principal, channel_id: str, seq: int) -> ChatChannel:
    request = validated(lambda: ReadMarkerRequest(channel=channel_id, seq=seq))
    return channel(await _call(info, principal, chat.MARK_READ, request))


async def _crisis_members(info: GInfo, principal: Principal, crisis_id: str) -> dict[str, Any]:
    async with info.context.services.db.tenant(principal.tenant_id) as conn:
        return {str(m["user_id"]): m for m in await tenancy.members(conn, crisis_id)}


async def create_private(
    info: GInfo, principal: Principal, crisis_id: str, cell_id: str, name: str, member_ids: Sequence[str]
) -> ChatChannel:
    """Every member must belong to the crisis and to the cell (the crisis' leaders always may)."""
    members = await _crisis_members(info, principal, crisis_id)
    wanted = {str(m) for m in member_ids}
    for user in wanted:
        row = members.get(user)
        if row is None:
            raise not_found("Personne introuvable dans cette crise.")
        if row["role"] not in LEADING and cell_id not in row["cells"]:
            raise invalid("Chaque membre d'un canal privé appartient à sa cellule.")
    request = validated(
        lambda: CreateChannelRequest(
            crisis=crisis_id, kind=ChannelKind.PRIVATE, name=name, cell=cell_id, members=sorted(wanted)
        )
    )
    return channel(await _call(info, principal, chat.CREATE_CHANNEL, request))


async def open_direct(info: GInfo, principal: Principal, crisis_id: str, user_id: str) -> ChatChannel:
    members = await _crisis_members(info, principal, crisis_id)
    other = members.get(user_id)
    if other is None or user_id == principal.user_id:
        raise not_found("Personne introuvable dans cette crise.")
    name = f"{principal.display_name} et {other['display_name']}"
    request = validated(
        lambda: CreateChannelRequest(crisis=crisis_id, kind=ChannelKind.DIRECT, name=name[:120], members=[user_id])
    )
    return channel(await _call(info, principal, chat.CREATE_CHANNEL, request))


async def set_members(
    info: GInfo, principal: Principal, channel_id: str, add: Sequence[str], remove: Sequence[str]
) -> ChatChannel:
    """Whoever is added must belong to the crisis and to the channel's cell (or lead the crisis)."""
    request = validated(
        lambda: SetMembersRequest(channel=channel_id, add=[str(a) for a in add], remove=[str(r) for r in remove])
    )
    if request.add:
        current = await _call(info, principal, chat.CHANNEL, ChannelRef(channel=request.channel))
        members = await _crisis_members(info, principal, current.crisis)
        for user in request.add:
            row = members.get(user)
            if row is None:
                raise not_found("Personne introuvable dans cette crise.")
            if row["role"] not in LEADING and current.cell not in row["cells"]:
                raise invalid("Chaque membre d'un canal privé appartient à sa cellule.")
    return channel(await _call(info, principal, chat.SET_MEMBERS, request))


# -- the live feed ---------------------------------------------------------------------------------


class ParsedEvents:
    """Chat events parsed once per process, however many subscribers they go to."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._parsed: OrderedDict[str, ChatEventData | None] = OrderedDict()

    def of(self, event: CloudEvent) -> ChatEventData | None:
        if event.id in self._parsed:
            return self._parsed[event.id]
        data: ChatEventData | None = None
        with contextlib.suppress(ValidationError):
            data = ChatEventData.model_validate(event.data)
        self._parsed[event.id] = data
        while len(self._parsed) > self.size:
            self._parsed.popitem(last=False)
        return data


PARSED = ParsedEvents()


def reads(principal: Principal, crisis: str, audience: Audience) -> bool:
    access = principal.access(crisis)
    if access is None:
        return False
    return may_read(principal.user_id, {access.role.value}, set(access.cells), audience)


def resume_backlog(info: GInfo, cursors: Sequence[ChannelCursor], delivered: dict[str, int]) -> Any:
    """What the client missed on each channel it names, as the messages now are; `delivered` keeps
    the last revision handed over per channel, so that live events already covered are skipped."""

    async def backlog(principal: Principal, crisis: str) -> list[ChatUpdate]:
        out: list[ChatUpdate] = []
        for cursor in cursors:
            channel_id, after = str(cursor.channel_id), max(0, cursor.after_rev)
            for _ in range(MAX_RESUME_PAGES):
                request = validated(lambda c=channel_id, a=after: ChangesRequest(channel=c, after_rev=a))  # type: ignore[misc]
                try:
                    result = await _call(info, principal, chat.CHANGES, request)
                except ServiceError as exc:
                    # A channel one no longer reads (or never could): nothing to resume there, the
                    # others still are.
                    if exc.code in (ErrorCode.FORBIDDEN, ErrorCode.NOT_FOUND):
                        break
                    raise
                if any(view.crisis != crisis for view in result.messages):
                    break  # a channel of another crisis: not this feed's
                for view in result.messages:
                    out.append(
                        ChatUpdate(
                            kind=ChatUpdateKind.SYNCED,
                            channel_id=strawberry.ID(channel_id),
                            message=await message(info, principal.tenant_id, view),
                            channel_name=None,
                        )
                    )
                    after = view.rev
                if not result.has_more:
                    break
            delivered[channel_id] = after
        return out

    return backlog


async def live_update(
    info: GInfo, principal: Principal, crisis: str, event: CloudEvent, delivered: dict[str, int]
) -> ChatUpdate | None:
    """The update this principal may see of a live event, or None (someone else's channel, or already sent)."""
    kind = KINDS.get(event.type)
    data = PARSED.of(event)
    if kind is None or data is None or not reads(principal, crisis, data.audience):
        return None
    view = data.message
    if view is not None:
        if view.rev <= delivered.get(data.channel, 0):
            return None
        delivered[data.channel] = view.rev
    return ChatUpdate(
        kind=kind,
        channel_id=strawberry.ID(data.channel),
        message=await message(info, principal.tenant_id, view) if view is not None else None,
        channel_name=data.channel_name,
    )
