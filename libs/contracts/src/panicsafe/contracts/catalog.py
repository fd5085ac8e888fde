"""The registry of services, and the catalog of every operation and event they declare.

One list: the devstack starts these services, the gateway calls them, the platform test checks them,
`python -m panicsafe.contracts.export` writes their contracts, and a test holds the workspace
(`pyproject.toml`) to it. Adding a service starts here (see `docs/adding-a-service.md`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from panicsafe.contracts import chat, gateway, logbook
from panicsafe.contracts.declarations import EventType, Operation, Subscription
from panicsafe.contracts.health import health


@dataclass(frozen=True)
class ServiceEntry:
    """One deployable service: `python -m panicsafe.<name>`, distribution `panicsafe-<name>`."""

    name: str
    description: str
    operations: tuple[Operation[Any, Any], ...] = ()
    events: tuple[EventType[Any], ...] = ()
    # What it reads from the bus (durable consumers) and whose operations it calls: the NATS
    # permissions of its identity are made from these and from its own operations and events.
    subscriptions: tuple[Subscription, ...] = ()
    calls: tuple[str, ...] = ()
    # Live views: it may open short-lived ordered consumers on every event (the gateway's WebSocket feeds).
    live_events: bool = False

    @property
    def module(self) -> str:
        return f"panicsafe.{self.name}"

    @property
    def distribution(self) -> str:
        return f"panicsafe-{self.name}"

    @property
    def health(self) -> Operation[Any, Any]:
        return health(self.name)

    def all_operations(self) -> tuple[Operation[Any, Any], ...]:
        """Its declared operations and the `health` every service answers."""
        return (self.health, *self.operations)


GATEWAY = "gateway"
# In start order: the downstream services first, the gateway (which calls them) last.
_DOWNSTREAM_SERVICES: tuple[ServiceEntry, ...] = (
    ServiceEntry("chat", "compartmentalised crisis messaging", chat.OPERATIONS, chat.EVENTS, chat.SUBSCRIPTIONS),
    ServiceEntry("video", "WebRTC rooms for crisis cells (SFU, TURN credentials)"),
    ServiceEntry("logbook", "the signed main courante", logbook.OPERATIONS, logbook.EVENTS, logbook.SUBSCRIPTIONS),
    ServiceEntry("docs", "the document vault and paper kit"),
    ServiceEntry("sara", "plans, tasks, regulatory clocks, exercises"),
)
DOWNSTREAM: tuple[str, ...] = tuple(entry.name for entry in _DOWNSTREAM_SERVICES)
SERVICES: tuple[ServiceEntry, ...] = (
    *_DOWNSTREAM_SERVICES,
    ServiceEntry(
        GATEWAY,
        "the GraphQL edge: identity, MFA, access decisions",
        gateway.OPERATIONS,
        gateway.EVENTS,
        calls=DOWNSTREAM,  # the gateway calls every service; no service calls the gateway
        live_events=True,
    ),
)
SERVICE_NAMES: tuple[str, ...] = tuple(entry.name for entry in SERVICES)


def service(name: str) -> ServiceEntry:
    for entry in SERVICES:
        if entry.name == name:
            return entry
    raise KeyError(f"no service {name!r} in the registry")


def operations() -> list[Operation[Any, Any]]:
    return [op for entry in SERVICES for op in entry.all_operations()]


def events() -> list[EventType[Any]]:
    return [event for entry in SERVICES for event in entry.events]


def subscriptions() -> list[Subscription]:
    return [sub for entry in SERVICES for sub in entry.subscriptions]
