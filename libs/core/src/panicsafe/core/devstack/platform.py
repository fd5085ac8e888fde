"""The whole platform on one machine: the devstack, then every service and the gateway as processes.

Used by `make run` (`python -m panicsafe.core.devstack run`), `make status` and the end-to-end
tests, so that what the tests start is what a person starts.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from panicsafe.contracts.catalog import GATEWAY, SERVICE_NAMES
from panicsafe.contracts.gateway import BOOTSTRAP_DEMO, BootstrapDemoReply, BootstrapDemoRequest
from panicsafe.contracts.health import DependencyStatus, HealthReply, HealthRequest, health
from panicsafe.core.bus.connection import connect_nats
from panicsafe.core.bus.identity import LAUNCHER
from panicsafe.core.bus.rpc import RpcClient
from panicsafe.core.db.provision import load_or_create_roles, provision_service
from panicsafe.core.devstack.natsd import NatsInfo
from panicsafe.core.devstack.ports import free_port, listen_port_is_free
from panicsafe.core.devstack.servers import DevStackError, _signal_group, _wait_group_gone, http_status
from panicsafe.core.devstack.stack import DevStack
from panicsafe.core.errors import ServiceError
from panicsafe.core.tokens import SigningKey, load_or_create_key, write_public_keys

SERVICES = SERVICE_NAMES  # the registry's order: downstream services first, the gateway last
# Gateway processes sharing its port: more than one, as in production (replicas), so that what runs
# locally and in the tests depends on no state held by a single process; two fill a small machine.
GATEWAY_WORKERS = 2
S3_BUCKET = "panicsafe"


def _secret_file(path: Path, value: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value)
    path.chmod(0o600)
    return str(path)


@dataclass
class ServiceProcess:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes] = field(repr=False)


class Platform:
    """Every service of the platform running against one `DevStack`."""

    def __init__(
        self,
        stack: DevStack,
        directory: Path,
        services: tuple[str, ...] = SERVICES,
        gateway_port: int | None = None,
        gateway_workers: int = GATEWAY_WORKERS,
        settings: dict[str, dict[str, str]] | None = None,
        public_host: str = "127.0.0.1",
    ) -> None:
        self.stack = stack
        self.directory = directory.resolve()
        self.services = services
        self.gateway_port = gateway_port or free_port()
        self.gateway_workers = gateway_workers
        # Extra settings per service, without their prefix: {"chat": {"SEND_RATE_PER_S": "1000"}}.
        self.settings = settings or {}
        # The name browsers use: passkeys need a host name (WebAuthn refuses an IP address as relying
        # party), so `make run` says `localhost`; API clients keep using `gateway_url`.
        self.public_host = public_host
        self.processes: dict[str, ServiceProcess] = {}
        # The gateway's private keys, in its own secrets folder, kept across restarts: internal actor
        # tokens (services get the public half in `keys/`) and user access tokens (no one else needs it).
        gateway_secrets = self.secrets_dir(GATEWAY)
        self.signing_key = load_or_create_key(gateway_secrets / "actor-signing-keys")
        self.access_key = load_or_create_key(gateway_secrets / "access-signing-keys")

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def public_url(self) -> str:
        return f"http://{self.public_host}:{self.gateway_port}"

    @property
    def keys_dir(self) -> Path:
        """The actor-token public keys every service reads: no private key ever sits here."""
        return self.directory / "keys"

    def secrets_dir(self, name: str) -> Path:
        """One service's own secrets (0700): only that service's settings name files in it."""
        folder = self.directory / "secrets" / name
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)
        return folder

    def signing_key_file(self, key: SigningKey, ring: str) -> Path:
        return self.secrets_dir(GATEWAY) / ring / f"{key.kid}.pem"

    async def provision(self) -> None:
        write_public_keys(self.keys_dir, [self.signing_key])
        pg = self.stack.postgres
        for name in self.services:
            folder = self.secrets_dir(name)
            roles = load_or_create_roles(name, folder)  # the same passwords at every start
            await provision_service(pg.admin_dsn, roles)
            _secret_file(folder / "database_url", roles.app_dsn(pg.host, pg.port, pg.database))
            _secret_file(folder / "database_owner_url", roles.owner_dsn(pg.host, pg.port, pg.database))

    def service_env(self, name: str) -> dict[str, str]:
        prefix = f"{name.upper()}_"
        folder = self.secrets_dir(name)
        values = {
            "ENVIRONMENT": "development",
            "NATS_URL": self.stack.nats.url,
            "NATS_CA_FILE": self.stack.nats.ca_file,
            # Its own bus identity only: a copy of its seed in its own secrets folder.
            "NATS_NKEY_SEED_FILE": _secret_file(folder / "nats_seed", self.stack.nats.credentials(name).seed or ""),
            "DATABASE_URL_FILE": str(folder / "database_url"),
            "DATABASE_OWNER_URL_FILE": str(folder / "database_owner_url"),
            "TOKEN_KEYS_DIR": str(self.keys_dir),
            "LOG_LEVEL": "INFO",
        }
        if "openbao" in self.stack.servers:
            bao = self.stack.openbao
            credentials = bao.credentials(name)  # its own AppRole, made by the devstack
            values |= {
                "OPENBAO_ADDR": bao.address,
                "OPENBAO_CA_FILE": bao.ca_file,
                "OPENBAO_ROLE_ID_FILE": _secret_file(folder / "openbao_role_id", credentials.role_id),
                "OPENBAO_SECRET_ID_FILE": _secret_file(folder / "openbao_secret_id", credentials.secret_id),
            }
        if "s3" in self.stack.servers:
            values |= {
                "S3_ENDPOINT": self.stack.s3.endpoint,
                "S3_ACCESS_KEY": self.stack.s3.access_key,
                "S3_SECURE": "false",
                "S3_BUCKET": S3_BUCKET,
                "S3_SECRET_KEY_FILE": _secret_file(folder / "s3_secret_key", self.stack.s3.secret_key),
            }
        if "turn" in self.stack.servers:
            turn = self.stack.turn
            values |= {
                "TURN_HOST": turn.host,
                "TURN_PORT": str(turn.port),
                "TURN_REALM": turn.realm,
                "TURN_SECRET_FILE": _secret_file(folder / "turn_secret", turn.secret),
            }
        if name == GATEWAY:
            values |= {
                "HTTP_HOST": "127.0.0.1",
                "HTTP_PORT": str(self.gateway_port),
                "HTTP_WORKERS": str(self.gateway_workers),
                "PUBLIC_URL": self.public_url,
                "INTERNAL_SIGNING_KEY_FILE": str(self.signing_key_file(self.signing_key, "actor-signing-keys")),
                "ACCESS_SIGNING_KEY_FILE": str(self.signing_key_file(self.access_key, "access-signing-keys")),
            }
        values |= self.settings.get(name, {})
        env = {k: v for k, v in os.environ.items() if not k.startswith(prefix)}
        env |= {prefix + key: value for key, value in values.items()}
        return env

    def spawn(self, name: str) -> None:
        """Start one service process (again, after a crash test killed the previous one)."""
        previous = self.processes.pop(name, None)
        if previous is not None:
            previous.log.close()
        logs = self.directory / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log_path = logs / f"{name}.log"
        log = open(log_path, "ab")  # noqa: SIM115 (kept open for the process's life)
        process = subprocess.Popen(
            [sys.executable, "-m", f"panicsafe.{name}"],
            env=self.service_env(name),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.processes[name] = ServiceProcess(name, process, log_path, log)

    async def start(self, timeout: float = 90.0) -> dict[str, HealthReply]:
        await self.provision()
        for name in self.services:
            self.spawn(name)
        return await self.wait_healthy(timeout)

    async def wait_healthy(self, timeout: float) -> dict[str, HealthReply]:
        nc = await connect_nats(self.stack.nats.url, "panicsafe-launcher", self.stack.nats.credentials(LAUNCHER))
        try:
            deadline = time.monotonic() + timeout
            healthy: dict[str, HealthReply] = {}
            while time.monotonic() < deadline:
                for name, proc in self.processes.items():
                    if proc.process.poll() is not None:
                        raise DevStackError(f"{name} exited with {proc.process.returncode}:\n{_tail(proc.log_path)}")
                healthy = await health_of(RpcClient(nc), self.services)
                all_ok = len(healthy) == len(self.services) and all(
                    r.status == DependencyStatus.OK for r in healthy.values()
                )
                # A health RPC reaches any instance of the queue group (another platform may share this
                # NATS): this platform's own gateway must also answer on its own port.
                if all_ok and (GATEWAY not in self.services or await asyncio.to_thread(self._gateway_answers)):
                    return healthy
                await asyncio.sleep(0.2)
            missing = [n for n in self.services if n not in healthy or healthy[n].status != DependencyStatus.OK]
            raise DevStackError(f"not healthy after {timeout:.0f} s: {missing}")
        finally:
            await nc.close()

    def _gateway_answers(self) -> bool:
        return http_status(f"{self.gateway_url}/healthz", timeout=1.0) == 200

    def stop(self, timeout: float = 15.0) -> None:
        for proc in self.processes.values():
            if proc.process.poll() is None:
                proc.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.processes.values():
            try:
                proc.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.process.kill()
                proc.process.wait(5)
            _signal_group(proc.process.pid, signal.SIGKILL)
            _wait_group_gone(proc.process.pid, 5.0)
            proc.log.close()
        self.processes.clear()


async def bootstrap_demo(nats: NatsInfo, tenant_id: str | None = None) -> BootstrapDemoReply:
    """Development: the gateway creates the demo tenant (or finds the one of `tenant_id`, a previous
    run's) and returns its administrator's enrolment link while the administrator has not enrolled."""
    nc = await connect_nats(nats.url, "panicsafe-launcher", nats.credentials(LAUNCHER))
    try:
        return await RpcClient(nc).call(BOOTSTRAP_DEMO, BootstrapDemoRequest(tenant_id=tenant_id))
    finally:
        await nc.close()


async def health_of(client: RpcClient, services: tuple[str, ...]) -> dict[str, HealthReply]:
    async def one(name: str) -> tuple[str, HealthReply | None]:
        try:
            return name, await client.call(health(name), HealthRequest(), timeout=3.0)
        except ServiceError:
            return name, None

    results = await asyncio.gather(*(one(name) for name in services))
    return {name: reply for name, reply in results if reply is not None}


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def health_table(services: tuple[str, ...], replies: dict[str, HealthReply]) -> str:
    rows = []
    for name in services:
        reply = replies.get(name)
        if reply is None:
            rows.append(f"  {name:<9} DOWN     (no answer on rpc.{name}.health)")
            continue
        deps = ", ".join(
            f"{d.name} {d.status}" + (f" {d.latency_ms:.1f} ms" if d.latency_ms is not None else f" ({d.detail})")
            for d in reply.dependencies
        )
        rows.append(f"  {name:<9} {reply.status.upper():<8} {deps}")
    return "\n".join(rows)


def gateway_port_for_run() -> int:
    wanted = int(os.environ.get("PANICSAFE_PORT", "8480"))
    # The same port run after run: the address people bookmarked, and the origin passkeys were made for.
    return wanted if listen_port_is_free(wanted) else free_port()


def clean_run_dir(directory: Path) -> None:
    """A previous `make run` killed hard may have left its folder: start from nothing."""
    if directory.exists():
        shutil.rmtree(directory)


def write_run_state(directory: Path, platform: Platform) -> None:
    state = {
        "gateway_url": platform.gateway_url,
        "nats_url": platform.stack.nats.url,
        "nats_ca_file": platform.stack.nats.ca_file,
        "nats_launcher_seed_file": str(platform.stack.nats.seed_file(LAUNCHER)),
        "services": list(platform.services),
        "pids": {n: p.process.pid for n, p in platform.processes.items()},
    }
    path = directory / "platform.json"
    path.write_text(json.dumps(state, indent=2))
    path.chmod(0o600)
