"""A test client of the gateway that behaves like the web client (cookies, CSRF, bearer tokens)."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from panicsafe.core.crypto import TransitKeys
from panicsafe.core.db.database import Database
from panicsafe.core.devstack.platform import Platform
from panicsafe.core.testing import gateway_keys
from panicsafe.gateway.bootstrap import create_tenant
from panicsafe.gateway.identity import totp

PASSWORD = "cheval-agrafe-Lune-97!"


@dataclass
class Session:
    access: str
    refresh: str
    csrf: str
    session_id: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}


@dataclass
class Account:
    login: str
    password: str
    user_id: str
    tenant_id: str
    session: Session
    totp_secret: str | None = None
    recovery_codes: list[str] = field(default_factory=list)
    last_step: int = 0

    def code(self, at: float | None = None) -> str:
        assert self.totp_secret is not None
        return totp.code_at(self.totp_secret, time.time() if at is None else at)

    def fresh_code(self) -> str:
        assert self.totp_secret is not None
        code, self.last_step = unseen_code(self.totp_secret, self.last_step)
        return code


def unseen_code(secret: str, last_step: int) -> tuple[str, int]:
    """The next code the server has not seen, and its step (one step ahead is accepted; a code works once)."""
    now_step = int(time.time()) // 30
    step = max(now_step, last_step + 1)
    if step > now_step + 1:
        time.sleep(step * 30 - 30 - time.time() + 0.1)
    return totp.code_at(secret, step * 30 + 1), step


@dataclass
class GatewayUnderTest:
    url: str
    db: Database
    admin_dsn: str
    log: Path
    directory: Path
    keys: TransitKeys  # the gateway's identity in OpenBao: `create_tenant` makes the tenant's key with it

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=20)

    async def admin_sql(self, query: str, *args: Any) -> Any:
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()


@asynccontextmanager
async def gateway_of(platform: Platform) -> AsyncIterator[GatewayUnderTest]:
    """A started platform's gateway, as the tests drive it (its own schema opened for bootstrapping)."""
    app_dsn = (platform.directory / "secrets" / "gateway" / "database_url").read_text()
    db = Database(app_dsn, "gateway")
    await db.open()
    try:
        yield GatewayUnderTest(
            url=platform.gateway_url,
            db=db,
            admin_dsn=platform.stack.postgres.admin_dsn,
            log=Path(platform.processes["gateway"].log_path),
            directory=platform.directory,
            keys=gateway_keys(platform.stack),
        )
    finally:
        await db.close()


def refresh_cookie(response: httpx.Response) -> str:
    """The refresh token from Set-Cookie (Secure cookies are not replayed by httpx over http)."""
    for header in response.headers.get_list("set-cookie"):
        if header.startswith("ps_refresh="):
            return header.split(";", 1)[0].removeprefix("ps_refresh=")
    raise AssertionError(f"no refresh cookie in {response.headers}")


def session_of(response: httpx.Response) -> Session:
    assert response.status_code == 200, response.text
    body = response.json()
    return Session(body["accessToken"], refresh_cookie(response), body["csrfToken"], body["sessionId"])


async def enrol_with_totp(client: httpx.AsyncClient, token: str, password: str = PASSWORD) -> Account:
    started = await client.post("/auth/enrol/password", json={"token": token, "password": password})
    assert started.status_code == 200, started.text
    body = started.json()
    secret = body["totp"]["secret"]
    done = await client.post(
        "/auth/enrol/totp", json={"enrolment": body["enrolment"], "code": totp.code_at(secret, time.time())}
    )
    session = session_of(done)
    me = await gql(client, session, "{ me { id tenantId } }")
    return Account(
        login=body["login"],
        password=password,
        user_id=me["me"]["id"],
        tenant_id=me["me"]["tenantId"],
        session=session,
        totp_secret=secret,
        recovery_codes=done.json()["recoveryCodes"],
        last_step=int(time.time()) // 30,
    )


async def login_with_totp(client: httpx.AsyncClient, account: Account) -> Session:
    challenge = await client.post("/auth/login", json={"login": account.login, "password": account.password})
    assert challenge.status_code == 200, challenge.text
    response = await client.post(
        "/auth/login/totp", json={"challenge": challenge.json()["challenge"], "code": account.fresh_code()}
    )
    return session_of(response)


async def gql_raw(
    client: httpx.AsyncClient, session: Session | None, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    headers = session.auth if session else {}
    response = await client.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def gql(
    client: httpx.AsyncClient, session: Session | None, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    body = await gql_raw(client, session, query, variables)
    assert not body.get("errors"), body["errors"]
    data: dict[str, Any] = body["data"]
    return data


async def new_tenant_admin(
    gateway: GatewayUnderTest,
    client: httpx.AsyncClient,
    *,
    name: str | None = None,
    region: str = "HDF",
    share: bool = False,
    establishments: tuple[tuple[str, str], ...] = (("Hôpital A", "hospital"),),
) -> Account:
    tenant = await create_tenant(
        gateway.db,
        gateway.keys,
        name=name or f"Tenant {secrets.token_hex(3)}",
        region=region,
        admin_login=f"adm-{secrets.token_hex(4)}",
        admin_name="Admin Test",
        establishments=establishments,
        share_with_region=share,
    )
    return await enrol_with_totp(client, tenant.invitation_token)


async def invite_and_enrol(
    client: httpx.AsyncClient,
    inviter: Account,
    *,
    display_name: str = "Membre Test",
    crisis_id: str | None = None,
    crisis_role: str | None = None,
    cell_ids: list[str] | None = None,
    tenant_role: str = "MEMBER",
    login: str | None = None,
) -> Account:
    login = login or f"u-{secrets.token_hex(4)}"
    data = await gql(
        client,
        inviter.session,
        """
        mutation($input: InvitationInput!) { createInvitation(input: $input) { link invitation { id } } }""",
        {
            "input": {
                "login": login,
                "displayName": display_name,
                "tenantRole": tenant_role,
                "crisisId": crisis_id,
                "crisisRole": crisis_role,
                "cellIds": cell_ids or [],
            }
        },
    )
    token = data["createInvitation"]["link"].split("/invitation/", 1)[1]
    return await enrol_with_totp(client, token)


async def declare(client: httpx.AsyncClient, admin: Account, title: str, *, mode: str = "REAL") -> dict[str, Any]:
    data = await gql(
        client,
        admin.session,
        """
        mutation($i: DeclareCrisisInput!) { declareCrisis(input: $i) { id title cells { id name kind } } }""",
        {"i": {"title": title, "severity": "MAJOR", "t0": "2026-11-23T05:00:00+00:00", "mode": mode}},
    )
    crisis: dict[str, Any] = data["declareCrisis"]
    return crisis


class Subscription:
    """One graphql-transport-ws subscription on its own WebSocket (what the web client does)."""

    def __init__(self, base_url: str, token: str | None, query: str, variables: dict[str, Any]) -> None:
        self.url = base_url.replace("http://", "ws://") + "/graphql"
        self.token = token
        self.query = query
        self.variables = variables
        self.ws: Any = None

    async def __aenter__(self) -> Subscription:
        import websockets

        self.ws = await websockets.connect(self.url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
        payload = {"authorization": f"Bearer {self.token}"} if self.token else {}
        await self.ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        ack = json.loads(await asyncio.wait_for(self.ws.recv(), 10))
        assert ack["type"] == "connection_ack", ack
        await self.ws.send(
            json.dumps({"id": "1", "type": "subscribe", "payload": {"query": self.query, "variables": self.variables}})
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.ws.close()

    async def next_message(self, timeout: float = 10.0) -> dict[str, Any]:
        while True:
            message: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if message["type"] in ("ping", "pong"):
                continue
            return message
