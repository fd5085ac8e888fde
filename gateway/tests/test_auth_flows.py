"""Identity over HTTP against the running gateway: enrolment, login, refresh rotation, reuse, logout."""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from gwclient import (
    PASSWORD,
    GatewayUnderTest,
    enrol_with_totp,
    gql,
    gql_raw,
    login_with_totp,
    new_tenant_admin,
    session_of,
)
from nats.aio.client import Client
from softauthn import SoftAuthenticator

from panicsafe.contracts import gateway as gw
from panicsafe.contracts.events import CloudEvent
from panicsafe.gateway.auth.sessions import csrf_for
from panicsafe.gateway.bootstrap import create_tenant


async def refresh(client: Any, refresh_token: str, csrf: str, **headers: str) -> Any:
    return await client.post(
        "/auth/refresh", headers={"Cookie": f"ps_refresh={refresh_token}", "X-PanicSAFE-CSRF": csrf, **headers}
    )


async def tenant_events(
    nc: Client, tenant_id: str, done: Callable[[list[CloudEvent]], bool], timeout_s: float = 30.0
) -> list[CloudEvent]:
    """The gateway's tenant-level events on the bus, fetched until `done` holds (or the time is up)."""
    subscription = await nc.jetstream().pull_subscribe(f"evt.{tenant_id}._.gateway.*")
    events: list[CloudEvent] = []
    deadline = time.monotonic() + timeout_s
    try:
        while not done(events) and time.monotonic() < deadline:
            try:
                events += [CloudEvent.model_validate_json(m.data) for m in await subscription.fetch(50, timeout=1)]
            except TimeoutError:
                continue
    finally:
        await subscription.unsubscribe()
    return events


async def test_totp_journey_with_refresh_reuse_and_logout(gateway: GatewayUnderTest, nc: Client) -> None:
    async with gateway.client() as client:
        tenant = await create_tenant(
            gateway.db,
            gateway.keys,
            name="GHT Parcours",
            region="HDF",
            admin_login=f"a-{secrets.token_hex(3)}",
            admin_name="Marie Curie",
        )
        seen = await client.post("/auth/invitation", json={"token": tenant.invitation_token})
        assert seen.json()["organisation"] == "GHT Parcours"
        account = await enrol_with_totp(client, tenant.invitation_token)
        assert len(account.recovery_codes) == 10
        # The invitation was single use.
        again = await client.post("/auth/enrol/password", json={"token": tenant.invitation_token, "password": PASSWORD})
        assert again.status_code == 404
        assert again.json()["error"]["code"] == "not_found"

        session = await login_with_totp(client, account)
        assert (await gql(client, session, "{ me { login } }"))["me"]["login"] == account.login

        rotated = session_of(await refresh(client, session.refresh, session.csrf))
        assert rotated.refresh != session.refresh
        assert rotated.session_id == session.session_id
        assert (await gql(client, rotated, "{ me { login } }"))["me"]["login"] == account.login

        # The old refresh token comes back: a thief or a replay. The whole family is revoked.
        reused = await refresh(client, session.refresh, session.csrf)
        assert reused.status_code == 401
        assert (await refresh(client, rotated.refresh, rotated.csrf)).status_code == 401
        denied = await gql_raw(client, rotated, "{ me { login } }")
        assert denied["errors"][0]["extensions"]["code"] == "unauthenticated"
        rows = await gateway.admin_sql("SELECT revoked_reason FROM gateway.sessions WHERE id = $1", rotated.session_id)
        assert rows[0]["revoked_reason"] == "refresh_reuse"

        # Logout ends a session at once (this login uses a recovery code: the TOTP steps are spent).
        challenge = await client.post("/auth/login", json={"login": account.login, "password": PASSWORD})
        fresh = session_of(
            await client.post(
                "/auth/login/recovery",
                json={"challenge": challenge.json()["challenge"], "code": account.recovery_codes[0]},
            )
        )
        out = await client.post(
            "/auth/logout", headers={"Cookie": f"ps_refresh={fresh.refresh}", "X-PanicSAFE-CSRF": fresh.csrf}
        )
        assert out.status_code == 204
        assert 'ps_refresh=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers["set-cookie"]
        assert (await gql_raw(client, fresh, "{ me { login } }"))["errors"][0]["extensions"][
            "code"
        ] == "unauthenticated"
        assert (await refresh(client, fresh.refresh, fresh.csrf)).status_code == 401

    # Each step of the journey is a security event of the account on the bus, for the main courante.
    expected = Counter(
        {"invitation_accepted": 1, "factor_enrolled": 1, "login_succeeded": 2, "session_revoked": 1, "logout": 1}
    )

    def journey(events: list[CloudEvent]) -> Counter[str]:
        return Counter(e.short_type for e in events if e.short_type in expected)

    events = await tenant_events(nc, account.tenant_id, lambda seen: journey(seen) >= expected)
    assert journey(events) == expected
    mine = [e for e in events if e.short_type in expected]
    assert {e.actorid for e in mine} == {account.user_id}
    revoked = next(e for e in mine if gw.SESSION_REVOKED.matches(e))
    assert revoked.data == {"session_id": rotated.session_id, "reason": "refresh_reuse"}
    for event in mine:
        assert event.logbook is not None and event.logbook.summary
        text = event.model_dump_json()
        assert PASSWORD not in text and account.recovery_codes[0] not in text and session.refresh not in text


async def test_refresh_needs_csrf_and_same_origin(gateway: GatewayUnderTest) -> None:
    async with gateway.client() as client:
        account = await new_tenant_admin(gateway, client)
        session = account.session
        missing = await client.post("/auth/refresh", headers={"Cookie": f"ps_refresh={session.refresh}"})
        assert missing.status_code == 403
        assert missing.json()["error"]["code"] == "forbidden"
        wrong = await refresh(client, session.refresh, "not-the-token")
        assert wrong.status_code == 403
        other_site = await refresh(client, session.refresh, session.csrf, Origin="https://evil.example")
        assert other_site.status_code == 403
        assert (await refresh(client, session.refresh, session.csrf)).status_code == 200


async def test_cookie_attributes(gateway: GatewayUnderTest) -> None:
    async with gateway.client() as client:
        account = await new_tenant_admin(gateway, client)
        response = await refresh(client, account.session.refresh, account.session.csrf)
        cookie = response.headers["set-cookie"].lower()
        for attribute in ("httponly", "secure", "samesite=strict", "path=/auth"):
            assert attribute in cookie
        assert response.headers["cache-control"] == "no-store"


async def test_totp_code_is_accepted_once(gateway: GatewayUnderTest) -> None:
    async with gateway.client() as client:
        account = await new_tenant_admin(gateway, client)
        code = account.fresh_code()
        first = await client.post("/auth/login", json={"login": account.login, "password": PASSWORD})
        ok = await client.post("/auth/login/totp", json={"challenge": first.json()["challenge"], "code": code})
        assert ok.status_code == 200, ok.text
        second = await client.post("/auth/login", json={"login": account.login, "password": PASSWORD})
        replay = await client.post("/auth/login/totp", json={"challenge": second.json()["challenge"], "code": code})
        assert replay.status_code == 401
        assert replay.json()["error"]["code"] == "unauthenticated"
        # The challenge survives a wrong code (the lock budget counts it) and a right one still works.
        assert (
            await client.post(
                "/auth/login/totp", json={"challenge": second.json()["challenge"], "code": account.fresh_code()}
            )
        ).status_code == 200


async def test_recovery_code_is_single_use(gateway: GatewayUnderTest) -> None:
    async with gateway.client() as client:
        account = await new_tenant_admin(gateway, client)
        code = account.recovery_codes[3]
        challenge = await client.post("/auth/login", json={"login": account.login, "password": PASSWORD})
        assert "recovery" in challenge.json()["methods"]
        used = await client.post(
            "/auth/login/recovery",
            json={"challenge": challenge.json()["challenge"], "code": code.upper().replace("-", " ")},
        )
        session = session_of(used)
        assert (await gql(client, session, "{ me { factors { recoveryCodesLeft } } }"))["me"]["factors"][
            "recoveryCodesLeft"
        ] == 9
        again = await client.post("/auth/login", json={"login": account.login, "password": PASSWORD})
        replay = await client.post("/auth/login/recovery", json={"challenge": again.json()["challenge"], "code": code})
        assert replay.status_code == 401


async def test_unknown_user_and_wrong_password_answer_the_same(gateway: GatewayUnderTest) -> None:
    async with gateway.client() as client:
        account = await new_tenant_admin(gateway, client)
        wrong = await client.post("/auth/login", json={"login": account.login, "password": "pas-le-bon-mot-de-passe"})
        unknown = await client.post(
            "/auth/login", json={"login": f"nobody-{secrets.token_hex(4)}", "password": "pas-le-bon-mot-de-passe"}
        )
        assert wrong.status_code == unknown.status_code == 401
        assert wrong.json() == unknown.json()
        assert wrong.headers.get("content-length") == unknown.headers.get("content-length")


async def test_twenty_wrong_passwords_lock_the_account(gateway: GatewayUnderTest) -> None:
    """The deployed gateway locks at exactly the 20th failure, for 15 minutes (delays: test_lockout.py)."""

    async def throttled(login: str) -> Any:
        rows = await gateway.admin_sql(
            "SELECT failures, locked_until FROM gateway.auth_throttle WHERE key = $1", f"acct:{login}"
        )
        return rows[0]

    async with gateway.client() as client:
        account = await new_tenant_admin(gateway, client)
        ghost = f"ghost-{secrets.token_hex(4)}"
        answers = set()

        async def fail_both() -> None:
            for login in (account.login, ghost):
                response = await client.post("/auth/login", json={"login": login, "password": "mauvais-mot-de-passe"})
                answers.add((response.status_code, response.text))

        for _ in range(19):
            await fail_both()
        for login in (account.login, ghost):  # a progressive delay so far (at most a minute), not the lockout
            row = await throttled(login)
            assert row["failures"] == 19
            assert row["locked_until"] <= datetime.now(UTC) + timedelta(seconds=60)
        before = datetime.now(UTC)
        await fail_both()
        after = datetime.now(UTC)
        assert len(answers) == 1  # the real and the unknown account answered alike, every time
        for login in (account.login, ghost):
            row = await throttled(login)
            assert row["failures"] == 20
            assert before + timedelta(minutes=15) <= row["locked_until"] <= after + timedelta(minutes=15)
        locked = await client.post("/auth/login", json={"login": account.login, "password": PASSWORD})
        assert locked.status_code == 401
        assert (locked.status_code, locked.text) in answers  # locked looks like wrong: nothing leaks
        # The lock holds even with the right second factor path: no challenge is ever issued.
        await gateway.admin_sql("DELETE FROM gateway.auth_throttle WHERE key = $1", f"acct:{account.login}")
        assert (
            await client.post("/auth/login", json={"login": account.login, "password": PASSWORD})
        ).status_code == 200


async def test_a_password_alone_opens_no_session(gateway: GatewayUnderTest) -> None:
    """The right password yields only a second-factor challenge: no access token, no refresh cookie."""
    async with gateway.client() as client:
        account = await new_tenant_admin(gateway, client)
        sessions_before = await gateway.admin_sql(
            "SELECT count(*) AS n FROM gateway.sessions WHERE user_id = $1", account.user_id
        )
        step = await client.post("/auth/login", json={"login": account.login, "password": PASSWORD})
        assert step.status_code == 200
        assert set(step.json()) == {"challenge", "methods"}
        assert "set-cookie" not in step.headers
        challenge = step.json()["challenge"]
        # The challenge is no credential: not as a bearer token, not as a refresh cookie.
        assert (
            await client.post(
                "/graphql", json={"query": "{ me { login } }"}, headers={"Authorization": f"Bearer {challenge}"}
            )
        ).json()["errors"][0]["extensions"]["code"] == "unauthenticated"
        assert (
            await client.post("/auth/reauth", json={"code": "000000"}, headers={"Authorization": f"Bearer {challenge}"})
        ).status_code == 401
        assert (await refresh(client, challenge, csrf_for(challenge))).status_code == 401
        sessions_after = await gateway.admin_sql(
            "SELECT count(*) AS n FROM gateway.sessions WHERE user_id = $1", account.user_id
        )
        assert sessions_after[0]["n"] == sessions_before[0]["n"]

        # An account that set its password but never enrolled a factor cannot log in with it at all.
        tenant = await create_tenant(
            gateway.db,
            gateway.keys,
            name="GHT Sans facteur",
            region="HDF",
            admin_login=f"n-{secrets.token_hex(3)}",
            admin_name="N",
        )
        started = await client.post(
            "/auth/enrol/password", json={"token": tenant.invitation_token, "password": PASSWORD}
        )
        assert started.status_code == 200
        assert "set-cookie" not in started.headers and "accessToken" not in started.json()
        half = await client.post("/auth/login", json={"login": tenant.admin_login, "password": PASSWORD})
        assert half.status_code == 401
        assert "set-cookie" not in half.headers and "challenge" not in half.json()


async def test_weak_password_is_refused_with_reasons(gateway: GatewayUnderTest) -> None:
    async with gateway.client() as client:
        tenant = await create_tenant(
            gateway.db,
            gateway.keys,
            name="GHT Mots",
            region="HDF",
            admin_login=f"a-{secrets.token_hex(3)}",
            admin_name="Jean Valjean",
        )
        for password, reason in (
            ("court", "too_short"),
            ("motdepasse123", "too_common"),
            (f"{tenant.admin_login}-Lune-97!", "contains_personal"),
        ):
            response = await client.post(
                "/auth/enrol/password", json={"token": tenant.invitation_token, "password": password}
            )
            assert response.status_code == 400
            assert reason in [f["message"] for f in response.json()["error"]["fields"]]
        # Nothing was consumed: the invitation still works.
        assert (await client.post("/auth/invitation", json={"token": tenant.invitation_token})).status_code == 200


async def test_passkey_enrolment_then_passkey_only_login(gateway: GatewayUnderTest) -> None:
    async with gateway.client() as client:
        tenant = await create_tenant(
            gateway.db,
            gateway.keys,
            name="GHT Clés",
            region="HDF",
            admin_login=f"k-{secrets.token_hex(3)}",
            admin_name="Ada Lovelace",
        )
        authenticator = SoftAuthenticator(origin=gateway.url, rp_id="127.0.0.1")
        started = (
            await client.post("/auth/enrol/password", json={"token": tenant.invitation_token, "password": PASSWORD})
        ).json()
        options = (await client.post("/auth/enrol/passkey/options", json={"enrolment": started["enrolment"]})).json()
        credential = authenticator.create(options)
        enrolled = await client.post(
            "/auth/enrol/passkey", json={"enrolment": started["enrolment"], "credential": credential}
        )
        session = session_of(enrolled)
        factors = (await gql(client, session, "{ me { factors { totpEnabled passkeys { name } } } }"))["me"]["factors"]
        assert factors["totpEnabled"] is False
        assert len(factors["passkeys"]) == 1

        # Passkey only: no login, no password; the authenticator picks the discoverable credential.
        begin = (await client.post("/auth/login/passkey/options", json={})).json()
        assert begin["publicKey"].get("allowCredentials", []) == []
        assertion = authenticator.get(begin["publicKey"])
        logged = session_of(
            await client.post("/auth/login/passkey", json={"challenge": begin["challenge"], "credential": assertion})
        )
        assert (await gql(client, logged, "{ me { login } }"))["me"]["login"] == tenant.admin_login

        # Password then passkey as the second factor.
        challenge = (await client.post("/auth/login", json={"login": tenant.admin_login, "password": PASSWORD})).json()
        assert challenge["methods"] == ["passkey", "recovery"]
        second = (await client.post("/auth/login/passkey/options", json={"challenge": challenge["challenge"]})).json()
        assertion = authenticator.get(second["publicKey"])
        assert (
            await client.post("/auth/login/passkey", json={"challenge": second["challenge"], "credential": assertion})
        ).status_code == 200

        # A replayed assertion (same challenge, same counter) is refused.
        replay = await client.post(
            "/auth/login/passkey", json={"challenge": second["challenge"], "credential": assertion}
        )
        assert replay.status_code == 401


async def test_sensitive_mutation_needs_a_fresh_second_factor(gateway: GatewayUnderTest) -> None:
    async with gateway.client() as client:
        account = await new_tenant_admin(gateway, client)
        session = account.session
        codes = await gql(client, session, "mutation { regenerateRecoveryCodes }")
        assert len(codes["regenerateRecoveryCodes"]) == 10
        await gateway.admin_sql(
            "UPDATE gateway.sessions SET mfa_at = now() - interval '6 minutes' WHERE id = $1", session.session_id
        )
        stale = await gql_raw(client, session, "mutation { regenerateRecoveryCodes }")
        assert stale["errors"][0]["extensions"]["code"] == "forbidden"
        reauth = await client.post("/auth/reauth", json={"code": account.fresh_code()}, headers=session.auth)
        assert reauth.status_code == 200, reauth.text
        again = await gql(client, session, "mutation { regenerateRecoveryCodes }")
        assert len(again["regenerateRecoveryCodes"]) == 10
