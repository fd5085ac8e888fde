"""Helpers of the chat tests (imported by name: `pythonpath` lists this folder)."""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import dataclass, field

import asyncpg
import pytest

from panicsafe.chat.channels import Channels
from panicsafe.chat.messages import Messages
from panicsafe.chat.reading import Reading
from panicsafe.chat.search import Search
from panicsafe.contracts.actor import Actor, CrisisMembership
from panicsafe.contracts.chat import CellRef, ChannelKind, CrisisRef, ProvisionRequest, SendRequest, message_purpose
from panicsafe.contracts.errors import ErrorCode
from panicsafe.contracts.events import CloudEvent
from panicsafe.core.crypto import EnvelopeCipher
from panicsafe.core.db.database import Database
from panicsafe.core.db.provision import ServiceRoles
from panicsafe.core.errors import ServiceError


@dataclass
class ChatUnderTest:
    channels: Channels
    messages: Messages
    reading: Reading
    search: Search
    cipher: EnvelopeCipher
    db: Database
    roles: ServiceRoles
    admin_dsn: str


@dataclass
class Crisis:
    tenant: str
    id: str
    cells: dict[str, str] = field(default_factory=dict)  # name -> id
    channels: dict[str, str] = field(default_factory=dict)  # "crisis", "external", or a cell name -> id

    def person(self, role: str = "member", cells: tuple[str, ...] = (), name: str = "Agent") -> Actor:
        return Actor(
            subject=str(uuid.uuid4()),
            tenant=self.tenant,
            name=name,
            tenant_roles=["member"],
            memberships=[CrisisMembership(crisis=self.id, roles=[role], cells=[self.cells[c] for c in cells])],
        )


async def new_crisis(
    chat: ChatUnderTest, cells: tuple[str, ...] = ("SI", "Médical"), tenant: str | None = None
) -> Crisis:
    crisis = Crisis(tenant=tenant or str(uuid.uuid4()), id=str(uuid.uuid4()))
    crisis.cells = {name: str(uuid.uuid4()) for name in cells}
    await chat.channels.provision(
        crisis.tenant,
        ProvisionRequest(crisis=crisis.id, cells=[CellRef(id=i, name=n) for n, i in crisis.cells.items()]),
    )
    director = crisis.person("director", name="Directrice")
    listed = await chat.channels.list_channels(director, CrisisRef(crisis=crisis.id))
    for c in listed.channels:
        key = c.kind.value if c.kind in (ChannelKind.CRISIS, ChannelKind.EXTERNAL) else c.name
        crisis.channels[key] = c.id
    return crisis


def send_request(channel: str, text: str, client_id: str | None = None, **extra: object) -> SendRequest:
    return SendRequest.model_validate(
        {"channel": channel, "client_id": client_id or secrets.token_urlsafe(12), "text": text, **extra}
    )


async def text_of(chat: ChatUnderTest, tenant: str, message_id: str, version: int, sealed: str | None) -> str | None:
    if sealed is None:
        return None
    plain = await chat.cipher.decrypt(tenant, message_id, base64.b64decode(sealed), purpose=message_purpose(version))
    return plain.decode()


async def outbox_events(chat: ChatUnderTest) -> list[CloudEvent]:
    """The events queued by the service (no relay runs in these tests: they stay in the outbox)."""
    conn = await asyncpg.connect(chat.admin_dsn)
    try:
        rows = await conn.fetch(f"SELECT payload FROM {chat.roles.schema}.outbox ORDER BY seq")
    finally:
        await conn.close()
    return [CloudEvent.model_validate_json(bytes(r["payload"])) for r in rows]


def code_of(exc: pytest.ExceptionInfo[ServiceError]) -> ErrorCode:
    return exc.value.code
