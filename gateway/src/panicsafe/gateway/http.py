"""The HTTP edge: `/auth/*`, `/graphql` (HTTP and graphql-transport-ws), liveness, readiness, headers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from strawberry.fastapi import GraphQLRouter
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from panicsafe.contracts.errors import ErrorCode, FieldError
from panicsafe.contracts.health import DependencyStatus, HealthReply, HealthRequest
from panicsafe.core.errors import ServiceError
from panicsafe.core.service import Runtime
from panicsafe.core.settings import Environment
from panicsafe.gateway.auth.routes import build_auth_router, error_response
from panicsafe.gateway.federation import build_federation_schema
from panicsafe.gateway.graphql.limits import MAX_QUERY_BYTES, graphql_extensions
from panicsafe.gateway.graphql.schema import build_schema
from panicsafe.gateway.graphql_context import GatewayContext, GatewayServices
from panicsafe.gateway.settings import GatewaySettings

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'; form-action 'self'"
    ),
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(self), microphone=(self), geolocation=()",
}
MAX_AUTH_BODY = 65_536
STATIC = Path(__file__).parent / "static"


def create_app(runtime: Runtime, settings: GatewaySettings, services: GatewayServices) -> FastAPI:
    app = FastAPI(title="PanicSAFE gateway", docs_url=None, redoc_url=None, openapi_url=None)
    development = settings.environment == Environment.DEVELOPMENT

    @app.middleware("http")
    async def edge(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        graphql = request.url.path.startswith(("/graphql", "/federation/graphql"))
        limit = MAX_QUERY_BYTES + 4096 if graphql else MAX_AUTH_BODY
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            response: Response = error_response(ServiceError(ErrorCode.INVALID, "Requête trop volumineuse."))
        else:
            response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [
            FieldError(field=".".join(str(p) for p in e["loc"][1:]) or "(body)", message=e["msg"]) for e in exc.errors()
        ]
        names = ", ".join(f.field for f in fields)
        return error_response(ServiceError(ErrorCode.INVALID, f"Champs invalides : {names}", fields))

    app.state.auth_service = services.auth
    app.state.factor_service = services.factors
    app.include_router(build_auth_router(origin=settings.origin))

    schema = build_schema(graphql_extensions(development=development))

    async def context_getter() -> GatewayContext:
        return GatewayContext(services)

    app.include_router(
        GraphQLRouter(
            schema,
            context_getter=context_getter,
            graphql_ide="graphiql" if development else None,
            allow_queries_via_get=False,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            max_subscriptions_per_connection=20,
        ),
        prefix="/graphql",
    )

    # The regional subgraph: aggregated indicators for ARS and CERT Santé, composed by a federation router.
    federation_schema = build_federation_schema(graphql_extensions(development=development))
    app.include_router(
        GraphQLRouter(
            federation_schema,
            context_getter=context_getter,
            graphql_ide=None,
            allow_queries_via_get=False,
            subscription_protocols=(),
        ),
        prefix="/federation/graphql",
    )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        own = await runtime.health()
        names = settings.downstream_services
        replies = await asyncio.gather(*(_service_health(runtime, name) for name in names))
        status = {"gateway": own.model_dump(mode="json"), **dict(zip(names, replies, strict=True))}
        ready = all(s.get("status") == DependencyStatus.OK for s in status.values())
        return JSONResponse({"ready": ready, "services": status}, status_code=200 if ready else 503)

    # The access page (enrolment and login) until the web client takes over `/`.
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/", include_in_schema=False)
    async def access_page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.state.schema = schema
    return app


async def _service_health(runtime: Runtime, name: str) -> dict[str, object]:
    assert runtime.rpc is not None
    try:
        reply = await runtime.rpc.call(name, "health", HealthRequest(), HealthReply, timeout=2.0)
    except ServiceError as exc:
        return {"status": DependencyStatus.DOWN, "error": exc.body().model_dump(mode="json")}
    return reply.model_dump(mode="json")
