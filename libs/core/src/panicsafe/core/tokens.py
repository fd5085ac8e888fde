"""The internal actor token: an Ed25519 JWT the gateway signs for each downstream call.

It names the subject, the tenant and the crisis memberships with roles; it lives at most five
minutes and is addressed to one service (`aud`). Keys carry a `kid`; verifiers keep every public
key of the ring, so a rotation leaves tokens signed with the previous key valid until they expire.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import ValidationError

from panicsafe.contracts.actor import Actor
from panicsafe.contracts.errors import ErrorCode
from panicsafe.core.errors import ServiceError

ISSUER = "panicsafe-gateway"
MAX_TTL_S = 300
LEEWAY_S = 5
VERIFIED_TOKENS = 4096  # verified tokens kept per verifier (LRU)
REUSABLE_TOKENS = 4096  # issued tokens kept for reuse per signer
ALGORITHM = "EdDSA"


class TokenError(ServiceError):
    """A token was missing, malformed, expired, forged or meant for someone else."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.UNAUTHENTICATED, message)


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(kid=f"k-{secrets.token_hex(6)}", private_key=Ed25519PrivateKey.generate())

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    @classmethod
    def from_pem(cls, kid: str, pem: bytes) -> SigningKey:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{kid}: not an Ed25519 private key")
        return cls(kid=kid, private_key=key)


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


class TokenSigner:
    """Issues actor tokens with the current key of the ring."""

    def __init__(self, key: SigningKey, *, ttl_s: int = 120) -> None:
        if not 0 < ttl_s <= MAX_TTL_S:
            raise ValueError(f"token lifetime must be within 1..{MAX_TTL_S} s")
        self.key = key
        self.ttl_s = ttl_s
        self._reusable: dict[tuple[str, str, str], tuple[str, int]] = {}

    def rotate(self, key: SigningKey) -> None:
        self.key = key
        self._reusable.clear()

    def issue_reusable(self, actor: Actor, *, audience: str) -> str:
        """A token for these exact claims, reused while more than half its lifetime is left.

        Signing and, above all, verifying cost a little on every call; a service that sees the same
        token again only checks its cache (`TokenVerifier`). The claims are the key: a change of
        memberships or roles gives a new token at once.
        """
        key = (audience, self.key.kid, actor.model_dump_json())
        now = time.time()
        cached = self._reusable.get(key)
        if cached is not None and cached[1] - now > self.ttl_s / 2:
            return cached[0]
        token = self.issue(actor, audience=audience, now=now)
        self._reusable[key] = (token, int(now) + self.ttl_s)
        if len(self._reusable) > REUSABLE_TOKENS:
            self._reusable.pop(next(iter(self._reusable)))
        return token

    def issue(self, actor: Actor, *, audience: str, now: float | None = None) -> str:
        issued = int(now if now is not None else time.time())
        claims = {
            "iss": ISSUER,
            "aud": audience,
            "sub": actor.subject,
            "iat": issued,
            "nbf": issued,
            "exp": issued + self.ttl_s,
            "jti": uuid.uuid4().hex,
            "act": actor.model_dump(mode="json", exclude={"subject"}),
        }
        return jwt.encode(claims, self.key.private_key, algorithm=ALGORITHM, headers={"kid": self.key.kid})


@dataclass
class TokenVerifier:
    """Verifies actor tokens addressed to `audience` against every public key of the ring."""

    audience: str
    keys: dict[str, Ed25519PublicKey] = field(default_factory=dict)
    # Tokens already verified, with their validity window: the same token again costs a lookup.
    _verified: OrderedDict[str, tuple[Actor, int, int]] = field(default_factory=OrderedDict, repr=False)

    def add_key(self, kid: str, key: Ed25519PublicKey) -> None:
        self.keys[kid] = key
        self._verified.clear()

    def remove_key(self, kid: str) -> None:
        self.keys.pop(kid, None)
        self._verified.clear()  # tokens of a removed key are refused from now on

    @classmethod
    def from_directory(cls, audience: str, directory: Path) -> TokenVerifier:
        """Load `<kid>.pub.pem` files (how Kubernetes mounts the ring from OpenBao).

        A private key in that folder is refused: services get public keys only, the signing key
        exists in the gateway alone (whoever holds it can mint a token for anyone)."""
        private = [p.name for p in directory.glob("*.pem") if not p.name.endswith(".pub.pem")]
        if private:
            raise ValueError(f"{directory} holds private keys ({', '.join(sorted(private))}): public keys only")
        verifier = cls(audience=audience)
        for path in sorted(directory.glob("*.pub.pem")):
            key = serialization.load_pem_public_key(path.read_bytes())
            if isinstance(key, Ed25519PublicKey):
                verifier.add_key(path.name.removesuffix(".pub.pem"), key)
        return verifier

    def verify(self, token: str, *, now: float | None = None) -> Actor:
        """The actor of a valid token (the returned model is shared: do not modify it)."""
        clock = time.time() if now is None else now
        hit = self._verified.get(token)
        if hit is not None:
            actor, exp, nbf = hit
            if nbf <= clock + LEEWAY_S and clock <= exp + LEEWAY_S:
                self._verified.move_to_end(token)
                return actor
            del self._verified[token]
        actor, exp, nbf = self._verify_fully(token, clock)
        self._verified[token] = (actor, exp, nbf)
        if len(self._verified) > VERIFIED_TOKENS:
            self._verified.popitem(last=False)
        return actor

    def _verify_fully(self, token: str, clock: float) -> tuple[Actor, int, int]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenError("malformed token") from exc
        if header.get("alg") != ALGORITHM:
            raise TokenError("unexpected token algorithm")
        key = self.keys.get(str(header.get("kid", "")))
        if key is None:
            raise TokenError("unknown signing key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=ISSUER,
                # Time claims are checked below against an injectable clock.
                options={
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "require": ["exp", "iat", "nbf", "sub", "aud", "iss"],
                },
            )
        except jwt.InvalidAudienceError as exc:
            raise TokenError("token addressed to another service") from exc
        except jwt.PyJWTError as exc:
            raise TokenError(f"token refused: {exc}") from exc
        exp, iat, nbf = (claims.get(k) for k in ("exp", "iat", "nbf"))
        if not (isinstance(exp, int) and isinstance(iat, int) and isinstance(nbf, int)):
            raise TokenError("token time claims malformed")
        if clock > exp + LEEWAY_S:
            raise TokenError("token expired")
        if clock + LEEWAY_S < nbf:
            raise TokenError("token not yet valid")
        if iat > clock + LEEWAY_S:
            raise TokenError("token issued in the future")
        if exp - min(iat, nbf) > MAX_TTL_S:
            raise TokenError("token lifetime exceeds five minutes")
        act = claims.get("act")
        if not isinstance(act, dict):
            raise TokenError("token claims malformed")
        try:
            return Actor.model_validate({**act, "subject": claims["sub"]}), exp, nbf
        except ValidationError as exc:
            raise TokenError("token claims malformed") from exc


def write_private_keys(directory: Path, keys: list[SigningKey]) -> None:
    """The signer's side: `<kid>.pem` (0600) in a folder of its own (0700)."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    for key in keys:
        private = directory / f"{key.kid}.pem"
        private.write_bytes(key.private_pem())
        private.chmod(0o600)


def write_public_keys(directory: Path, keys: list[SigningKey]) -> None:
    """The verifiers' side: `<kid>.pub.pem` only (what `TokenVerifier.from_directory` loads)."""
    directory.mkdir(parents=True, exist_ok=True)
    for key in keys:
        (directory / f"{key.kid}.pub.pem").write_bytes(public_pem(key.public_key))


def load_or_create_key(directory: Path) -> SigningKey:
    """The newest `<kid>.pem` of a signer's folder, or a new key written there (kept across restarts)."""
    existing = sorted(
        (p for p in directory.glob("*.pem") if not p.name.endswith(".pub.pem")), key=lambda p: p.stat().st_mtime
    )
    if existing:
        newest = existing[-1]
        return SigningKey.from_pem(newest.name.removesuffix(".pem"), newest.read_bytes())
    key = SigningKey.generate()
    write_private_keys(directory, [key])
    return key
