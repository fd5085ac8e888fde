"""Who makes a director, played from the attacker's side.

A coordinator with a fresh second factor used to make themself director of the crisis, then demote the
director. The rule (README, access matrix): only a director of the crisis, or a tenant administrator
who leads it, grants or takes away the director role (by membership or by invitation); nobody changes
their own role; a crisis always keeps a director.
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx
from gwclient import Account, GatewayUnderTest, declare, gql, gql_raw, invite_and_enrol, new_tenant_admin

ADD = """mutation($c: ID!, $u: ID!, $r: CrisisRole!) {
  addCrisisMember(crisisId: $c, userId: $u, role: $r) { id }
}"""
REMOVE = "mutation($c: ID!, $u: ID!) { removeCrisisMember(crisisId: $c, userId: $u) }"
INVITE = """mutation($input: InvitationInput!) { createInvitation(input: $input) { link } }"""
STATE = """query($c: ID!) {
  crisis(id: $c) { members { userId role } }
  invitations { id crisisRole }
}"""

NOT_ALLOWED = "Seul un directeur de la crise, ou un administrateur de l'organisation, nomme ou retire un directeur."
OWN_ROLE = "Vous ne changez pas votre propre rôle dans la crise."
LAST_DIRECTOR = "La crise doit garder au moins un directeur."


async def state(client: httpx.AsyncClient, admin: Account, crisis_id: str) -> dict[str, Any]:
    """The crisis' members with their roles, and the organisation's invitations."""
    data = await gql(client, admin.session, STATE, {"c": crisis_id})
    return {
        "members": sorted((m["userId"], m["role"]) for m in data["crisis"]["members"]),
        "invitations": sorted((i["id"], i["crisisRole"] or "") for i in data["invitations"]),
    }


def refusal(answer: dict[str, Any]) -> tuple[str, str]:
    assert answer["data"] is None, answer
    error = answer["errors"][0]
    return error["extensions"]["code"], error["message"]


async def change(client: httpx.AsyncClient, actor: Account, crisis_id: str, user: Account, role: str) -> Any:
    return await gql_raw(client, actor.session, ADD, {"c": crisis_id, "u": user.user_id, "r": role})


async def test_a_coordinator_cannot_make_a_director_nor_demote_one(gateway: GatewayUnderTest) -> None:
    async with gateway.client() as client:
        admin = await new_tenant_admin(gateway, client)
        crisis_id = (await declare(client, admin, f"Rançongiciel {secrets.token_hex(3)}"))["id"]
        director = await invite_and_enrol(client, admin, crisis_id=crisis_id, crisis_role="DIRECTOR")
        coordinator = await invite_and_enrol(client, admin, crisis_id=crisis_id, crisis_role="COORDINATOR")
        member = await invite_and_enrol(client, admin, crisis_id=crisis_id, crisis_role="MEMBER")
        before = await state(client, admin, crisis_id)
        # The coordinator's second factor is fresh (enrolled just now): only the rule stands in the way.
        attempts = {
            "make themself director": await change(client, coordinator, crisis_id, coordinator, "DIRECTOR"),
            "make a member director": await change(client, coordinator, crisis_id, member, "DIRECTOR"),
            "demote the director": await change(client, coordinator, crisis_id, director, "MEMBER"),
            "demote the administrator": await change(client, coordinator, crisis_id, admin, "COORDINATOR"),
            "remove the director": await gql_raw(
                client, coordinator.session, REMOVE, {"c": crisis_id, "u": director.user_id}
            ),
            "invite a director": await gql_raw(
                client,
                coordinator.session,
                INVITE,
                {
                    "input": {
                        "login": f"complice-{secrets.token_hex(3)}",
                        "displayName": "Complice",
                        "tenantRole": "MEMBER",
                        "crisisId": crisis_id,
                        "crisisRole": "DIRECTOR",
                        "cellIds": [],
                    }
                },
            ),
        }
        after = await state(client, admin, crisis_id)
        # What a coordinator may do, they still do.
        await gql(client, coordinator.session, ADD, {"c": crisis_id, "u": member.user_id, "r": "OBSERVER"})

    assert {what: refusal(answer) for what, answer in attempts.items()} == {
        what: ("forbidden", NOT_ALLOWED) for what in attempts
    }
    assert after == before


async def test_directors_and_administrators_make_directors_but_never_drop_the_last(gateway: GatewayUnderTest) -> None:
    async with gateway.client() as client:
        admin = await new_tenant_admin(gateway, client)  # director of the crisis it declares
        crisis_id = (await declare(client, admin, f"Panne électrique {secrets.token_hex(3)}"))["id"]
        director = await invite_and_enrol(client, admin, crisis_id=crisis_id, crisis_role="DIRECTOR")
        member = await invite_and_enrol(client, admin, crisis_id=crisis_id, crisis_role="MEMBER")

        own = await change(client, director, crisis_id, director, "COORDINATOR")
        await gql(client, director.session, ADD, {"c": crisis_id, "u": admin.user_id, "r": "COORDINATOR"})
        # The administrator now coordinates: the director is the last one.
        before = await state(client, admin, crisis_id)
        last_demoted = await change(client, admin, crisis_id, director, "MEMBER")
        last_removed = await gql_raw(client, admin.session, REMOVE, {"c": crisis_id, "u": director.user_id})
        admin_own = await change(client, admin, crisis_id, admin, "DIRECTOR")
        after = await state(client, admin, crisis_id)
        # A tenant administrator who leads the crisis may name another director, then demote this one.
        await gql(client, admin.session, ADD, {"c": crisis_id, "u": member.user_id, "r": "DIRECTOR"})
        await gql(client, admin.session, ADD, {"c": crisis_id, "u": director.user_id, "r": "MEMBER"})
        final = await state(client, admin, crisis_id)

    assert refusal(own) == ("forbidden", OWN_ROLE)
    assert refusal(last_demoted) == refusal(last_removed) == ("conflict", LAST_DIRECTOR)
    assert refusal(admin_own) == ("forbidden", OWN_ROLE)
    assert after == before
    roles = dict(final["members"])
    assert [roles[a.user_id] for a in (admin, director, member)] == ["COORDINATOR", "MEMBER", "DIRECTOR"]
