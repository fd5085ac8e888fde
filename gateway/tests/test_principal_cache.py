"""Each gateway process remembers principals between requests, yet any change to a session, an
account or a membership takes effect on the very next request, in every process, whoever makes it:
here PostgreSQL itself, behind the gateway's back.

Each request goes through a fresh connection, so that both gateway processes answer some of them.
"""

from __future__ import annotations

from typing import Any

import pytest
from gwclient import Account, GatewayUnderTest, declare, gql_raw, invite_and_enrol, new_tenant_admin

CRISIS = "query($id: ID!) { crisis(id: $id) { id myRole } }"
ME = "{ me { displayName } }"
REQUESTS = 6


async def ask(gateway: GatewayUnderTest, account: Account, query: str, variables: dict[str, Any]) -> list[Any]:
    """`query` sent `REQUESTS` times, each on a new connection."""
    answers = []
    for _ in range(REQUESTS):
        async with gateway.client() as client:
            answers.append(await gql_raw(client, account.session, query, variables))
    return answers


def codes(answers: list[Any]) -> set[str]:
    return {error["extensions"]["code"] for answer in answers for error in answer.get("errors") or []}


@pytest.fixture
async def member(gateway: GatewayUnderTest) -> tuple[Account, str]:
    async with gateway.client() as client:
        admin = await new_tenant_admin(gateway, client)
        crisis = await declare(client, admin, "Principaux en mémoire")
        account = await invite_and_enrol(client, admin, crisis_id=crisis["id"], crisis_role="MEMBER")
    assert codes(await ask(gateway, account, CRISIS, {"id": crisis["id"]})) == set()  # now remembered
    return account, crisis["id"]


async def test_a_membership_removed_in_the_database_is_gone_at_once(
    gateway: GatewayUnderTest, member: tuple[Account, str]
) -> None:
    account, crisis_id = member
    await gateway.admin_sql(
        "DELETE FROM gateway.crisis_members WHERE crisis_id = $1 AND user_id = $2", crisis_id, account.user_id
    )
    assert codes(await ask(gateway, account, CRISIS, {"id": crisis_id})) == {"forbidden"}


async def test_a_role_changed_in_the_database_applies_at_once(
    gateway: GatewayUnderTest, member: tuple[Account, str]
) -> None:
    account, crisis_id = member
    await gateway.admin_sql(
        "UPDATE gateway.crisis_members SET role = 'observer' WHERE crisis_id = $1 AND user_id = $2",
        crisis_id,
        account.user_id,
    )
    answers = await ask(gateway, account, CRISIS, {"id": crisis_id})
    assert {answer["data"]["crisis"]["myRole"] for answer in answers} == {"OBSERVER"}


async def test_a_session_revoked_in_the_database_is_refused_at_once(
    gateway: GatewayUnderTest, member: tuple[Account, str]
) -> None:
    account, crisis_id = member
    await gateway.admin_sql("UPDATE gateway.sessions SET revoked_at = now() WHERE id = $1", account.session.session_id)
    assert codes(await ask(gateway, account, CRISIS, {"id": crisis_id})) == {"unauthenticated"}


async def test_an_account_changed_in_the_database_shows_at_once(
    gateway: GatewayUnderTest, member: tuple[Account, str]
) -> None:
    account, crisis_id = member
    assert codes(await ask(gateway, account, ME, {})) == set()
    await gateway.admin_sql("UPDATE gateway.users SET display_name = 'Nom changé' WHERE id = $1", account.user_id)
    answers = await ask(gateway, account, ME, {})
    assert {answer["data"]["me"]["displayName"] for answer in answers} == {"Nom changé"}
    await gateway.admin_sql("UPDATE gateway.users SET status = 'disabled' WHERE id = $1", account.user_id)
    assert codes(await ask(gateway, account, CRISIS, {"id": crisis_id})) == {"unauthenticated"}
