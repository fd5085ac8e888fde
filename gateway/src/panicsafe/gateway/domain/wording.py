"""The French words of the main courante entries the gateway writes: labels of the tenancy values, times.

The entries are evidence read by people (the cell, a judge, an insurer): values are named in French,
never as the code's identifiers, and a time says which clock it is on. Times are Europe/Paris, the
clock on the wall of every French hospital, with the offset explicit where a reader could doubt it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Final, TypeVar
from zoneinfo import ZoneInfo

from panicsafe.gateway.domain.models import CrisisRole, CrisisStatus, Severity

PARIS: Final = ZoneInfo("Europe/Paris")
E = TypeVar("E", bound=StrEnum)

# Lower case: these words go inside sentences ("gravité majeure", "rôle coordinateur·rice").
ROLE_LABELS: Final[dict[CrisisRole, str]] = {
    CrisisRole.DIRECTOR: "directeur·rice de crise",
    CrisisRole.COORDINATOR: "coordinateur·rice",
    CrisisRole.MEMBER: "membre",
    CrisisRole.PATIENTS_REPRESENTATIVE: "représentant·e des usagers",
    CrisisRole.OBSERVER: "observateur·rice",
    CrisisRole.EXTERNAL_LIAISON: "liaison externe",
}
SEVERITY_LABELS: Final[dict[Severity, str]] = {
    Severity.MINOR: "mineure",
    Severity.SIGNIFICANT: "significative",
    Severity.MAJOR: "majeure",
    Severity.CRITICAL: "critique",
}
STATUS_LABELS: Final[dict[CrisisStatus, str]] = {
    CrisisStatus.ACTIVE: "active",
    CrisisStatus.RECOVERY: "reprise",
    CrisisStatus.CLOSED: "close",
}


def role_label(role: str) -> str:
    """`coordinateur·rice` for `coordinator`; an unknown value is shown as it is."""
    return _label(ROLE_LABELS, CrisisRole, role)


def severity_label(severity: str) -> str:
    """`majeure` for `major`; an unknown value is shown as it is."""
    return _label(SEVERITY_LABELS, Severity, severity)


def status_label(status: str) -> str:
    """`reprise` for `recovery`; an unknown value is shown as it is."""
    return _label(STATUS_LABELS, CrisisStatus, status)


def _label(labels: dict[E, str], kind: type[E], value: str) -> str:
    try:
        return labels[kind(value)]
    except (ValueError, KeyError):
        return value


def paris_time(moment: datetime) -> str:
    """`23/11/2026 15:40 (heure de Paris, UTC+01:00)`: the wall-clock time, and which clock it is.

    The offset is written out because the entry is evidence: read in another season (or abroad), a bare
    local time would leave a doubt of one hour.
    """
    if moment.tzinfo is None:
        raise ValueError("a time without a time zone cannot be told in Paris time")
    local = moment.astimezone(PARIS)
    offset = local.strftime("%z")
    return f"{local:%d/%m/%Y %H:%M} (heure de Paris, UTC{offset[:3]}:{offset[3:]})"


def crisis_declared(*, director: str, title: str, severity: str, t0: datetime, exercise: bool) -> str:
    """The summary of the declaration's entry: who declared what, how serious, and T0 in Paris time."""
    mark = " (EXERCICE)" if exercise else ""
    return (
        f"Crise déclarée par {director} : « {title} », gravité {severity_label(severity)}, T0 {paris_time(t0)}{mark}."
    )
