"""Typed request/reply over NATS: `rpc.<service>.<operation>`.

Every operation is declared once in `panicsafe.contracts` (`Operation`: service, name, request and
reply models). Server side, a `RpcRouter` collects a handler per declaration; `serve` registers
them as a `nats.micro` service in a queue group so that replicas share the load. Every reply is
`{"ok": true, "data": ...}` or `{"ok": false, "error": {"code", "message", "fields"}}`. Client side,
`RpcClient.call(operation, request)` returns the typed reply or raises `ServiceError` with the
stable code; no responder or a timeout is `unavailable`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import nats.micro
from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.micro.request import Request
from nats.micro.service import EndpointConfig, Service, ServiceConfig
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from pydantic import BaseModel, ValidationError

from panicsafe.contracts.actor import Actor
from panicsafe.contracts.declarations import Operation, Rep, Req
from panicsafe.contracts.errors import ErrorCode, ErrorReply
from panicsafe.core.errors import ServiceError
from panicsafe.core.telemetry import (
    extract_context,
    inject_headers,
    meter,
    metrics_exported,
    spans_exported,
    tracer,
)
from panicsafe.core.tokens import TokenError, TokenVerifier

log = logging.getLogger(__name__)

AUTHORIZATION = "Authorization"

_durations = meter().create_histogram("rpc.server.duration", unit="ms", description="RPC handling time")


def subject_for(service: str, operation: str) -> str:
    return f"rpc.{service}.{operation}"


@dataclass(frozen=True)
class RpcContext:
    """What a handler knows of the call: the verified actor (None on public endpoints) and headers."""

    subject: str
    actor: Actor | None
    headers: dict[str, str]

    def require_actor(self) -> Actor:
        if self.actor is None:
            raise ServiceError(ErrorCode.UNAUTHENTICATED, "this operation needs an actor token")
        return self.actor


Handler = Callable[[Any, RpcContext], Awaitable[BaseModel]]


@dataclass(frozen=True)
class Endpoint:
    operation: str
    request_model: type[BaseModel]
    reply_model: type[BaseModel]
    handler: Handler
    public: bool


class RpcRouter:
    """The endpoints of one service, each registered by its declaration: `@router.handle(chat.SEND)`."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.endpoints: dict[str, Endpoint] = {}

    def handle(
        self, operation: Operation[Req, Rep]
    ) -> Callable[[Callable[[Req, RpcContext], Awaitable[Rep]]], Callable[[Req, RpcContext], Awaitable[Rep]]]:
        """Register `async def op(request: Req, ctx: RpcContext) -> Rep` as the handler of `operation`."""
        if operation.service != self.service:
            raise ValueError(f"{operation.subject} is not an operation of {self.service}")

        def register(
            fn: Callable[[Req, RpcContext], Awaitable[Rep]],
        ) -> Callable[[Req, RpcContext], Awaitable[Rep]]:
            self._add(Endpoint(operation.name, operation.request, operation.reply, fn, operation.public))
            return fn

        return register

    def _add(self, endpoint: Endpoint) -> None:
        if endpoint.operation in self.endpoints:
            raise ValueError(f"rpc.{self.service}.{endpoint.operation} registered twice")
        self.endpoints[endpoint.operation] = endpoint

    def include(self, other: RpcRouter) -> None:
        for endpoint in other.endpoints.values():
            self._add(endpoint)


def _encode_error(error: ServiceError) -> bytes:
    return ErrorReply(error=error.body()).model_dump_json().encode()


async def dispatch(
    endpoint: Endpoint, subject: str, data: bytes, headers: dict[str, str], verifier: TokenVerifier | None
) -> bytes:
    """Validate, authenticate and run one call; always returns an envelope, never raises."""
    try:
        actor: Actor | None = None
        auth = headers.get(AUTHORIZATION, "")
        if auth or not endpoint.public:
            if verifier is None:
                raise TokenError("this service accepts no actor tokens")
            if not auth.startswith("Bearer "):
                raise TokenError("missing actor token")
            actor = verifier.verify(auth.removeprefix("Bearer ").strip())
        try:
            request = endpoint.request_model.model_validate_json(data or b"{}")
        except ValidationError as exc:
            raise ServiceError.from_validation(exc) from exc
        reply = await endpoint.handler(request, RpcContext(subject=subject, actor=actor, headers=headers))
        return b'{"ok":true,"data":' + reply.model_dump_json().encode() + b"}"
    except ServiceError as exc:
        trace.get_current_span().set_status(Status(StatusCode.ERROR, exc.code))
        return _encode_error(exc)
    except Exception:  # the boundary: a bug must answer `internal`, never a stack trace
        log.exception("rpc handler failed", extra={"subject": subject})
        trace.get_current_span().set_status(Status(StatusCode.ERROR, "internal"))
        return _encode_error(ServiceError(ErrorCode.INTERNAL, "internal error; see the service logs"))


MAX_IN_FLIGHT = 256


class RpcServer:
    """A running `nats.micro` service whose requests are handled concurrently.

    nats-py calls a subscription's handler one message at a time; awaiting each call there would
    serialise the whole service (one slow call delays every other). Each request runs in its own
    task instead, at most `max_in_flight` at once: beyond that, reading pauses (back-pressure).
    """

    def __init__(self, max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self.service: Service | None = None
        self._slots = asyncio.Semaphore(max_in_flight)
        self._tasks: set[asyncio.Task[None]] = set()

    def handler(
        self, endpoint: Endpoint, verifier: TokenVerifier | None
    ) -> Callable[[Request], Coroutine[Any, Any, None]]:
        run = _micro_handler(endpoint, verifier)

        async def spawn(request: Request) -> None:
            await self._slots.acquire()
            task = asyncio.create_task(run(request))
            self._tasks.add(task)
            task.add_done_callback(self._done)

        return spawn

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slots.release()

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop taking requests, then let those in flight answer."""
        if self.service is not None:
            await self.service.stop()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)


async def serve(
    nc: Client,
    router: RpcRouter,
    *,
    version: str,
    verifier: TokenVerifier | None,
    description: str = "",
    max_in_flight: int = MAX_IN_FLIGHT,
) -> RpcServer:
    """Register every endpoint of `router` as a `nats.micro` service (queue group `rpc.<service>`)."""
    server = RpcServer(max_in_flight)
    server.service = await nats.micro.add_service(
        nc, ServiceConfig(name=f"panicsafe-{router.service}", version=version, description=description)
    )
    for endpoint in router.endpoints.values():
        await server.service.add_endpoint(
            EndpointConfig(
                name=endpoint.operation,
                subject=subject_for(router.service, endpoint.operation),
                queue_group=f"rpc.{router.service}",
                handler=server.handler(endpoint, verifier),
            )
        )
    return server


def _micro_handler(
    endpoint: Endpoint, verifier: TokenVerifier | None
) -> Callable[[Request], Coroutine[Any, Any, None]]:
    async def handle(request: Request) -> None:
        headers = dict(request.headers or {})
        started = time.perf_counter()
        if not spans_exported() and "traceparent" not in headers:
            # No exporter and no trace to continue: a span would only cost time.
            await request.respond(await dispatch(endpoint, request.subject, request.data, headers, verifier))
        else:
            with tracer().start_as_current_span(
                f"rpc.server {request.subject}", context=extract_context(headers), kind=SpanKind.SERVER
            ) as span:
                span.set_attribute("rpc.system", "nats")
                span.set_attribute("messaging.destination.name", request.subject)
                body = await dispatch(endpoint, request.subject, request.data, headers, verifier)
                await request.respond(body)
        if metrics_exported():
            _durations.record((time.perf_counter() - started) * 1000, {"rpc.subject": request.subject})

    return handle


class RpcClient:
    """Calls other services; `token` is the caller's actor token for that service."""

    def __init__(self, nc: Client, *, timeout: float = 5.0) -> None:
        self.nc = nc
        self.timeout = timeout

    async def call(
        self,
        operation: Operation[Req, Rep],
        request: Req,
        *,
        token: str | None = None,
        timeout: float | None = None,
    ) -> Rep:
        """Call `operation` with `request`; the typed reply, or `ServiceError` with the stable code."""
        if not isinstance(request, operation.request):
            raise TypeError(f"{operation.subject} takes {operation.request.__name__}, not {type(request).__name__}")
        raw = await self.call_raw(operation.subject, request.model_dump_json().encode(), token=token, timeout=timeout)
        envelope = json.loads(raw)
        if envelope.get("ok") is True:
            return operation.reply.model_validate(envelope.get("data"))
        raise ServiceError.from_body(ErrorReply.model_validate(envelope).error)

    async def call_raw(
        self, subject: str, payload: bytes, *, token: str | None = None, timeout: float | None = None
    ) -> bytes:
        """Send bytes as they are and return the reply's bytes (tests of invalid bodies use this)."""
        wait = self.timeout if timeout is None else timeout
        with tracer().start_as_current_span(f"rpc.client {subject}", kind=SpanKind.CLIENT) as span:
            headers: dict[str, str] = {}
            inject_headers(headers)
            if token:
                headers[AUTHORIZATION] = f"Bearer {token}"
            try:
                msg = await self.nc.request(subject, payload, timeout=wait, headers=headers)
            except NoRespondersError as exc:
                span.set_status(Status(StatusCode.ERROR, "unavailable"))
                raise ServiceError(ErrorCode.UNAVAILABLE, f"no service answers {subject}") from exc
            except (NatsTimeoutError, TimeoutError) as exc:
                span.set_status(Status(StatusCode.ERROR, "unavailable"))
                raise ServiceError(ErrorCode.UNAVAILABLE, f"{subject} did not answer within {wait:g} s") from exc
            return bytes(msg.data)
