"""RPC endpoints of the chat service (`rpc.chat.<operation>`); `health` comes from the runtime.

Every endpoint needs the gateway's actor token; the service decides need-to-know again from it.
"""

from __future__ import annotations

from panicsafe.chat.channels import Channels
from panicsafe.chat.messages import Messages
from panicsafe.chat.reading import Reading
from panicsafe.chat.search import Search
from panicsafe.contracts import chat
from panicsafe.contracts.chat import (
    ChangesRequest,
    ChannelList,
    ChannelRef,
    ChannelView,
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
)
from panicsafe.core.bus.rpc import RpcContext, RpcRouter


def build_router(*, channels: Channels, messages: Messages, reading: Reading, search: Search) -> RpcRouter:
    router = RpcRouter(chat.SERVICE)
    _channel_endpoints(router, channels)
    _message_endpoints(router, messages)
    _reading_endpoints(router, reading)
    _search_endpoints(router, search)
    return router


def _channel_endpoints(router: RpcRouter, channels: Channels) -> None:
    @router.handle(chat.PROVISION)
    async def provision(request: ProvisionRequest, ctx: RpcContext) -> ChannelList:
        actor = ctx.require_actor()
        await channels.provision(actor.tenant, request)
        return await channels.list_channels(actor, CrisisRef(crisis=request.crisis))

    @router.handle(chat.CHANNELS)
    async def list_channels(request: CrisisRef, ctx: RpcContext) -> ChannelList:
        return await channels.list_channels(ctx.require_actor(), request)

    @router.handle(chat.CHANNEL)
    async def get_channel(request: ChannelRef, ctx: RpcContext) -> ChannelView:
        return await channels.get_channel(ctx.require_actor(), request)

    @router.handle(chat.CREATE_CHANNEL)
    async def create_channel(request: CreateChannelRequest, ctx: RpcContext) -> ChannelView:
        return await channels.create_channel(ctx.require_actor(), request)

    @router.handle(chat.SET_MEMBERS)
    async def set_members(request: SetMembersRequest, ctx: RpcContext) -> ChannelView:
        return await channels.set_members(ctx.require_actor(), request)

    @router.handle(chat.MARK_READ)
    async def mark_read(request: ReadMarkerRequest, ctx: RpcContext) -> ChannelView:
        return await channels.mark_read(ctx.require_actor(), request)


def _message_endpoints(router: RpcRouter, messages: Messages) -> None:
    @router.handle(chat.SEND)
    async def send(request: SendRequest, ctx: RpcContext) -> SendReply:
        return await messages.send(ctx.require_actor(), request)

    @router.handle(chat.EDIT)
    async def edit(request: EditRequest, ctx: RpcContext) -> MessageView:
        return await messages.edit(ctx.require_actor(), request)

    @router.handle(chat.REDACT)
    async def redact(request: RedactRequest, ctx: RpcContext) -> MessageView:
        return await messages.redact(ctx.require_actor(), request)

    @router.handle(chat.PIN)
    async def pin(request: PinRequest, ctx: RpcContext) -> MessageView:
        return await messages.pin(ctx.require_actor(), request)

    @router.handle(chat.MARK)
    async def mark(request: MarkRequest, ctx: RpcContext) -> MessageView:
        return await messages.mark(ctx.require_actor(), request)


def _reading_endpoints(router: RpcRouter, reading: Reading) -> None:
    @router.handle(chat.HISTORY)
    async def history(request: HistoryRequest, ctx: RpcContext) -> MessagePage:
        return await reading.history(ctx.require_actor(), request)

    @router.handle(chat.CHANGES)
    async def changes(request: ChangesRequest, ctx: RpcContext) -> MessagePage:
        return await reading.changes(ctx.require_actor(), request)

    @router.handle(chat.PINNED)
    async def pinned(request: ChannelRef, ctx: RpcContext) -> MessagePage:
        return await reading.pinned(ctx.require_actor(), request)

    @router.handle(chat.VERSIONS)
    async def versions(request: MessageRef, ctx: RpcContext) -> VersionsReply:
        return await reading.versions(ctx.require_actor(), request)


def _search_endpoints(router: RpcRouter, search: Search) -> None:
    @router.handle(chat.SEARCH)
    async def search_messages(request: SearchRequest, ctx: RpcContext) -> MessagePage:
        return await search.search(ctx.require_actor(), request)
