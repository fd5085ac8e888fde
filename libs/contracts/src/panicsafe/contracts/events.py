"""CloudEvents 1.0 envelope used on `evt.<tenant>.<crisis or _>.<service>.<type>`.

Structured JSON mode. CloudEvents extension attributes must be scalars, so the logbook part
travels as two flat attributes, `logbookkind` and `logbooksummary`, and is exposed here as one
typed `logbook` field.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_serializer,
    model_validator,
)

# One subject token: no dots, no wildcards, no spaces.
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
NO_CRISIS = "_"


class Mode(StrEnum):
    """Exercise data never mixes with a real crisis."""

    REAL = "real"
    EXERCISE = "exercise"


@functools.lru_cache(maxsize=8192)
def _canonical(value: str) -> str:
    return str(uuid.UUID(value))


def canonical_uuid(value: str) -> str:
    """Tenants and crises are UUIDs, written in their canonical lowercase form (the same few ids
    come back on every request and event: their forms are remembered)."""
    try:
        return _canonical(value)
    except (ValueError, AttributeError, TypeError) as exc:
        raise ValueError("must be a UUID") from exc


# A UUID field of a contract, stored in its canonical form whatever the spelling received.
Uuid = Annotated[str, AfterValidator(canonical_uuid)]


class LogbookKind(StrEnum):
    FACT = "fact"
    DECISION = "decision"
    ACTION = "action"
    COMMUNICATION = "communication"
    SYSTEM = "system"


class LogbookPart(BaseModel):
    """What the main courante should record of this event, in French.

    The summary is the log line and travels in clear; anything confidential goes in `body_sealed`,
    an envelope ciphertext under the tenant key (record id = the event id, purpose
    `LOGBOOK_BODY_PURPOSE`), so no confidential text crosses NATS in clear. `links` name what the
    entry is about (`message`, `task`, `document_version`, ...); the originating event is always linked.
    """

    kind: LogbookKind
    summary: str = Field(min_length=1, max_length=500)
    author: str | None = Field(default=None, max_length=200, description="the actor's display name")
    cell: Uuid | None = None
    occurred_at: datetime | None = Field(default=None, description="when it happened, if not the event's time")
    links: dict[str, str] = Field(default_factory=dict, max_length=16)
    body_sealed: str | None = Field(default=None, max_length=200_000, description="base64 envelope ciphertext")

    @field_validator("links")
    @classmethod
    def _links(cls, value: dict[str, str]) -> dict[str, str]:
        for key, target in value.items():
            if not TOKEN_RE.match(key) or not (0 < len(target) <= 200):
                raise ValueError("links are short names to identifiers")
        return value


LOGBOOK_BODY_PURPOSE = "logbook-body"
# Flattened CloudEvents extension attributes of the logbook part (scalars only; links as JSON).
_LOGBOOK_ATTRIBUTES = {
    "kind": "logbookkind",
    "summary": "logbooksummary",
    "author": "logbookauthor",
    "cell": "logbookcell",
    "occurred_at": "logbookoccurred",
    "links": "logbooklinks",
    "body_sealed": "logbookbody",
}


class CloudEvent(BaseModel):
    """One platform event, ready for JetStream (`Nats-Msg-Id` = `id`)."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    source: str = Field(description="panicsafe/<service>")
    type: str = Field(description="fr.panicsafe.<service>.<type>")
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    specversion: str = "1.0"
    datacontenttype: str = "application/json"
    subject: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    tenantid: Uuid
    crisisid: str = NO_CRISIS
    actorid: str | None = None
    traceparent: str | None = None
    mode: Mode = Mode.REAL
    logbook: LogbookPart | None = None

    @field_validator("crisisid")
    @classmethod
    def _crisis_uuid(cls, value: str) -> str:
        return value if value == NO_CRISIS else canonical_uuid(value)

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        service = value.removeprefix("panicsafe/")
        if service == value or not TOKEN_RE.match(service):
            raise ValueError("must be panicsafe/<service>, the service one subject token")
        return value

    @model_validator(mode="after")
    def _type_matches_source(self) -> CloudEvent:
        parts = self.type.split(".")
        if len(parts) != 4 or parts[:2] != ["fr", "panicsafe"] or parts[2] != self.service:
            raise ValueError("type must be fr.panicsafe.<service of source>.<type>")
        if not TOKEN_RE.match(parts[3]):
            raise ValueError("the event type must be one subject token")
        return self

    @field_validator("time")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must carry a time zone")
        return value

    @property
    def service(self) -> str:
        return self.source.removeprefix("panicsafe/")

    @property
    def short_type(self) -> str:
        return self.type.rsplit(".", 1)[-1]

    @property
    def nats_subject(self) -> str:
        return f"evt.{self.tenantid}.{self.crisisid}.{self.service}.{self.short_type}"

    @model_validator(mode="before")
    @classmethod
    def _unflatten_logbook(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and "logbookkind" in raw:
            raw = dict(raw)
            part: dict[str, Any] = {}
            for name, attribute in _LOGBOOK_ATTRIBUTES.items():
                if attribute in raw:
                    part[name] = raw.pop(attribute)
            if isinstance(part.get("links"), str):
                try:
                    part["links"] = json.loads(part["links"])
                except ValueError as exc:
                    raise ValueError("logbooklinks must be a JSON object") from exc
            part.setdefault("summary", "")
            raw["logbook"] = part
        return raw

    @model_serializer(mode="wrap")
    def _flatten_logbook(self, handler: Any) -> dict[str, Any]:
        out: dict[str, Any] = handler(self)
        part = out.pop("logbook", None)
        if part is not None:
            for name, attribute in _LOGBOOK_ATTRIBUTES.items():
                value = part.get(name)
                if name == "links":
                    value = json.dumps(value, sort_keys=True, separators=(",", ":")) if value else None
                out[attribute] = value
        return {k: v for k, v in out.items() if v is not None}


class Refusal(StrEnum):
    """Why a consumer refuses a message of the events stream (stable: alerts and dead letters name it)."""

    MALFORMED = "malformed"  # not a CloudEvent of this contract (bad JSON, a type of another service...)
    NOT_AN_EVENT_SUBJECT = "not_an_event_subject"
    TENANT_MISMATCH = "tenant_mismatch"
    CRISIS_MISMATCH = "crisis_mismatch"
    SOURCE_MISMATCH = "source_mismatch"
    TYPE_MISMATCH = "type_mismatch"


def subject_disagreement(subject: str, event: CloudEvent) -> Refusal | None:
    """Why `event` is not to be believed on `subject`, or None when they agree.

    NATS permissions tie who may publish to the subject (a service publishes only
    `evt.*.*.<itself>.>`), not to what the message says. An event is believed only when its
    subject is exactly the one it names, `nats_subject`: its tenant, crisis, source service and
    type (whose service is the source's, `CloudEvent` checks that). Anything else is a forgery or
    a bug, never handled.
    """
    tokens = subject.split(".")
    if len(tokens) != 5 or tokens[0] != "evt":
        return Refusal.NOT_AN_EVENT_SUBJECT
    _, tenant, crisis, service, short_type = tokens
    if tenant != event.tenantid:
        return Refusal.TENANT_MISMATCH
    if crisis != event.crisisid:
        return Refusal.CRISIS_MISMATCH
    if service != event.service:
        return Refusal.SOURCE_MISMATCH
    if short_type != event.short_type:
        return Refusal.TYPE_MISMATCH
    return None


def event_type(service: str, short_type: str) -> str:
    """`fr.panicsafe.<service>.<type>`, checking both are single subject tokens."""
    for token in (service, short_type):
        if not TOKEN_RE.match(token):
            raise ValueError(f"{token!r} is not a single subject token")
    return f"fr.panicsafe.{service}.{short_type}"
