"""The access matrix, generated from the schema and played from the attacker's side.

Every root field is called by each attacker persona with the victim's identifiers. Two oracles:
no answer contains a marker of data the persona has no need to know, and the victim's state in
PostgreSQL is exactly what it was before the attacks. Fields aimed at a victim resource must answer
with an error (forbidden, unauthenticated, not found or invalid) and no data.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLType,
)
from gwclient import (
    Account,
    GatewayUnderTest,
    Session,
    declare,
    gql,
    gql_raw,
    invite_and_enrol,
    login_with_totp,
    new_tenant_admin,
)

from panicsafe.gateway.domain.policy import FIELD_POLICIES
from panicsafe.gateway.graphql.limits import graphql_extensions
from panicsafe.gateway.graphql.schema import build_schema, root_field_keys

SCHEMA = build_schema(graphql_extensions(development=True))
GRAPHQL = SCHEMA._schema
REFUSALS = {"forbidden", "unauthenticated", "not_found", "invalid", "conflict"}
# Fields whose arguments point at a victim resource: they must fail for every attacker persona.
TARGETED = {
    "crisis",
    "updateEstablishment",
    "revokeInvitation",
    "updateCrisis",
    "closeCrisis",
    "createCell",
    "addCrisisMember",
    "removeCrisisMember",
    "setCellMembership",
    "revokeSession",
    "crisisEvents",
    "logbook",
    "logbookCheckpoint",
    "addLogbookEntry",
    "exportLogbook",
    "logbookEntries",
    "chatHistory",
    "chatPinned",
    "chatMessageVersions",
    "sendMessage",
    "editMessage",
    "redactMessage",
    "pinMessage",
    "markMessage",
    "markChannelRead",
    "setChannelMembers",
    "createPrivateChannel",
    "openDirectChannel",
}
# Members may write in the main courante (TARGETED mutations are refused to limited and lower roles
# otherwise); a limited role may not write in a cell it does not see.
MEMBER_WRITABLE = {"addLogbookEntry"}


def test_every_root_field_has_a_policy() -> None:
    keys = root_field_keys(SCHEMA)
    assert len(keys) > 20
    missing = [k for k in keys if k not in FIELD_POLICIES]
    assert missing == []
    stale = [k for k in FIELD_POLICIES if k not in keys and not k.startswith(("Query.regional", "RegionalQuery."))]
    assert stale == []


@dataclass
class World:
    victim: Account
    marker: str
    crisis_id: str
    secret_cell_id: str
    open_cell_id: str
    establishment_id: str
    invitation_id: str
    victim_session: str
    secret_channel_id: str = ""
    victim_message_id: str = ""
    personas: dict[str, tuple[Account | None, Session | None]] = field(default_factory=dict)
    # markers each persona must never see
    forbidden: dict[str, set[str]] = field(default_factory=dict)


async def snapshot(gateway: GatewayUnderTest, world: World) -> str:
    """The victim tenant's state, as PostgreSQL has it (ordered, JSON)."""
    tenant = world.victim.tenant_id
    rows = {}
    for table, order in (
        ("tenants", "id"),
        ("establishments", "id"),
        ("crises", "id"),
        ("crisis_establishments", "crisis_id, establishment_id"),
        ("cells", "id"),
        ("crisis_members", "crisis_id, user_id"),
        ("cell_members", "cell_id, user_id"),
        ("invitations", "id"),
    ):
        column = "id" if table == "tenants" else "tenant_id"
        found = await gateway.admin_sql(f"SELECT * FROM gateway.{table} WHERE {column} = $1 ORDER BY {order}", tenant)
        rows[table] = [dict(r) for r in found]
    for table, order in (
        ("channels", "id"),
        ("channel_members", "channel_id, user_id"),
        ("messages", "id"),
        ("message_versions", "message_id, version"),
        ("read_markers", "channel_id, user_id"),
    ):
        found = await gateway.admin_sql(f"SELECT * FROM chat.{table} WHERE tenant_id = $1 ORDER BY {order}", tenant)
        rows[f"chat.{table}"] = [dict(r) for r in found]
    session = await gateway.admin_sql("SELECT revoked_at FROM gateway.sessions WHERE id = $1", world.victim_session)
    rows["victim_session"] = [dict(r) for r in session]
    return json.dumps(rows, default=str, sort_keys=True)


@pytest.fixture(scope="module")
async def world(gateway: GatewayUnderTest) -> World:
    marker = secrets.token_hex(4)
    async with gateway.client() as client:
        victim = await new_tenant_admin(
            gateway, client, name=f"VICTIM-TENANT-{marker}", establishments=((f"VICTIM-EST-{marker}", "hospital"),)
        )
        establishment_id = (await gql(client, victim.session, "{ establishments { id } }"))["establishments"][0]["id"]
        crisis = await declare(client, victim, f"VICTIM-CRISIS-{marker}")
        crisis_id = crisis["id"]
        secret_cell = (
            await gql(
                client,
                victim.session,
                """
            mutation($c: ID!, $n: String!) { createCell(crisisId: $c, name: $n) { id } }""",
                {"c": crisis_id, "n": f"VICTIM-CELL-{marker}"},
            )
        )["createCell"]["id"]
        open_cell = next(c["id"] for c in crisis["cells"] if c["kind"] == "COMMUNICATION")
        invitation = await gql(
            client,
            victim.session,
            """
            mutation($input: InvitationInput!) { createInvitation(input: $input) { invitation { id } } }""",
            {
                "input": {
                    "login": f"pending-{marker}",
                    "displayName": f"VICTIM-INVITE-{marker}",
                    "crisisId": crisis_id,
                    "crisisRole": "MEMBER",
                }
            },
        )
        lower = await invite_and_enrol(
            client, victim, display_name=f"VICTIM-MEMBER-{marker}", crisis_id=crisis_id, crisis_role="MEMBER"
        )
        limited = await invite_and_enrol(
            client,
            victim,
            display_name="Représentante des usagers",
            crisis_id=crisis_id,
            crisis_role="PATIENTS_REPRESENTATIVE",
            cell_ids=[open_cell],
        )
        other = await invite_and_enrol(client, victim, display_name="Directeur crise voisine")
        neighbour = await declare(client, victim, "Crise voisine")
        await gql(
            client,
            victim.session,
            """
            mutation($c: ID!, $u: ID!) { addCrisisMember(crisisId: $c, userId: $u, role: DIRECTOR) { id } }""",
            {"c": neighbour["id"], "u": other.user_id},
        )
        secret_channel = await cell_channel(client, victim.session, crisis_id, secret_cell)
        victim_message = await gql(
            client,
            victim.session,
            "mutation($i: SendMessageInput!) { sendMessage(input: $i) { message { id } } }",
            {"i": {"channelId": secret_channel, "clientId": f"victim-{marker}", "text": f"VICTIM-MSG-{marker}"}},
        )
        outsider = await new_tenant_admin(gateway, client, name="Autre GHT")
        await declare(client, outsider, "Crise de l'autre GHT")
        revoked_session = await login_with_totp(client, lower)
        out = await client.post(
            "/auth/logout",
            headers={"Cookie": f"ps_refresh={revoked_session.refresh}", "X-PanicSAFE-CSRF": revoked_session.csrf},
        )
        assert out.status_code == 204
    everything = {f"VICTIM-{kind}-{marker}" for kind in ("TENANT", "EST", "CRISIS", "CELL", "INVITE", "MEMBER", "MSG")}
    world = World(
        victim=victim,
        marker=marker,
        crisis_id=crisis_id,
        secret_cell_id=secret_cell,
        open_cell_id=open_cell,
        establishment_id=establishment_id,
        invitation_id=invitation["createInvitation"]["invitation"]["id"],
        victim_session=victim.session.session_id,
        secret_channel_id=secret_channel,
        victim_message_id=victim_message["sendMessage"]["message"]["id"],
    )
    world.personas = {
        "outsider": (outsider, outsider.session),
        "other_crisis": (other, other.session),
        "limited": (limited, limited.session),
        "lower_role": (lower, lower.session),
        "revoked": (lower, revoked_session),
        "anonymous": (None, None),
    }
    world.forbidden = {
        "outsider": everything,
        "anonymous": everything,
        "revoked": everything,
        # Same tenant: the organisation and its directory are theirs to see, not crisis X.
        "other_crisis": {
            f"VICTIM-CRISIS-{marker}",
            f"VICTIM-CELL-{marker}",
            f"VICTIM-INVITE-{marker}",
            f"VICTIM-MSG-{marker}",
        },
        # A member of X with limited need-to-know: only their own cell, no member list, no invitations.
        "limited": {
            f"VICTIM-CELL-{marker}",
            f"VICTIM-INVITE-{marker}",
            f"VICTIM-MEMBER-{marker}",
            f"VICTIM-MSG-{marker}",
        },
        # A plain member sees the crisis, not its pending invitations nor the chat of a cell not theirs.
        "lower_role": {f"VICTIM-INVITE-{marker}", f"VICTIM-MSG-{marker}"},
    }
    return world


async def cell_channel(client: Any, session: Session, crisis_id: str, cell_id: str) -> str:
    """The chat channel of a cell (opened by the chat service when the cell's event reaches it)."""
    query = "query($c: ID!) { chatChannels(crisisId: $c) { id cellId } }"
    for _ in range(100):
        channels = (await gql(client, session, query, {"c": crisis_id}))["chatChannels"]
        found = [c["id"] for c in channels if c["cellId"] == cell_id]
        if found:
            return str(found[0])
        await asyncio.sleep(0.1)
    raise AssertionError("the cell's channel never opened")


def unwrap(kind: GraphQLType) -> GraphQLType:
    while isinstance(kind, GraphQLNonNull | GraphQLList):
        kind = kind.of_type
    return kind


def selection(kind: GraphQLType, depth: int = 0) -> str:
    """Every scalar and enum field, three levels deep: a leak cannot hide in an unselected field."""
    base = unwrap(kind)
    if not isinstance(base, GraphQLObjectType):
        return ""
    parts = []
    for name, child in base.fields.items():
        if any(
            isinstance(unwrap(a.type), GraphQLInputObjectType) or isinstance(a.type, GraphQLNonNull)
            for a in child.args.values()
        ):
            continue
        inner = unwrap(child.type)
        if isinstance(inner, GraphQLScalarType | GraphQLEnumType):
            parts.append(name)
        elif depth < 3:
            sub = selection(inner, depth + 1)
            if sub:
                parts.append(f"{name} {sub}")
    return "{ " + " ".join(parts) + " }" if parts else ""


def argument_value(field_name: str, arg: str, kind: GraphQLType, world: World, attacker: Account | None) -> Any:
    base = unwrap(kind)
    by_field_id = {
        "crisis": world.crisis_id,
        "updateCrisis": world.crisis_id,
        "closeCrisis": world.crisis_id,
        "updateEstablishment": world.establishment_id,
        "revokeInvitation": world.invitation_id,
        "revokeSession": world.victim_session,
        "removePasskey": "00",
        "renamePasskey": "00",
    }
    if arg == "id":
        return by_field_id[field_name]
    if arg == "crisisId":
        return world.crisis_id
    if arg == "cellId":
        return world.secret_cell_id
    if arg == "cellIds":
        return [world.secret_cell_id]
    if arg == "channelId":
        return world.secret_channel_id
    if arg == "messageId":
        return world.victim_message_id
    if arg in ("memberIds", "add", "remove"):
        return [attacker.user_id if attacker else world.victim.user_id]
    if field_name == "chatSearch" and arg == "text":
        return world.marker
    if arg == "setupId":
        return "6f1c1f9e-0000-4000-8000-000000000000"
    if getattr(base, "name", "") == "JSON":
        return {"id": "AAAA", "type": "public-key", "response": {}}
    if arg == "userId":
        return attacker.user_id if attacker else world.victim.user_id  # self-escalation into crisis X
    if isinstance(base, GraphQLInputObjectType):
        if base.name == "InvitationInput":
            return {
                "login": f"atk-{secrets.token_hex(4)}",
                "displayName": "ATTACK",
                "tenantRole": "ADMIN",
                "crisisId": world.crisis_id,
                "crisisRole": "DIRECTOR",
                "cellIds": [world.secret_cell_id],
            }
        if base.name == "LogbookEntryInput":
            return {"kind": "DECISION", "summary": "ATTACK", "body": "ATTACK", "cellId": world.secret_cell_id}
        if base.name == "SendMessageInput":
            return {"channelId": world.secret_channel_id, "clientId": "attack-0001", "text": "ATTACK"}
        if base.name == "LogbookFilter":
            return {"text": "VICTIM"}
        if base.name == "DeclareCrisisInput":
            return {
                "title": "ATTACK",
                "severity": "MINOR",
                "t0": "2026-11-23T01:00:00+00:00",
                "establishmentIds": [world.establishment_id],
            }
        raise AssertionError(f"no attack value for input {base.name}")
    if isinstance(base, GraphQLEnumType):
        preferred = {
            "CrisisRole": "DIRECTOR",
            "CrisisStatus": "CLOSED",
            "Severity": "MINOR",
            "CellKind": "CUSTOM",
            "EstablishmentType": "HOSPITAL",
            "TenantRole": "ADMIN",
        }
        return preferred.get(base.name, next(iter(base.values)))
    name = getattr(base, "name", "")
    if name == "Boolean":
        return True
    if name in ("String",):
        return "ATTACK"
    if name == "Int":
        return 1
    raise AssertionError(f"no attack value for {field_name}.{arg}: {name}")


def operation(
    root: str, name: str, definition: GraphQLField, world: World, attacker: Account | None
) -> tuple[str, dict[str, Any]]:
    variables: dict[str, Any] = {}
    declared, passed = [], []
    for arg, spec in definition.args.items():
        variables[arg] = argument_value(name, arg, spec.type, world, attacker)
        declared.append(f"${arg}: {spec.type}")
        passed.append(f"{arg}: ${arg}")
    keyword = {"Query": "query", "Mutation": "mutation", "Subscription": "subscription"}[root]
    head = f"{keyword} Attack" + (f"({', '.join(declared)})" if declared else "")
    call = name + (f"({', '.join(passed)})" if passed else "")
    return f"{head} {{ {call} {selection(definition.type)} }}", variables


def cases() -> list[tuple[str, str]]:
    out = []
    for root in (GRAPHQL.query_type, GRAPHQL.mutation_type):
        assert root is not None
        out += [(root.name, name) for name in root.fields]
    return out


PERSONAS = ["outsider", "other_crisis", "limited", "lower_role", "revoked", "anonymous"]


async def test_matrix_queries_and_mutations(gateway: GatewayUnderTest, world: World) -> None:
    before = await snapshot(gateway, world)
    failures: list[str] = []
    checked = 0
    async with gateway.client() as client:
        for persona in PERSONAS:
            attacker, session = world.personas[persona]
            for root, name in cases():
                root_type = GRAPHQL.query_type if root == "Query" else GRAPHQL.mutation_type
                assert root_type is not None
                query, variables = operation(root, name, root_type.fields[name], world, attacker)
                body = await gql_raw(client, session, query, variables)
                checked += 1
                text = json.dumps(body, ensure_ascii=False)
                leaked = [m for m in world.forbidden[persona] if m in text]
                if leaked:
                    failures.append(f"{persona} {root}.{name} leaked {leaked}: {text[:300]}")
                codes = {e.get("extensions", {}).get("code") for e in body.get("errors") or []}
                refused = bool(codes) and codes <= REFUSALS and (body.get("data") or {}).get(name) is None
                must_refuse = persona in ("anonymous", "revoked") or (
                    name in TARGETED and persona in ("outsider", "other_crisis")
                )
                if persona in ("limited", "lower_role") and root == "Mutation" and name in TARGETED:
                    must_refuse = name not in MEMBER_WRITABLE or persona == "limited"
                if must_refuse and not refused:
                    failures.append(f"{persona} {root}.{name} was not refused: {text[:300]}")
                if "internal" in codes:
                    failures.append(f"{persona} {root}.{name} answered internal: {text[:300]}")
    after = await snapshot(gateway, world)
    assert failures == []
    assert checked == len(PERSONAS) * len(cases())
    assert after == before, "an attack changed the victim's state"


async def test_limited_member_sees_only_own_cell(gateway: GatewayUnderTest, world: World) -> None:
    _, session = world.personas["limited"]
    async with gateway.client() as client:
        crisis = (
            await gql(
                client,
                session,
                "query($id: ID!) { crisis(id: $id) { title cells { id } members { userId } } }",
                {"id": world.crisis_id},
            )
        )["crisis"]
    assert crisis["title"] == f"VICTIM-CRISIS-{world.marker}"  # a member: the crisis itself is visible
    assert [c["id"] for c in crisis["cells"]] == [world.open_cell_id]
    assert crisis["members"] == []


async def test_lower_role_sees_crisis_but_cannot_lead(gateway: GatewayUnderTest, world: World) -> None:
    _, session = world.personas["lower_role"]
    async with gateway.client() as client:
        crisis = (
            await gql(
                client,
                session,
                "query($id: ID!) { crisis(id: $id) { myRole cells { name } } }",
                {"id": world.crisis_id},
            )
        )["crisis"]
        assert crisis["myRole"] == "MEMBER"
        assert f"VICTIM-CELL-{world.marker}" in [c["name"] for c in crisis["cells"]]
        refused = await gql_raw(
            client,
            session,
            "mutation($id: ID!) { updateCrisis(id: $id, severity: MINOR) { id } }",
            {"id": world.crisis_id},
        )
    assert refused["errors"][0]["extensions"]["code"] == "forbidden"


async def test_membership_removal_takes_effect_at_once(gateway: GatewayUnderTest, world: World) -> None:
    async with gateway.client() as client:
        member = await invite_and_enrol(client, world.victim, crisis_id=world.crisis_id, crisis_role="MEMBER")
        query = "query($id: ID!) { crisis(id: $id) { id } }"
        assert (await gql(client, member.session, query, {"id": world.crisis_id}))["crisis"]["id"] == world.crisis_id
        await gql(
            client,
            world.victim.session,
            "mutation($c: ID!, $u: ID!) { removeCrisisMember(crisisId: $c, userId: $u) }",
            {"c": world.crisis_id, "u": member.user_id},
        )
        after = await gql_raw(client, member.session, query, {"id": world.crisis_id})
    assert after["errors"][0]["extensions"]["code"] == "forbidden"  # same access token, refused now
