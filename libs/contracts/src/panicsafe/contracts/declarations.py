"""Each RPC operation and each event type is declared once, here in `panicsafe.contracts`.

A declaration ties a name on the bus to its models: an `Operation` to its request and reply, an
`EventType` to its payload. The service registers its handler by the declaration
(`router.handle(chat.SEND)`), the caller calls by it (`rpc.call(chat.SEND, request)`, whose reply
type mypy knows), and a producer builds its events from it (`chat.MESSAGE_POSTED.event(...)`), so a
typo or a changed model fails in mypy or at import, never at run time on the other side of the bus.

`panicsafe.contracts.catalog` lists every declaration; `python -m panicsafe.contracts.export` writes
their JSON Schemas into the repository, and a test fails when the committed copy drifts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from panicsafe.contracts.events import (
    NO_CRISIS,
    TOKEN_RE,
    CloudEvent,
    LogbookPart,
    Mode,
    event_type,
)

Req = TypeVar("Req", bound=BaseModel)
Rep = TypeVar("Rep", bound=BaseModel)
Payload = TypeVar("Payload", bound=BaseModel)
DURABLE_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


def _check_token(kind: str, value: str) -> None:
    if not TOKEN_RE.match(value):
        raise ValueError(f"{kind} {value!r} is not a single subject token")


@dataclass(frozen=True, eq=False)
class Operation(Generic[Req, Rep]):
    """`rpc.<service>.<name>`: one request model in, one reply model out.

    `public` operations accept calls without an actor token (health, development bootstrap)."""

    service: str
    name: str
    request: type[Req]
    reply: type[Rep]
    description: str
    public: bool = False

    def __post_init__(self) -> None:
        _check_token("service", self.service)
        _check_token("operation", self.name)
        if not self.description.strip():
            raise ValueError(f"rpc.{self.service}.{self.name} needs a one-line description")

    @property
    def subject(self) -> str:
        return f"rpc.{self.service}.{self.name}"

    def __repr__(self) -> str:
        return f"Operation({self.subject})"


@dataclass(frozen=True, eq=False)
class EventType(Generic[Payload]):
    """`evt.<tenant>.<crisis or _>.<service>.<name>`: a CloudEvent whose `data` is one payload model."""

    service: str
    name: str
    payload: type[Payload]
    description: str

    def __post_init__(self) -> None:
        _check_token("service", self.service)
        _check_token("event type", self.name)
        if not self.description.strip():
            raise ValueError(f"{self.type} needs a one-line description")

    @property
    def type(self) -> str:
        """The CloudEvents `type`: `fr.panicsafe.<service>.<name>`."""
        return event_type(self.service, self.name)

    @property
    def source(self) -> str:
        return f"panicsafe/{self.service}"

    def subjects(self, tenant: str = "*", crisis: str = "*") -> str:
        """The NATS subject (or filter, with wildcards) of these events."""
        return f"evt.{tenant}.{crisis}.{self.service}.{self.name}"

    def matches(self, event: CloudEvent) -> bool:
        """Is `event` one of these? (Its source is checked too: only the owner names its events.)"""
        return event.type == self.type

    def parse(self, event: CloudEvent) -> Payload:
        """The typed payload of an event of this type."""
        if not self.matches(event):
            raise ValueError(f"{event.type} is not {self.type}")
        return self.payload.model_validate(event.data)

    def event(
        self,
        payload: Payload,
        *,
        tenant: str,
        crisis: str | None = None,
        actor: str | None = None,
        mode: Mode = Mode.REAL,
        logbook: LogbookPart | None = None,
        **envelope: Any,
    ) -> CloudEvent:
        """A new event of this type carrying `payload` (envelope extras: `id`, `time`, `subject`, ...)."""
        if not isinstance(payload, self.payload):
            raise TypeError(f"{self.type} carries {self.payload.__name__}, not {type(payload).__name__}")
        return CloudEvent(
            source=self.source,
            type=self.type,
            tenantid=tenant,
            crisisid=crisis or NO_CRISIS,
            actorid=actor,
            mode=mode,
            data=payload.model_dump(mode="json", exclude_none=True),
            logbook=logbook,
            **envelope,
        )

    def __repr__(self) -> str:
        return f"EventType({self.type})"


@dataclass(frozen=True, eq=False)
class Subscription:
    """A durable consumer a service declares: what it reads from the `EVENTS` stream, and nothing else.

    The bus grants the service exactly these subjects (the consumer is provisioned by the platform,
    the service only pulls from it): a declared list of event types, or `everything` for the one
    service whose job is to read them all (the main courante)."""

    service: str
    durable: str
    events: tuple[EventType[Any], ...] = ()
    everything: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        _check_token("service", self.service)
        if not DURABLE_RE.match(self.durable) or not self.durable.startswith(f"{self.service}-"):
            raise ValueError(f"durable {self.durable!r} must be `<service>-<name>` in [a-z0-9-]")
        if self.everything == bool(self.events):
            raise ValueError(f"{self.durable}: declare either event types or everything, not both or neither")

    @property
    def filter_subjects(self) -> tuple[str, ...]:
        """The JetStream filter subjects of the consumer."""
        if self.everything:
            return ("evt.>",)
        return tuple(sorted({event.subjects() for event in self.events}))

    def wants(self, event: CloudEvent) -> bool:
        return self.everything or any(declared.matches(event) for declared in self.events)

    def __repr__(self) -> str:
        return f"Subscription({self.durable})"
