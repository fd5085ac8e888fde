"""Logins belong to an organisation: inviting tells an administrator nothing about another one's logins.

From the attacker's side: a tenant administrator invites a login that exists in another organisation,
and one that exists nowhere. Both answers must be the same (apart from the login itself and the link),
and the invitation must work: the two accounts then live side by side, each signing in with the
identifier its enrolment showed (`login@organisation`).
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from gwclient import (
    PASSWORD,
    Account,
    GatewayUnderTest,
    enrol_with_totp,
    gql,
    gql_raw,
    invite_and_enrol,
    login_with_totp,
    new_tenant_admin,
)
from gwdb import auth_service, client, member_before_tenant_codes, migrated_schema, opened

from panicsafe.core.db.migrations import upgrade
from panicsafe.core.devstack import DevStack
from panicsafe.core.errors import ServiceError
from panicsafe.gateway.app import MIGRATIONS
from panicsafe.gateway.identity import logins
from panicsafe.gateway.store.tenancy import create_invitation

INVITE = """
mutation($input: InvitationInput!) {
  createInvitation(input: $input) {
    link
    invitation { login displayName tenantRole crisisId crisisRole used }
  }
}"""


async def invite(client: httpx.AsyncClient, admin: Account, login: str) -> dict[str, Any]:
    return await gql_raw(
        client,
        admin.session,
        INVITE,
        {"input": {"login": login, "displayName": "Jeanne Test", "tenantRole": "MEMBER", "cellIds": []}},
    )


def observable(answer: dict[str, Any], login: str) -> str:
    """The answer as the inviter sees it, with the login asked for and the one-time link blanked out."""
    text = json.dumps(answer, sort_keys=True).replace(login, "<login>")
    return re.sub(r"/invitation/[A-Za-z0-9_-]+", "/invitation/<token>", text)


def token_of(answer: dict[str, Any]) -> str:
    link: str = answer["data"]["createInvitation"]["link"]
    return link.split("/invitation/", 1)[1]


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("GHT Démo", "ght-demo"),
        ("Clinique de l'Œuvre Saint-Éloi", "clinique-de-l-oeuvre"),
        ("CHU", "chu"),
        ("!!!", "org"),
        ("x" * 80, "x" * 25),
    ],
)
def test_an_organisation_code_comes_from_its_name(name: str, code: str) -> None:
    candidates = [next(c) for c in [logins.code_candidates(name)] * 101]
    assert candidates[:3] == [code, f"{code}-2", f"{code}-3"]
    assert len(set(candidates)) == 101
    assert all(logins.CODE_RE.match(c) and len(c) <= logins.CODE_MAX for c in candidates)
    assert re.match(logins.STORED_LOGIN_SQL, logins.qualified("jean.dupont", candidates[-1]))


async def test_a_foreign_login_is_answered_like_a_free_one(gateway: GatewayUnderTest) -> None:
    suffix = secrets.token_hex(4)
    taken, free = f"jdupont-{suffix}", f"jmartin-{suffix}"  # same length: same answer size too
    async with gateway.client() as client:
        elsewhere = await new_tenant_admin(gateway, client)
        victim = await invite_and_enrol(client, elsewhere, login=taken)
        attacker = await new_tenant_admin(gateway, client)

        foreign = await invite(client, attacker, taken)
        fresh = await invite(client, attacker, free)
        assert not foreign.get("errors"), foreign
        assert observable(foreign, taken) == observable(fresh, free)

        # The invitation works: a second `jdupont-…`, in the attacker's organisation, beside the first.
        twin = await enrol_with_totp(client, token_of(foreign))
        assert twin.tenant_id == attacker.tenant_id
        assert twin.login != victim.login
        assert twin.login.split("@")[0] == victim.login.split("@")[0] == taken

        for account in (victim, twin):
            session = await login_with_totp(client, account)
            me = (await gql(client, session, "{ me { id tenantId login } }"))["me"]
            assert (me["id"], me["tenantId"], me["login"]) == (account.user_id, account.tenant_id, account.login)

        # The bare login names no organisation: it signs nobody in, exactly like an unknown one.
        bare = await client.post("/auth/login", json={"login": taken, "password": PASSWORD})
        ghost = await client.post("/auth/login", json={"login": f"nobody-{suffix}", "password": PASSWORD})
        assert (bare.status_code, bare.json()) == (ghost.status_code, ghost.json()) == (401, ghost.json())


async def test_a_login_of_ones_own_organisation_is_still_refused(gateway: GatewayUnderTest) -> None:
    login = f"homonyme-{secrets.token_hex(4)}"
    async with gateway.client() as client:
        admin = await new_tenant_admin(gateway, client)
        await invite_and_enrol(client, admin, login=login)
        account_clash = await invite(client, admin, login)
        pending = f"attente-{secrets.token_hex(4)}"
        assert not (await invite(client, admin, pending)).get("errors")
        pending_clash = await invite(client, admin, pending)
    for answer in (account_clash, pending_clash):
        assert answer["data"] is None
        error = answer["errors"][0]
        assert error["extensions"]["code"] == "conflict"
        assert error["message"] == "Cet identifiant est déjà pris."


async def test_accounts_made_before_sign_in_with_their_organisation_code(stack: DevStack) -> None:
    schema = await migrated_schema(stack, "0006")
    async with opened(schema) as db:
        first = await member_before_tenant_codes(db, "GHT Démo", f"jdupont-{secrets.token_hex(3)}")
        second = await member_before_tenant_codes(db, "GHT Démo", f"jmartin-{secrets.token_hex(3)}")  # same name
        async with db.tenant(first.tenant_id) as conn:
            await create_invitation(
                conn,
                tenant_id=first.tenant_id,
                token_hash=secrets.token_bytes(32),
                login="invitee",
                display_name="Invitée",
                tenant_role="member",
                created_by=None,
                expires_at=datetime.now(UTC) + timedelta(hours=1),
            )
    await asyncio.to_thread(upgrade, MIGRATIONS, schema.owner_dsn, schema.schema)

    async with opened(schema) as db:
        codes = []
        for member in (first, second):
            async with db.tenant(member.tenant_id) as conn:
                codes.append(await conn.fetchval("SELECT code FROM tenants"))
                assert await conn.fetchval("SELECT login FROM users") == f"{member.login}@{codes[-1]}"
        assert codes == ["ght-demo", "ght-demo-2"]
        async with db.tenant(first.tenant_id) as conn:
            assert await conn.fetchval("SELECT login FROM invitations") == "invitee@ght-demo"

        auth = auth_service(stack, db)
        assert (await auth.login_password(f"{first.login}@ght-demo", PASSWORD, client())).challenge_token
        assert (await auth.login_password(f"{second.login}@ght-demo-2", PASSWORD, client())).challenge_token
        with pytest.raises(ServiceError) as refused:
            await auth.login_password(first.login, PASSWORD, client())
        assert refused.value.code == "unauthenticated"
