"""Attacks on OpenBao from inside the bunker: a process holding one service's identity (or none).

Against the devstack's real OpenBao, as `make run` and every test start it: TLS, initialised and
unsealed by the devstack, one AppRole per service, the root token revoked.
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hvac
import pytest
import requests
from hvac.exceptions import Forbidden

from panicsafe.contracts.catalog import GATEWAY, SERVICE_NAMES
from panicsafe.core.crypto import EnvelopeCipher, TransitKeys, tenant_key_name
from panicsafe.core.devstack import DevStack
from panicsafe.core.devstack.openbao import PROVISIONER
from panicsafe.core.devstack.platform import Platform
from panicsafe.core.openbao import OpenBaoSession
from panicsafe.core.testing import gateway_keys
from panicsafe.logbook.signing import TransitSigner, signing_key_name

OTHERS = tuple(name for name in SERVICE_NAMES if name != GATEWAY)
NOT_LOGBOOK = tuple(name for name in SERVICE_NAMES if name != "logbook")
MESSAGE = base64.b64encode(b"checkpoint 42").decode()


def logged_in(stack: DevStack, service: str) -> OpenBaoSession:
    session = stack.openbao.session(service)
    session.login()
    return session


def refused(call: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    with pytest.raises(Forbidden):
        call(*args, **kwargs)


@pytest.fixture(scope="module")
async def tenant(stack: DevStack) -> str:
    """A tenant made as the gateway makes one (its key), with a logbook checkpoint key that signed once."""
    tenant_id = str(uuid.uuid4())
    await gateway_keys(stack).ensure_tenant_key(tenant_id)
    signer = TransitSigner(stack.openbao.session("logbook"))
    try:
        signature, version = await signer.sign(tenant_id, b"checkpoint 1")
    finally:
        await signer.close()
    assert len(signature) == 64 and version == 1
    return tenant_id


@pytest.mark.parametrize("service", NOT_LOGBOOK)
def test_only_the_logbook_signs_with_the_logbook_keys(stack: DevStack, tenant: str, service: str) -> None:
    client = logged_in(stack, service).client
    key = signing_key_name(tenant)
    refused(client.secrets.transit.sign_data, key, MESSAGE)
    refused(client.secrets.transit.verify_signed_data, key, MESSAGE, signature="vault:v1:" + "A" * 88)
    refused(client.secrets.transit.read_key, key)
    refused(client.secrets.transit.rotate_key, key)
    # Nor can it make a signing key for a tenant before the logbook does.
    refused(client.secrets.transit.create_key, signing_key_name(str(uuid.uuid4())), key_type="ed25519")


def test_the_logbook_signs_and_reads_its_public_keys(stack: DevStack, tenant: str) -> None:
    client = logged_in(stack, "logbook").client
    signed = client.secrets.transit.sign_data(signing_key_name(tenant), MESSAGE)
    assert signed["data"]["signature"].startswith("vault:v1:")
    assert client.secrets.transit.read_key(signing_key_name(tenant))["data"]["type"] == "ed25519"


@pytest.mark.parametrize("service", OTHERS)
def test_no_service_but_the_gateway_creates_or_destroys_a_tenant_key(
    stack: DevStack, tenant: str, service: str
) -> None:
    client = logged_in(stack, service).client
    refused(client.secrets.transit.create_key, tenant_key_name(str(uuid.uuid4())), key_type="aes256-gcm96")
    refused(client.secrets.transit.update_key_configuration, tenant_key_name(tenant), deletion_allowed=True)
    refused(client.secrets.transit.delete_key, tenant_key_name(tenant))
    refused(client.secrets.transit.rotate_key, tenant_key_name(tenant))
    refused(
        client.secrets.kv.v2.create_or_update_secret,
        f"panicsafe/shredded-tenants/{tenant}",
        secret={"shredded": "true"},
        mount_point="secret",
    )
    # Nor a key under a name of its choosing (no transit path outside its own is reachable).
    refused(client.secrets.transit.create_key, f"own-{service}-{uuid.uuid4().hex}")
    # The tenant's key is intact.
    gateway = logged_in(stack, GATEWAY).client
    assert gateway.secrets.transit.read_key(tenant_key_name(tenant))["data"]["deletion_allowed"] is False


async def test_the_gateway_creates_and_shreds_a_tenant_key(stack: DevStack) -> None:
    doomed = str(uuid.uuid4())
    cipher = EnvelopeCipher(gateway_keys(stack))
    blob = await cipher.encrypt(doomed, "rec-1", b"bientot illisible")
    await cipher.shred_tenant(doomed)
    assert await cipher.keys.is_shredded(doomed)
    reader = EnvelopeCipher(TransitKeys(stack.openbao.session("chat")))
    with pytest.raises(Exception, match="cannot open"):
        await reader.decrypt(doomed, "rec-1", blob)


@pytest.mark.parametrize("service", ["video", "sara", "docs"])
def test_a_service_that_encrypts_nothing_reaches_no_tenant_key(stack: DevStack, tenant: str, service: str) -> None:
    client = logged_in(stack, service).client
    refused(client.secrets.transit.generate_data_key, tenant_key_name(tenant), key_type="plaintext")
    refused(client.secrets.transit.decrypt_data, tenant_key_name(tenant), "vault:v1:AAAA")
    refused(client.secrets.transit.read_key, tenant_key_name(tenant))


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_no_service_identity_reaches_administration(stack: DevStack, service: str) -> None:
    """No policy writing, no other identity's credentials, no mounts, no token for someone else."""
    client = logged_in(stack, service).client
    refused(client.sys.create_or_update_policy, f"panicsafe-{service}", 'path "*" { capabilities = ["sudo"] }')
    refused(client.sys.list_mounted_secrets_engines)
    refused(client.auth.approle.generate_secret_id, "logbook")
    refused(client.auth.approle.read_role_id, "gateway")
    refused(client.auth.token.create, policies=["panicsafe-gateway"])
    refused(client.adapter.post, "/v1/sys/generate-root-token/attempt", json={})


def test_the_provisioner_identity_reaches_no_key(stack: DevStack, tenant: str) -> None:
    client = logged_in(stack, PROVISIONER).client
    refused(client.secrets.transit.generate_data_key, tenant_key_name(tenant), key_type="plaintext")
    refused(client.secrets.transit.sign_data, signing_key_name(tenant), MESSAGE)
    refused(client.sys.list_mounted_secrets_engines)


def test_the_root_token_from_init_is_revoked(stack: DevStack, tenant: str) -> None:
    init = json.loads(stack.openbao.init_file.read_text())
    assert stack.openbao.init_file.stat().st_mode & 0o777 == 0o600
    root = stack.openbao.admin_client(init["root_token"])
    refused(root.auth.token.lookup_self)
    refused(root.secrets.transit.generate_data_key, tenant_key_name(tenant), key_type="plaintext")


def test_a_request_without_a_token_is_refused(stack: DevStack, tenant: str) -> None:
    anonymous = hvac.Client(url=stack.openbao.address, verify=stack.openbao.ca_file)
    refused(anonymous.secrets.transit.generate_data_key, tenant_key_name(tenant), key_type="plaintext")
    refused(anonymous.secrets.transit.sign_data, signing_key_name(tenant), MESSAGE)
    refused(anonymous.sys.list_mounted_secrets_engines)
    forged = hvac.Client(url=stack.openbao.address, verify=stack.openbao.ca_file, token="s." + "A" * 24)
    refused(forged.secrets.transit.decrypt_data, tenant_key_name(tenant), "vault:v1:AAAA")


def test_openbao_speaks_tls_only_with_the_devstack_ca(stack: DevStack) -> None:
    health = f"{stack.openbao.address}/v1/sys/health"
    # A client that trusts only the system's authorities does not accept the server ...
    with pytest.raises(urllib.error.URLError) as untrusted:
        urllib.request.urlopen(health, timeout=5, context=ssl.create_default_context())  # noqa: S310
    assert isinstance(untrusted.value.reason, ssl.SSLCertVerificationError)
    # ... plain HTTP gets no answer from OpenBao ...
    plain = requests.get(health.replace("https://", "http://"), timeout=5)
    assert plain.status_code == 400 and "sealed" not in plain.text
    # ... and the devstack's CA verifies it.
    with urllib.request.urlopen(health, timeout=5, context=stack.openbao.ssl_context()) as reply:  # noqa: S310
        assert json.loads(reply.read())["sealed"] is False


def test_each_service_process_gets_its_own_identity_and_no_private_signing_key(stack: DevStack, tmp_path: Path) -> None:
    """What `make run` hands each process: its AppRole, the actor-token public keys; the private keys
    (actor and access tokens) only to the gateway."""
    platform = Platform(stack, tmp_path / "platform")
    role_ids = {}
    for service in SERVICE_NAMES:
        prefix = f"{service.upper()}_"
        env = {k.removeprefix(prefix): v for k, v in platform.service_env(service).items() if k.startswith(prefix)}
        assert "OPENBAO_TOKEN" not in env and "OPENBAO_TOKEN_FILE" not in env
        credentials = stack.openbao.credentials(service)
        assert Path(env["OPENBAO_ROLE_ID_FILE"]).read_text() == credentials.role_id
        assert Path(env["OPENBAO_SECRET_ID_FILE"]).read_text() == credentials.secret_id
        assert Path(env["OPENBAO_SECRET_ID_FILE"]).stat().st_mode & 0o777 == 0o600
        assert Path(env["OPENBAO_ROLE_ID_FILE"]).parent == platform.directory / "secrets" / service
        role_ids[service] = credentials.role_id
        private = [
            f"{name}={value}"
            for name, value in env.items()
            for path in _files(Path(value))
            if b"PRIVATE KEY" in path.read_bytes()
        ]
        if service == GATEWAY:
            assert sorted(p.split("=")[0] for p in private) == ["ACCESS_SIGNING_KEY_FILE", "INTERNAL_SIGNING_KEY_FILE"]
        else:
            assert private == [], f"{service} is given a private key: {private}"
    assert len(set(role_ids.values())) == len(SERVICE_NAMES)


def _files(path: Path) -> list[Path]:
    if not path.is_absolute() or not path.exists():
        return []
    if path.is_file():
        return [path]
    return [p for p in path.rglob("*") if p.is_file()]
