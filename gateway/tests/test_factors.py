"""Factors after enrolment, supervisors, lockout events, and the actor token a downstream service sees."""

from __future__ import annotations

import secrets
from typing import Any

from gwclient import (
    PASSWORD,
    GatewayUnderTest,
    declare,
    enrol_with_totp,
    gql,
    gql_raw,
    invite_and_enrol,
    new_tenant_admin,
    session_of,
)
from nats.aio.client import Client
from softauthn import SoftAuthenticator

from panicsafe.contracts import gateway as gw
from panicsafe.contracts.events import CloudEvent
from panicsafe.core.tokens import SigningKey, TokenSigner, TokenVerifier
from panicsafe.gateway.bootstrap import create_tenant
from panicsafe.gateway.domain.models import CrisisRole, TenantRole
from panicsafe.gateway.domain.policy import CrisisAccess, Principal
from panicsafe.gateway.graphql_context import actor_of


async def test_add_passkey_reauthenticate_with_it_then_drop_totp(gateway: GatewayUnderTest) -> None:
    async with gateway.client() as client:
        account = await new_tenant_admin(gateway, client)
        session = account.session
        authenticator = SoftAuthenticator(origin=gateway.url, rp_id="127.0.0.1")
        begun = (await gql(client, session, "mutation { beginPasskeyRegistration { setupId options } }"))[
            "beginPasskeyRegistration"
        ]
        credential = authenticator.create(begun["options"])
        done = await gql(
            client,
            session,
            "mutation($s: ID!, $c: JSON!) { finishPasskeyRegistration(setupId: $s, credential: $c) }",
            {"s": begun["setupId"], "c": credential},
        )
        assert done["finishPasskeyRegistration"] is True
        # The setup is single use.
        again = await gql_raw(
            client,
            session,
            "mutation($s: ID!, $c: JSON!) { finishPasskeyRegistration(setupId: $s, credential: $c) }",
            {"s": begun["setupId"], "c": credential},
        )
        assert again["errors"][0]["extensions"]["code"] == "not_found"

        # The session's second factor gets old; the passkey refreshes it.
        await gateway.admin_sql(
            "UPDATE gateway.sessions SET mfa_at = now() - interval '10 minutes' WHERE id = $1", session.session_id
        )
        stale = await gql_raw(client, session, "mutation { disableTotp }")
        assert stale["errors"][0]["extensions"]["code"] == "forbidden"
        options = (await client.post("/auth/reauth/passkey/options", headers=session.auth)).json()
        assertion = authenticator.get(options["publicKey"])
        fresh = await client.post(
            "/auth/reauth/passkey",
            json={"challenge": options["challenge"], "credential": assertion},
            headers=session.auth,
        )
        assert fresh.status_code == 200, fresh.text
        assert (await gql(client, session, "mutation { disableTotp }"))["disableTotp"] is True

        challenge = (await client.post("/auth/login", json={"login": account.login, "password": PASSWORD})).json()
        assert challenge["methods"] == ["passkey", "recovery"]
        keys = (await gql(client, session, "{ me { factors { totpEnabled passkeys { id } } } }"))["me"]["factors"]
        assert keys["totpEnabled"] is False
        # The last factor cannot go.
        last = await gql_raw(
            client, session, "mutation($id: String!) { removePasskey(id: $id) }", {"id": keys["passkeys"][0]["id"]}
        )
        assert last["errors"][0]["extensions"]["code"] == "conflict"


async def test_passkey_only_account_sets_up_totp(gateway: GatewayUnderTest) -> None:
    async with gateway.client() as client:
        tenant = await create_tenant(
            gateway.db,
            gateway.keys,
            name="GHT TOTP",
            region="HDF",
            admin_login=f"p-{secrets.token_hex(3)}",
            admin_name="Rosalind Franklin",
        )
        authenticator = SoftAuthenticator(origin=gateway.url, rp_id="127.0.0.1")
        started = (
            await client.post("/auth/enrol/password", json={"token": tenant.invitation_token, "password": PASSWORD})
        ).json()
        options = (await client.post("/auth/enrol/passkey/options", json={"enrolment": started["enrolment"]})).json()
        session = session_of(
            await client.post(
                "/auth/enrol/passkey",
                json={"enrolment": started["enrolment"], "credential": authenticator.create(options)},
            )
        )
        setup = (await gql(client, session, "mutation { beginTotpSetup { setupId secret uri qrSvg } }"))[
            "beginTotpSetup"
        ]
        assert setup["uri"].startswith("otpauth://totp/")
        assert "<svg" in setup["qrSvg"]
        import time

        from panicsafe.gateway.identity import totp

        wrong = await gql_raw(
            client,
            session,
            "mutation($s: ID!, $c: String!) { confirmTotpSetup(setupId: $s, code: $c) }",
            {
                "s": setup["setupId"],
                "c": "000000" if totp.code_at(setup["secret"], time.time()) != "000000" else "111111",
            },
        )
        assert wrong["errors"][0]["extensions"]["code"] in ("invalid", "not_found")
        setup = (await gql(client, session, "mutation { beginTotpSetup { setupId secret } }"))["beginTotpSetup"]
        await gql(
            client,
            session,
            "mutation($s: ID!, $c: String!) { confirmTotpSetup(setupId: $s, code: $c) }",
            {"s": setup["setupId"], "c": totp.code_at(setup["secret"], time.time())},
        )
        challenge = (await client.post("/auth/login", json={"login": tenant.admin_login, "password": PASSWORD})).json()
        assert challenge["methods"] == ["totp", "passkey", "recovery"]


async def test_authority_invites_a_regional_supervisor(gateway: GatewayUnderTest) -> None:
    async with gateway.client() as client:
        ars = await create_tenant(
            gateway.db,
            gateway.keys,
            name="ARS Hauts-de-France (test)",
            region="HDF",
            kind="authority",
            admin_login=f"ars-{secrets.token_hex(3)}",
            admin_name="Admin ARS",
            supervisor_region="HDF",
        )
        admin = await enrol_with_totp(client, ars.invitation_token)
        assert (await gql(client, admin.session, "{ me { supervisorRegion } }"))["me"]["supervisorRegion"] == "HDF"
        login = f"sup-{secrets.token_hex(3)}"
        issued = await gql(
            client,
            admin.session,
            """mutation($i: InvitationInput!) { createInvitation(input: $i) { link } }""",
            {"i": {"login": login, "displayName": "Superviseure", "supervisorRegion": "hdf"}},
        )
        supervisor = await enrol_with_totp(client, issued["createInvitation"]["link"].split("/invitation/")[1])
        assert (await gql(client, supervisor.session, "{ me { supervisorRegion } }"))["me"]["supervisorRegion"] == "HDF"
        # Another region, or a hospital group, cannot make supervisors.
        other_region = await gql_raw(
            client,
            admin.session,
            """mutation($i: InvitationInput!) { createInvitation(input: $i) { link } }""",
            {"i": {"login": f"x-{secrets.token_hex(3)}", "displayName": "X", "supervisorRegion": "IDF"}},
        )
        assert other_region["errors"][0]["extensions"]["code"] == "forbidden"
        ght = await new_tenant_admin(gateway, client)
        refused = await gql_raw(
            client,
            ght.session,
            """mutation($i: InvitationInput!) { createInvitation(input: $i) { link } }""",
            {"i": {"login": f"y-{secrets.token_hex(3)}", "displayName": "Y", "supervisorRegion": "HDF"}},
        )
        assert refused["errors"][0]["extensions"]["code"] == "forbidden"


async def test_lockout_is_a_security_event_on_the_bus(gateway: GatewayUnderTest, nc: Client) -> None:
    async with gateway.client() as client:
        account = await new_tenant_admin(gateway, client)
        for _ in range(20):
            await client.post("/auth/login", json={"login": account.login, "password": "mauvais-mot-de-passe"})
    subscription = await nc.jetstream().pull_subscribe(
        f"evt.{account.tenant_id}._.gateway.*", durable=f"lock{secrets.token_hex(4)}"
    )
    events: list[CloudEvent] = []
    for _ in range(10):
        try:
            events += [CloudEvent.model_validate_json(m.data) for m in await subscription.fetch(50, timeout=2)]
        except TimeoutError:
            break
    kinds = [e.short_type for e in events]
    assert kinds.count("login_failed") == 20
    assert kinds.count("account_locked") == 1
    locked = next(e for e in events if gw.ACCOUNT_LOCKED.matches(e))
    assert locked.logbook is not None
    assert locked.logbook.kind == "system"
    assert "verrouillé" in locked.logbook.summary
    assert PASSWORD not in locked.model_dump_json() and "mauvais" not in locked.model_dump_json()


def test_downstream_services_accept_the_gateways_actor_tokens(gateway: GatewayUnderTest) -> None:
    """The key ring make run writes: the gateway signs with its own secrets/gateway/actor-signing-keys/<kid>.pem,
    services load keys/*.pub.pem, a folder with no private key in it."""
    keys = gateway.directory / "keys"
    assert all(p.name.endswith(".pub.pem") for p in keys.iterdir())
    private = next((gateway.directory / "secrets" / "gateway" / "actor-signing-keys").glob("*.pem"))
    signer = TokenSigner(SigningKey.from_pem(private.name.removesuffix(".pem"), private.read_bytes()), ttl_s=60)
    principal = Principal(
        user_id="5b0f2f52-3c1a-4a55-9a53-0c6d9d3e1b10",
        tenant_id="0d4d3a6e-3a3e-4a8f-8a61-5b8c2b8f3a10",
        session_id="s",
        login="l",
        display_name="d",
        tenant_role=TenantRole.MEMBER,
        mfa_at=None,
        crises={"c1": CrisisAccess("c1", CrisisRole.COORDINATOR, frozenset({"cell-b", "cell-a"}))},
    )
    token = signer.issue(actor_of(principal), audience="panicsafe.logbook")
    seen: Any = TokenVerifier.from_directory("panicsafe.logbook", keys).verify(token)
    assert seen.subject == principal.user_id
    assert seen.tenant == principal.tenant_id
    assert [(m.crisis, m.roles, m.cells) for m in seen.memberships] == [("c1", ["coordinator"], ["cell-a", "cell-b"])]
    assert not any(keys.glob("access*"))  # user access-token keys live elsewhere: services never see them


async def test_every_event_of_an_exercise_crisis_is_marked_exercise(gateway: GatewayUnderTest, nc: Client) -> None:
    """Exercise data never mixes with a real crisis: each event of an exercise crisis says so."""
    async with gateway.client() as client:
        admin = await new_tenant_admin(gateway, client)
        crisis = await declare(client, admin, "Exercice rançongiciel", mode="EXERCISE")
        await invite_and_enrol(client, admin, crisis_id=crisis["id"], crisis_role="OBSERVER")
        await gql(
            client,
            admin.session,
            'mutation($c: ID!) { createCell(crisisId: $c, name: "Animation") { id } }',
            {"c": crisis["id"]},
        )
    subscription = await nc.jetstream().pull_subscribe(
        f"evt.{admin.tenant_id}.{crisis['id']}.>", durable=f"ex{secrets.token_hex(4)}"
    )
    events: list[CloudEvent] = []
    for _ in range(5):
        try:
            events += [CloudEvent.model_validate_json(m.data) for m in await subscription.fetch(50, timeout=2)]
        except TimeoutError:
            break
    kinds = {e.short_type for e in events}
    assert {"crisis_declared", "invitation_created", "membership_changed", "cell_created"} <= kinds
    assert {e.mode.value for e in events} == {"exercise"}
    declared = next(e for e in events if gw.CRISIS_DECLARED.matches(e))
    assert declared.logbook is not None
    assert "EXERCICE" in declared.logbook.summary
