"""The identity flows as one service for the HTTP routes: invitation → password → second factor →
session; login; refresh; logout; re-authentication.

Every account has a second factor before any other use. The flows live by domain area, this class
only hands them its dependencies:
- `enrolment`: accepting an invitation, the first second factor;
- `login`: the password step, then TOTP, a recovery code or a passkey;
- `renewal`: refresh, logout, re-authentication;
- `credentials`: what those share (TOTP check, passkey storage, recovery codes);
- `rules` (pure) and `store` (SQL).
"""

from __future__ import annotations

from typing import Any

from panicsafe.gateway.auth import enrolment, renewal
from panicsafe.gateway.auth import login as login_flow  # its methods' parameter `login` would shadow it
from panicsafe.gateway.auth.credentials import replace_recovery_codes, take_recovery_code
from panicsafe.gateway.auth.deps import AuthDeps, Client
from panicsafe.gateway.auth.enrolment import Enrolled, EnrolmentStart
from panicsafe.gateway.auth.login import LoginChallenge
from panicsafe.gateway.auth.rules import BAD_CODE, BAD_CREDENTIALS, TOTP_PURPOSE, bad_credentials
from panicsafe.gateway.auth.sessions import IssuedSession

__all__ = [
    "BAD_CODE",
    "BAD_CREDENTIALS",
    "TOTP_PURPOSE",
    "AuthService",
    "Client",
    "Enrolled",
    "EnrolmentStart",
    "LoginChallenge",
    "bad_credentials",
    "replace_recovery_codes",
    "take_recovery_code",
]


class AuthService(AuthDeps):
    """`AuthService(db=..., cipher=..., tokens=..., throttle=..., passkey_config=..., session_max=...,
    refresh_idle=...)`: the identity flows on those dependencies."""

    # -- invitations and enrolment ----------------------------------------------------------------
    async def inspect_invitation(self, token: str) -> dict[str, Any]:
        return await enrolment.inspect_invitation(self, token)

    async def enrol_password(self, token: str, password: str, client: Client) -> EnrolmentStart:
        """Consume the invitation: the account exists (without any factor yet) and must enrol one."""
        return await enrolment.enrol_password(self, token, password, client)

    async def enrol_totp(self, enrolment_token: str, code: str, client: Client) -> Enrolled:
        return await enrolment.enrol_totp(self, enrolment_token, code, client)

    async def enrol_passkey_options(self, enrolment_token: str) -> dict[str, Any]:
        return await enrolment.enrol_passkey_options(self, enrolment_token)

    async def enrol_passkey(self, enrolment_token: str, credential: dict[str, Any], client: Client) -> Enrolled:
        return await enrolment.enrol_passkey(self, enrolment_token, credential, client)

    # -- login -------------------------------------------------------------------------------------
    async def login_password(self, login: str, password: str, client: Client) -> LoginChallenge:
        return await login_flow.login_password(self, login, password, client)

    async def login_totp(self, challenge_token: str, code: str, client: Client) -> IssuedSession:
        return await login_flow.login_totp(self, challenge_token, code, client)

    async def login_recovery(self, challenge_token: str, code: str, client: Client) -> IssuedSession:
        return await login_flow.login_recovery(self, challenge_token, code, client)

    async def passkey_login_options(self, challenge_token: str | None) -> tuple[str, dict[str, Any]]:
        """With a password challenge: the user's passkeys as second factor. Without: passkey-only login."""
        return await login_flow.passkey_login_options(self, challenge_token)

    async def passkey_login(self, challenge_token: str, credential: dict[str, Any], client: Client) -> IssuedSession:
        return await login_flow.passkey_login(self, challenge_token, credential, client)

    # -- refresh, logout, re-authentication ----------------------------------------------------------
    async def refresh(self, refresh_token: str) -> IssuedSession:
        return await renewal.refresh(self, refresh_token)

    async def logout(self, refresh_token: str) -> None:
        await renewal.logout(self, refresh_token)

    async def reauthenticate_totp(self, *, user_id: str, tenant_id: str, session_id: str, code: str) -> None:
        """A fresh second factor for sensitive actions (valid five minutes)."""
        await renewal.reauthenticate_totp(self, user_id=user_id, tenant_id=tenant_id, session_id=session_id, code=code)
