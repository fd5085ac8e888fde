"""NATS as the platform runs it: TLS only, no anonymous user, one nkey identity per service.

The configuration is written from the catalog (`panicsafe.core.bus.identity`): nobody writes a
permission by hand. Seeds live in `<folder>/identities/<identity>.nk` (0600) and are kept across
restarts, like the CA and the JetStream store; the server only knows public keys.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import nkeys

from panicsafe.core.bus.connection import NatsCredentials
from panicsafe.core.bus.identity import HARNESS, Permissions, all_permissions
from panicsafe.core.devstack.pki import CertificateAuthority
from panicsafe.core.devstack.ports import LOOPBACK, free_port
from panicsafe.core.devstack.servers import Server, find_binary, http_status


@dataclass
class NatsInfo:
    url: str
    port: int
    monitor_port: int
    store_dir: str
    ca_file: str
    identities_dir: str

    def seed_file(self, identity: str) -> Path:
        return Path(self.identities_dir) / f"{identity}.nk"

    def credentials(self, identity: str = HARNESS) -> NatsCredentials:
        """How `identity` connects (the harness exists only in test stacks)."""
        path = self.seed_file(identity)
        if not path.exists():
            raise KeyError(f"no NATS identity {identity!r} in this stack")
        return NatsCredentials(identity=identity, seed=path.read_text().strip(), ca_file=self.ca_file)


def identity_seed(path: Path) -> str:
    """The user nkey seed in `path`, made (0600) if absent."""
    if path.exists():
        return path.read_text().strip()
    seed = str(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER).decode())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(0o600)
    path.write_text(seed)
    return seed


def public_key(seed: str) -> str:
    pair = nkeys.from_seed(seed.encode())
    try:
        return str(pair.public_key.decode())
    finally:
        pair.wipe()


def _user(nkey: str, permissions: Permissions) -> dict[str, object]:
    rules: dict[str, object] = {
        "publish": {"allow": list(permissions.publish)},
        "subscribe": {"allow": list(permissions.subscribe)},
    }
    if permissions.allow_responses:
        rules["allow_responses"] = {"max": 1, "expires": "5m"}
    return {"nkey": nkey, "permissions": rules}


def render_config(
    *, port: int, monitor_port: int, store: Path, cert_file: Path, key_file: Path, users: list[dict[str, object]]
) -> str:
    """nats-server accepts JSON for its configuration: no hand-quoting of `$JS` subjects."""
    config = {
        "server_name": "panicsafe-dev",
        "listen": f"{LOOPBACK}:{port}",
        "http": f"{LOOPBACK}:{monitor_port}",
        "max_payload": 8 * 1024 * 1024,
        # sync_interval: always — every acknowledged write is on disk (see DEPENDENCIES.md on Jepsen).
        "jetstream": {"store_dir": str(store), "sync_interval": "always"},
        "tls": {"cert_file": str(cert_file), "key_file": str(key_file), "timeout": 5},
        "authorization": {"users": users},
    }
    return json.dumps(config, indent=2)


def nats_server(
    directory: Path, port: int | None = None, monitor_port: int | None = None, *, harness: bool = False
) -> tuple[Server, NatsInfo]:
    port = port or free_port()
    monitor_port = monitor_port or free_port()
    store = directory / "jetstream"
    store.mkdir(parents=True, exist_ok=True)
    authority = CertificateAuthority(directory / "tls")
    server_cert = authority.server_certificate("nats", dns=("localhost", "nats"))
    identities = directory / "identities"
    users = [
        _user(public_key(identity_seed(identities / f"{name}.nk")), permissions)
        for name, permissions in all_permissions(harness=harness).items()
    ]
    if not harness:
        (identities / f"{HARNESS}.nk").unlink(missing_ok=True)
    config = directory / "nats.conf"
    config.write_text(
        render_config(
            port=port,
            monitor_port=monitor_port,
            store=store,
            cert_file=server_cert.cert_file,
            key_file=server_cert.key_file,
            users=users,
        )
    )
    config.chmod(0o600)
    server = Server(
        name="nats",
        directory=directory,
        argv=[find_binary("nats-server"), "-c", str(config)],
        ready=lambda: http_status(f"http://{LOOPBACK}:{monitor_port}/healthz?js-enabled-only=true") == 200,
    )
    info = NatsInfo(
        url=f"tls://{LOOPBACK}:{port}",
        port=port,
        monitor_port=monitor_port,
        store_dir=str(store),
        ca_file=str(authority.cert_file),
        identities_dir=str(identities),
    )
    return server, info
