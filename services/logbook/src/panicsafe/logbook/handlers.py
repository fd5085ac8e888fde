"""RPC endpoints of the logbook service (`rpc.logbook.<operation>`); `health` comes from the runtime.

Every endpoint needs the gateway's actor token; the core decides need-to-know from it again.
"""

from __future__ import annotations

from panicsafe.contracts import logbook
from panicsafe.contracts.logbook import (
    AppendEntryRequest,
    CheckpointReply,
    CheckpointRequest,
    ConsistencyProofReply,
    ConsistencyProofRequest,
    EntryPage,
    EntryView,
    ExportChunk,
    ExportChunkRequest,
    ExportReply,
    ExportRequest,
    InclusionProofReply,
    InclusionProofRequest,
    ListEntriesRequest,
)
from panicsafe.core.bus.rpc import RpcContext, RpcRouter
from panicsafe.core.errors import unavailable
from panicsafe.logbook.core import LogbookCore
from panicsafe.logbook.exports import ExportStore, export_log


def build_router(core: LogbookCore, exports: ExportStore | None) -> RpcRouter:
    router = RpcRouter(logbook.SERVICE)

    def need_exports() -> ExportStore:
        if exports is None:
            raise unavailable("exports need the object store")
        return exports

    @router.handle(logbook.APPEND)
    async def append(request: AppendEntryRequest, ctx: RpcContext) -> EntryView:
        return await core.append_manual(ctx.require_actor(), request)

    @router.handle(logbook.LIST)
    async def list_entries(request: ListEntriesRequest, ctx: RpcContext) -> EntryPage:
        return await core.list_entries(ctx.require_actor(), request)

    @router.handle(logbook.CHECKPOINT)
    async def checkpoint(request: CheckpointRequest, ctx: RpcContext) -> CheckpointReply:
        return CheckpointReply(checkpoint=await core.latest_checkpoint(ctx.require_actor(), request))

    @router.handle(logbook.INCLUSION_PROOF)
    async def inclusion_proof(request: InclusionProofRequest, ctx: RpcContext) -> InclusionProofReply:
        return await core.inclusion_proof(ctx.require_actor(), request)

    @router.handle(logbook.CONSISTENCY_PROOF)
    async def consistency_proof(request: ConsistencyProofRequest, ctx: RpcContext) -> ConsistencyProofReply:
        return await core.consistency_proof(ctx.require_actor(), request)

    @router.handle(logbook.EXPORT)
    async def export(request: ExportRequest, ctx: RpcContext) -> ExportReply:
        return await export_log(core, need_exports(), ctx.require_actor(), request)

    @router.handle(logbook.EXPORT_CHUNK)
    async def export_chunk(request: ExportChunkRequest, ctx: RpcContext) -> ExportChunk:
        return await need_exports().chunk(core.db, ctx.require_actor(), request)

    return router
