"""Composition root of the gateway: the service runtime plus the HTTP edge."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path

import uvicorn

from panicsafe.core.service import Runtime, ServiceSpec
from panicsafe.core.versions import package_version
from panicsafe.gateway.handlers import router
from panicsafe.gateway.http import create_app
from panicsafe.gateway.settings import GatewaySettings

MIGRATIONS = Path(__file__).parent / "migrations"


def build_spec() -> ServiceSpec:
    return ServiceSpec(
        name="gateway", version=package_version("panicsafe-gateway"), router=router, migrations=MIGRATIONS
    )


class _Server(uvicorn.Server):
    """uvicorn re-raises the signals it captured; the gateway handles them itself, then drains NATS."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(settings: GatewaySettings) -> None:
    runtime = Runtime(build_spec(), settings)
    await runtime.start()
    config = uvicorn.Config(
        create_app(runtime, settings),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
    )
    server = _Server(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
    try:
        await server.serve()
    finally:
        await runtime.stop()
