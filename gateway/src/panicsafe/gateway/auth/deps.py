"""What the identity flows run on: the database, the cipher, tokens, throttle and lifetimes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from panicsafe.core.crypto import EnvelopeCipher
from panicsafe.core.db.database import Connection, Database
from panicsafe.gateway.auth import sessions
from panicsafe.gateway.auth.access import AccessTokens
from panicsafe.gateway.auth.sessions import IssuedSession
from panicsafe.gateway.auth.throttle import Throttle
from panicsafe.gateway.identity.passkeys import PasskeyConfig


@dataclass(frozen=True)
class Client:
    """Who is at the other end of a request, as far as the session list shows it."""

    address: str | None
    user_agent: str | None


@dataclass(kw_only=True)
class AuthDeps:
    db: Database
    cipher: EnvelopeCipher
    tokens: AccessTokens
    throttle: Throttle
    passkey_config: PasskeyConfig
    session_max: timedelta
    refresh_idle: timedelta

    async def open_session(self, conn: Connection, user_id: str, tenant_id: str, client: Client) -> IssuedSession:
        """A session for a user whose second factor was just checked, in the caller's transaction."""
        return await sessions.open_session(
            conn,
            self.tokens,
            user_id=user_id,
            tenant_id=tenant_id,
            max_age=self.session_max,
            idle=self.refresh_idle,
            address=client.address,
            user_agent=client.user_agent,
        )
