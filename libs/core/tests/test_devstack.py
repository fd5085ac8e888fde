"""The devstack: every server answers on loopback, then stops with no process left behind."""

from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path

import asyncpg
import hvac
from minio import Minio

from panicsafe.core.bus.connection import connect_nats
from panicsafe.core.devstack import DevStack
from panicsafe.core.devstack.ports import RESERVED, wait_tcp
from panicsafe.core.devstack.servers import group_members


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

        bao = hvac.Client(url=stack.openbao.address, token=stack.openbao.token)
        assert "transit/" in bao.sys.list_mounted_secrets_engines()["data"]

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
