"""The real servers of a local stack: NATS, PostgreSQL, SeaweedFS (S3), coturn (OpenBao: `openbao.py`).

Each runs as a child process in its own process group, in a folder of the stack, on free
loopback ports, and is stopped with its whole group: nothing is left behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from panicsafe.core.devstack.ports import LOOPBACK, free_port, free_port_run, wait_tcp

log = logging.getLogger(__name__)

POSTGRES_BIN_DIRS = [Path("/usr/lib/postgresql/15/bin"), Path("/usr/lib/postgresql/16/bin")]


class DevStackError(RuntimeError):
    """A server is missing, did not start, or did not become ready in time."""


def find_binary(name: str, extra_dirs: list[Path] | None = None) -> str:
    """Look beside this interpreter (the uv environment) first, then the listed folders, then PATH."""
    for folder in [Path(sys.executable).parent, *(extra_dirs or [])]:
        candidate = folder / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise DevStackError(f"{name} not found: run `make setup`")
    return found


def http_status(url: str, timeout: float = 0.5) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:  # noqa: S310 (loopback URL we built)
            return int(reply.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return None


@dataclass
class Server:
    """One running server process."""

    name: str
    directory: Path
    argv: list[str]
    ready: Callable[[], bool]
    user: str | None = None
    env: dict[str, str] | None = None
    process: subprocess.Popen[bytes] | None = None
    stop_signal: int = signal.SIGTERM
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def log_path(self) -> Path:
        return self.directory / f"{self.name}.log"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> None:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (kept open for the process's life)
        self.process = subprocess.Popen(
            self.argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, killed as a whole
            user=self.user,
            env=self.env,
            cwd=self.directory,
        )

    def wait_ready(self, timeout: float) -> float:
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise DevStackError(f"{self.name} exited with {self.process.returncode}: {self.tail()}")
            if self.ready():
                return time.monotonic() - started
            time.sleep(0.02)
        raise DevStackError(f"{self.name} not ready after {timeout:.0f} s: {self.tail()}")

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            _signal_group(process.pid, self.stop_signal)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait(5)
        # Children that outlived their leader (the group id stays the leader's pid).
        _signal_group(process.pid, signal.SIGKILL)
        _wait_group_gone(process.pid, 5.0)
        if self._log is not None:
            self._log.close()
        self.process = None

    def kill(self) -> None:
        """SIGKILL the whole group: a crash, for fault tests."""
        if self.process is not None:
            _signal_group(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
            _wait_group_gone(self.process.pid, 5.0)
            self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def group_members(pgid: int) -> list[int]:
    """Live processes (not zombies) whose process group is `pgid`."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def _wait_group_gone(pgid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)


# --- PostgreSQL -------------------------------------------------------------------------------


@dataclass
class PostgresInfo:
    host: str
    port: int
    database: str
    admin_user: str
    data_dir: str
    admin_password: str = field(repr=False)

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://{self.admin_user}:{self.admin_password}@{self.host}:{self.port}/{self.database}"


# Only password logins (SCRAM), only over loopback TCP, plus the superuser on the local socket.
PG_HBA = """# PanicSAFE devstack: every login needs its role's password (scram-sha-256); no trust, no peer.
# TYPE  DATABASE  USER      ADDRESS        METHOD
local   all       postgres                 scram-sha-256
host    all       all       127.0.0.1/32   scram-sha-256
"""


def _superuser_password(directory: Path) -> str:
    """The superuser's password, in the stack folder (0600): made once, reused at every start."""
    path = directory / "superuser.password"
    if path.exists():
        return path.read_text().strip()
    password = secrets.token_urlsafe(24)
    path.write_text(password)
    path.chmod(0o600)
    return password


def _pg_owner() -> str | None:
    """initdb refuses root: as root, run PostgreSQL as the `postgres` user."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise DevStackError("running as root needs the `postgres` user: run `make setup`") from exc
    return "postgres"


def _initdb(bin_dir: Path, data: Path, password: str, user: str | None) -> None:
    """A new cluster whose superuser has `password`, and where every login needs its password."""
    # initdb reads the password from a file `user` can open; it exists only while initdb runs.
    handle, name = tempfile.mkstemp(prefix="panicsafe-pgpw-")
    pwfile = Path(name)
    try:
        with os.fdopen(handle, "w") as out:
            out.write(password + "\n")
        if user:
            shutil.chown(pwfile, user=user)
        subprocess.run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            user=user,
        )
    finally:
        pwfile.unlink(missing_ok=True)
    hba = data / "pg_hba.conf"
    hba.write_text(PG_HBA)
    if user:
        shutil.chown(hba, user=user)


def _postgres_data_dir(directory: Path, user: str | None, persistent: bool) -> Path:
    """Where the cluster lives. As root, PostgreSQL runs as `postgres`, which cannot enter our 0700
    folders: a temporary folder for a test stack, or a fixed one under /var/tmp (which outlives a
    reboot) named after the stack folder for a platform that must keep its data."""
    if user is None:
        return directory / "pgdata"
    if persistent:
        digest = hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:16]
        data = Path("/var/tmp") / f"panicsafe-pg-run-{digest}"  # noqa: S108 (checked below: ours, no link)
        data.mkdir(mode=0o700, exist_ok=True)
        owner = data.lstat()
        if data.is_symlink() or owner.st_uid not in (0, pwd.getpwnam(user).pw_uid) or owner.st_mode & 0o077:
            raise DevStackError(f"{data} is not a private folder of root or {user}: refusing to use it")
        return data
    return Path(tempfile.mkdtemp(prefix="panicsafe-pg-"))


def _forget_stale_lock(data: Path) -> None:
    """After a crash, `postmaster.pid` names a dead postmaster. PostgreSQL refuses to start while that
    pid answers a signal, which a zombie not yet reaped (a container whose init does not reap) or an
    unrelated process that got the pid does. Only a live postgres serving this very folder counts."""
    lock = data / "postmaster.pid"
    try:
        pid = int(lock.read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, IndexError):
        state, command = "gone", []
    ours = state != "Z" and bool(command) and Path(command[0].decode(errors="replace")).name == "postgres"
    if not (ours and str(data).encode() in command):
        log.warning("removing the stale lock of a postmaster (pid %s) that no longer runs", pid)
        lock.unlink(missing_ok=True)


def postgres_server(
    directory: Path, port: int | None = None, *, persistent: bool = False
) -> tuple[Server, PostgresInfo]:
    port = port or free_port()
    user = _pg_owner()
    # The data folder must be reachable by `postgres`; a pytest tmp folder is not (0700 root).
    data = _postgres_data_dir(directory, user, persistent)
    _forget_stale_lock(data)
    (directory / "pgdata.path").write_text(str(data))
    if user:
        shutil.chown(data, user=user)
    bin_dir = Path(find_binary("initdb", POSTGRES_BIN_DIRS)).parent
    password = _superuser_password(directory)
    if not (data / "PG_VERSION").exists():
        _initdb(bin_dir, data, password, user)
    ready_bin = str(bin_dir / "pg_isready")
    server = Server(
        name="postgres",
        directory=directory,
        argv=[
            str(bin_dir / "postgres"),
            "-D",
            str(data),
            "-k",
            str(data),
            "-p",
            str(port),
            "-c",
            f"listen_addresses={LOOPBACK}",
            "-c",
            "synchronous_commit=on",
            "-c",
            "fsync=on",
            "-c",
            "max_connections=300",
            "-c",
            "shared_buffers=256MB",
            "-c",
            "log_min_messages=warning",
            "-c",
            "password_encryption=scram-sha-256",
        ],
        ready=lambda: subprocess.run(
            [ready_bin, "-h", LOOPBACK, "-p", str(port), "-U", "postgres", "-d", "postgres", "-t", "1"],
            capture_output=True,
            check=False,
        ).returncode
        == 0,
        user=user,
        stop_signal=signal.SIGINT,  # fast shutdown: roll back open transactions, checkpoint
    )
    return server, PostgresInfo(LOOPBACK, port, "postgres", "postgres", str(data), password)


def remove_postgres_data(directory: Path) -> None:
    marker = directory / "pgdata.path"
    if marker.exists():
        data = Path(marker.read_text().strip())
        if data.name.startswith("panicsafe-pg-"):
            shutil.rmtree(data, ignore_errors=True)


# --- SeaweedFS (S3) ---------------------------------------------------------------------------


@dataclass
class S3Info:
    endpoint: str
    port: int
    access_key: str
    secret_key: str
    region: str = "us-east-1"


def seaweedfs_server(directory: Path) -> tuple[Server, S3Info]:
    data = directory / "seaweedfs"
    data.mkdir(parents=True, exist_ok=True)
    secrets_file = directory / "s3.secret.json"
    if secrets_file.exists():
        creds = json.loads(secrets_file.read_text())
    else:
        creds = {"access_key": "ps" + secrets.token_hex(8), "secret_key": secrets.token_urlsafe(30)}
        secrets_file.write_text(json.dumps(creds))
        secrets_file.chmod(0o600)
    config = directory / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "panicsafe",
                        "credentials": [{"accessKey": creds["access_key"], "secretKey": creds["secret_key"]}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    config.chmod(0o600)
    names = [
        "master",
        "master.grpc",
        "volume",
        "volume.grpc",
        "filer",
        "filer.grpc",
        "s3",
        "s3.grpc",
        "webdav",
        "admin",
        "admin.grpc",
    ]
    ports = {name: free_port() for name in names}
    argv = [
        find_binary("weed"),
        "mini",
        f"-dir={data}",
        f"-ip={LOOPBACK}",
        f"-ip.bind={LOOPBACK}",
        "-master.telemetry=false",
        "-admin.ui=false",
        f"-s3.config={config}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-filer.localSocket={directory / 'filer.sock'}",
        f"-s3.localSocket={directory / 's3.sock'}",
    ]
    argv += [
        f"-{name.replace('.grpc', '.port.grpc') if '.grpc' in name else name + '.port'}={port}"
        for name, port in ports.items()
    ]
    info = S3Info(f"{LOOPBACK}:{ports['s3']}", ports["s3"], creds["access_key"], creds["secret_key"])

    def ready() -> bool:
        # Ready only when an authenticated S3 call succeeds, not when the port merely opens.
        from minio import Minio

        if not wait_tcp(ports["s3"]):
            return False
        try:
            Minio(
                info.endpoint,
                access_key=info.access_key,
                secret_key=info.secret_key,
                secure=False,
                region=info.region,
            ).list_buckets()
        except Exception:  # noqa: BLE001 (not ready yet)
            return False
        return True

    return Server(name="seaweedfs", directory=directory, argv=argv, ready=ready), info


# --- coturn -----------------------------------------------------------------------------------


@dataclass
class TurnInfo:
    host: str
    port: int
    realm: str
    secret: str
    min_relay_port: int
    max_relay_port: int


def coturn_server(directory: Path) -> tuple[Server, TurnInfo]:
    port = free_port_run(2)
    relay_low = free_port_run(64, low=40000, high=48000)
    secret = secrets.token_urlsafe(24)
    info = TurnInfo(LOOPBACK, port, "panicsafe.local", secret, relay_low, relay_low + 63)
    argv = [
        find_binary("turnserver", [Path("/usr/bin")]),
        "-n",
        f"--listening-ip={LOOPBACK}",
        f"--relay-ip={LOOPBACK}",
        f"--listening-port={port}",
        f"--alt-listening-port={port + 1}",
        f"--min-port={info.min_relay_port}",
        f"--max-port={info.max_relay_port}",
        "--use-auth-secret",
        f"--static-auth-secret={secret}",
        "-r",
        info.realm,
        "--allow-loopback-peers",
        "--no-cli",
        "--no-tls",
        "--no-dtls",
        "--no-rfc5780",
        f"--userdb={directory / 'turndb'}",
        f"--pidfile={directory / 'turn.pid'}",
        "--log-file=stdout",
        "--simple-log",
        "--no-software-attribute",
    ]
    server = Server(name="coturn", directory=directory, argv=argv, ready=lambda: wait_tcp(port))
    return server, info


def describe(info: Any) -> dict[str, Any]:
    """A JSON-friendly view of an info dataclass (secrets included: the state file is 0600)."""
    return dict(vars(info))
