"""The regional supervision subgraph: aggregated, non-nominative indicators for ARS and CERT Santé.

A GraphQL federation subgraph (Federation 2.9, the highest the Hive composer accepts) served at
`/federation/graphql` and composed into the supervisors' supergraph by the federation router
(`tools/federation`). Its root fields are decided by the same policy as the main schema
(`PolicyGuard`, `FIELD_POLICIES["Query.<field>"]`), then the resolver checks the region itself: a
supervisor reads their own region only. Nothing here carries a name, an id or a title.

`federation.graphql` beside this module is the exported SDL (what `_service { sdl }` answers);
`python -m panicsafe.gateway.federation` rewrites it, `--check` fails when it is stale.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Protocol

import strawberry
from strawberry.types import Info

from panicsafe.core.db.database import Database
from panicsafe.gateway.domain import policy
from panicsafe.gateway.domain.policy import Principal
from panicsafe.gateway.graphql.schema import GatewaySchema, PolicyGuard, guard_root_fields
from panicsafe.gateway.store import regional

FEDERATION_VERSION: Final = "2.9"
SDL_PATH = Path(__file__).with_name("federation.graphql")


class FederationServices(Protocol):
    @property
    def db(self) -> Database: ...


class FederationContext(Protocol):
    """What the subgraph's resolvers need (`GatewayContext` provides it)."""

    @property
    def services(self) -> FederationServices: ...

    async def principal(self) -> Principal | None: ...

    async def require_principal(self) -> Principal: ...


FInfo = Info[FederationContext, None]


@strawberry.federation.type(
    shareable=True, description="Une catégorie d'un indicateur et le nombre d'éléments qui s'y rangent."
)
class IndicatorCount:
    key: str
    count: int


@strawberry.type(description="Indicateurs agrégés et non nominatifs des organisations qui partagent avec la région.")
class RegionalIndicators:
    region: str
    generated_at: datetime
    participating_tenants: int = strawberry.field(
        description="Organisations de la région qui ont accepté de partager leurs indicateurs."
    )
    establishments_by_type: list[IndicatorCount]
    crises_by_status: list[IndicatorCount] = strawberry.field(description="Toutes les crises, par statut.")
    crises_by_severity: list[IndicatorCount] = strawberry.field(description="Toutes les crises, par gravité.")
    crises_by_mode: list[IndicatorCount] = strawberry.field(description="Toutes les crises : réelles ou exercices.")
    crises_by_establishment_type: list[IndicatorCount] = strawberry.field(
        description="Crises touchant au moins un établissement de chaque type."
    )
    hours_since_t0_buckets: list[IndicatorCount] = strawberry.field(
        description="Crises non closes, par temps écoulé depuis T0 (un mois = 30 jours)."
    )
    max_hours_since_t0: int | None = strawberry.field(
        description="Heures entières écoulées depuis le T0 le plus ancien d'une crise non close."
    )


def _counts(counts: tuple[regional.Count, ...]) -> list[IndicatorCount]:
    return [IndicatorCount(key=c.key, count=c.count) for c in counts]


def _indicators(data: regional.RegionalIndicators) -> RegionalIndicators:
    return RegionalIndicators(
        region=data.region,
        generated_at=data.generated_at,
        participating_tenants=data.participating_tenants,
        establishments_by_type=_counts(data.establishments_by_type),
        crises_by_status=_counts(data.crises_by_status),
        crises_by_severity=_counts(data.crises_by_severity),
        crises_by_mode=_counts(data.crises_by_mode),
        crises_by_establishment_type=_counts(data.crises_by_establishment_type),
        hours_since_t0_buckets=_counts(data.hours_since_t0_buckets),
        max_hours_since_t0=data.max_hours_since_t0,
    )


async def _regional_indicators(info: FInfo, region: str | None = None) -> RegionalIndicators:
    principal = await info.context.require_principal()
    own_region = policy.require_supervisor(principal, region)
    data = await regional.regional_indicators(info.context.services.db, own_region, now=datetime.now(UTC))
    return _indicators(data)


@strawberry.type(name="Query")
class RegionalQuery:
    regional_indicators: RegionalIndicators = strawberry.field(
        resolver=_regional_indicators,
        description="Les indicateurs de votre région (superviseurs régionaux : ARS, CERT Santé).",
        extensions=[PolicyGuard()],
    )


class RegionalSchema(GatewaySchema, strawberry.federation.Schema):
    """A federation schema that logs only unexpected errors, as the main schema does."""


def build_federation_schema(extensions: list[Any]) -> strawberry.federation.Schema:
    guard_root_fields(RegionalQuery)
    return RegionalSchema(query=RegionalQuery, extensions=extensions, federation_version=FEDERATION_VERSION)


def main(argv: list[str]) -> int:
    """Write the subgraph SDL to `federation.graphql`; with `--check`, only say whether it is current."""
    sdl = build_federation_schema([]).as_str() + "\n"
    if "--check" in argv:
        current = SDL_PATH.exists() and SDL_PATH.read_text(encoding="utf-8") == sdl
        sys.stderr.write(f"{SDL_PATH.name}: {'up to date' if current else 'stale'}\n")
        return 0 if current else 1
    SDL_PATH.write_text(sdl, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
