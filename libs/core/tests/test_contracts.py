"""The CloudEvent envelope: flat logbook attributes, NATS subject, tenant/crisis UUIDs, aware times."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from panicsafe.contracts import chat
from panicsafe.contracts.events import (
    NO_CRISIS,
    CloudEvent,
    LogbookKind,
    LogbookPart,
    Mode,
    Refusal,
    canonical_uuid,
    event_type,
    subject_disagreement,
)

TENANT = "6f9619ff-8b86-d011-b42d-00c04fc964ff"
CRISIS = "0b6f3e0e-5c1a-4d4e-9a59-2f1f2b7f0c11"


def make_event(**fields: object) -> CloudEvent:
    values: dict[str, object] = {
        "source": "panicsafe/chat",
        "type": event_type("chat", "message_posted"),
        "tenantid": TENANT,
        **fields,
    }
    return CloudEvent.model_validate(values)


def test_logbook_part_is_flattened_on_dump() -> None:
    event = make_event(
        crisisid=CRISIS,
        logbook=LogbookPart(kind=LogbookKind.DECISION, summary="Bascule en mode dégradé des urgences"),
    )
    dumped = event.model_dump(mode="json")

    assert "logbook" not in dumped
    assert dumped["logbookkind"] == "decision"
    assert dumped["logbooksummary"] == "Bascule en mode dégradé des urgences"
    # CloudEvents extension attributes are scalars only.
    assert all(not isinstance(value, dict) for key, value in dumped.items() if key != "data")

    wire = json.loads(event.model_dump_json())
    assert wire["logbookkind"] == "decision"
    assert wire["logbooksummary"] == "Bascule en mode dégradé des urgences"
    assert "logbook" not in wire


def test_flattened_logbook_is_read_back() -> None:
    event = make_event(
        crisisid=CRISIS,
        actorid="user-42",
        mode=Mode.EXERCISE,
        data={"message": "Salle de crise ouverte", "count": 3},
        logbook=LogbookPart(kind=LogbookKind.ACTION, summary="Ouverture de la salle de crise"),
    )

    from_dict = CloudEvent.model_validate(event.model_dump(mode="json"))
    from_json = CloudEvent.model_validate_json(event.model_dump_json())

    for again in (from_dict, from_json):
        assert again == event
        assert again.logbook == LogbookPart(kind=LogbookKind.ACTION, summary="Ouverture de la salle de crise")
        assert again.mode is Mode.EXERCISE
        assert again.data == {"message": "Salle de crise ouverte", "count": 3}
        assert again.time == event.time


def test_event_without_logbook_dumps_no_logbook_attributes() -> None:
    dumped = make_event().model_dump(mode="json")
    assert "logbook" not in dumped
    assert "logbookkind" not in dumped
    assert "logbooksummary" not in dumped
    # None-valued optional attributes are left out entirely.
    assert "subject" not in dumped
    assert "actorid" not in dumped
    assert "traceparent" not in dumped
    assert dumped["specversion"] == "1.0"
    assert dumped["crisisid"] == NO_CRISIS
    assert CloudEvent.model_validate(dumped).logbook is None


def test_invalid_flattened_logbook_is_refused() -> None:
    raw = make_event().model_dump(mode="json")
    with pytest.raises(ValidationError, match="logbook"):
        CloudEvent.model_validate({**raw, "logbookkind": "gossip", "logbooksummary": "x"})
    with pytest.raises(ValidationError, match="logbook"):
        CloudEvent.model_validate({**raw, "logbookkind": "fact"})  # summary missing: empty


def test_nats_subject_with_and_without_crisis() -> None:
    with_crisis = make_event(crisisid=CRISIS)
    assert with_crisis.nats_subject == f"evt.{TENANT}.{CRISIS}.chat.message_posted"
    assert with_crisis.service == "chat"
    assert with_crisis.short_type == chat.MESSAGE_POSTED.name

    without_crisis = make_event()
    assert without_crisis.nats_subject == f"evt.{TENANT}._.chat.message_posted"
    assert without_crisis.nats_subject.split(".") == ["evt", TENANT, "_", "chat", "message_posted"]


OTHER = "a3bb189e-8bf9-4888-9912-ace4e6543002"


@pytest.mark.parametrize(
    ("subject", "refusal"),
    [
        (f"evt.{TENANT}.{CRISIS}.chat.message_posted", None),
        (f"evt.{TENANT}.{CRISIS}.gateway.message_posted", Refusal.SOURCE_MISMATCH),
        (f"evt.{OTHER}.{CRISIS}.chat.message_posted", Refusal.TENANT_MISMATCH),
        (f"evt.{TENANT.upper()}.{CRISIS}.chat.message_posted", Refusal.TENANT_MISMATCH),  # not as published
        (f"evt.{TENANT}.{OTHER}.chat.message_posted", Refusal.CRISIS_MISMATCH),
        (f"evt.{TENANT}._.chat.message_posted", Refusal.CRISIS_MISMATCH),
        (f"evt.{TENANT}.{CRISIS}.chat.message_deleted", Refusal.TYPE_MISMATCH),
        (f"evt.{TENANT}.{CRISIS}.chat.message_posted.more", Refusal.NOT_AN_EVENT_SUBJECT),
        (f"rpc.{TENANT}.{CRISIS}.chat.message_posted", Refusal.NOT_AN_EVENT_SUBJECT),
        (f"evt.{TENANT}.{CRISIS}.chat", Refusal.NOT_AN_EVENT_SUBJECT),
    ],
)
def test_an_event_is_believed_only_on_the_subject_it_names(subject: str, refusal: Refusal | None) -> None:
    event = make_event(crisisid=CRISIS)
    assert subject_disagreement(subject, event) == refusal
    assert subject_disagreement(event.nats_subject, event) is None


def test_uuids_are_canonicalised() -> None:
    event = make_event(tenantid=TENANT.upper(), crisisid="{" + CRISIS.upper() + "}")
    assert event.tenantid == TENANT
    assert event.crisisid == CRISIS
    assert event.nats_subject == f"evt.{TENANT}.{CRISIS}.chat.message_posted"
    assert canonical_uuid(uuid.UUID(TENANT).hex) == TENANT


@pytest.mark.parametrize("tenant", ["acme", "", "*", ">", "6f9619ff-8b86-d011-b42d", f"{TENANT}.x"])
def test_non_uuid_tenant_is_refused(tenant: str) -> None:
    with pytest.raises(ValidationError, match="must be a UUID") as info:
        make_event(tenantid=tenant)
    assert [e["loc"] for e in info.value.errors()] == [("tenantid",)]


def test_non_uuid_crisis_is_refused() -> None:
    with pytest.raises(ValidationError, match="must be a UUID") as info:
        make_event(crisisid="crisis-1")
    assert [e["loc"] for e in info.value.errors()] == [("crisisid",)]


def test_missing_tenant_is_refused() -> None:
    with pytest.raises(ValidationError, match="tenantid"):
        CloudEvent.model_validate({"source": "panicsafe/chat", "type": "fr.panicsafe.chat.x"})


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValidationError, match="must carry a time zone") as info:
        make_event(time=datetime(2025, 3, 1, 12, 0, 0))  # naive on purpose
    assert [e["loc"] for e in info.value.errors()] == [("time",)]
    with pytest.raises(ValidationError, match="must carry a time zone"):
        CloudEvent.model_validate_json(
            json.dumps({"source": "panicsafe/chat", "type": "t", "tenantid": TENANT, "time": "2025-03-01T12:00:00"})
        )


def test_aware_datetimes_are_accepted() -> None:
    paris = timezone(timedelta(hours=1))
    event = make_event(time=datetime(2025, 3, 1, 13, 0, 0, tzinfo=paris))
    assert event.time == datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
    assert make_event().time.tzinfo is not None


def test_event_type_builds_the_full_type() -> None:
    assert event_type("chat", "message_posted") == "fr.panicsafe.chat.message_posted"
    assert event_type("sara", "risk-raised") == "fr.panicsafe.sara.risk-raised"


@pytest.mark.parametrize(
    ("service", "short_type"),
    [
        ("chat", "message.posted"),
        ("chat.room", "created"),
        ("chat", "*"),
        ("chat", ">"),
        ("chat", "with space"),
        ("chat", ""),
        ("", "created"),
        ("chat", "x" * 65),
    ],
)
def test_event_type_refuses_tokens_that_are_not_single_subject_tokens(service: str, short_type: str) -> None:
    with pytest.raises(ValueError, match="is not a single subject token"):
        event_type(service, short_type)


def test_events_are_frozen_and_have_unique_ids() -> None:
    first, second = make_event(), make_event()
    assert first.id != second.id
    assert uuid.UUID(first.id).version == 4
    with pytest.raises(ValidationError, match="frozen"):
        first.tenantid = str(uuid.uuid4())  # type: ignore[misc]


@pytest.mark.parametrize(
    ("source", "type_"),
    [
        ("panicsafe/*", "fr.panicsafe.chat.message_posted"),
        ("panicsafe/chat.rooms", "fr.panicsafe.chat.message_posted"),
        ("panicsafe/chat", "fr.panicsafe.chat.a b"),
        ("panicsafe/chat", "fr.panicsafe.chat.>"),
    ],
)
def test_source_and_type_cannot_break_the_subject(source: str, type_: str) -> None:
    with pytest.raises(ValidationError):
        CloudEvent(source=source, type=type_, tenantid=TENANT)
