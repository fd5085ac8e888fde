"""OpenTelemetry traces and metrics, W3C trace context in NATS headers, JSON logs with trace ids."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping, MutableMapping, Sequence
from datetime import UTC, datetime
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.propagate import extract, inject
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

TRACER_NAME = "panicsafe"
_provider: TracerProvider | None = None
_exported = False  # whether a span processor was added: finished spans go somewhere
_metered = False  # whether the meter provider has readers


def configure_tracing(
    service_name: str, *processors: SpanProcessor, metric_readers: Sequence[MetricReader] = ()
) -> TracerProvider:
    """Install the process-wide tracer and meter providers once; later calls only add span processors.
    Metrics are recorded only if readers are given (none are in development)."""
    global _provider, _exported, _metered
    if _provider is None:
        resource = Resource.create({"service.name": service_name})
        _provider = TracerProvider(resource=resource)
        trace.set_tracer_provider(_provider)
        metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=list(metric_readers)))
        _metered = bool(metric_readers)
    for processor in processors:
        _provider.add_span_processor(processor)
        _exported = True
    return _provider


def metrics_exported() -> bool:
    """Whether recorded measurements are read by anything: a hot path skips recording otherwise (the
    SDK would still validate and aggregate every measurement)."""
    return _metered


def spans_exported() -> bool:
    """Whether finished spans go anywhere. Otherwise a span only names its trace (in the logs, and in
    the headers of the messages sent meanwhile): a hot path may skip it when it continues no trace."""
    return _exported


def tracer() -> trace.Tracer:
    # A proxy made once: it follows the provider installed later, and saves a lookup on every span.
    return _TRACER


_TRACER = trace.get_tracer(TRACER_NAME)


def meter() -> metrics.Meter:
    return metrics.get_meter(TRACER_NAME)


def inject_headers(headers: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Write the current trace context (`traceparent`, `tracestate`) into message headers."""
    inject(headers)
    return headers


def extract_context(headers: Mapping[str, str] | None) -> otel_context.Context:
    return extract(dict(headers or {}))


def current_traceparent() -> str | None:
    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier.get("traceparent")


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line, with the active trace and span ids."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            entry["trace_id"] = format(ctx.trace_id, "032x")
            entry["span_id"] = format(ctx.span_id, "016x")
        for key in ("service", "subject", "event_id", "code", "alert", "reason"):
            value = record.__dict__.get(key)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
