"""The devstack: every server answers on loopback, then stops with no process left behind."""

from __future__ import annotations

import json
import socket
import urllib.request
import uuid
from pathlib import Path

import asyncpg
import hvac
import pytest
from minio import Minio

from panicsafe.contracts.catalog import SERVICE_NAMES
from panicsafe.core.bus.connection import connect_nats
from panicsafe.core.crypto import TransitKeys
from panicsafe.core.devstack import DevStack
from panicsafe.core.devstack.ports import RESERVED, wait_tcp
from panicsafe.core.devstack.servers import group_members
from panicsafe.core.testing import gateway_keys


async def test_servers_up_then_down_with_nothing_left(tmp_path: Path) -> None:
    stack = DevStack(tmp_path / "stack")
    stack.start()
    try:
        pids = stack.pids()
        assert set(pids) == {"nats", "postgres", "s3", "openbao", "turn"}
        ports = [stack.nats.port, stack.postgres.port, stack.s3.port, stack.openbao.port, stack.turn.port]
        assert not set(ports) & RESERVED  # never the machine's own services' ports

        nc = await connect_nats(stack.nats.url, "devstack-test", stack.nats.credentials("provisioner"))
        account = await nc.jetstream().account_info()
        await nc.close()
        assert account.limits is not None
        with urllib.request.urlopen(f"http://127.0.0.1:{stack.nats.monitor_port}/varz") as reply:
            varz = json.loads(reply.read())
        assert varz["jetstream"]["config"]["sync_always"] is True  # fsync on every write

        conn = await asyncpg.connect(stack.postgres.admin_dsn)
        assert await conn.fetchval("SHOW synchronous_commit") == "on"
        await conn.close()

        s3 = Minio(stack.s3.endpoint, access_key=stack.s3.access_key, secret_key=stack.s3.secret_key, secure=False)
        s3.make_bucket("devstack-test")
        assert s3.bucket_exists("devstack-test")

        bao = stack.openbao.session("logbook")
        bao.login()
        assert bao.client.auth.token.lookup_self()["data"]["policies"] == ["default", "panicsafe-logbook"]
        assert stack.openbao.address.startswith("https://127.0.0.1:")

        with socket.create_connection(("127.0.0.1", stack.turn.port), timeout=1):
            pass
        state = json.loads((stack.directory / "state.json").read_text())
        assert state["nats"]["url"] == stack.nats.url
        assert oct((stack.directory / "state.json").stat().st_mode & 0o777) == "0o600"
    finally:
        stack.stop()
    for name, pid in pids.items():
        assert group_members(pid) == [], f"{name} left processes behind"
    for port in ports:
        assert not wait_tcp(port), f"port {port} still open"


async def test_a_second_start_on_the_same_folder_unseals_and_reuses_every_credential(tmp_path: Path) -> None:
    """What `make run` after a stop needs: OpenBao's data kept, unsealed with the stored key, the same
    identities, no root token left valid; PostgreSQL's superuser keeps its password."""
    folder = tmp_path / "stack"
    first = DevStack(folder, components=("postgres", "openbao")).start()
    try:
        tenant = str(uuid.uuid4())
        await gateway_keys(first).ensure_tenant_key(tenant)
        approle = folder / "openbao" / "approle"
        before = {p.relative_to(approle): p.read_text() for p in approle.rglob("*_id")}
        password = first.postgres.admin_password
        # A restarted OpenBao comes back sealed: the devstack unseals it.
        first.restart("openbao")
        assert await gateway_keys(first).is_shredded(tenant) is False
    finally:
        first.stop()

    second = DevStack(folder, components=("postgres", "openbao")).start()
    try:
        after = {p.relative_to(approle): p.read_text() for p in approle.rglob("*_id")}
        assert after == before and len(before) == 2 * (len(SERVICE_NAMES) + 1)
        assert second.postgres.admin_password == password
        conn = await asyncpg.connect(second.postgres.admin_dsn)
        await conn.close()
        # The tenant key made before the stop is still there (raft storage, not memory).
        chat = TransitKeys(second.openbao.session("chat"))
        assert await chat.ensure_tenant_key(tenant) == f"tenant-{tenant}"
        for secret in (folder / "openbao" / "init.json", folder / "postgres" / "superuser.password"):
            assert secret.stat().st_mode & 0o777 == 0o600
        root = json.loads((folder / "openbao" / "init.json").read_text())["root_token"]
        with pytest.raises(hvac.exceptions.Forbidden):
            second.openbao.admin_client(root).auth.token.lookup_self()
    finally:
        second.stop()
