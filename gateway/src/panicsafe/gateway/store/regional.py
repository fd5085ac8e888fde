"""Aggregated, non-nominative indicators of the tenants that share with one region (ARS, CERT Santé).

Everything is read in one read-only, repeatable-read transaction that sets `app.region` and no
tenant: row-level security (`tenants_regional`, `*_regional_read`) then shows only the rows of the
tenants that opted in to share with that region. The queries also filter on sharing and region
themselves (defence in depth), and select nothing but categories and counts: no name, id or title
ever leaves this module.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from panicsafe.core.db.database import Connection, Database
from panicsafe.gateway.domain.models import CrisisMode, CrisisStatus, EstablishmentType, Severity

REGION_SETTING = "app.region"


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


# Each query is scoped twice: by row-level security (the transaction's app.region) and by its own
# join on the tenants sharing with region $1. Only categories and counts are selected.
_PARTICIPATING_SQL = "SELECT count(*) FROM tenants t WHERE t.share_with_region AND t.region = $1"
_ESTABLISHMENTS_SQL = (
    "SELECT e.type AS key, count(*) AS n FROM establishments e JOIN tenants t ON t.id = e.tenant_id "
    "WHERE t.share_with_region AND t.region = $1 GROUP BY e.type"
)
_CRISES_BY_STATUS_SQL = (
    "SELECT c.status AS key, count(*) AS n FROM crises c JOIN tenants t ON t.id = c.tenant_id "
    "WHERE t.share_with_region AND t.region = $1 AND c.mode = 'real' GROUP BY c.status"
)
_CRISES_BY_SEVERITY_SQL = (
    "SELECT c.severity AS key, count(*) AS n FROM crises c JOIN tenants t ON t.id = c.tenant_id "
    "WHERE t.share_with_region AND t.region = $1 AND c.mode = 'real' GROUP BY c.severity"
)
_CRISES_BY_MODE_SQL = (
    "SELECT c.mode AS key, count(*) AS n FROM crises c JOIN tenants t ON t.id = c.tenant_id "
    "WHERE t.share_with_region AND t.region = $1 GROUP BY c.mode"
)
_CRISES_BY_ESTABLISHMENT_TYPE_SQL = (
    "SELECT e.type AS key, count(DISTINCT ce.crisis_id) AS n FROM crisis_establishments ce "
    "JOIN establishments e ON e.id = ce.establishment_id AND e.tenant_id = ce.tenant_id "
    "JOIN crises c ON c.id = ce.crisis_id AND c.tenant_id = ce.tenant_id "
    "JOIN tenants t ON t.id = ce.tenant_id "
    "WHERE t.share_with_region AND t.region = $1 AND c.mode = 'real' GROUP BY e.type"
)
_OPEN_CRISIS_HOURS_SQL = (
    "SELECT extract(epoch FROM ($2::timestamptz - c.t0))::float8 / 3600.0 AS hours "
    "FROM crises c JOIN tenants t ON t.id = c.tenant_id "
    "WHERE t.share_with_region AND t.region = $1 AND c.status <> 'closed' AND c.mode = 'real'"
)


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


async def _counts(conn: Connection, sql: str, *args: object) -> list[tuple[str, int]]:
    return [(row["key"], row["n"]) for row in await conn.fetch(sql, *args)]


async def _scope_to_region(conn: Connection, region: str) -> None:
    """Read-only snapshot, `app.region` set; refuse a connection that carries a tenant or identity scope."""
    await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    row = await conn.fetchrow(
        "SELECT set_config($1, $2, true) AS region, "
        "NULLIF(current_setting('app.tenant_id', true), '') AS tenant, "
        "NULLIF(current_setting('app.identity', true), '') AS identity",
        REGION_SETTING,
        region,
    )
    assert row is not None
    if row["tenant"] is not None or row["identity"] is not None:
        raise RuntimeError("a regional read must not run with a tenant or identity scope")


async def regional_indicators(db: Database, region: str, *, now: datetime) -> RegionalIndicators:
    """The aggregates of the tenants sharing with `region`, as of `now` (timezone-aware)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    async with db.transaction() as conn:
        await _scope_to_region(conn, region)
        participating = await conn.fetchval(_PARTICIPATING_SQL, region)
        establishments = await _counts(conn, _ESTABLISHMENTS_SQL, region)
        by_status = await _counts(conn, _CRISES_BY_STATUS_SQL, region)
        by_severity = await _counts(conn, _CRISES_BY_SEVERITY_SQL, region)
        by_mode = await _counts(conn, _CRISES_BY_MODE_SQL, region)
        by_establishment_type = await _counts(conn, _CRISES_BY_ESTABLISHMENT_TYPE_SQL, region)
        hours = [float(row["hours"]) for row in await conn.fetch(_OPEN_CRISIS_HOURS_SQL, region, now)]
    buckets, max_hours = bucket_hours(hours)
    establishment_types = _values(EstablishmentType)
    return RegionalIndicators(
        region=region,
        generated_at=now,
        participating_tenants=int(participating or 0),
        establishments_by_type=_breakdown(establishments, establishment_types),
        crises_by_status=_breakdown(by_status, _values(CrisisStatus)),
        crises_by_severity=_breakdown(by_severity, _values(Severity)),
        crises_by_mode=_breakdown(by_mode, _values(CrisisMode)),
        crises_by_establishment_type=_breakdown(by_establishment_type, establishment_types),
        hours_since_t0_buckets=buckets,
        max_hours_since_t0=max_hours,
    )
