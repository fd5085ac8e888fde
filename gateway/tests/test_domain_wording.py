"""The French wording of the gateway's main courante entries: labels, never code values; Paris time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from panicsafe.gateway.domain import wording
from panicsafe.gateway.domain.models import CrisisRole, CrisisStatus, Severity


def test_declaration_tells_t0_in_paris_time_with_its_offset() -> None:
    winter = datetime(2026, 11, 23, 14, 40, tzinfo=UTC)
    text = wording.crisis_declared(
        director="Claire Directrice", title="Rançongiciel", severity="major", t0=winter, exercise=False
    )
    assert text == (
        "Crise déclarée par Claire Directrice : « Rançongiciel », gravité majeure, "
        "T0 23/11/2026 15:40 (heure de Paris, UTC+01:00)."
    )
    assert "UTC+01:00" in text and "14:40" not in text


def test_summer_time_and_any_offset_given_are_told_in_paris_time() -> None:
    summer = datetime(2026, 7, 1, 13, 5, tzinfo=UTC)
    assert wording.paris_time(summer) == "01/07/2026 15:05 (heure de Paris, UTC+02:00)"
    # A T0 typed in another zone (a browser abroad) is the same moment on the Paris clock.
    new_york = datetime(2026, 7, 1, 9, 5, tzinfo=timezone(timedelta(hours=-4)))
    assert wording.paris_time(new_york) == wording.paris_time(summer)


def test_a_time_without_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        wording.paris_time(datetime(2026, 7, 1, 13, 5))  # naive: the point of the test


def test_an_exercise_declaration_says_so() -> None:
    t0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    text = wording.crisis_declared(director="A", title="Exercice", severity="critical", t0=t0, exercise=True)
    assert text.endswith("(EXERCICE).")
    assert "gravité critique" in text


def test_every_value_has_a_french_label() -> None:
    pairs = [
        *((r.value, wording.role_label(r.value)) for r in CrisisRole),
        *((s.value, wording.severity_label(s.value)) for s in Severity),
        *((s.value, wording.status_label(s.value)) for s in CrisisStatus),
    ]
    assert [value for value, label in pairs if label == value] == ["active"]  # the one word French shares
    assert wording.role_label("coordinator") == "coordinateur·rice"
    assert wording.severity_label("major") == "majeure"
    assert wording.status_label("recovery") == "reprise"
    assert wording.role_label("inconnu") == "inconnu"  # an unknown value is shown, not lost
