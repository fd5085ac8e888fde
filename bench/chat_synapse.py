"""The chat benchmark's peer: Matrix Synapse, run the same way as our platform, driven by `bench.chatload`.

Method:

- Synapse (`matrix-synapse` from PyPI, version `SYNAPSE_VERSION`) lives in its own virtual environment,
  `.run/bench/synapse-venv` (or `$SYNAPSE_VENV`), made with `uv venv` + `uv pip install` on first use and
  reused after. The project's own environment does not depend on it: the benchmark talks HTTP to it.
- `SynapseServer` runs one monolithic Synapse process (the usual small deployment) on the devstack's
  PostgreSQL, in a database created with C collation as Synapse requires, from a generated
  `homeserver.yaml` in a temporary folder: loopback client listener only (no federation listener, no
  key servers), presence off, no stats reporting, a registration shared secret made at run time, and
  every `rc_*` rate limit raised so that Synapse's throttling does not stand in for its capacity, and
  `bcrypt_rounds: 4` (password hashing only costs at setup's logins). Synapse is otherwise left at its
  defaults (database pool, caches).
- Setup over the client-server API: `LISTENER_USERS` listener accounts and one account per sender index,
  registered through the admin shared-secret API; one public room made by the first sender, joined by
  everyone. Each listener user uploads a filter that keeps only the room's `m.room.message` timeline.
  Each of the `clients` subscribers logs in on its own (one device and access token each; client i
  belongs to listener user i % LISTENER_USERS) and gets a `next_batch` by an initial `/sync` with that
  filter. Separate devices matter: Synapse shares one response between identical concurrent `/sync`
  requests of the same device, which 200 real devices would not get.
- `SynapseAdapter` (a `bench.chatload.ChatAdapter`): `listen()` long-polls `/sync?since=...&timeout=30000`
  in a loop on its own keep-alive connection, like an open client; `send()` PUTs `m.room.message` events
  with the sender's token. A timeline that comes back `limited` (more than `TIMELINE_LIMIT` messages since
  the last sync) means messages a client would have to backfill: those count as not delivered.
- The adapter speaks HTTP/1.1 itself over asyncio streams (`HttpConnection`), keeping the load generator's
  CPU small beside Synapse's on 2 cores; setup, which is not measured, uses httpx.

`uv run --frozen python -m bench.chat_synapse` starts a PostgreSQL-only devstack and runs a short
scenario (10 s steady, 5 s steps unless `CHAT_BENCH_SECONDS`/`CHAT_BENCH_STEP_SECONDS` say otherwise).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import asyncpg
import httpx

from bench.chatload import NETWORK_ERRORS, HttpConnection, ScenarioFigures, TransientError, run_scenario
from panicsafe.core.devstack import DevStack
from panicsafe.core.devstack.ports import LOOPBACK, free_port
from panicsafe.core.devstack.servers import http_status

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
SYNAPSE_VERSION = "1.163.2"
REQUIREMENTS = (f"matrix-synapse=={SYNAPSE_VERSION}", "psycopg2-binary")
DEFAULT_VENV = ROOT / ".run" / "bench" / "synapse-venv"
DATABASE = "synapse"
SERVER_NAME = "localhost"
LISTENER_USERS = 20
SYNC_TIMEOUT_MS = 30_000
TIMELINE_LIMIT = 1000
START_TIMEOUT_S = 300.0
SETUP_CONCURRENCY = 10
ADAPTER = "bench.chat_synapse:SynapseAdapter"
UNLIMITED = {"per_second": 100_000, "burst_count": 100_000}


# -- the virtual environment -----------------------------------------------------------------------
def synapse_python(venv: Path | None = None) -> Path:
    """The Python of Synapse's own virtual environment, installed on first use."""
    venv = venv or Path(os.environ.get("SYNAPSE_VENV", str(DEFAULT_VENV)))
    python = venv / "bin" / "python"
    check = (
        "import importlib.metadata as m, synapse, psycopg2; "
        f"raise SystemExit(m.version('matrix-synapse') != {SYNAPSE_VERSION!r})"
    )
    if python.exists() and subprocess.run([str(python), "-c", check], capture_output=True).returncode == 0:
        return python
    uv = shutil.which("uv")
    if uv is None:
        raise RuntimeError("uv is needed to install Synapse's environment: run `make setup`")
    log.info("installing %s into %s", " ".join(REQUIREMENTS), venv)
    started = time.monotonic()
    venv.parent.mkdir(parents=True, exist_ok=True)
    env = _clean_env()
    subprocess.run([uv, "venv", "--quiet", "--allow-existing", "--python", "3.11", str(venv)], check=True, env=env)
    subprocess.run([uv, "pip", "install", "--quiet", "--python", str(python), *REQUIREMENTS], check=True, env=env)
    log.info("Synapse environment ready in %.1f s", time.monotonic() - started)
    return python


def _clean_env() -> dict[str, str]:
    """Our environment without what would point a child Python at the project's virtual environment."""
    return {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}


# -- the server ------------------------------------------------------------------------------------
class SynapseServer:
    """One Synapse process on a database of the given PostgreSQL, in a temporary folder under `workdir`."""

    def __init__(self, admin_dsn: str, workdir: Path, *, python: Path | None = None) -> None:
        self.admin_dsn = admin_dsn
        self.workdir = workdir
        self.python = python
        self.port = 0
        self.folder: Path | None = None
        self.shared_secret = ""
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> SynapseServer:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        python = self.python or synapse_python()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix="synapse-", dir=self.workdir))
        asyncio.run(_recreate_database(self.admin_dsn))
        self.port = free_port()
        self.shared_secret = secrets.token_urlsafe(32)
        config = self.folder / "homeserver.yaml"
        # JSON is YAML: no YAML writer needed.
        config.write_text(json.dumps(self._config(), indent=2))
        (self.folder / "log.config").write_text(json.dumps(_log_config(self.folder / "homeserver.log"), indent=2))
        env = _clean_env()
        argv = [str(python), "-m", "synapse.app.homeserver", "-c", str(config)]
        subprocess.run([*argv, "--generate-keys"], check=True, cwd=self.folder, env=env, capture_output=True)
        started = time.monotonic()
        with (self.folder / "stdout.log").open("wb") as out:
            self.process = subprocess.Popen(
                argv, cwd=self.folder, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        url = f"{self.base_url}/_matrix/client/versions"
        while http_status(url, timeout=2.0) != 200:
            if self.process.poll() is not None:
                raise RuntimeError(f"Synapse exited with {self.process.returncode}:\n{self._log_tail()}")
            if time.monotonic() - started > START_TIMEOUT_S:
                raise RuntimeError(f"Synapse not ready after {START_TIMEOUT_S:.0f} s:\n{self._log_tail()}")
            time.sleep(0.25)
        log.info("Synapse %s up on %s in %.1f s", SYNAPSE_VERSION, self.base_url, time.monotonic() - started)

    def _config(self) -> dict[str, Any]:
        assert self.folder is not None
        dsn = urlsplit(self.admin_dsn)
        db_args: dict[str, Any] = {
            "user": unquote(dsn.username or "postgres"),
            "host": dsn.hostname or LOOPBACK,
            "port": dsn.port or 5432,
            "database": DATABASE,
            "cp_min": 5,
            "cp_max": 10,
        }
        if dsn.password:
            db_args["password"] = unquote(dsn.password)
        return {
            "server_name": SERVER_NAME,
            "public_baseurl": f"{self.base_url}/",
            "pid_file": str(self.folder / "homeserver.pid"),
            "listeners": [
                {
                    "port": self.port,
                    "bind_addresses": [LOOPBACK],
                    "type": "http",
                    "tls": False,
                    "x_forwarded": False,
                    "resources": [{"names": ["client"], "compress": False}],
                }
            ],
            "database": {"name": "psycopg2", "args": db_args},
            "log_config": str(self.folder / "log.config"),
            "media_store_path": str(self.folder / "media"),
            "signing_key_path": str(self.folder / f"{SERVER_NAME}.signing.key"),
            "registration_shared_secret": self.shared_secret,
            "macaroon_secret_key": secrets.token_urlsafe(32),
            "form_secret": secrets.token_urlsafe(32),
            "enable_registration": False,
            "enable_registration_without_verification": True,
            "report_stats": False,
            # Password hashing only costs at registration and login (setup, not measured): 200 devices
            # log in, and the default 12 rounds would take a minute of CPU here.
            "bcrypt_rounds": 4,
            "enable_metrics": False,
            "presence": {"enabled": False},
            "url_preview_enabled": False,
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "federation_domain_whitelist": [],
            # Throttling would measure the limits, not the server.
            "rc_message": UNLIMITED,
            "rc_registration": UNLIMITED,
            "rc_login": {"address": UNLIMITED, "account": UNLIMITED, "failed_attempts": UNLIMITED},
            "rc_joins": {"local": UNLIMITED, "remote": UNLIMITED},
            "rc_joins_per_room": UNLIMITED,
            "rc_invites": {"per_room": UNLIMITED, "per_user": UNLIMITED, "per_issuer": UNLIMITED},
            "rc_room_creation": UNLIMITED,
            "rc_key_requests": UNLIMITED,
            "rc_presence": {"per_user": UNLIMITED},
            "rc_admin_redaction": UNLIMITED,
        }

    def _log_tail(self, lines: int = 40) -> str:
        if self.folder is None:
            return ""
        text = ""
        for name in ("stdout.log", "homeserver.log"):
            path = self.folder / name
            if path.exists():
                text += "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) + "\n"
        return text

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def __enter__(self) -> SynapseServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def _recreate_database(admin_dsn: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {DATABASE} ENCODING 'UTF8' LC_COLLATE='C' LC_CTYPE='C' TEMPLATE template0")
    finally:
        await conn.close()


def _log_config(path: Path) -> dict[str, Any]:
    return {
        "version": 1,
        "formatters": {"plain": {"format": "%(asctime)s %(name)s %(levelname)s %(message)s"}},
        "handlers": {"file": {"class": "logging.FileHandler", "filename": str(path), "formatter": "plain"}},
        "root": {"level": "WARNING", "handlers": ["file"]},
        "disable_existing_loggers": False,
    }


# -- setup over the client-server API --------------------------------------------------------------
def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _checked(response: httpx.Response) -> dict[str, Any]:
    if response.status_code != 200:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: {response.status_code} {response.text}"
        )
    body: dict[str, Any] = response.json()
    return body


def _timeline_filter(room_id: str) -> dict[str, Any]:
    return {
        "presence": {"types": []},
        "account_data": {"types": []},
        "room": {
            "rooms": [room_id],
            "timeline": {"types": ["m.room.message"], "limit": TIMELINE_LIMIT},
            "state": {"types": []},
            "ephemeral": {"types": []},
            "account_data": {"types": []},
        },
    }


async def _register(http: httpx.AsyncClient, shared_secret: str, username: str, password: str) -> dict[str, Any]:
    """Admin shared-secret registration: HMAC-SHA1 over nonce, user, password and admin flag."""
    nonce = _checked(await http.get("/_synapse/admin/v1/register"))["nonce"]
    mac = hmac.new(shared_secret.encode(), digestmod=hashlib.sha1)
    mac.update(b"\x00".join([nonce.encode(), username.encode(), password.encode(), b"notadmin"]))
    body = {"nonce": nonce, "username": username, "password": password, "admin": False, "mac": mac.hexdigest()}
    return _checked(await http.post("/_synapse/admin/v1/register", json=body))


async def _bounded(jobs: list[Callable[[], Any]], limit: int) -> list[Any]:
    slots = asyncio.Semaphore(limit)

    async def run(job: Callable[[], Any]) -> Any:
        async with slots:
            return await job()

    return await asyncio.gather(*(run(job) for job in jobs))


async def setup_bench(base_url: str, shared_secret: str, *, clients: int = 200, senders: int = 10) -> dict[str, Any]:
    """Users, room, joins, one logged-in device per subscriber: the `SynapseAdapter` config."""
    password = secrets.token_urlsafe(16)
    limits = httpx.Limits(max_connections=SETUP_CONCURRENCY * 2)
    async with httpx.AsyncClient(base_url=base_url, timeout=60.0, limits=limits) as http:
        listener_names = [f"listener{i}" for i in range(LISTENER_USERS)]
        sender_names = [f"sender{i}" for i in range(senders)]
        accounts: dict[str, dict[str, Any]] = {}
        for name in [*sender_names, *listener_names]:  # sequential: each registration takes a nonce
            accounts[name] = await _register(http, shared_secret, name, password)
        owner = accounts[sender_names[0]]["access_token"]
        room = _checked(
            await http.post(
                "/_matrix/client/v3/createRoom",
                json={"preset": "public_chat", "name": "bench", "visibility": "private"},
                headers=_auth(owner),
            )
        )["room_id"]
        room_path = quote(room, safe="")
        for name in [*sender_names[1:], *listener_names]:
            token = accounts[name]["access_token"]
            _checked(await http.post(f"/_matrix/client/v3/join/{room_path}", json={}, headers=_auth(token)))
        room_filter = _timeline_filter(room)
        filters: dict[str, str] = {}
        for name in listener_names:
            account = accounts[name]
            user = quote(account["user_id"], safe="")
            reply = await http.post(
                f"/_matrix/client/v3/user/{user}/filter", json=room_filter, headers=_auth(account["access_token"])
            )
            filters[name] = _checked(reply)["filter_id"]

        def device(client: int) -> Callable[[], Any]:
            async def job() -> tuple[str, str]:
                login = {
                    "type": "m.login.password",
                    "identifier": {"type": "m.id.user", "user": listener_names[client % LISTENER_USERS]},
                    "password": password,
                    "initial_device_display_name": f"bench client {client}",
                }
                token = _checked(await http.post("/_matrix/client/v3/login", json=login))["access_token"]
                params = {"filter": filters[listener_names[client % LISTENER_USERS]], "timeout": "0"}
                first = _checked(await http.get("/_matrix/client/v3/sync", params=params, headers=_auth(token)))
                return token, str(first["next_batch"])

            return job

        devices: list[tuple[str, str]] = await _bounded([device(i) for i in range(clients)], SETUP_CONCURRENCY)
    return {
        "base_url": base_url,
        "room_id": room,
        "sender_tokens": [accounts[name]["access_token"] for name in sender_names],
        "listener_tokens": [token for token, _ in devices],
        "listener_since": [since for _, since in devices],
        "listener_filters": [filters[listener_names[i % LISTENER_USERS]] for i in range(clients)],
        "sync_timeout_ms": SYNC_TIMEOUT_MS,
    }


# -- the adapter -----------------------------------------------------------------------------------
class SynapseAdapter:
    """`bench.chatload.ChatAdapter` over the Matrix client-server API, HTTP/1.1 keep-alive."""

    def __init__(self, config: dict[str, Any]) -> None:
        url = urlsplit(config["base_url"])
        self.host = url.hostname or LOOPBACK
        self.port = url.port or 80
        self.room_id: str = config["room_id"]
        self.room_path = quote(self.room_id, safe="")
        self.sender_tokens: list[str] = list(config["sender_tokens"])
        self.listener_tokens: list[str] = list(config["listener_tokens"])
        self.listener_since: list[str] = list(config["listener_since"])
        self.listener_filters: list[str] = list(config["listener_filters"])
        self.sync_timeout_ms = int(config.get("sync_timeout_ms", SYNC_TIMEOUT_MS))
        self.send_timeout_s = float(config.get("send_timeout_s", 60.0))
        self.idle: list[HttpConnection] = []  # the senders' keep-alive connections not in use
        self.connections: set[HttpConnection] = set()
        self.txn = 0
        self.gaps = 0  # limited timelines seen: messages Synapse skipped for a client

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        if self.gaps:
            log.warning("synapse: %d limited /sync timelines (messages skipped)", self.gaps)
        for connection in self.connections:
            connection.close()
        self.connections.clear()
        self.idle.clear()

    def _connection(self) -> HttpConnection:
        connection = HttpConnection(self.host, self.port)
        self.connections.add(connection)
        return connection

    async def listen(self, client: int, on_text: Callable[[str], None], ready: asyncio.Event) -> None:
        index = client % len(self.listener_tokens)
        headers = f"Authorization: Bearer {self.listener_tokens[index]}\r\n".encode()
        since = self.listener_since[index]
        filter_id = quote(self.listener_filters[index], safe="")
        connection = self._connection()
        timeout_ms = 0  # the first sync answers at once: from then on this client is subscribed
        failures = 0
        while True:
            target = f"/_matrix/client/v3/sync?since={quote(since, safe='')}&timeout={timeout_ms}&filter={filter_id}"
            try:
                status, data = await asyncio.wait_for(
                    connection.request("GET", target, headers), self.sync_timeout_ms / 1000 + 30.0
                )
                if status == 429 or status >= 500:
                    raise TransientError(f"{status} {data[:200]!r}")
            except NETWORK_ERRORS as exc:
                failures += 1
                if failures in (1, 10, 100):
                    log.warning("synapse client %d: /sync failed (%d times): %r", client, failures, exc)
                await asyncio.sleep(min(2.0, 0.1 * 2**failures))
                continue
            if status != 200:
                raise RuntimeError(f"/sync: {status} {data[:300]!r}")
            failures = 0
            body = json.loads(data)
            since = body["next_batch"]
            room = body.get("rooms", {}).get("join", {}).get(self.room_id)
            if room is not None:
                timeline = room.get("timeline", {})
                if timeline.get("limited") and ready.is_set():
                    self.gaps += 1
                for event in timeline.get("events", ()):
                    text = event.get("content", {}).get("body")
                    if event.get("type") == "m.room.message" and isinstance(text, str):
                        on_text(text)
            if not ready.is_set():
                ready.set()
                timeout_ms = self.sync_timeout_ms

    async def send(self, sender: int, text: str) -> None:
        self.txn += 1
        target = f"/_matrix/client/v3/rooms/{self.room_path}/send/m.room.message/{os.getpid()}-{self.txn}"
        headers = f"Authorization: Bearer {self.sender_tokens[sender % len(self.sender_tokens)]}\r\n".encode()
        body = json.dumps({"msgtype": "m.text", "body": text}).encode()
        connection = self.idle.pop() if self.idle else self._connection()
        try:
            status, data = await asyncio.wait_for(connection.request("PUT", target, headers, body), self.send_timeout_s)
        except BaseException:
            self.connections.discard(connection)
            raise
        self.idle.append(connection)
        if status != 200:
            raise RuntimeError(f"send: {status} {data[:200]!r}")


# -- entry -----------------------------------------------------------------------------------------
def synapse_figures(admin_dsn: str, workdir: Path, **kw: Any) -> ScenarioFigures:
    """Start Synapse on that PostgreSQL, set the room up, run `run_scenario(**kw)` against it, stop it."""
    server = SynapseServer(admin_dsn, workdir).start()
    try:
        started = time.monotonic()
        clients, senders = int(kw.get("clients", 200)), int(kw.get("senders", 10))
        config = asyncio.run(setup_bench(server.base_url, server.shared_secret, clients=clients, senders=senders))
        log.info("Synapse set up in %.1f s", time.monotonic() - started)
        return run_scenario(ADAPTER, config, **kw)
    finally:
        server.stop()


def _print_figures(figures: ScenarioFigures) -> None:
    print(
        f"steady: {figures.steady_sent_per_s:.1f} msg/s sent, delivered {figures.steady_delivered_ratio:.4f}, "
        f"p50 {figures.steady_p50_ms:.1f} ms, p99 {figures.steady_p99_ms:.1f} ms"
    )
    for step in figures.steps:
        print(
            f"  ramp {step['target_per_s']:>6.0f}/s: sent {step['sent_per_s']:>7.1f}/s, "
            f"delivered {step['delivered_ratio']:.4f}, p50 {step['p50_ms']:.0f} ms, p99 {step['p99_ms']:.0f} ms, "
            f"send p99 {step['send_p99_ms']:.0f} ms, failed {step['failed']} -> "
            f"{'pass' if step['passed'] else 'FAIL'}"
        )
    print(f"max sustained: {figures.max_sustained_per_s:.1f} msg/s")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    os.environ.setdefault("CHAT_BENCH_SECONDS", "10")
    os.environ.setdefault("CHAT_BENCH_STEP_SECONDS", "5")
    started = time.monotonic()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="panicsafe-bench-synapse-") as folder:
        stack = DevStack(Path(folder) / "stack", components=("postgres",)).start()
        try:
            figures = synapse_figures(stack.postgres.admin_dsn, Path(folder) / "synapse")
        finally:
            stack.stop()
    _print_figures(figures)
    print(json.dumps(figures.as_dict(), indent=2))
    print(f"load before {load_before}, after {os.getloadavg()}, took {time.monotonic() - started:.0f} s")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
