"""The crisis chat's GraphQL types, and the chat service's views turned into them.

Message text reaches the gateway sealed (from the service's replies and from events alike) and is
opened here, for the person being answered, with the tenant key: it never crosses the bus in clear on
its way out. Opened texts are kept briefly in memory so that a message fanned out to a hundred
subscribers is decrypted once.
"""

from __future__ import annotations

import base64
from collections import OrderedDict
from datetime import datetime
from enum import StrEnum

import strawberry

from panicsafe.contracts.chat import ChannelKind, ChannelView, MessagePage, MessageView, message_purpose
from panicsafe.core.errors import ServiceError
from panicsafe.gateway.graphql.common import GInfo, LogbookKind

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
