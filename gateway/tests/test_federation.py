"""The regional supervision subgraph, end to end on real servers.

PostgreSQL from the session's devstack with the gateway's own Alembic migrations; three tenants
(two in HDF, one of which does not share, and one in IDF) with crises planted by SQL under
recognisable names; the subgraph served over HTTP by uvicorn; the supergraph composed by
`tools/federation/compose.mjs` (@theguild/federation-composition) and served by the real Hive
Gateway, which forwards the caller's Authorization header. Checked: exact aggregates, the region
scoping by row-level security, refusals, and that no name, title or id ever leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from strawberry.fastapi import BaseContext, GraphQLRouter

import panicsafe.gateway
from panicsafe.core.crypto import TransitKeys
from panicsafe.core.db.database import Database
from panicsafe.core.db.migrations import upgrade_async
from panicsafe.core.db.provision import ServiceRoles, provision_service
from panicsafe.core.devstack import DevStack
from panicsafe.core.devstack.ports import LOOPBACK, free_port
from panicsafe.core.testing import ProvisionedSchema, gateway_keys
from panicsafe.gateway import bootstrap, federation
from panicsafe.gateway.domain.models import TenantRole
from panicsafe.gateway.domain.policy import FIELD_POLICIES, Principal, unauthenticated
from panicsafe.gateway.graphql.limits import graphql_extensions
from panicsafe.gateway.graphql.schema import PolicyGuard, root_field_keys
from panicsafe.gateway.store.regional import Count, RegionalIndicators, bucket_hours, regional_indicators

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / "tools" / "federation"
HIVE_GATEWAY = TOOLS / "node_modules" / ".bin" / "hive-gateway"
GATEWAY_CONFIG = TOOLS / "gateway.config.mjs"
COMPOSE = TOOLS / "compose.mjs"
MIGRATIONS = Path(panicsafe.gateway.__file__).parent / "migrations"
SUBGRAPH_PATH = "/federation/graphql"

QUERY = """
query Regional($region: String) {
  regionalIndicators(region: $region) {
    region
    generatedAt
    participatingTenants
    establishmentsByType { key count }
    crisesByStatus { key count }
    crisesBySeverity { key count }
    crisesByMode { key count }
    crisesByEstablishmentType { key count }
    hoursSinceT0Buckets { key count }
    maxHoursSinceT0
  }
}
"""


def _counts(**counts: int) -> tuple[Count, ...]:
    return tuple(Count(key, n) for key, n in counts.items())


NO_ESTABLISHMENTS = {
    "hospital": 0,
    "clinic": 0,
    "nursing_home": 0,
    "laboratory": 0,
    "medico_social": 0,
    "city_medicine": 0,
    "other": 0,
}

# What the HDF supervisor must see: the sharing HDF tenant only, and exercises only in the by-mode count
# (exercise data never mixes with real crises). Its real crises: active/critical/2 h (A, B),
# recovery/major/48 h (C, A), closed/significant/2160 h (B).
EXPECTED_HDF = {
    "participating_tenants": 1,
    "establishments_by_type": _counts(**{**NO_ESTABLISHMENTS, "hospital": 2, "clinic": 1, "nursing_home": 1}),
    "crises_by_status": _counts(active=1, recovery=1, closed=1),
    "crises_by_severity": _counts(minor=0, significant=1, major=1, critical=1),
    "crises_by_mode": _counts(real=3, exercise=2),
    "crises_by_establishment_type": _counts(**{**NO_ESTABLISHMENTS, "hospital": 3, "clinic": 1}),
    "hours_since_t0_buckets": tuple(
        Count(k, n) for k, n in (("<24h", 1), ("24-72h", 1), ("72h-1 month", 0), (">1 month", 0))
    ),
    "max_hours_since_t0": 48,
}
EXPECTED_IDF = {
    "participating_tenants": 1,
    "establishments_by_type": _counts(**{**NO_ESTABLISHMENTS, "laboratory": 1, "city_medicine": 1}),
    "crises_by_status": _counts(active=1, recovery=0, closed=0),
    "crises_by_severity": _counts(minor=0, significant=0, major=1, critical=0),
    "crises_by_mode": _counts(real=1, exercise=0),
    "crises_by_establishment_type": _counts(**{**NO_ESTABLISHMENTS, "laboratory": 1}),
    "hours_since_t0_buckets": tuple(
        Count(k, n) for k, n in (("<24h", 0), ("24-72h", 0), ("72h-1 month", 1), (">1 month", 0))
    ),
    "max_hours_since_t0": 100,
}


# -- planted data ---------------------------------------------------------------------------------


@dataclass
class Planted:
    db: Database
    keys: TransitKeys
    secrets: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)

    def plant(self, text: str) -> str:
        self.secrets.append(text)
        return text


@dataclass(frozen=True)
class CrisisSpec:
    mode: str
    status: str
    severity: str
    age: timedelta
    establishments: tuple[str, ...]


async def _tenant(
    planted: Planted,
    *,
    label: str,
    region: str,
    share: bool,
    establishments: tuple[tuple[str, str], ...],
    crises: tuple[CrisisSpec, ...],
    now: datetime,
) -> None:
    """A tenant by `bootstrap.create_tenant`, then a user and crises inserted by SQL in its transaction."""
    created = await bootstrap.create_tenant(
        planted.db,
        planted.keys,
        name=planted.plant(f"SECRET-TENANT-{label}"),
        region=region,
        admin_login=planted.plant(f"secret-admin-{label.lower()}"),
        admin_name=planted.plant(f"SECRET-ADMIN-NAME-{label}"),
        establishments=[(planted.plant(f"SECRET-ESTAB-{label}-{name}"), kind) for name, kind in establishments],
        share_with_region=share,
    )
    tenant_id = created.tenant_id
    planted.ids.append(tenant_id)
    user_id = str(uuid.uuid4())
    planted.ids.append(user_id)
    async with planted.db.tenant(tenant_id) as conn:
        await conn.execute(
            "INSERT INTO users (id, tenant_id, login, display_name, tenant_role, status) "
            "VALUES ($1, $2, $3, $4, 'admin', 'active')",
            user_id,
            tenant_id,
            planted.plant(f"secret-user-{label.lower()}") + f"@{created.code}",
            planted.plant(f"SECRET-USER-NAME-{label}"),
        )
        by_name = {row["name"]: str(row["id"]) for row in await conn.fetch("SELECT id, name FROM establishments")}
        planted.ids.extend(by_name.values())
        for index, spec in enumerate(crises):
            crisis_id = str(uuid.uuid4())
            planted.ids.append(crisis_id)
            t0 = now - spec.age
            await conn.execute(
                "INSERT INTO crises (id, tenant_id, title, mode, status, severity, t0, declared_by, closed_at) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                crisis_id,
                tenant_id,
                planted.plant(f"SECRET-TITLE-{label}-{index}"),
                spec.mode,
                spec.status,
                spec.severity,
                t0,
                user_id,
                now if spec.status == "closed" else None,
            )
            for name in spec.establishments:
                await conn.execute(
                    "INSERT INTO crisis_establishments (crisis_id, establishment_id, tenant_id) VALUES ($1, $2, $3)",
                    crisis_id,
                    by_name[f"SECRET-ESTAB-{label}-{name}"],
                    tenant_id,
                )


async def _plant(db: Database, keys: TransitKeys) -> Planted:
    now = datetime.now(UTC)
    planted = Planted(db, keys)
    hours = timedelta(hours=1)
    await _tenant(
        planted,
        label="HDF-SHARING",
        region="HDF",
        share=True,
        establishments=(("A", "hospital"), ("B", "hospital"), ("C", "clinic"), ("D", "nursing_home")),
        crises=(
            CrisisSpec("real", "active", "critical", 2 * hours, ("A", "B")),
            CrisisSpec("real", "recovery", "major", 48 * hours, ("C", "A")),
            CrisisSpec("exercise", "active", "minor", 240 * hours, ("D",)),
            CrisisSpec("real", "closed", "significant", 2160 * hours, ("B",)),
            CrisisSpec("exercise", "active", "significant", 1440 * hours + timedelta(minutes=30), ()),
        ),
        now=now,
    )
    await _tenant(
        planted,
        label="HDF-PRIVATE",
        region="HDF",
        share=False,
        establishments=(("E", "hospital"), ("F", "laboratory"), ("G", "other")),
        crises=(
            CrisisSpec("real", "active", "critical", 5000 * hours, ("E", "F")),
            CrisisSpec("real", "active", "critical", 1 * hours, ("G",)),
            CrisisSpec("exercise", "recovery", "minor", 30 * hours, ()),
        ),
        now=now,
    )
    await _tenant(
        planted,
        label="IDF-SHARING",
        region="IDF",
        share=True,
        establishments=(("H", "laboratory"), ("I", "city_medicine")),
        crises=(CrisisSpec("real", "active", "major", 100 * hours + timedelta(minutes=20), ("H",)),),
        now=now,
    )
    return planted


@pytest.fixture(scope="module")
async def planted(stack: DevStack) -> AsyncIterator[Planted]:
    """A fresh gateway schema migrated by the gateway's own Alembic migrations, with the planted data."""
    roles = ServiceRoles(f"fed_{secrets.token_hex(4)}", secrets.token_urlsafe(16), secrets.token_urlsafe(16))
    await provision_service(stack.postgres.admin_dsn, roles)
    schema = ProvisionedSchema(stack, roles)
    await upgrade_async(MIGRATIONS, schema.owner_dsn, schema.schema)
    db = schema.database()
    await db.open()
    try:
        yield await _plant(db, gateway_keys(stack))
    finally:
        await db.close()


# -- the store ------------------------------------------------------------------------------------


def _figures(indicators: RegionalIndicators) -> dict[str, object]:
    return {key: getattr(indicators, key) for key in EXPECTED_HDF}


async def test_store_counts_only_the_sharing_tenants_of_the_region(planted: Planted) -> None:
    now = datetime.now(UTC)
    hdf = await regional_indicators(planted.db, "HDF", now=now)
    assert hdf.region == "HDF"
    assert hdf.generated_at == now
    assert _figures(hdf) == EXPECTED_HDF
    idf = await regional_indicators(planted.db, "IDF", now=now)
    assert _figures(idf) == EXPECTED_IDF
    nobody = await regional_indicators(planted.db, "ARA", now=now)
    assert nobody.participating_tenants == 0
    assert all(c.count == 0 for c in (*nobody.crises_by_status, *nobody.hours_since_t0_buckets))
    assert nobody.max_hours_since_t0 is None
    text = repr((hdf, idf))
    leaked = [s for s in (*planted.secrets, *planted.ids) if s.lower() in text.lower()]
    assert leaked == []


async def test_a_region_setting_shows_no_row(planted: Planted) -> None:
    """`app.region` opened the sharing tenants' rows once: no setting of the runtime role widens what it
    sees now; the counts come from the owner's `regional_indicators` alone."""
    async with planted.db.transaction() as conn:
        await conn.execute("SELECT set_config('app.region', 'HDF', true)")
        for table in ("tenants", "crises", "establishments", "crisis_establishments", "users"):
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0, table


def test_hours_buckets_boundaries() -> None:
    buckets, largest = bucket_hours([-0.5, 0.0, 23.99, 24.0, 71.99, 72.0, 719.99, 720.0, 5000.7])
    assert buckets == _counts(**{"<24h": 3, "24-72h": 2, "72h-1 month": 2, ">1 month": 2})
    assert largest == 5000
    assert bucket_hours([]) == (_counts(**{"<24h": 0, "24-72h": 0, "72h-1 month": 0, ">1 month": 0}), None)


# -- the schema -----------------------------------------------------------------------------------


def test_sdl_file_is_the_schema() -> None:
    schema = federation.build_federation_schema(graphql_extensions(development=False))
    assert federation.SDL_PATH.read_text(encoding="utf-8") == schema.as_str() + "\n", (
        "federation.graphql is stale: run `uv run python -m panicsafe.gateway.federation`"
    )
    assert '@link(url: "https://specs.apollo.dev/federation/v2.9"' in schema.as_str()


def test_every_root_field_is_decided_by_the_policy() -> None:
    schema = federation.build_federation_schema([])
    keys = [key for key in root_field_keys(schema) if key != "Query._service"]
    assert keys == ["Query.regionalIndicators"]
    assert all(key in FIELD_POLICIES for key in keys)
    for strawberry_field in federation.RegionalQuery.__strawberry_definition__.fields:  # type: ignore[attr-defined]
        assert any(isinstance(e, PolicyGuard) for e in strawberry_field.extensions)


# -- the subgraph over HTTP, behind the real Hive Gateway ------------------------------------------


class _Services:
    def __init__(self, db: Database) -> None:
        self.db = db


class _Context(BaseContext):
    """The subgraph's context for the test: the principal is looked up by the bearer it receives."""

    def __init__(self, db: Database, principals: dict[str, Principal]) -> None:
        super().__init__()
        self.services = _Services(db)
        self._principals = principals

    async def principal(self) -> Principal | None:
        header = self.request.headers.get("authorization", "") if self.request is not None else ""
        if not header.startswith("Bearer "):
            return None
        return self._principals.get(header.removeprefix("Bearer ").strip())

    async def require_principal(self) -> Principal:
        principal = await self.principal()
        if principal is None:
            raise unauthenticated()
        return principal


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the test process keeps its own signal handlers


def _principal(region: str | None, role: TenantRole = TenantRole.MEMBER) -> Principal:
    return Principal(
        user_id=str(uuid.uuid4()),
        tenant_id=str(uuid.uuid4()),
        session_id=str(uuid.uuid4()),
        login="supervisor" if region else "someone",
        display_name="Superviseur" if region else "Quelqu'un",
        tenant_role=role,
        mfa_at=datetime.now(UTC),
        supervisor_region=region,
    )


def _router_installed() -> bool:
    marker = TOOLS / "node_modules" / ".package-lock.json"
    lock = TOOLS / "package-lock.json"
    return marker.exists() and HIVE_GATEWAY.exists() and marker.stat().st_mtime >= lock.stat().st_mtime


def _install_router() -> None:
    """What `scripts/setup.sh` does: `npm ci` from the lockfile when node_modules is missing or stale."""
    if not _router_installed():
        subprocess.run(
            ["npm", "ci", "--prefix", str(TOOLS), "--no-audit", "--no-fund", "--silent"],
            check=True,
            timeout=900,
        )
    assert _router_installed()


@dataclass
class Router:
    subgraph_url: str
    gateway_url: str
    supergraph: str
    bearers: dict[str, str]
    client: httpx.AsyncClient
    bodies: list[str] = field(default_factory=list)

    async def post(self, url: str, bearer: str | None, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        headers = {"content-type": "application/json", "accept": "application/json"}
        if bearer is not None:
            headers["authorization"] = f"Bearer {bearer}"
        response = await self.client.post(url, headers=headers, json={"query": query, "variables": variables})
        self.bodies.append(response.text)
        body: dict[str, Any] = json.loads(response.text)
        return body

    async def regional(self, who: str | None, region: str | None = None, *, direct: bool = False) -> dict[str, Any]:
        bearer = self.bearers[who] if who is not None else None
        url = self.subgraph_url if direct else self.gateway_url
        return await self.post(url, bearer, QUERY, {"region": region})


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:]


async def _wait_http(client: httpx.AsyncClient, url: str, process: asyncio.subprocess.Process, log: Path) -> None:
    for _ in range(600):
        if process.returncode is not None:
            raise AssertionError(f"hive-gateway exited {process.returncode}:\n{_tail(log)}")
        with contextlib.suppress(httpx.TransportError):
            if (await client.get(url, timeout=1.0)).status_code == 200:
                return
        await asyncio.sleep(0.1)
    raise AssertionError(f"hive-gateway not ready:\n{_tail(log)}")


async def _stop_process(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)  # its own session: node and anything it spawned
        try:
            await asyncio.wait_for(process.wait(), timeout=10)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


@pytest.fixture(scope="module")
async def router(planted: Planted, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Router]:
    """The subgraph on uvicorn, composed into a supergraph and served by Hive Gateway, both on loopback."""
    await asyncio.to_thread(_install_router)
    workdir = tmp_path_factory.mktemp("federation")
    bearers = {name: secrets.token_urlsafe(24) for name in ("hdf", "idf", "member", "admin")}
    principals = {
        bearers["hdf"]: _principal("HDF"),
        bearers["idf"]: _principal("IDF"),
        bearers["member"]: _principal(None),
        bearers["admin"]: _principal(None, TenantRole.ADMIN),
    }

    async def context_getter() -> _Context:
        return _Context(planted.db, principals)

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    schema = federation.build_federation_schema(graphql_extensions(development=False))
    app.include_router(
        GraphQLRouter(schema, context_getter=context_getter, graphql_ide=None, allow_queries_via_get=False),
        prefix=SUBGRAPH_PATH,
    )
    subgraph_port = free_port()
    server = _QuietServer(
        uvicorn.Config(app, host=LOOPBACK, port=subgraph_port, log_config=None, access_log=False, ws="none")
    )
    serving = asyncio.create_task(server.serve())
    process: asyncio.subprocess.Process | None = None
    client = httpx.AsyncClient(timeout=30.0)
    try:
        for _ in range(200):
            if server.started or serving.done():
                break
            await asyncio.sleep(0.05)
        assert server.started, "the subgraph did not start"
        subgraph_url = f"http://{LOOPBACK}:{subgraph_port}{SUBGRAPH_PATH}"

        supergraph = workdir / "supergraph.graphql"
        composed = await asyncio.create_subprocess_exec(
            "node",
            str(COMPOSE),
            "--name",
            "regional",
            "--url",
            subgraph_url,
            "--out",
            str(supergraph),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(composed.communicate(), timeout=120)
        assert composed.returncode == 0, output.decode(errors="replace")

        gateway_port = free_port()
        log = workdir / "hive-gateway.log"
        with log.open("wb") as log_file:
            process = await asyncio.create_subprocess_exec(
                "node",
                str(HIVE_GATEWAY),
                "supergraph",
                str(supergraph),
                "--config-path",
                str(GATEWAY_CONFIG),
                "--host",
                LOOPBACK,
                "--port",
                str(gateway_port),
                cwd=workdir,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        gateway = f"http://{LOOPBACK}:{gateway_port}"
        await _wait_http(client, f"{gateway}/readiness", process, log)
        yield Router(subgraph_url, f"{gateway}/graphql", supergraph.read_text(encoding="utf-8"), bearers, client)
    finally:
        try:
            if process is not None:
                await _stop_process(process)
        finally:
            await client.aclose()
            server.should_exit = True
            await asyncio.wait_for(serving, timeout=10)


def _as_graphql(indicators: RegionalIndicators) -> dict[str, Any]:
    def pairs(counts: tuple[Count, ...]) -> list[dict[str, Any]]:
        return [{"key": c.key, "count": c.count} for c in counts]

    return {
        "region": indicators.region,
        "participatingTenants": indicators.participating_tenants,
        "establishmentsByType": pairs(indicators.establishments_by_type),
        "crisesByStatus": pairs(indicators.crises_by_status),
        "crisesBySeverity": pairs(indicators.crises_by_severity),
        "crisesByMode": pairs(indicators.crises_by_mode),
        "crisesByEstablishmentType": pairs(indicators.crises_by_establishment_type),
        "hoursSinceT0Buckets": pairs(indicators.hours_since_t0_buckets),
        "maxHoursSinceT0": indicators.max_hours_since_t0,
    }


def _data(body: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in body, body
    indicators: dict[str, Any] = body["data"]["regionalIndicators"]
    generated = datetime.fromisoformat(indicators.pop("generatedAt"))
    assert abs(datetime.now(UTC) - generated) < timedelta(minutes=1)
    return indicators


def _error_codes(body: dict[str, Any]) -> list[str]:
    assert body.get("data") is None, body
    return [str((e.get("extensions") or {}).get("code")) for e in body.get("errors") or []]


async def test_live_sdl_is_the_committed_file(router: Router) -> None:
    body = await router.post(router.subgraph_url, None, "{ _service { sdl } }", {})
    assert body["data"]["_service"]["sdl"] + "\n" == federation.SDL_PATH.read_text(encoding="utf-8")
    assert "regionalIndicators" in router.supergraph
    assert f'url: "{router.subgraph_url}"' in router.supergraph


async def test_supervisors_read_their_region_through_hive_gateway(router: Router, planted: Planted) -> None:
    now = datetime.now(UTC)
    expected_hdf = _as_graphql(await regional_indicators(planted.db, "HDF", now=now))
    expected_idf = _as_graphql(await regional_indicators(planted.db, "IDF", now=now))
    assert expected_hdf["maxHoursSinceT0"] == EXPECTED_HDF["max_hours_since_t0"]

    assert _data(await router.regional("hdf")) == expected_hdf  # default: the supervisor's own region
    assert _data(await router.regional("hdf", "HDF")) == expected_hdf
    assert _data(await router.regional("idf")) == expected_idf
    assert _data(await router.regional("hdf", direct=True)) == expected_hdf  # the subgraph agrees


async def test_others_are_refused_through_hive_gateway(router: Router) -> None:
    assert _error_codes(await router.regional("hdf", "IDF")) == ["forbidden"]
    assert _error_codes(await router.regional("idf", "HDF")) == ["forbidden"]
    assert _error_codes(await router.regional("member")) == ["forbidden"]
    assert _error_codes(await router.regional("admin", "HDF")) == ["forbidden"]
    assert _error_codes(await router.regional(None)) == ["unauthenticated"]
    assert _error_codes(await router.regional("member", "HDF", direct=True)) == ["forbidden"]
    assert _error_codes(await router.regional("hdf", "IDF", direct=True)) == ["forbidden"]


async def test_no_response_names_anyone(router: Router, planted: Planted) -> None:
    for who in ("hdf", "idf", "member", "admin", None):
        for region in (None, "HDF", "IDF"):
            for direct in (False, True):
                await router.regional(who, region, direct=direct)
    assert len(router.bodies) >= 30
    text = "\n".join(router.bodies).lower()
    leaked = [s for s in (*planted.secrets, *planted.ids) if s.lower() in text]
    assert leaked == []
    assert "secret" not in text
