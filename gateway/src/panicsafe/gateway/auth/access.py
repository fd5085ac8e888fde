"""User access tokens: EdDSA JWTs of at most ten minutes, bound to a session checked on every request."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from panicsafe.contracts.errors import ErrorCode
from panicsafe.core.errors import ServiceError
from panicsafe.core.tokens import SigningKey

ISSUER = "panicsafe-gateway"
AUDIENCE = "panicsafe-web"


@dataclass(frozen=True)
class AccessClaims:
    user_id: str
    tenant_id: str
    session_id: str


class AccessTokens:
    def __init__(self, key: SigningKey, *, ttl_s: int = 600) -> None:
        if not 0 < ttl_s <= 600:
            raise ValueError("access tokens live at most ten minutes")
        self.key = key
        self.ttl_s = ttl_s

    def issue(self, claims: AccessClaims, *, now: float | None = None) -> str:
        issued = int(now if now is not None else time.time())
        payload = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": claims.user_id,
            "tid": claims.tenant_id,
            "sid": claims.session_id,
            "iat": issued,
            "exp": issued + self.ttl_s,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(payload, self.key.private_key, algorithm="EdDSA", headers={"kid": self.key.kid})

    def verify(self, token: str) -> AccessClaims:
        try:
            header = jwt.get_unverified_header(token)
            if header.get("kid") != self.key.kid or header.get("alg") != "EdDSA":
                raise jwt.InvalidTokenError("unknown key")
            payload: dict[str, Any] = jwt.decode(
                token,
                self.key.public_key,
                algorithms=["EdDSA"],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )
            if int(payload["exp"]) - int(payload["iat"]) > 600:
                raise jwt.InvalidTokenError("lifetime too long")
            return AccessClaims(str(payload["sub"]), str(payload["tid"]), str(payload["sid"]))
        except (jwt.PyJWTError, KeyError, ValueError) as exc:
            raise ServiceError(ErrorCode.UNAUTHENTICATED, "Session expirée ou invalide.") from exc
