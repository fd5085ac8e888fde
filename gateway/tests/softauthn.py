"""A software WebAuthn authenticator for tests: real ES256 registrations and assertions."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

FLAG_UP = 0x01
FLAG_UV = 0x04
FLAG_AT = 0x40
AAGUID = bytes.fromhex("50616e696353414645536f6674417574")  # "PanicSAFESoftAut"
COSE_ES256 = -7


def b64url(data: bytes) -> str:
    """Base64url without padding, as browsers encode WebAuthn bytes in JSON."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    """Inverse of b64url."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _cbor_head(major: int, value: int) -> bytes:
    """A CBOR initial byte with its argument."""
    if value < 24:
        return bytes([major << 5 | value])
    for extra, fmt in ((24, ">B"), (25, ">H"), (26, ">I"), (27, ">Q")):
        if value < 1 << (8 * struct.calcsize(fmt)):
            return bytes([major << 5 | extra]) + struct.pack(fmt, value)
    raise ValueError("integer too large for CBOR")


def cbor(value: object) -> bytes:
    """Minimal CBOR encoder (ints, bytes, text, lists, maps) for attestation objects and COSE keys."""
    if isinstance(value, bool) or value is None:
        raise TypeError("not needed here")
    if isinstance(value, int):
        return _cbor_head(0, value) if value >= 0 else _cbor_head(1, -1 - value)
    if isinstance(value, bytes):
        return _cbor_head(2, len(value)) + value
    if isinstance(value, str):
        raw = value.encode("utf-8")
        return _cbor_head(3, len(raw)) + raw
    if isinstance(value, list):
        return _cbor_head(4, len(value)) + b"".join(cbor(v) for v in value)
    if isinstance(value, dict):
        return _cbor_head(5, len(value)) + b"".join(cbor(k) + cbor(v) for k, v in value.items())
    raise TypeError(f"cannot encode {type(value).__name__}")


@dataclass
class SoftCredential:
    """One credential held by the authenticator."""

    credential_id: bytes
    private_key: ec.EllipticCurvePrivateKey
    user_handle: bytes
    rp_id: str
    counter: int = 0

    def cose_public_key(self) -> bytes:
        """The COSE_Key (EC2, P-256, ES256) of the public key."""
        numbers = self.private_key.public_key().public_numbers()
        return cbor(
            {
                1: 2,
                3: COSE_ES256,
                -1: 1,
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )


@dataclass
class SoftAuthenticator:
    """A platform authenticator bound to one origin and rp id, as a browser would present it."""

    origin: str
    rp_id: str
    user_verified: bool = True
    credentials: list[SoftCredential] = field(default_factory=list)

    def _client_data(self, kind: str, challenge: str) -> bytes:
        """clientDataJSON as the browser serialises it."""
        data = {"type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": False}
        return json.dumps(data, separators=(",", ":")).encode("utf-8")

    def _flags(self, *extra: int) -> int:
        """UP always, UV when the user was verified, plus the given bits."""
        flags = FLAG_UP | (FLAG_UV if self.user_verified else 0)
        for bit in extra:
            flags |= bit
        return flags

    def create(self, options: dict[str, Any]) -> dict[str, Any]:
        """navigator.credentials.create(): a new ES256 key, attestation "none"."""
        excluded = {unb64url(c["id"]) for c in options.get("excludeCredentials", [])}
        if any(c.credential_id in excluded for c in self.credentials):
            raise LookupError("InvalidStateError: a credential of this list is already registered")
        if not any(p.get("alg") == COSE_ES256 for p in options["pubKeyCredParams"]):
            raise LookupError("NotSupportedError: ES256 not offered")
        credential = SoftCredential(
            credential_id=secrets.token_bytes(16),
            private_key=ec.generate_private_key(ec.SECP256R1()),
            user_handle=unb64url(options["user"]["id"]),
            rp_id=self.rp_id,
        )
        self.credentials.append(credential)
        cose_key = credential.cose_public_key()
        attested = AAGUID + struct.pack(">H", len(credential.credential_id)) + credential.credential_id
        auth_data = (
            hashlib.sha256(self.rp_id.encode("utf-8")).digest()
            + bytes([self._flags(FLAG_AT)])
            + struct.pack(">I", credential.counter)
            + attested
            + cose_key
        )
        attestation = cbor({"fmt": "none", "attStmt": {}, "authData": auth_data})
        spki = credential.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return {
            "id": b64url(credential.credential_id),
            "rawId": b64url(credential.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(self._client_data("webauthn.create", options["challenge"])),
                "attestationObject": b64url(attestation),
                "authenticatorData": b64url(auth_data),
                "transports": ["hybrid", "internal"],
                "publicKey": b64url(spki),
                "publicKeyAlgorithm": COSE_ES256,
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }

    def _pick(self, options: dict[str, Any]) -> SoftCredential:
        """The credential to use: one of the allow list, else the latest discoverable one."""
        allowed = [unb64url(c["id"]) for c in options.get("allowCredentials", [])]
        mine = [c for c in self.credentials if c.rp_id == self.rp_id]
        if allowed:
            mine = [c for c in mine if c.credential_id in allowed]
        if not mine:
            raise LookupError("NotAllowedError: no credential for this request")
        return mine[-1]

    def get(self, options: dict[str, Any]) -> dict[str, Any]:
        """navigator.credentials.get(): an assertion with an incremented counter."""
        credential = self._pick(options)
        credential.counter += 1
        auth_data = (
            hashlib.sha256(self.rp_id.encode("utf-8")).digest()
            + bytes([self._flags()])
            + struct.pack(">I", credential.counter)
        )
        client_data = self._client_data("webauthn.get", options["challenge"])
        signature = credential.private_key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return {
            "id": b64url(credential.credential_id),
            "rawId": b64url(credential.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": b64url(credential.user_handle),
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }
