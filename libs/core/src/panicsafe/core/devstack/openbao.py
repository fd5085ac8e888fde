"""OpenBao as in production: raft storage in the stack folder, TLS, initialised and unsealed here.

Everything lives in the stack's `openbao/` folder (0700; secrets 0600):

    tls/ca.pem, tls/server.pem, tls/server.key   the listener's certificate and the CA clients verify
    data/                                        raft storage
    init.json                                    the unseal key and the first root token (revoked)
    approle/<service>/role_id, secret_id         each service's identity (`Platform` hands them out)
    approle/panicsafe-provisioner/...            the re-provisioning identity (see below)

First start: init (one key share), unseal, then with the root token: mount transit and the KV store,
enable AppRole, write one policy per service (`panicsafe.core.openbao.policy_for`), one AppRole per
service, their credentials, and revoke the root token.

Later starts on the same folder (the data is kept): unseal with the stored key, and re-provision so
that policies follow the code. No root token survives to do it: the provisioner AppRole may only
run a root-token generation (`sys/generate-root-token`), which also needs the unseal key; the
devstack generates a root token that way, provisions, and revokes it. Credential files already
present are reused while OpenBao still accepts them.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import logging
import os
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvac
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hvac.exceptions import InvalidPath, InvalidRequest

from panicsafe.contracts.catalog import SERVICE_NAMES
from panicsafe.core.devstack.ports import LOOPBACK, free_port_run
from panicsafe.core.devstack.servers import DevStackError, Server, find_binary
from panicsafe.core.openbao import (
    APPROLE_MOUNT,
    KV_MOUNT,
    TRANSIT_MOUNT,
    AppRoleCredentials,
    OpenBaoSession,
    policy_for,
    policy_name,
)

log = logging.getLogger(__name__)

PROVISIONER = "panicsafe-provisioner"
PROVISIONER_POLICY = (
    "# May run a root-token generation, which also needs the unseal key: nothing else.\n"
    'path "sys/generate-root-token/*" {\n  capabilities = ["create", "read", "update", "delete"]\n}\n'
)
SERVICE_LOGIN_LIFETIME = "1h"  # services log in again half-way (`OpenBaoSession`)
ACTIVE_TIMEOUT_S = 30.0


def _write_secret(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    path.write_text(text)
    path.chmod(0o600)


# --- TLS ----------------------------------------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _still_valid(cert_file: Path, margin: datetime.timedelta) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    except (OSError, ValueError):
        return False
    return cert.not_valid_after_utc - margin > datetime.datetime.now(datetime.UTC)


def ensure_tls(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 and localhost; kept while valid for 30 more days."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    margin = datetime.timedelta(days=30)
    if key_file.exists() and _still_valid(ca_file, margin) and _still_valid(cert_file, margin):
        return ca_file, cert_file, key_file
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("PanicSAFE devstack OpenBao CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(_name("openbao.panicsafe.local"))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=825))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(LOOPBACK)), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_secret(
        key_file,
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
    )
    cert_file.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    # The CA's private key is not kept: a new one is made when the certificates are renewed.
    return ca_file, cert_file, key_file


# --- the server -----------------------------------------------------------------------------------


@dataclass
class OpenBaoInfo:
    address: str
    port: int
    cluster_port: int
    ca_file: str
    directory: str

    @property
    def folder(self) -> Path:
        return Path(self.directory)

    @property
    def init_file(self) -> Path:
        """The unseal key and the first root token (revoked once the devstack has provisioned)."""
        return self.folder / "init.json"

    def credentials(self, role: str) -> AppRoleCredentials:
        """A service's AppRole credentials (or the provisioner's)."""
        folder = self.folder / "approle" / role
        return AppRoleCredentials.from_files(folder / "role_id", folder / "secret_id")

    def session(self, role: str) -> OpenBaoSession:
        """A client logged in (on first use) as one service, verifying the devstack's CA."""
        return OpenBaoSession(self.address, self.credentials(role), ca_file=self.ca_file)

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)

    def admin_client(self, token: str | None = None) -> hvac.Client:
        return hvac.Client(url=self.address, token=token, verify=self.ca_file, timeout=10)


def openbao_server(directory: Path) -> tuple[Server, OpenBaoInfo]:
    directory.chmod(0o700)
    ca_file, cert_file, key_file = ensure_tls(directory / "tls")
    data = directory / "data"
    data.mkdir(exist_ok=True)
    data.chmod(0o700)
    port = free_port_run(2)  # the API, and the raft cluster listener on port + 1
    cluster_port = port + 1
    address = f"https://{LOOPBACK}:{port}"
    config = directory / "openbao.hcl"
    config.write_text(
        f'storage "raft" {{\n  path = "{data}"\n  node_id = "panicsafe-devstack"\n  performance_multiplier = 1\n}}\n'
        f'listener "tcp" {{\n  address = "{LOOPBACK}:{port}"\n  cluster_address = "{LOOPBACK}:{cluster_port}"\n'
        f'  tls_cert_file = "{cert_file}"\n  tls_key_file = "{key_file}"\n  tls_min_version = "tls12"\n}}\n'
        f'api_addr = "{address}"\ncluster_addr = "https://{LOOPBACK}:{cluster_port}"\nui = false\n'
    )
    info = OpenBaoInfo(address, port, cluster_port, str(ca_file), str(directory))
    context = info.ssl_context()
    server = Server(
        name="openbao",
        directory=directory,
        argv=[find_binary("bao"), "server", f"-config={config}", "-log-level=warn"],
        # Up once it answers over TLS (sealed or not): `bootstrap_openbao` initialises and unseals.
        ready=lambda: _health(info, context) is not None,
        env={**os.environ, "HOME": str(directory)},
    )
    return server, info


def _health(info: OpenBaoInfo, context: ssl.SSLContext) -> int | None:
    try:
        with urllib.request.urlopen(f"{info.address}/v1/sys/health", timeout=0.5, context=context) as reply:  # noqa: S310
            return int(reply.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)  # 501 not initialised, 503 sealed
    except (urllib.error.URLError, OSError):
        return None


# --- init, unseal, provisioning -------------------------------------------------------------------


def _wait_active(info: OpenBaoInfo) -> None:
    context = info.ssl_context()
    deadline = time.monotonic() + ACTIVE_TIMEOUT_S
    while time.monotonic() < deadline:
        if _health(info, context) == 200:
            return
        time.sleep(0.05)
    raise DevStackError(f"OpenBao not active after {ACTIVE_TIMEOUT_S:.0f} s")


def unseal_openbao(info: OpenBaoInfo) -> None:
    """Unseal with the stored key (after a start or a restart of the server), and wait until active."""
    client = info.admin_client()
    if client.sys.read_seal_status()["sealed"]:
        keys = json.loads(info.init_file.read_text())["keys_base64"]
        for key in keys:
            if not client.sys.submit_unseal_key(key)["sealed"]:
                break
    _wait_active(info)


def bootstrap_openbao(info: OpenBaoInfo, services: Iterable[str] = SERVICE_NAMES) -> None:
    """Initialise (first start) or unseal (later starts), provision every identity, revoke the root token."""
    client = info.admin_client()
    if not client.sys.is_initialized():
        reply = client.sys.initialize(secret_shares=1, secret_threshold=1)
        _write_secret(info.init_file, json.dumps(reply, indent=2))
        unseal_openbao(info)
        root = str(reply["root_token"])
    else:
        if not info.init_file.exists():
            raise DevStackError(f"OpenBao in {info.directory} is initialised but {info.init_file} is missing")
        unseal_openbao(info)
        root = generate_root(info)
    admin = info.admin_client(root)
    try:
        provision(admin, info, services)
    finally:
        admin.auth.token.revoke_self()


def generate_root(info: OpenBaoInfo) -> str:
    """A new root token from the provisioner identity and the unseal key (to be revoked after use)."""
    provisioner = info.session(PROVISIONER)
    token = provisioner.login()
    client = info.admin_client(token)
    try:
        client.adapter.delete("/v1/sys/generate-root-token/attempt")  # an attempt a crash left behind
        started = client.adapter.post("/v1/sys/generate-root-token/attempt", json={})["data"]
        otp, nonce = str(started["otp"]), str(started["nonce"])
        result: dict[str, Any] = {}
        for key in json.loads(info.init_file.read_text())["keys_base64"]:
            result = client.adapter.post("/v1/sys/generate-root-token/update", json={"key": key, "nonce": nonce})[
                "data"
            ]
            if result.get("complete"):
                break
        if not result.get("complete"):
            raise DevStackError("root token generation did not complete with the stored key shares")
        return decode_root_token(str(result["encoded_token"]), otp)
    finally:
        client.auth.token.revoke_self()


def decode_root_token(encoded: str, otp: str) -> str:
    raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
    return bytes(a ^ b for a, b in zip(raw, otp.encode(), strict=True)).decode()


def provision(admin: hvac.Client, info: OpenBaoInfo, services: Iterable[str]) -> None:
    """Idempotent: engines, policies, AppRoles, credentials files (reused while still accepted)."""
    mounts = admin.sys.list_mounted_secrets_engines()["data"]
    if f"{TRANSIT_MOUNT}/" not in mounts:
        admin.sys.enable_secrets_engine("transit", path=TRANSIT_MOUNT)
    if f"{KV_MOUNT}/" not in mounts:
        admin.sys.enable_secrets_engine("kv", path=KV_MOUNT, options={"version": "2"})
    if f"{APPROLE_MOUNT}/" not in admin.sys.list_auth_methods()["data"]:
        admin.sys.enable_auth_method("approle", path=APPROLE_MOUNT)
    policies = {name: (policy_name(name), policy_for(name)) for name in services}
    policies[PROVISIONER] = (PROVISIONER, PROVISIONER_POLICY)
    for role, (name, policy) in policies.items():
        admin.sys.create_or_update_policy(name, policy)
        admin.auth.approle.create_or_update_approle(
            role,
            token_policies=[name],
            token_ttl=SERVICE_LOGIN_LIFETIME,
            token_max_ttl=SERVICE_LOGIN_LIFETIME,
            secret_id_ttl=0,  # a service logs in again with the same secret id for as long as it runs
            secret_id_num_uses=0,
            secret_id_bound_cidrs=[f"{LOOPBACK}/32"],
            token_bound_cidrs=[f"{LOOPBACK}/32"],
            mount_point=APPROLE_MOUNT,
        )
        _write_credentials(admin, info, role)


def _write_credentials(admin: hvac.Client, info: OpenBaoInfo, role: str) -> None:
    folder = info.folder / "approle" / role
    role_id = str(admin.auth.approle.read_role_id(role, mount_point=APPROLE_MOUNT)["data"]["role_id"])
    _write_secret(folder / "role_id", role_id)
    secret_file = folder / "secret_id"
    if secret_file.exists():
        try:
            found = admin.auth.approle.read_secret_id(role, secret_file.read_text().strip(), mount_point=APPROLE_MOUNT)
        except (InvalidPath, InvalidRequest):
            found = None
        if isinstance(found, dict) and found.get("data"):
            return  # still accepted: reused
        log.info("the secret id of %s is no longer accepted: issuing a new one", role)
    secret_id = str(admin.auth.approle.generate_secret_id(role, mount_point=APPROLE_MOUNT)["data"]["secret_id"])
    _write_secret(secret_file, secret_id)
