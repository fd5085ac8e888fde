"""User access tokens: EdDSA JWTs of at most ten minutes, bound to a session checked on every request.

A client sends the same token with every request until it refreshes it, so a verified token is
remembered (by its exact text, until its `exp`) and the signature is checked once per token rather
than once per request. Only the signature and the claims are remembered: the session behind the token
is still checked against the database on every request (`auth.principal`).
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
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


VERIFIED_CACHE_SIZE = 4096
"""Verified tokens remembered per process (least recently used forgotten first)."""


class AccessTokens:
    def __init__(self, key: SigningKey, *, ttl_s: int = 600) -> None:
        if not 0 < ttl_s <= 600:
            raise ValueError("access tokens live at most ten minutes")
        self.key = key
        self.ttl_s = ttl_s
        self._public_key = key.public_key  # derived from the private key: once, not per request
        self._verified: OrderedDict[str, tuple[AccessClaims, int]] = OrderedDict()  # token -> (claims, exp)

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
        remembered = self._verified.get(token)
        if remembered is None:
            claims, expires = self._verify_signed(token)
            self._remember(token, claims, expires)
            return claims
        claims, expires = remembered
        if time.time() >= expires:  # as PyJWT decides expiry (no leeway)
            del self._verified[token]
            raise _invalid()
        self._verified.move_to_end(token)
        return claims

    def _remember(self, token: str, claims: AccessClaims, expires: int) -> None:
        self._verified[token] = (claims, expires)
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)

    def _verify_signed(self, token: str) -> tuple[AccessClaims, int]:
        try:
            header = jwt.get_unverified_header(token)
            if header.get("kid") != self.key.kid or header.get("alg") != "EdDSA":
                raise jwt.InvalidTokenError("unknown key")
            payload: dict[str, Any] = jwt.decode(
                token,
                self._public_key,
                algorithms=["EdDSA"],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )
            if int(payload["exp"]) - int(payload["iat"]) > 600:
                raise jwt.InvalidTokenError("lifetime too long")
            claims = AccessClaims(str(payload["sub"]), str(payload["tid"]), str(payload["sid"]))
            return claims, int(payload["exp"])
        except (jwt.PyJWTError, KeyError, ValueError) as exc:
            raise _invalid() from exc


def _invalid() -> ServiceError:
    return ServiceError(ErrorCode.UNAUTHENTICATED, "Session expirée ou invalide.")
