"""The HTTP edge: liveness, readiness (every service's health RPC), security headers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from panicsafe.contracts.health import DependencyStatus, HealthReply, HealthRequest
from panicsafe.core.errors import ServiceError
from panicsafe.core.service import Runtime
from panicsafe.gateway.settings import GatewaySettings

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def create_app(runtime: Runtime, settings: GatewaySettings) -> FastAPI:
    app = FastAPI(title="PanicSAFE gateway", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        own = await runtime.health()
        names = settings.downstream_services
        replies = await asyncio.gather(*(_service_health(runtime, name) for name in names))
        services = {"gateway": own.model_dump(mode="json"), **dict(zip(names, replies, strict=True))}
        ready = all(s.get("status") == DependencyStatus.OK for s in services.values())
        return JSONResponse({"ready": ready, "services": services}, status_code=200 if ready else 503)

    return app


async def _service_health(runtime: Runtime, name: str) -> dict[str, object]:
    assert runtime.rpc is not None
    try:
        reply = await runtime.rpc.call(name, "health", HealthRequest(), HealthReply, timeout=2.0)
    except ServiceError as exc:
        return {"status": DependencyStatus.DOWN, "error": exc.body().model_dump(mode="json")}
    return reply.model_dump(mode="json")
