"""A service's OpenBao identity: its AppRole login, kept alive for as long as the service runs."""

from __future__ import annotations

import re
import uuid

import pytest
from hvac.exceptions import InvalidRequest

from panicsafe.contracts.catalog import GATEWAY, SERVICE_NAMES
from panicsafe.core.crypto import EnvelopeCipher, TransitKeys
from panicsafe.core.devstack import DevStack
from panicsafe.core.openbao import SERVICE_USES, AppRoleCredentials, OpenBaoSession, Use, policy_for
from panicsafe.core.testing import gateway_keys


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_every_service_has_an_identity_and_no_other_exists() -> None:
    assert set(SERVICE_USES) == set(SERVICE_NAMES)


def rules(policy: str) -> dict[str, set[str]]:
    found = re.findall(r'path "([^"]+)" \{\s*capabilities = \[([^\]]*)\]', policy)
    return {path: {c.strip().strip('"') for c in caps.split(",")} for path, caps in found}


def test_policies_grant_tenant_keys_to_the_gateway_and_signing_keys_to_the_logbook_alone() -> None:
    policies = {name: rules(policy_for(name)) for name in SERVICE_NAMES}
    for name, granted in policies.items():
        tenant_keys = granted.get("transit/keys/tenant-*", set())
        assert bool(tenant_keys & {"create", "update", "delete"}) == (name == GATEWAY), name
        assert any("logbook-" in path for path in granted) == (name == "logbook"), name
        assert not any(path.startswith(("sys/", "auth/")) for path in granted), name
        assert all(caps <= {"create", "read", "update", "delete"} for caps in granted.values()), name
    assert policies["logbook"]["transit/sign/logbook-*"] == {"update"}
    assert policies["chat"] == {
        "transit/keys/tenant-*": {"read"},
        "transit/datakey/plaintext/tenant-*": {"update"},
        "transit/decrypt/tenant-*": {"update"},
        "secret/data/panicsafe/shredded-tenants/*": {"read"},
    }
    for name in ("video", "sara", "docs"):
        assert policies[name] == {}
    assert SERVICE_USES["gateway"] == {Use.TENANT_DATA, Use.TENANT_KEYS}


async def test_a_service_logs_in_again_when_its_token_is_revoked(stack: DevStack) -> None:
    gateway = gateway_keys(stack)
    tenant = str(uuid.uuid4())
    await gateway.ensure_tenant_key(tenant)
    session = stack.openbao.session("chat")
    cipher = EnvelopeCipher(TransitKeys(session))
    blob = await cipher.encrypt(tenant, "rec-1", b"avant")
    assert session.logins == 1
    first = session.token

    # Behind its back (an operator, an expiry after the machine slept): the token stops working.
    await session.run(session.client.auth.token.revoke_self)
    session.client.token = first  # the service still holds the dead token

    fresh = EnvelopeCipher(TransitKeys(session))  # no cached data key: it must reach OpenBao
    assert await fresh.decrypt(tenant, "rec-1", blob) == b"avant"
    assert session.logins == 2
    assert session.token != first


async def test_a_service_logs_in_again_half_way_through_its_token_lifetime(stack: DevStack) -> None:
    clock = Clock()
    bao = stack.openbao
    session = OpenBaoSession(bao.address, bao.credentials("logbook"), ca_file=bao.ca_file, clock=clock)
    first = await session.atoken()
    ttl = (await session.run(session.client.auth.token.lookup_self))["data"]["ttl"]
    assert 3000 < ttl <= 3600

    clock.now += ttl / 2 - 5
    assert await session.atoken() == first
    clock.now += 10
    second = await session.atoken()
    assert second != first
    assert session.logins == 2


async def test_a_wrong_secret_id_is_refused(stack: DevStack) -> None:
    bao = stack.openbao
    stolen_role = bao.credentials("logbook").role_id
    session = OpenBaoSession(
        bao.address, AppRoleCredentials(stolen_role, bao.credentials("chat").secret_id), ca_file=bao.ca_file
    )
    with pytest.raises(InvalidRequest):
        await session.alogin()
