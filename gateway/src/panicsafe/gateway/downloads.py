"""`GET /exports/<id>`: an export of the main courante, streamed to the person who asked for it.

The browser sends its access token as for GraphQL; the logbook service checks again that the export
is this user's and not expired, and hands it over chunk by chunk (sealed at rest in the object store).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from panicsafe.contracts import logbook
from panicsafe.contracts.logbook import ExportChunk
from panicsafe.core.errors import ServiceError
from panicsafe.gateway.auth.principal import load_principal
from panicsafe.gateway.domain.policy import Principal, unauthenticated
from panicsafe.gateway.graphql.logbook import chunk_request, decode_chunk
from panicsafe.gateway.graphql_context import GatewayServices


def build_downloads_router(services: GatewayServices) -> APIRouter:
    router = APIRouter()

    async def fetch(principal: Principal, export_id: str, index: int) -> ExportChunk:
        return await services.call(principal, logbook.EXPORT_CHUNK, chunk_request(export_id, index))

    @router.get("/exports/{export_id}")
    async def download(export_id: str, request: Request) -> StreamingResponse:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            raise unauthenticated()
        principal = await load_principal(services.db, services.tokens, header.removeprefix("Bearer ").strip())
        first = await fetch(principal, export_id, 0)  # errors (not found, expired) answer before streaming

        async def body() -> AsyncIterator[bytes]:
            chunk = first
            while True:
                yield decode_chunk(chunk.data)
                if chunk.last:
                    return
                try:
                    chunk = await fetch(principal, export_id, chunk.index + 1)
                except ServiceError:
                    return  # the client sees a short file; Content-Length and the SHA-256 tell it

        return StreamingResponse(
            body(),
            media_type=first.content_type,
            headers={
                "Content-Disposition": f"attachment; filename*=UTF-8''{quote(first.filename)}",
                "Content-Length": str(first.size),
                "X-Content-SHA256": first.sha256,
                "Cache-Control": "no-store",
            },
        )

    return router
