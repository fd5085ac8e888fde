"""The crisis chat through the gateway: channels, messages, search.

The gateway decides first with the policy module, then calls the chat service with a fresh actor
token; the service decides need-to-know again. The replies' sealed texts are opened in `chat_types`,
the live feed is `chat_feed`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from panicsafe.contracts import chat
from panicsafe.contracts.chat import (
    Attachment,
    ChannelKind,
    ChannelList,
    ChannelRef,
    CreateChannelRequest,
    CrisisRef,
    HistoryRequest,
    MessageRef,
    MessageView,
    ProvisionRequest,
    ReadMarkerRequest,
    SearchRequest,
    SendRequest,
    SetMembersRequest,
)
from panicsafe.contracts.chat import CellRef as CellRefModel
from panicsafe.contracts.declarations import Operation, Req
from panicsafe.contracts.errors import ErrorCode
from panicsafe.contracts.events import Mode
from panicsafe.core.errors import ServiceError, forbidden, invalid, not_found
from panicsafe.gateway.domain.models import LEADING_ROLES
from panicsafe.gateway.domain.policy import Principal
from panicsafe.gateway.graphql.chat_types import (
    OPENED,
    ChatChannel,
    ChatMessage,
    ChatMessagePage,
    ChatMessageVersion,
    SendMessageInput,
    SendMessageResult,
    channel,
    message,
    open_text,
    page,
)
from panicsafe.gateway.graphql.common import GInfo, validated
from panicsafe.gateway.store import tenancy

LEADING = frozenset(r.value for r in LEADING_ROLES)


async def list_channels(info: GInfo, principal: Principal, crisis_id: str) -> list[ChatChannel]:
    request = CrisisRef(crisis=crisis_id)
    try:
        found = await info.context.services.call(principal, chat.CHANNELS, request)
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
    return await info.context.services.call(principal, chat.PROVISION, request)


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
    reply = await info.context.services.call(principal, chat.SEND, request)
    return SendMessageResult(message=await message(info, principal.tenant_id, reply.message), duplicate=reply.duplicate)


async def change(
    info: GInfo, principal: Principal, operation: Operation[Req, MessageView], build: Callable[[], Req]
) -> ChatMessage:
    view = await info.context.services.call(principal, operation, validated(build))
    return await message(info, principal.tenant_id, view)


async def history(
    info: GInfo, principal: Principal, channel_id: str, before: int | None, after: int | None, first: int
) -> ChatMessagePage:
    request = validated(lambda: HistoryRequest(channel=channel_id, before=before, after=after, first=first))
    result = await info.context.services.call(principal, chat.HISTORY, request)
    return await page(info, principal.tenant_id, result)


async def pinned(info: GInfo, principal: Principal, channel_id: str) -> list[ChatMessage]:
    request = validated(lambda: ChannelRef(channel=channel_id))
    result = await info.context.services.call(principal, chat.PINNED, request)
    return [await message(info, principal.tenant_id, m) for m in result.messages]


async def search(
    info: GInfo, principal: Principal, crisis_id: str, text: str, channel_id: str | None, first: int
) -> ChatMessagePage:
    request = validated(lambda: SearchRequest(crisis=crisis_id, text=text, channel=channel_id, first=first))
    result = await info.context.services.call(principal, chat.SEARCH, request)
    return await page(info, principal.tenant_id, result)


async def versions(info: GInfo, principal: Principal, message_id: str) -> list[ChatMessageVersion]:
    request = validated(lambda: MessageRef(message=message_id))
    reply = await info.context.services.call(principal, chat.VERSIONS, request)
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
    return channel(await info.context.services.call(principal, chat.MARK_READ, request))


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
    return channel(await info.context.services.call(principal, chat.CREATE_CHANNEL, request))


async def open_direct(info: GInfo, principal: Principal, crisis_id: str, user_id: str) -> ChatChannel:
    members = await _crisis_members(info, principal, crisis_id)
    other = members.get(user_id)
    if other is None or user_id == principal.user_id:
        raise not_found("Personne introuvable dans cette crise.")
    name = f"{principal.display_name} et {other['display_name']}"
    request = validated(
        lambda: CreateChannelRequest(crisis=crisis_id, kind=ChannelKind.DIRECT, name=name[:120], members=[user_id])
    )
    return channel(await info.context.services.call(principal, chat.CREATE_CHANNEL, request))


async def set_members(
    info: GInfo, principal: Principal, channel_id: str, add: Sequence[str], remove: Sequence[str]
) -> ChatChannel:
    """Whoever is added must belong to the crisis and to the channel's cell (or lead the crisis)."""
    request = validated(
        lambda: SetMembersRequest(channel=channel_id, add=[str(a) for a in add], remove=[str(r) for r in remove])
    )
    if request.add:
        current = await info.context.services.call(principal, chat.CHANNEL, ChannelRef(channel=request.channel))
        members = await _crisis_members(info, principal, current.crisis)
        for user in request.add:
            row = members.get(user)
            if row is None:
                raise not_found("Personne introuvable dans cette crise.")
            if row["role"] not in LEADING and current.cell not in row["cells"]:
                raise invalid("Chaque membre d'un canal privé appartient à sa cellule.")
    return channel(await info.context.services.call(principal, chat.SET_MEMBERS, request))
