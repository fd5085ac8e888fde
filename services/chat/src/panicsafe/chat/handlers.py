"""RPC endpoints of the chat service (`rpc.chat.<operation>`); `health` comes from the runtime.

Every endpoint needs the gateway's actor token; the core decides need-to-know again from it.
"""

from __future__ import annotations

from panicsafe.chat.core import ChatCore
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


def build_router(core: ChatCore) -> RpcRouter:
    router = RpcRouter(chat.SERVICE)

    @router.handle(chat.PROVISION)
    async def provision(request: ProvisionRequest, ctx: RpcContext) -> ChannelList:
        actor = ctx.require_actor()
        await core.provision(actor.tenant, request)
        return await core.list_channels(actor, CrisisRef(crisis=request.crisis))

    @router.handle(chat.CHANNELS)
    async def channels(request: CrisisRef, ctx: RpcContext) -> ChannelList:
        return await core.list_channels(ctx.require_actor(), request)

    @router.handle(chat.CHANNEL)
    async def get_channel(request: ChannelRef, ctx: RpcContext) -> ChannelView:
        return await core.get_channel(ctx.require_actor(), request)

    @router.handle(chat.CREATE_CHANNEL)
    async def create_channel(request: CreateChannelRequest, ctx: RpcContext) -> ChannelView:
        return await core.create_channel(ctx.require_actor(), request)

    @router.handle(chat.SET_MEMBERS)
    async def set_members(request: SetMembersRequest, ctx: RpcContext) -> ChannelView:
        return await core.set_members(ctx.require_actor(), request)

    @router.handle(chat.SEND)
    async def send(request: SendRequest, ctx: RpcContext) -> SendReply:
        return await core.send(ctx.require_actor(), request)

    @router.handle(chat.EDIT)
    async def edit(request: EditRequest, ctx: RpcContext) -> MessageView:
        return await core.edit(ctx.require_actor(), request)

    @router.handle(chat.REDACT)
    async def redact(request: RedactRequest, ctx: RpcContext) -> MessageView:
        return await core.redact(ctx.require_actor(), request)

    @router.handle(chat.PIN)
    async def pin(request: PinRequest, ctx: RpcContext) -> MessageView:
        return await core.pin(ctx.require_actor(), request)

    @router.handle(chat.MARK)
    async def mark(request: MarkRequest, ctx: RpcContext) -> MessageView:
        return await core.mark(ctx.require_actor(), request)

    @router.handle(chat.HISTORY)
    async def history(request: HistoryRequest, ctx: RpcContext) -> MessagePage:
        return await core.history(ctx.require_actor(), request)

    @router.handle(chat.CHANGES)
    async def changes(request: ChangesRequest, ctx: RpcContext) -> MessagePage:
        return await core.changes(ctx.require_actor(), request)

    @router.handle(chat.PINNED)
    async def pinned(request: ChannelRef, ctx: RpcContext) -> MessagePage:
        return await core.pinned(ctx.require_actor(), request)

    @router.handle(chat.VERSIONS)
    async def versions(request: MessageRef, ctx: RpcContext) -> VersionsReply:
        return await core.versions(ctx.require_actor(), request)

    @router.handle(chat.MARK_READ)
    async def mark_read(request: ReadMarkerRequest, ctx: RpcContext) -> ChannelView:
        return await core.mark_read(ctx.require_actor(), request)

    @router.handle(chat.SEARCH)
    async def search(request: SearchRequest, ctx: RpcContext) -> MessagePage:
        return await core.search(ctx.require_actor(), request)

    return router
