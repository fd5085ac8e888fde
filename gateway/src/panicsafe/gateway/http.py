"""The HTTP edge: `/auth/*`, `/graphql` (HTTP and graphql-transport-ws), liveness, readiness, headers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from cross_web import HTTPException
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from opentelemetry.trace import SpanKind
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.websockets import WebSocket
from strawberry import UNSET
from strawberry.asgi import GraphQL
from strawberry.schema import BaseSchema
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from panicsafe.contracts.errors import ErrorCode, FieldError
from panicsafe.contracts.health import DependencyStatus, HealthRequest, health
from panicsafe.core.errors import ServiceError
from panicsafe.core.service import Runtime
from panicsafe.core.settings import Environment
from panicsafe.core.telemetry import extract_context, spans_exported, tracer
from panicsafe.gateway.auth.routes import build_auth_router, error_response
from panicsafe.gateway.downloads import build_downloads_router
from panicsafe.gateway.edge import ASGIApp, Edge, ExactPaths, Receive, Scope, Send
from panicsafe.gateway.federation import build_federation_schema
from panicsafe.gateway.graphql.limits import MAX_QUERY_BYTES, graphql_extensions
from panicsafe.gateway.graphql.schema import build_schema
from panicsafe.gateway.graphql_context import GatewayContext, GatewayServices
from panicsafe.gateway.settings import GatewaySettings
from panicsafe.gateway.webfiles import WebFiles, web_file_response

MAX_AUTH_BODY = 65_536
STATIC = Path(__file__).parent / "static"


def body_limit(path: str) -> int:
    graphql = path.startswith(("/graphql", "/federation/graphql"))
    return MAX_QUERY_BYTES + 4096 if graphql else MAX_AUTH_BODY


class GatewayGraphQL(GraphQL[GatewayContext, None]):
    """Strawberry's ASGI view, answering malformed requests with our error envelope and stable codes.

    It is served as is, outside FastAPI's routing: GraphQL is the hot path, and it needs neither the
    dependency injection nor FastAPI's per-request instrumentation (spans, attributes and metrics).
    A request gets its server span when spans are exported, or when it continues its caller's trace
    (`traceparent`): otherwise the span would go nowhere.
    """

    def __init__(self, schema: BaseSchema, services: GatewayServices, **options: Any) -> None:
        super().__init__(schema, allow_queries_via_get=False, **options)
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        carrier = {
            name.decode(): value.decode("latin-1")
            for name, value in scope.get("headers", ())
            if name in (b"traceparent", b"tracestate")
        }
        if not carrier and not spans_exported():
            await super().__call__(scope, receive, send)
            return
        name = f"{scope.get('method', 'WEBSOCKET')} {scope.get('path', '')}"
        with tracer().start_as_current_span(name, context=extract_context(carrier), kind=SpanKind.SERVER):
            await super().__call__(scope, receive, send)

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> GatewayContext:
        context = GatewayContext(self.services)
        context.request = request
        if isinstance(response, Response):  # a WebSocket has no sub-response (as with FastAPI's router)
            context.response = response
        return context

    def decode_json(self, data: str | bytes) -> object:
        try:
            decoded = json.loads(data)
        except (ValueError, RecursionError) as exc:  # also bad UTF-8, huge integers, deep nesting
            raise HTTPException(400, "Corps JSON illisible.") from exc
        if not isinstance(decoded, dict):
            raise HTTPException(400, "Le corps doit être un objet JSON (les lots ne sont pas acceptés).")
        return decoded

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        try:
            return await super().run(request, context=context, root_value=root_value)
        except HTTPException as exc:
            code = ErrorCode.NOT_FOUND if exc.status_code == 404 else ErrorCode.INVALID
            response = error_response(ServiceError(code, exc.reason))
            response.status_code = exc.status_code
            return response


def create_app(runtime: Runtime[GatewaySettings], settings: GatewaySettings, services: GatewayServices) -> ASGIApp:
    app = FastAPI(title="PanicSAFE gateway", docs_url=None, redoc_url=None, openapi_url=None)
    development = settings.environment == Environment.DEVELOPMENT

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {401: ErrorCode.UNAUTHENTICATED, 403: ErrorCode.FORBIDDEN, 404: ErrorCode.NOT_FOUND}.get(
            exc.status_code, ErrorCode.INVALID
        )
        body = error_response(ServiceError(code, str(exc.detail)))
        body.status_code = exc.status_code if exc.status_code < 500 else 400
        return body

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
    graphql = GatewayGraphQL(
        schema,
        services,
        graphql_ide="graphiql" if development else None,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        max_subscriptions_per_connection=20,
    )
    # The regional subgraph: aggregated indicators for ARS and CERT Santé, composed by a federation router.
    federation = GatewayGraphQL(
        build_federation_schema(graphql_extensions(development=development)),
        services,
        graphql_ide=None,
        subscription_protocols=(),
    )

    app.include_router(build_downloads_router(services))

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

    # The web client at `/` (its hashed assets cached for good, both sent pre-compressed); without a
    # build, the plain access page.
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    web = settings.web_dist
    if web is not None and (web / "index.html").is_file():
        app.mount("/assets", WebFiles(directory=web / "assets"), name="assets")
    home = web / "index.html" if web is not None and (web / "index.html").is_file() else STATIC / "index.html"

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/", include_in_schema=False)
    async def client_page(request: Request) -> Response:
        return web_file_response(home, request.headers, cache_control="no-cache")

    app.state.schema = schema
    return Edge(ExactPaths(app, {"/graphql": graphql, "/federation/graphql": federation}), body_limit)


async def _service_health(runtime: Runtime[GatewaySettings], name: str) -> dict[str, object]:
    assert runtime.rpc is not None
    try:
        reply = await runtime.rpc.call(health(name), HealthRequest(), timeout=2.0)
    except ServiceError as exc:
        return {"status": DependencyStatus.DOWN, "error": exc.body().model_dump(mode="json")}
    return reply.model_dump(mode="json")
