"""Composition root of the chat service."""

from __future__ import annotations

from pathlib import Path

from panicsafe.chat.channels import Channels
from panicsafe.chat.domain import SendLimiter
from panicsafe.chat.handlers import build_router
from panicsafe.chat.messages import Messages
from panicsafe.chat.reading import Reading
from panicsafe.chat.search import Search, SearchKeys
from panicsafe.chat.settings import ChatSettings
from panicsafe.contracts.chat import PROVISIONER
from panicsafe.core.service import ConsumerSpec, Runtime, ServiceParts, ServiceSpec

MIGRATIONS = Path(__file__).parent / "migrations"


async def build(rt: Runtime[ChatSettings]) -> ServiceParts:
    settings = rt.settings
    cipher = rt.need_cipher()
    db = rt.need_db()
    keys = SearchKeys(db, cipher.keys)
    limiter = SendLimiter(rate=settings.send_rate_per_s, burst=settings.send_burst)
    channels = Channels(db)
    router = build_router(
        channels=channels,
        messages=Messages(db, cipher, keys, limiter),
        reading=Reading(db),
        search=Search(db, keys),
    )
    return ServiceParts(
        router=router,
        consumers=[ConsumerSpec(PROVISIONER, channels.on_gateway_event)],
    )


SPEC = ServiceSpec(name="chat", settings=ChatSettings, build=build, migrations=MIGRATIONS)
