"""One trace links the RPC caller's span and the handler's span across NATS."""

from __future__ import annotations

import json
import logging
import secrets

from nats.aio.client import Client
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from pydantic import BaseModel

from panicsafe.contracts.declarations import Operation
from panicsafe.core.bus.rpc import RpcClient, RpcContext, RpcRouter, serve
from panicsafe.core.telemetry import JsonLogFormatter, configure_tracing, tracer


class Ping(BaseModel):
    n: int = 0


async def test_trace_crosses_nats(nc: Client) -> None:
    exporter = InMemorySpanExporter()
    configure_tracing("pytest", SimpleSpanProcessor(exporter))
    name = f"t{secrets.token_hex(4)}"
    router = RpcRouter(name)
    ping_op = Operation(name, "ping", Ping, Ping, "Add one", public=True)

    @router.handle(ping_op)
    async def ping(request: Ping, ctx: RpcContext) -> Ping:
        with tracer().start_as_current_span("domain work"):
            return Ping(n=request.n + 1)

    service = await serve(nc, router, version="1.0.0", verifier=None)
    try:
        with tracer().start_as_current_span("caller") as root:
            assert (await RpcClient(nc).call(ping_op, Ping(n=1))).n == 2
    finally:
        await service.stop()

    spans = {span.name: span for span in exporter.get_finished_spans()}
    client = spans[f"rpc.client rpc.{name}.ping"]
    server = spans[f"rpc.server rpc.{name}.ping"]
    work = spans["domain work"]
    trace_id = root.get_span_context().trace_id
    assert {client.context.trace_id, server.context.trace_id, work.context.trace_id} == {trace_id}
    assert client.kind == SpanKind.CLIENT and server.kind == SpanKind.SERVER
    assert server.parent is not None and server.parent.span_id == client.context.span_id
    assert work.parent is not None and work.parent.span_id == server.context.span_id


def test_json_logs_carry_the_trace_id() -> None:
    configure_tracing("pytest")
    record = logging.LogRecord("panicsafe.test", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    with tracer().start_as_current_span("logged") as span:
        line = json.loads(JsonLogFormatter().format(record))
    assert line["message"] == "hello world"
    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert line["level"] == "info"
