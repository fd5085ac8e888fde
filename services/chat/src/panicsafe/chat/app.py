"""Composition root of the chat service."""

from __future__ import annotations

import asyncio
from pathlib import Path

from panicsafe.chat.core import ChatCore
from panicsafe.chat.domain import SendLimiter
from panicsafe.chat.handlers import build_router
from panicsafe.chat.search import SearchKeys
from panicsafe.chat.settings import ChatSettings
from panicsafe.contracts.events import NO_CRISIS, CloudEvent
from panicsafe.core.bus.rpc import RpcRouter
from panicsafe.core.db.database import Connection
from panicsafe.core.service import ConsumerSpec, Runtime, ServiceSpec
from panicsafe.core.versions import package_version

MIGRATIONS = Path(__file__).parent / "migrations"
# The durable consumer that opens a crisis' default channels when it is declared.
DURABLE = "chat-provisioner"
GATEWAY_EVENTS = frozenset({"crisis_declared", "cell_created", "crisis_closed"})


class ChatService:
    def __init__(self) -> None:
        self.core: ChatCore | None = None
        self._ready: asyncio.Event | None = None

    def _ready_event(self) -> asyncio.Event:
        if self._ready is None:
            self._ready = asyncio.Event()
        return self._ready

    async def on_gateway_event(self, conn: Connection, event: CloudEvent) -> None:
        await self._ready_event().wait()
        assert self.core is not None
        await self.core.on_gateway_event(conn, event)

    async def on_start(self, rt: Runtime) -> None:
        settings = rt.settings
        assert isinstance(settings, ChatSettings)
        cipher = rt.need_cipher()
        db = rt.need_db()
        limiter = SendLimiter(rate=settings.send_rate_per_s, burst=settings.send_burst)
        self.core = ChatCore(db, cipher, SearchKeys(db, cipher.keys), limiter)
        rt.router.include(build_router(self.core))
        self._ready_event().set()


def wants(event: CloudEvent) -> bool:
    return event.service == "gateway" and event.crisisid != NO_CRISIS and event.short_type in GATEWAY_EVENTS


def build_spec() -> ServiceSpec:
    service = ChatService()
    return ServiceSpec(
        name="chat",
        version=package_version("panicsafe-chat"),
        router=RpcRouter("chat"),
        migrations=MIGRATIONS,
        consumers=[
            ConsumerSpec(
                durable=DURABLE, filter_subject="evt.*.*.gateway.>", handler=service.on_gateway_event, wants=wants
            )
        ],
        on_start=service.on_start,
    )
