"""Aggregated, non-nominative indicators of the tenants that share with one region (ARS, CERT Santé).

They are computed by one function of the schema's owner, `regional_indicators(region, now)`
(migration 0007), in one statement (one snapshot): the runtime role itself sees no row of any tenant
outside that tenant's transactions, and no setting of its own (`app.region` used to be one) widens
that. The function returns nothing but categories and counts: no name, id or title ever leaves it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from panicsafe.core.db.database import Database
from panicsafe.gateway.domain.models import CrisisMode, CrisisStatus, EstablishmentType, Severity


@dataclass(frozen=True)
class Count:
    """One category of a breakdown and how many items fall in it."""

    key: str
    count: int


@dataclass(frozen=True)
class HoursBucket:
    """Open crises whose T0 is at least `lower` hours ago and less than `upper` (None: no bound)."""

    key: str
    lower: int
    upper: int | None

    def holds(self, hours: float) -> bool:
        return hours >= self.lower and (self.upper is None or hours < self.upper)


HOURS_BUCKETS: tuple[HoursBucket, ...] = (
    HoursBucket("<24h", 0, 24),
    HoursBucket("24-72h", 24, 72),
    HoursBucket("72h-1 month", 72, 30 * 24),  # a month is 30 days: NIS2's one-month final report
    HoursBucket(">1 month", 30 * 24, None),
)


@dataclass(frozen=True)
class RegionalIndicators:
    """What a regional supervisor sees of a region: categories and counts only.

    Every breakdown lists each known category in a fixed order, zero counts included. Exercise data
    never mixes with real crises: only `crises_by_mode` counts exercises; every other breakdown, the
    T0 distribution and its maximum (crises not closed; None when there is none) cover real crises.
    """

    region: str
    generated_at: datetime
    participating_tenants: int
    establishments_by_type: tuple[Count, ...]
    crises_by_status: tuple[Count, ...]
    crises_by_severity: tuple[Count, ...]
    crises_by_mode: tuple[Count, ...]
    crises_by_establishment_type: tuple[Count, ...]
    hours_since_t0_buckets: tuple[Count, ...]
    max_hours_since_t0: int | None


def _breakdown(rows: Iterable[tuple[str, int]], known: Sequence[str]) -> tuple[Count, ...]:
    """Every known category in order (zeros included), then any category the database adds."""
    counts = {str(key): int(n) for key, n in rows}
    extra = sorted(set(counts) - set(known))
    return tuple(Count(key, counts.get(key, 0)) for key in (*known, *extra))


def _values(enum: type[StrEnum]) -> tuple[str, ...]:
    return tuple(member.value for member in enum)


def bucket_hours(hours: Iterable[float]) -> tuple[tuple[Count, ...], int | None]:
    """The distribution of open crises' hours since T0, and the largest (whole hours, floored)."""
    tally = dict.fromkeys((b.key for b in HOURS_BUCKETS), 0)
    largest: float | None = None
    for value in hours:
        value = max(value, 0.0)  # a T0 slightly ahead of the clock counts as "just now"
        bucket = next(b for b in HOURS_BUCKETS if b.holds(value))
        tally[bucket.key] += 1
        largest = value if largest is None else max(largest, value)
    return tuple(Count(key, n) for key, n in tally.items()), None if largest is None else math.floor(largest)


async def regional_indicators(db: Database, region: str, *, now: datetime) -> RegionalIndicators:
    """The aggregates of the tenants sharing with `region`, as of `now` (timezone-aware)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    row = await db.read("SELECT * FROM regional_indicators($1, $2)", region, now)
    assert row is not None  # an aggregate: always one row
    hours = [float(h) for h in row["open_crisis_hours"]]
    buckets, max_hours = bucket_hours(hours)
    establishment_types = _values(EstablishmentType)
    return RegionalIndicators(
        region=region,
        generated_at=now,
        participating_tenants=int(row["participating"]),
        establishments_by_type=_breakdown(row["establishments_by_type"].items(), establishment_types),
        crises_by_status=_breakdown(row["crises_by_status"].items(), _values(CrisisStatus)),
        crises_by_severity=_breakdown(row["crises_by_severity"].items(), _values(Severity)),
        crises_by_mode=_breakdown(row["crises_by_mode"].items(), _values(CrisisMode)),
        crises_by_establishment_type=_breakdown(row["crises_by_establishment_type"].items(), establishment_types),
        hours_since_t0_buckets=buckets,
        max_hours_since_t0=max_hours,
    )
