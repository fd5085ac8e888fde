"""Composition root of the logbook service."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from panicsafe.contracts.events import CloudEvent
from panicsafe.core.bus.rpc import RpcRouter
from panicsafe.core.db.database import Connection
from panicsafe.core.service import ConsumerSpec, Runtime, ServiceSpec
from panicsafe.core.versions import package_version
from panicsafe.logbook.core import LogbookCore
from panicsafe.logbook.exports import ExportStore
from panicsafe.logbook.handlers import build_router
from panicsafe.logbook.settings import LogbookSettings
from panicsafe.logbook.signing import TransitSigner

MIGRATIONS = Path(__file__).parent / "migrations"
# The durable consumer that writes the main courante from every event with a logbook part.
DURABLE = "logbook-writer"


class LogbookService:
    """Holds the core once the runtime has its connections; the consumer waits for it."""

    def __init__(self) -> None:
        self.core: LogbookCore | None = None
        self._ready: asyncio.Event | None = None
        self._loops: list[asyncio.Task[None]] = []

    def _ready_event(self) -> asyncio.Event:
        if self._ready is None:
            self._ready = asyncio.Event()
        return self._ready

    async def ingest(self, conn: Connection, event: CloudEvent) -> None:
        await self._ready_event().wait()
        assert self.core is not None
        await self.core.ingest(conn, event)

    async def on_start(self, rt: Runtime) -> None:
        settings = rt.settings
        assert isinstance(settings, LogbookSettings)
        cipher = rt.need_cipher()
        core = LogbookCore(
            rt.need_db(), cipher, TransitSigner(cipher.keys.client, mount=settings.openbao_transit_mount)
        )
        core.start()
        exports = None
        if rt.s3 is not None:
            exports = ExportStore(rt.s3, settings.s3_bucket, cipher, ttl_s=settings.export_ttl_s)
        rt.router.include(build_router(core, exports))
        self.core = core
        self._loops = [
            asyncio.create_task(core.run_checkpointer(settings.checkpoint_interval_s)),
            asyncio.create_task(core.run_announcer(settings.notice_interval_s)),
        ]
        self._ready_event().set()

    async def on_stop(self, rt: Runtime) -> None:
        if self.core is not None:
            await self.core.stop()
        for task in self._loops:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def wants(event: CloudEvent) -> bool:
    """Events with a logbook part, except the logbook's own notices."""
    return event.logbook is not None and event.service != "logbook"


def build_spec() -> ServiceSpec:
    service = LogbookService()
    return ServiceSpec(
        name="logbook",
        version=package_version("panicsafe-logbook"),
        router=RpcRouter("logbook"),
        migrations=MIGRATIONS,
        consumers=[
            ConsumerSpec(
                durable=DURABLE,
                filter_subject="evt.>",
                handler=service.ingest,
                wants=wants,
                ignore_services=frozenset({"logbook"}),  # its own notices
            )
        ],
        on_start=service.on_start,
        on_stop=service.on_stop,
        outbox_repoll=False,  # its only producer, the announcer, wakes the relay once it has committed
    )
