"""Helpers of the chat tests (imported by name: `pythonpath` lists this folder)."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field

from panicsafe.chat.core import ChatCore
from panicsafe.contracts.actor import Actor, CrisisMembership
from panicsafe.contracts.chat import CellRef, ChannelKind, CrisisRef, ProvisionRequest, SendRequest
from panicsafe.core.db.database import Database
from panicsafe.core.db.provision import ServiceRoles


@dataclass
class ChatUnderTest:
    core: ChatCore
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
    await chat.core.provision(
        crisis.tenant,
        ProvisionRequest(crisis=crisis.id, cells=[CellRef(id=i, name=n) for n, i in crisis.cells.items()]),
    )
    director = crisis.person("director", name="Directrice")
    listed = await chat.core.list_channels(director, CrisisRef(crisis=crisis.id))
    for c in listed.channels:
        key = c.kind.value if c.kind in (ChannelKind.CRISIS, ChannelKind.EXTERNAL) else c.name
        crisis.channels[key] = c.id
    return crisis


def send_request(channel: str, text: str, client_id: str | None = None, **extra: object) -> SendRequest:
    return SendRequest.model_validate(
        {"channel": channel, "client_id": client_id or secrets.token_urlsafe(12), "text": text, **extra}
    )
