"""Composition root of the logbook service."""

from __future__ import annotations

from pathlib import Path

from panicsafe.contracts.events import CloudEvent
from panicsafe.contracts.logbook import SERVICE, WRITER
from panicsafe.core.service import ConsumerSpec, Runtime, ServiceParts, ServiceSpec
from panicsafe.logbook.core import LogbookCore
from panicsafe.logbook.exports import ExportStore
from panicsafe.logbook.handlers import build_router
from panicsafe.logbook.settings import LogbookSettings
from panicsafe.logbook.signing import TransitSigner

MIGRATIONS = Path(__file__).parent / "migrations"


def wants(event: CloudEvent) -> bool:
    """Events with a logbook part, except the logbook's own notices."""
    return event.logbook is not None and event.service != SERVICE


async def build(rt: Runtime[LogbookSettings]) -> ServiceParts:
    settings = rt.settings
    cipher = rt.need_cipher()
    core = LogbookCore(rt.need_db(), cipher, TransitSigner(cipher.keys.session, mount=settings.openbao_transit_mount))
    core.start()
    exports = None
    if rt.s3 is not None:
        exports = ExportStore(rt.s3, settings.s3_bucket, cipher, ttl_s=settings.export_ttl_s)

    async def checkpointer() -> None:
        await core.run_checkpointer(settings.checkpoint_interval_s)

    async def announcer() -> None:
        await core.run_announcer(settings.notice_interval_s)

    return ServiceParts(
        router=build_router(core, exports),
        consumers=[
            ConsumerSpec(
                WRITER,  # every service's events: those with a logbook part are entries
                handler=core.ingest,
                wants=wants,
                ignore_services=frozenset({SERVICE}),  # its own notices
            )
        ],
        loops=[checkpointer, announcer],
        on_stop=core.stop,
    )


SPEC = ServiceSpec(
    name=SERVICE,
    settings=LogbookSettings,
    build=build,
    migrations=MIGRATIONS,
    outbox_repoll=False,  # its only producer, the announcer, wakes the relay once it has committed
)
