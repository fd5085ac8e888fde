"""`DevStack`: the real servers of one local platform, in one folder.

    stack = DevStack(Path(".run/stack"))
    stack.start()            # NATS, PostgreSQL, SeaweedFS, OpenBao, coturn, in parallel
    stack.nats.url, stack.postgres.admin_dsn, stack.s3.endpoint, stack.openbao.session("chat"), ...
    stack.restart("nats")    # same port, same store: for fault tests
    stack.stop()             # every process group gone

`make run` and the test fixtures both use it; nothing else starts servers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any, Literal, TypeVar

from panicsafe.core.bus.connection import connect_nats
from panicsafe.core.bus.identity import PROVISIONER
from panicsafe.core.bus.provision import provision_bus
from panicsafe.core.devstack.natsd import NatsInfo, nats_server
from panicsafe.core.devstack.openbao import OpenBaoInfo, bootstrap_openbao, openbao_server, unseal_openbao
from panicsafe.core.devstack.servers import (
    DevStackError,
    PostgresInfo,
    S3Info,
    Server,
    TurnInfo,
    coturn_server,
    describe,
    postgres_server,
    remove_postgres_data,
    seaweedfs_server,
)

log = logging.getLogger(__name__)

Component = Literal["nats", "postgres", "s3", "openbao", "turn"]
ALL_COMPONENTS: tuple[Component, ...] = ("nats", "postgres", "s3", "openbao", "turn")
READY_TIMEOUT_S = 60.0
T = TypeVar("T")


class DevStack:
    """Starts, restarts and stops the real servers; knows where each one listens."""

    def __init__(
        self,
        directory: Path,
        components: Iterable[Component] = ALL_COMPONENTS,
        *,
        harness: bool = False,
        persistent: bool = False,
    ) -> None:
        self.directory = directory.resolve()
        self.components = tuple(components)
        # Test stacks only: an all-powerful NATS identity (`harness`) for tests that play any part.
        self.harness = harness
        # `make run`: the data outlives a stop (and a reboot); a test stack's is removed with it.
        self.persistent = persistent
        self.servers: dict[str, Server] = {}
        self.startup_s: dict[str, float] = {}
        self._nats: NatsInfo | None = None
        self._postgres: PostgresInfo | None = None
        self._s3: S3Info | None = None
        self._openbao: OpenBaoInfo | None = None
        self._turn: TurnInfo | None = None

    # -- what runs where ----------------------------------------------------------------------
    @property
    def nats(self) -> NatsInfo:
        return _need(self._nats, "nats")

    @property
    def postgres(self) -> PostgresInfo:
        return _need(self._postgres, "postgres")

    @property
    def s3(self) -> S3Info:
        return _need(self._s3, "s3")

    @property
    def openbao(self) -> OpenBaoInfo:
        return _need(self._openbao, "openbao")

    @property
    def turn(self) -> TurnInfo:
        return _need(self._turn, "turn")

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> DevStack:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        started = time.monotonic()
        try:
            for component in self.components:
                folder = self.directory / str(component)
                folder.mkdir(exist_ok=True)
                server = self._make(component, folder)
                server.start()
                self.servers[component] = server
            for name, server in self.servers.items():
                self.startup_s[name] = server.wait_ready(READY_TIMEOUT_S)
            if "nats" in self.servers:
                _in_thread(self._provision_bus)
            if "openbao" in self.servers:
                bootstrap_openbao(self.openbao)
        except BaseException:
            self.stop()
            raise
        self.startup_s["total"] = time.monotonic() - started
        self.write_state()
        log.info("devstack up in %.2f s", self.startup_s["total"])
        return self

    def _make(self, component: Component, folder: Path) -> Server:
        if component == "nats":
            server, self._nats = nats_server(folder, harness=self.harness)
        elif component == "postgres":
            server, self._postgres = postgres_server(folder, persistent=self.persistent)
        elif component == "s3":
            server, self._s3 = seaweedfs_server(folder)
        elif component == "openbao":
            server, self._openbao = openbao_server(folder)
        elif component == "turn":
            server, self._turn = coturn_server(folder)
        else:
            raise DevStackError(f"unknown component {component}")
        return server

    async def _provision_bus(self) -> None:
        """The stream and the declared consumers, with the provisioner identity (services may not)."""
        nc = await connect_nats(self.nats.url, "panicsafe-provisioner", self.nats.credentials(PROVISIONER))
        try:
            await provision_bus(nc.jetstream())
        finally:
            await nc.close()

    def restart(self, component: Component, *, crash: bool = False, down_s: float = 0.0) -> None:
        """Stop (or SIGKILL with `crash`) one server and start it again on the same port and data."""
        server = self.servers[component]
        if crash:
            server.kill()
        else:
            server.stop()
        if down_s:
            time.sleep(down_s)
        server.start()
        server.wait_ready(READY_TIMEOUT_S)
        if component == "openbao":
            unseal_openbao(self.openbao)  # a restarted OpenBao is sealed, as in production

    def stop(self) -> None:
        for name in reversed(list(self.servers)):
            try:
                self.servers[name].stop()
            except Exception:  # keep stopping the others
                log.exception("stopping %s failed", name)
        if "postgres" in self.servers and not self.persistent:
            remove_postgres_data(self.directory / "postgres")
        self.servers.clear()

    def pids(self) -> dict[str, int]:
        return {name: server.pid for name, server in self.servers.items() if server.pid is not None}

    # -- state file ---------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        infos = {
            "nats": self._nats,
            "postgres": self._postgres,
            "s3": self._s3,
            "openbao": self._openbao,
            "turn": self._turn,
        }
        found: dict[str, Any] = {name: describe(info) for name, info in infos.items() if info is not None}
        found["pids"] = self.pids()  # a later start reaps what a killed launcher left running
        return found

    def write_state(self) -> Path:
        path = self.directory / "state.json"
        path.write_text(json.dumps(self.state(), indent=2))
        os.chmod(path, 0o600)
        return path

    def __enter__(self) -> DevStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _in_thread(work: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run async setup from synchronous code, even when the caller is inside an event loop."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(work())
        except BaseException as exc:  # noqa: BLE001 (re-raised in the caller's thread)
            failure.append(exc)

    thread = threading.Thread(target=run, name="devstack-setup")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


def _need(info: T | None, name: str) -> T:
    if info is None:
        raise DevStackError(f"{name} is not part of this stack")
    return info
