"""The whole platform as `make run` starts it: every service a process, every health ok, clean stop."""

from __future__ import annotations

import json
import signal
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from panicsafe.contracts.health import DependencyStatus
from panicsafe.core.bus.connection import connect_nats
from panicsafe.core.bus.rpc import RpcClient
from panicsafe.core.devstack import DevStack
from panicsafe.core.devstack.platform import SERVICES, Platform, health_of
from panicsafe.core.devstack.servers import group_members


def migration_heads(service: str) -> frozenset[str]:
    """The newest revisions of the service's schema: core's bus branch, and its own if it has one."""
    import importlib

    from panicsafe.core.db.migrations import head_revisions

    module = importlib.import_module(f"panicsafe.{service}")
    folder = Path(module.__file__ or "").parent / "migrations"
    return head_revisions(folder if folder.is_dir() else None)


EXPECTED_DEPENDENCIES = {
    "chat": {"nats", "database", "openbao"},
    "video": {"nats", "database", "turn"},
    "logbook": {"nats", "database", "openbao", "s3"},
    "docs": {"nats", "database", "openbao", "s3"},
    "sara": {"nats", "database"},
    "gateway": {"nats", "database", "openbao"},
}


@pytest.fixture
async def platform(stack: DevStack, tmp_path: Path) -> AsyncIterator[Platform]:
    running = Platform(stack, tmp_path / "platform")
    try:
        await running.start()
        yield running
    finally:
        running.stop()


def get(url: str) -> tuple[int, dict[str, str], dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:  # noqa: S310 (loopback)
            return reply.status, dict(reply.headers), json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


async def test_every_service_reports_each_dependency_ok(stack: DevStack, platform: Platform) -> None:
    nc = await connect_nats(stack.nats.url, "platform-test", stack.nats.credentials("launcher"))
    try:
        replies = await health_of(RpcClient(nc), SERVICES)
    finally:
        await nc.close()
    assert set(replies) == set(SERVICES)
    for name, reply in replies.items():
        assert reply.status == DependencyStatus.OK, reply
        assert {d.name for d in reply.dependencies} == EXPECTED_DEPENDENCIES[name]
        assert all(d.status == DependencyStatus.OK for d in reply.dependencies)

    status, headers, body = get(f"{platform.gateway_url}/readyz")
    assert status == 200
    assert body["ready"] is True
    assert headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]

    # Every schema was migrated by its owner role and is used by its app role.
    import asyncpg

    conn = await asyncpg.connect(stack.postgres.admin_dsn)
    try:
        for name in SERVICES:
            heads = migration_heads(name)
            assert {r[0] for r in await conn.fetch(f"SELECT version_num FROM {name}.alembic_version")} == heads
            owner = await conn.fetchval(
                "SELECT tableowner FROM pg_tables WHERE schemaname = $1 AND tablename = 'outbox'", name
            )
            assert owner == f"{name}_owner"
    finally:
        await conn.close()


async def test_readiness_fails_when_a_service_is_gone(platform: Platform) -> None:
    sara = platform.processes["sara"].process
    sara.send_signal(signal.SIGTERM)
    assert sara.wait(15) == 0  # drained and exited cleanly
    status, _, body = get(f"{platform.gateway_url}/readyz")
    assert status == 503
    services = body["services"]
    assert isinstance(services, dict)
    assert services["sara"]["status"] == "down"
    assert services["sara"]["error"]["code"] == "unavailable"


async def test_stop_leaves_no_process(stack: DevStack, tmp_path: Path) -> None:
    running = Platform(stack, tmp_path / "platform2")
    await running.start()
    pids = [p.process.pid for p in running.processes.values()]
    running.stop()
    assert all(group_members(pid) == [] for pid in pids)
