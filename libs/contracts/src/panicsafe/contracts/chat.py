"""RPC models and event data of the chat service (`rpc.chat.<operation>`, `evt.<t>.<c>.chat.<type>`).

Message text never travels in clear on the bus or lies in clear in the database: the chat service
seals it under the tenant key (record id = message id, purpose `message_purpose(version)`) and every
view carries the ciphertext (`body_sealed`, base64); the gateway opens it for the person it answers.

Two counters per channel: `seq` numbers messages (one total order, never reused), `rev` numbers
changes (a post, an edit, a redaction, a pin, a mark). A client that keeps the last `rev` it applied
per channel resumes with `ChangesRequest` and misses nothing.

Who reads and writes a channel is decided by `may_read` / `may_write` from the crisis roles and cells
of the person (the actor token's membership), here once for the service and the gateway alike.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, field_validator

from panicsafe.contracts import gateway
from panicsafe.contracts.actor import LEADING_ROLES as LEADING
from panicsafe.contracts.actor import LIMITED_ROLES as LIMITED
from panicsafe.contracts.actor import READ_ONLY_ROLES as READ_ONLY
from panicsafe.contracts.declarations import EventType, Operation, Subscription
from panicsafe.contracts.events import LogbookKind, Mode, Uuid

MAX_TEXT = 10_000
MAX_PAGE = 200
MAX_SEARCH_RESULTS = 50
MAX_MENTIONS = 50
MAX_ATTACHMENTS = 10
CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


def message_purpose(version: int) -> str:
    """The sealing purpose of version `version` of a message's text (an old version cannot pass for the current one)."""
    return f"chat-message/v{version}"


class ChannelKind(StrEnum):
    CRISIS = "crisis"  # the whole crisis cell: every member but the limited roles
    CELL = "cell"  # one cell: its members and the crisis' leaders
    EXTERNAL = "external"  # liaisons with the outside: every member of the crisis
    PRIVATE = "private"  # some members of one cell
    DIRECT = "direct"  # two members


class Audience(BaseModel):
    """Who may read a channel: enough to decide without asking the chat service again."""

    kind: ChannelKind
    cell: str | None = None
    members: list[str] = Field(default_factory=list)


def may_read(
    user_id: str, roles: frozenset[str] | set[str], cells: frozenset[str] | set[str], audience: Audience
) -> bool:
    """Need-to-know on a channel, from the person's roles and cells in the channel's crisis."""
    if not roles:
        return False
    leading = bool(roles & LEADING)
    limited = roles <= LIMITED
    kind = audience.kind
    if kind == ChannelKind.CRISIS:
        return not limited
    if kind == ChannelKind.EXTERNAL:
        return True
    if kind == ChannelKind.CELL:
        return leading or (audience.cell is not None and audience.cell in cells)
    if kind == ChannelKind.PRIVATE:
        in_cell = leading or (audience.cell is not None and audience.cell in cells)
        return in_cell and user_id in audience.members
    return user_id in audience.members  # direct


def may_write(
    user_id: str, roles: frozenset[str] | set[str], cells: frozenset[str] | set[str], audience: Audience
) -> bool:
    return bool(roles - READ_ONLY) and may_read(user_id, roles, cells, audience)


class Attachment(BaseModel):
    """A document version of the vault, by reference (the vault decides who may open it)."""

    document: Uuid
    version: int = Field(ge=1)
    title: str = Field(default="", max_length=200)


class CellRef(BaseModel):
    id: Uuid
    name: str = Field(min_length=1, max_length=120)
    kind: str = Field(default="custom", max_length=40)


class CrisisRef(BaseModel):
    crisis: Uuid


class ProvisionRequest(CrisisRef):
    """The gateway's view of a crisis, so that its default channels exist before anyone asks."""

    mode: Mode = Mode.REAL
    cells: list[CellRef] = Field(default_factory=list, max_length=200)


class ChannelView(BaseModel):
    id: str
    crisis: str
    kind: ChannelKind
    name: str
    cell: str | None
    members: list[str]
    last_seq: int
    last_rev: int
    read_seq: int
    unread: int
    unread_mentions: int
    writable: bool
    created_at: datetime


class ChannelList(BaseModel):
    channels: list[ChannelView]


class CreateChannelRequest(CrisisRef):
    """A private channel within one cell, or a direct conversation with one other member."""

    kind: ChannelKind
    name: str = Field(default="", max_length=120)
    cell: Uuid | None = None
    members: list[Uuid] = Field(default_factory=list, max_length=100)


class ChannelRef(BaseModel):
    channel: Uuid


class SetMembersRequest(ChannelRef):
    add: list[Uuid] = Field(default_factory=list, max_length=100)
    remove: list[Uuid] = Field(default_factory=list, max_length=100)


class SendRequest(ChannelRef):
    """`client_id` makes a retry harmless: the same author and id in a channel store one message."""

    client_id: str
    text: str
    reply_to: Uuid | None = None
    mention_users: list[Uuid] = Field(default_factory=list, max_length=MAX_MENTIONS)
    mention_cells: list[Uuid] = Field(default_factory=list, max_length=MAX_MENTIONS)
    attachments: list[Attachment] = Field(default_factory=list, max_length=MAX_ATTACHMENTS)

    @field_validator("client_id")
    @classmethod
    def _client_id(cls, value: str) -> str:
        if not CLIENT_ID_RE.match(value):
            raise ValueError("8 to 64 letters, digits, '-' or '_'")
        return value

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        return check_text(value)


def check_text(value: str) -> str:
    if not value.strip():
        raise ValueError("le message est vide")
    if len(value) > MAX_TEXT:
        raise ValueError(f"le message dépasse {MAX_TEXT} caractères")
    return value


class MessageRef(BaseModel):
    message: Uuid


class EditRequest(MessageRef):
    text: str

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        return check_text(value)


class RedactRequest(MessageRef):
    reason: str = Field(default="", max_length=200)


class PinRequest(MessageRef):
    pinned: bool = True


class MarkRequest(MessageRef):
    """Put a message into the main courante as a decision, fact, action or communication."""

    kind: LogbookKind

    @field_validator("kind")
    @classmethod
    def _not_system(cls, value: LogbookKind) -> LogbookKind:
        if value == LogbookKind.SYSTEM:
            raise ValueError("a member marks a decision, fact, action or communication")
        return value


class ReadMarkerRequest(ChannelRef):
    seq: int = Field(ge=0)


class MessageView(BaseModel):
    id: str
    channel: str
    crisis: str
    seq: int
    rev: int
    client_id: str
    author_id: str | None
    author_label: str
    created_at: datetime
    version: int
    body_sealed: str | None = Field(default=None, description="base64 envelope of the current text; None once redacted")
    edited_at: datetime | None = None
    redacted_at: datetime | None = None
    redacted_by: str | None = None
    reply_to: str | None = None
    mention_users: list[str] = Field(default_factory=list)
    mention_cells: list[str] = Field(default_factory=list)
    attachments: list[Attachment] = Field(default_factory=list)
    pinned_at: datetime | None = None
    pinned_by: str | None = None
    marked_kind: LogbookKind | None = None
    marked_at: datetime | None = None
    marked_by: str | None = None


class SendReply(BaseModel):
    message: MessageView
    duplicate: bool = Field(description="True when this client id was already stored: nothing new was written")


class HistoryRequest(ChannelRef):
    """Messages by seq: newest first before `before`, or oldest first after `after`."""

    after: int | None = Field(default=None, ge=0)
    before: int | None = Field(default=None, ge=1)
    first: int = Field(default=50, ge=1, le=MAX_PAGE)


class ChangesRequest(ChannelRef):
    """Every message that changed after revision `after_rev`, in revision order (resuming a feed)."""

    after_rev: int = Field(ge=0)
    first: int = Field(default=MAX_PAGE, ge=1, le=MAX_PAGE)


class MessagePage(BaseModel):
    messages: list[MessageView]
    has_more: bool


class SearchRequest(CrisisRef):
    """Whole words, case and accents ignored, in one channel or every channel of the crisis one may read."""

    text: str = Field(min_length=1, max_length=200)
    channel: Uuid | None = None
    first: int = Field(default=20, ge=1, le=MAX_SEARCH_RESULTS)


class VersionView(BaseModel):
    version: int
    body_sealed: str
    edited_at: datetime
    editor: str


class VersionsReply(BaseModel):
    message: MessageView
    versions: list[VersionView]


class ChatEventData(BaseModel):
    """`data` of every chat event: the channel, who may read it, and the message as it now is."""

    channel: str
    audience: Audience
    message: MessageView | None = None
    channel_name: str | None = None


# -- operations (`rpc.chat.<name>`) and events (`evt.<t>.<c>.chat.<name>`) ----------------------------

SERVICE = "chat"
PROVISION = Operation(
    SERVICE, "provision", ProvisionRequest, ChannelList, "Open a crisis' default channels (idempotent)"
)
CHANNELS = Operation(SERVICE, "channels", CrisisRef, ChannelList, "The channels of a crisis the actor may read")
CHANNEL = Operation(SERVICE, "channel", ChannelRef, ChannelView, "One channel, if the actor may read it")
CREATE_CHANNEL = Operation(
    SERVICE, "create_channel", CreateChannelRequest, ChannelView, "A private channel in a cell, or a direct one"
)
SET_MEMBERS = Operation(
    SERVICE, "set_members", SetMembersRequest, ChannelView, "Add or remove members of a private channel"
)
SEND = Operation(SERVICE, "send", SendRequest, SendReply, "Post a message (a retried client id stores one)")
EDIT = Operation(SERVICE, "edit", EditRequest, MessageView, "Replace one's own message text (versions kept)")
REDACT = Operation(SERVICE, "redact", RedactRequest, MessageView, "Withdraw a message's text, keeping its trace")
PIN = Operation(SERVICE, "pin", PinRequest, MessageView, "Pin or unpin a message in its channel")
MARK = Operation(SERVICE, "mark", MarkRequest, MessageView, "Put a message into the main courante")
HISTORY = Operation(SERVICE, "history", HistoryRequest, MessagePage, "A page of a channel's messages by seq")
CHANGES = Operation(SERVICE, "changes", ChangesRequest, MessagePage, "Every message changed after a revision")
PINNED = Operation(SERVICE, "pinned", ChannelRef, MessagePage, "The pinned messages of a channel")
VERSIONS = Operation(SERVICE, "versions", MessageRef, VersionsReply, "Every version of a message's text")
MARK_READ = Operation(SERVICE, "mark_read", ReadMarkerRequest, ChannelView, "Move the actor's read marker")
SEARCH = Operation(SERVICE, "search", SearchRequest, MessagePage, "Whole-word search in readable channels")
OPERATIONS: tuple[Operation[Any, Any], ...] = (
    PROVISION,
    CHANNELS,
    CHANNEL,
    CREATE_CHANNEL,
    SET_MEMBERS,
    SEND,
    EDIT,
    REDACT,
    PIN,
    MARK,
    HISTORY,
    CHANGES,
    PINNED,
    VERSIONS,
    MARK_READ,
    SEARCH,
)

MESSAGE_POSTED = EventType(SERVICE, "message_posted", ChatEventData, "A message was posted in a channel")
MESSAGE_EDITED = EventType(SERVICE, "message_edited", ChatEventData, "A message's text was replaced")
MESSAGE_REDACTED = EventType(SERVICE, "message_redacted", ChatEventData, "A message's text was withdrawn")
MESSAGE_PINNED = EventType(SERVICE, "message_pinned", ChatEventData, "A message was pinned or unpinned")
MESSAGE_MARKED = EventType(SERVICE, "message_marked", ChatEventData, "A message was put into the main courante")
CHANNEL_CREATED = EventType(SERVICE, "channel_created", ChatEventData, "A channel was opened")
CHANNEL_MEMBERS_CHANGED = EventType(
    SERVICE, "channel_members_changed", ChatEventData, "A private channel's members changed"
)
EVENTS: tuple[EventType[Any], ...] = (
    MESSAGE_POSTED,
    MESSAGE_EDITED,
    MESSAGE_REDACTED,
    MESSAGE_PINNED,
    MESSAGE_MARKED,
    CHANNEL_CREATED,
    CHANNEL_MEMBERS_CHANGED,
)

# What chat reads from the bus: the gateway's crisis and cell events, to open and close channels.
PROVISIONER = Subscription(
    SERVICE,
    "chat-provisioner",
    events=(gateway.CRISIS_DECLARED, gateway.CELL_CREATED, gateway.CRISIS_CLOSED),
    description="opens a crisis's and its cells' channels, closes them with the crisis",
)
SUBSCRIPTIONS: tuple[Subscription, ...] = (PROVISIONER,)
