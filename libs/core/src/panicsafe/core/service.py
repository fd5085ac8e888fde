"""The runtime of one service process: connections, migrations, RPC, outbox relay, consumers, health.

A service declares a `ServiceSpec` (name, settings class, build step, migrations); the build step
returns its `ServiceParts` (RPC router, consumers, loops); `run_service` does the rest:
`python -m panicsafe.<name>` is three lines. See `docs/adding-a-service.md`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import uvloop
from minio import Minio
from nats.aio.client import Client
from nats.js import JetStreamContext

from panicsafe.contracts.declarations import Subscription
from panicsafe.contracts.health import DependencyHealth, DependencyStatus, HealthReply, HealthRequest, health
from panicsafe.core.bus.connection import connect_nats
from panicsafe.core.bus.consumer import EventConsumer, EventFilter, EventHandler
from panicsafe.core.bus.events import wait_events_stream
from panicsafe.core.bus.outbox import OutboxRelay
from panicsafe.core.bus.rpc import RpcClient, RpcContext, RpcRouter, RpcServer, serve
from panicsafe.core.crypto import EnvelopeCipher, TransitKeys
from panicsafe.core.db.database import Database
from panicsafe.core.db.migrations import upgrade_async
from panicsafe.core.openbao import AppRoleCredentials, OpenBaoSession
from panicsafe.core.settings import DatabaseSettings, OpenBaoSettings, PanicSettings, S3Settings, TurnSettings
from panicsafe.core.telemetry import configure_logging, configure_tracing
from panicsafe.core.tokens import TokenVerifier
from panicsafe.core.versions import package_version

log = logging.getLogger(__name__)
HEALTH_TIMEOUT_S = 2.0
GC_YOUNG_THRESHOLD = 10_000
S = TypeVar("S", bound=PanicSettings)


def settle_garbage_collector() -> None:
    """Once started: what exists now (modules, schemas, pools) lives as long as the process, so it is
    frozen out of the cyclic collector's sight, and the youngest generation is collected after
    `GC_YOUNG_THRESHOLD` allocations rather than 700, a request allocating thousands of short-lived
    objects. Collections are then fewer, and none walks the whole heap."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


@dataclass(frozen=True)
class ConsumerSpec:
    """A durable consumer the service declared (`Subscription`): `handler` runs in the transaction that
    records the event. The consumer exists already (the platform provisions declared consumers); the
    service only pulls from it, and its identity may pull from no other."""

    subscription: Subscription
    handler: EventHandler
    wants: EventFilter | None = None
    ignore_services: frozenset[str] = frozenset()

    @property
    def durable(self) -> str:
        return self.subscription.durable

    def accepts(self) -> EventFilter | None:
        """Which events the handler acts on: the declared types, narrowed by `wants`."""
        subscription, wants = self.subscription, self.wants
        if subscription.everything:
            return wants
        if wants is None:
            return subscription.wants
        return lambda event: subscription.wants(event) and wants(event)


@dataclass
class ServiceParts:
    """What a service's build step makes once its connections exist: its handlers and its work.

    `loops` run as tasks from start to stop (cancelled after `on_stop`); `on_stop` runs once the RPC
    server, the relay and the consumers have stopped, before NATS drains and the pool closes."""

    router: RpcRouter | None = None
    consumers: list[ConsumerSpec] = field(default_factory=list)
    loops: list[Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=list)
    on_stop: Callable[[], Awaitable[None]] | None = None


@dataclass
class ServiceSpec(Generic[S]):
    """What a service is made of; the runtime builds everything else.

    `build` runs after the connections (NATS, the migrated database, OpenBao, S3) and before any
    consumer or RPC endpoint starts, so a handler never sees a half-built service. `migrations` is the
    service's own `versions` folder: the bus tables come from core's base migration."""

    name: str
    settings: type[S]
    build: Callable[[Runtime[S]], Awaitable[ServiceParts]] | None = None
    migrations: Path | None = None
    outbox_repoll: bool = True  # see `OutboxRelay`: False when every producer wakes it after its commit

    @functools.cached_property
    def version(self) -> str:
        """The installed distribution's version, read once (every health reply carries it)."""
        return package_version(f"panicsafe-{self.name}")


class Runtime(Generic[S]):
    """Everything one service process holds, built in `start` and released in `stop`."""

    def __init__(self, spec: ServiceSpec[S], settings: S) -> None:
        self.spec = spec
        self.settings: S = settings
        self.nc: Client | None = None
        self.js: JetStreamContext | None = None
        self.db: Database | None = None
        self.cipher: EnvelopeCipher | None = None
        self.s3: Minio | None = None
        self.rpc: RpcClient | None = None
        self.relay: OutboxRelay | None = None
        self.consumers: list[EventConsumer] = []
        self._parts = ServiceParts()
        self._micro: RpcServer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._loops: list[asyncio.Task[None]] = []
        self._stopped = asyncio.Event()
        self.router = RpcRouter(spec.name)
        self.router.handle(health(spec.name))(self._health_endpoint)

    @property
    def name(self) -> str:
        return self.spec.name

    def need_db(self) -> Database:
        if self.db is None:
            raise RuntimeError(f"{self.name} has no database")
        return self.db

    def need_cipher(self) -> EnvelopeCipher:
        if self.cipher is None:
            raise RuntimeError(f"{self.name} has no OpenBao")
        return self.cipher

    async def start(self) -> None:
        """Connections, migrations, the service's build step, then its relay, consumers and RPC."""
        settings = self.settings
        self.nc = await connect_nats(
            settings.nats_url, f"panicsafe-{self.name}-{settings.instance}", settings.nats_credentials(self.name)
        )
        self.js = self.nc.jetstream()
        await wait_events_stream(self.js)
        self.rpc = RpcClient(self.nc, timeout=settings.rpc_timeout_s)
        if isinstance(settings, DatabaseSettings):
            await upgrade_async(self.spec.migrations, settings.database_owner_url.get_secret_value(), self.name)
            self.db = Database(
                settings.database_url.get_secret_value(), self.name, max_size=settings.database_pool_size
            )
            await self.db.open()
        if isinstance(settings, OpenBaoSettings):
            session = OpenBaoSession(
                settings.openbao_addr,
                AppRoleCredentials(
                    settings.openbao_role_id.get_secret_value(), settings.openbao_secret_id.get_secret_value()
                ),
                ca_file=settings.openbao_ca_file,
                mount=settings.openbao_approle_mount,
            )
            await session.alogin()  # its own identity, at start: a wrong secret id stops the service here
            self.cipher = EnvelopeCipher(TransitKeys(session, mount=settings.openbao_transit_mount))
        if isinstance(settings, S3Settings):
            self.s3 = Minio(
                settings.s3_endpoint,
                access_key=settings.s3_access_key,
                secret_key=settings.s3_secret_key.get_secret_value(),
                secure=settings.s3_secure,
                region=settings.s3_region,
            )
            if not await asyncio.to_thread(self.s3.bucket_exists, settings.s3_bucket):
                await asyncio.to_thread(self.s3.make_bucket, settings.s3_bucket)
        verifier = None
        if settings.token_keys_dir is not None:
            verifier = TokenVerifier.from_directory(
                settings.token_audience or f"panicsafe.{self.name}", settings.token_keys_dir
            )
        if self.spec.build is not None:
            self._parts = await self.spec.build(self)
        if self._parts.router is not None:
            self.router.include(self._parts.router)
        self._start_bus_work()
        self._loops = [asyncio.create_task(loop(), name=f"{self.name}-loop") for loop in self._parts.loops]
        self._micro = await serve(self.nc, self.router, version=self.spec.version, verifier=verifier)
        log.info("service started", extra={"service": self.name})

    def _start_bus_work(self) -> None:
        """The outbox relay and the durable consumers, once the service is built."""
        if self.db is None:
            if self._parts.consumers:
                raise RuntimeError(f"{self.name} has consumers but no database to record what they handled")
            return
        assert self.js is not None
        self.relay = OutboxRelay(self.db, self.js, self.name, repoll=self.spec.outbox_repoll)
        self._tasks.append(asyncio.create_task(self.relay.run(), name=f"{self.name}-outbox"))
        for consumer_spec in self._parts.consumers:
            if consumer_spec.subscription.service != self.name:
                raise RuntimeError(f"{self.name} cannot pull from {consumer_spec.durable}: not its subscription")
            consumer = EventConsumer(
                self.db.pool,
                self.js,
                durable=consumer_spec.durable,
                filter_subject=consumer_spec.subscription.filter_subjects,
                handler=consumer_spec.handler,
                wants=consumer_spec.accepts(),
                ignore_services=consumer_spec.ignore_services,
            )
            self.consumers.append(consumer)
            self._tasks.append(asyncio.create_task(consumer.run(), name=consumer_spec.durable))

    async def stop(self) -> None:
        """Stop taking requests, finish in-flight work, drain NATS, close the pool."""
        if self._micro is not None:
            with contextlib.suppress(Exception):
                await self._micro.stop()
        if self.relay is not None:
            self.relay.stop()
        for consumer in self.consumers:
            consumer.stop()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=10)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._parts.on_stop is not None:
            await self._parts.on_stop()
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        if self.nc is not None and not self.nc.is_closed:
            with contextlib.suppress(Exception):
                await self.nc.drain()
        if self.db is not None:
            await self.db.close()
        if self.cipher is not None:
            await self.cipher.keys.session.aclose()
        self._stopped.set()
        log.info("service stopped", extra={"service": self.name})

    async def run_until_signal(self) -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        settle_garbage_collector()
        await stop.wait()
        await self.stop()

    # -- health ---------------------------------------------------------------------------------
    async def _health_endpoint(self, request: HealthRequest, ctx: RpcContext) -> HealthReply:
        return await self.health()

    async def health(self) -> HealthReply:
        checks: dict[str, Callable[[], Awaitable[Any]]] = {"nats": self._check_nats}
        if self.db is not None:
            checks["database"] = self.db.ping
        if self.cipher is not None:
            checks["openbao"] = self.cipher.keys.ping
        if self.s3 is not None and isinstance(self.settings, S3Settings):
            bucket = self.settings.s3_bucket
            s3 = self.s3
            checks["s3"] = lambda: asyncio.to_thread(s3.bucket_exists, bucket)
        if isinstance(self.settings, TurnSettings):
            checks["turn"] = self._check_turn
        results = await asyncio.gather(*(_probe(name, check) for name, check in checks.items()))
        status = DependencyStatus.OK if all(r.status == DependencyStatus.OK for r in results) else DependencyStatus.DOWN
        return HealthReply(
            service=self.name,
            version=self.spec.version,
            instance=self.settings.instance,
            status=status,
            dependencies=list(results),
        )

    async def _check_nats(self) -> None:
        if self.nc is None or not self.nc.is_connected:
            raise ConnectionError("not connected")
        await self.nc.flush(timeout=int(HEALTH_TIMEOUT_S))

    async def _check_turn(self) -> None:
        if not isinstance(self.settings, TurnSettings):
            raise RuntimeError("no TURN server configured")
        _, writer = await asyncio.open_connection(self.settings.turn_host, self.settings.turn_port)
        writer.close()
        await writer.wait_closed()


async def _probe(name: str, check: Callable[[], Awaitable[Any]]) -> DependencyHealth:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(), timeout=HEALTH_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 (health reports the failure instead of raising it)
        return DependencyHealth(name=name, status=DependencyStatus.DOWN, detail=f"{type(exc).__name__}: {exc}"[:200])
    return DependencyHealth(
        name=name, status=DependencyStatus.OK, latency_ms=round((time.perf_counter() - started) * 1000, 2)
    )


def run_service(spec: ServiceSpec[Any]) -> None:
    """Entry point of `python -m panicsafe.<name>`."""
    settings = spec.settings()
    configure_logging(settings.log_level)
    configure_tracing(f"panicsafe-{spec.name}")
    runtime = Runtime(spec, settings)
    # uvloop, as uvicorn already gives the gateway: the same asyncio API, a faster event loop and
    # socket transports (a service spends much of its time between NATS and PostgreSQL sockets).
    uvloop.run(runtime.run_until_signal())
