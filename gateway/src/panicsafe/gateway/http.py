"""The HTTP edge: `/auth/*`, `/graphql` (HTTP and graphql-transport-ws), liveness, readiness, headers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from cross_web import HTTPException
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from strawberry.fastapi import GraphQLRouter
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from panicsafe.contracts.errors import ErrorCode, FieldError
from panicsafe.contracts.health import DependencyStatus, HealthReply, HealthRequest
from panicsafe.core.errors import ServiceError
from panicsafe.core.service import Runtime
from panicsafe.core.settings import Environment
from panicsafe.gateway.auth.routes import build_auth_router, error_response
from panicsafe.gateway.edge import ASGIApp, Edge
from panicsafe.gateway.federation import build_federation_schema
from panicsafe.gateway.graphql.limits import MAX_QUERY_BYTES, graphql_extensions
from panicsafe.gateway.graphql.schema import build_schema
from panicsafe.gateway.graphql_context import GatewayContext, GatewayServices
from panicsafe.gateway.settings import GatewaySettings

MAX_AUTH_BODY = 65_536
STATIC = Path(__file__).parent / "static"


def body_limit(path: str) -> int:
    graphql = path.startswith(("/graphql", "/federation/graphql"))
    return MAX_QUERY_BYTES + 4096 if graphql else MAX_AUTH_BODY


class GatewayGraphQLRouter(GraphQLRouter[GatewayContext, None]):
    """Strawberry's router, answering malformed requests with our error envelope and stable codes."""

    def decode_json(self, data: str | bytes) -> object:
        try:
            decoded = json.loads(data)
        except (ValueError, RecursionError) as exc:  # also bad UTF-8, huge integers, deep nesting
            raise HTTPException(400, "Corps JSON illisible.") from exc
        if not isinstance(decoded, dict):
            raise HTTPException(400, "Le corps doit être un objet JSON (les lots ne sont pas acceptés).")
        return decoded

    async def run(self, request: Any, context: Any = None, root_value: Any = None) -> Any:
        try:
            return await super().run(request, context=context, root_value=root_value)
        except HTTPException as exc:
            code = ErrorCode.NOT_FOUND if exc.status_code == 404 else ErrorCode.INVALID
            response = error_response(ServiceError(code, exc.reason))
            response.status_code = exc.status_code
            return response


def create_app(runtime: Runtime, settings: GatewaySettings, services: GatewayServices) -> ASGIApp:
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

    async def context_getter() -> GatewayContext:
        return GatewayContext(services)

    app.include_router(
        GatewayGraphQLRouter(
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
        GatewayGraphQLRouter(
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
    return Edge(app, body_limit)


async def _service_health(runtime: Runtime, name: str) -> dict[str, object]:
    assert runtime.rpc is not None
    try:
        reply = await runtime.rpc.call(name, "health", HealthRequest(), HealthReply, timeout=2.0)
    except ServiceError as exc:
        return {"status": DependencyStatus.DOWN, "error": exc.body().model_dump(mode="json")}
    return reply.model_dump(mode="json")
