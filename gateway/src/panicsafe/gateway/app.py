"""Composition root of the gateway: the service runtime, the identity services, the HTTP edge."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path

import uvicorn

from panicsafe.contracts import gateway
from panicsafe.core.service import Runtime, ServiceParts, ServiceSpec, settle_garbage_collector
from panicsafe.core.settings import Environment, SettingsError
from panicsafe.core.tokens import SigningKey, TokenSigner
from panicsafe.gateway.auth.access import AccessTokens
from panicsafe.gateway.auth.factors import FactorService
from panicsafe.gateway.auth.service import AuthService
from panicsafe.gateway.auth.throttle import Throttle, ThrottlePolicy
from panicsafe.gateway.edge import ASGIApp
from panicsafe.gateway.graphql_context import GatewayServices
from panicsafe.gateway.handlers import build_router
from panicsafe.gateway.http import create_app
from panicsafe.gateway.identity.passkeys import PasskeyConfig
from panicsafe.gateway.settings import GatewaySettings
from panicsafe.gateway.subscriptions import EventHub

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger(__name__)


def build_spec(build: Callable[[Runtime[GatewaySettings]], Awaitable[ServiceParts]]) -> ServiceSpec[GatewaySettings]:
    return ServiceSpec(name=gateway.SERVICE, settings=GatewaySettings, build=build, migrations=MIGRATIONS)


def load_key(path: Path | None, settings: GatewaySettings, what: str) -> SigningKey:
    if path is not None:
        return SigningKey.from_pem(path.name.removesuffix(".pem"), path.read_bytes())
    if settings.environment != Environment.DEVELOPMENT:
        raise SettingsError(f"GATEWAY_{what.upper()}_SIGNING_KEY_FILE is required outside development")
    log.warning("no %s signing key configured: using an ephemeral one (development)", what)
    return SigningKey.generate()


def build_services(
    runtime: Runtime[GatewaySettings], settings: GatewaySettings, hub: EventHub | None
) -> GatewayServices:
    db = runtime.need_db()
    tokens = AccessTokens(
        load_key(settings.access_signing_key_file, settings, "access"), ttl_s=settings.access_token_ttl_s
    )
    throttle = Throttle(
        db,
        ThrottlePolicy(
            lockout_after=settings.lockout_after_failures,
            address_budget=settings.address_failures_per_window,
            address_window=timedelta(seconds=settings.address_window_s),
        ),
    )
    auth = AuthService(
        db=db,
        cipher=runtime.need_cipher(),
        tokens=tokens,
        throttle=throttle,
        passkey_config=PasskeyConfig(rp_id=settings.rp_id, rp_name="PanicSAFE", origin=settings.origin),
        session_max=timedelta(seconds=settings.session_max_s),
        refresh_idle=timedelta(seconds=settings.refresh_idle_s),
    )
    signer = TokenSigner(load_key(settings.internal_signing_key_file, settings, "internal"), ttl_s=60)
    return GatewayServices(
        settings=settings,
        db=db,
        tokens=tokens,
        signer=signer,
        auth=auth,
        factors=FactorService(auth),
        hub=hub,
        rpc=runtime.rpc,
    )


class _Server(uvicorn.Server):
    """uvicorn re-raises the signals it captured; the gateway handles them itself, then drains NATS."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Gateway:
    """The running gateway: `start` builds everything, `app` serves HTTP, `stop` releases it all."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.runtime: Runtime[GatewaySettings] | None = None
        self.hub: EventHub | None = None
        self.app: ASGIApp | None = None

    async def start(self) -> ASGIApp:
        runtime = Runtime(build_spec(self._build), self.settings)
        self.runtime = runtime
        await runtime.start()
        self.app = create_app(runtime, self.settings, build_services(runtime, self.settings, self.hub))
        return self.app

    async def _build(self, rt: Runtime[GatewaySettings]) -> ServiceParts:
        if rt.js is None:
            raise RuntimeError("the gateway's event hub needs JetStream")
        hub = EventHub(rt.js)
        await hub.start()
        self.hub = hub
        return ServiceParts(router=build_router(rt.need_db(), rt.need_cipher().keys, self.settings), on_stop=hub.stop)

    async def stop(self) -> None:
        if self.runtime is not None:
            await self.runtime.stop()


async def serve(settings: GatewaySettings) -> None:
    gateway = Gateway(settings)
    app = await gateway.start()
    settle_garbage_collector()
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        ws="websockets-sansio",
    )
    server = _Server(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
    sockets = [shared_listener(settings.http_host, settings.http_port)] if settings.http_reuse_port else None
    try:
        await server.serve(sockets=sockets)
    finally:
        await gateway.stop()


def shared_listener(host: str, port: int) -> socket.socket:
    """A listening socket that the other processes of this gateway bind too (SO_REUSEPORT): the
    kernel spreads new connections across them. Only processes of the same user may join."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    return socket.create_server((host, port), family=family, reuse_port=True)
