"""Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP), each code accepted once."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import secrets
import struct
from urllib.parse import quote, urlencode

SECRET_BYTES = 20
DIGITS = 6
STEP = 30
_ALGORITHMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}


def new_secret() -> str:
    """A random 160-bit secret, base32 without padding (32 characters)."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii").rstrip("=")


def _decode_secret(secret: str) -> bytes:
    """Bytes of a base32 secret, tolerating case, spaces and missing padding."""
    cleaned = "".join(secret.split()).upper().rstrip("=")
    if not cleaned:
        raise ValueError("empty TOTP secret")
    padded = cleaned + "=" * (-len(cleaned) % 8)
    try:
        return base64.b32decode(padded)
    except binascii.Error as exc:
        raise ValueError("malformed base32 TOTP secret") from exc


def provisioning_uri(secret: str, *, account: str, issuer: str = "PanicSAFE") -> str:
    """The otpauth:// URI an authenticator app scans (Google Authenticator key URI format)."""
    if ":" in issuer or ":" in account:
        raise ValueError("the issuer and account of a TOTP URI must not contain ':'")
    label = f"{quote(issuer, safe='')}:{quote(account, safe='')}"
    query = urlencode(
        {
            "secret": secret.rstrip("="),
            "issuer": issuer,
            "algorithm": "SHA1",
            "digits": DIGITS,
            "period": STEP,
        },
        quote_via=quote,
    )
    return f"otpauth://totp/{label}?{query}"


def _hotp(key: bytes, counter: int, *, digits: int, algorithm: str) -> str:
    """RFC 4226 HOTP value of one counter, with dynamic truncation."""
    digest = hmac.new(key, struct.pack(">Q", counter), _ALGORITHMS[algorithm]).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def code_at(secret: str, at: float, *, digits: int = DIGITS, step: int = STEP, algorithm: str = "sha1") -> str:
    """The code valid at Unix time `at`."""
    if algorithm not in _ALGORITHMS:
        raise ValueError(f"unsupported TOTP algorithm {algorithm!r}")
    return _hotp(_decode_secret(secret), math.floor(at) // step, digits=digits, algorithm=algorithm)


def verify_code(secret: str, code: str, *, now: float, last_used_step: int | None, window: int = 1) -> int | None:
    """The time step the code matches within ±window steps, or None (wrong, malformed or reused)."""
    candidate = "".join(code.split())
    if len(candidate) != DIGITS or not candidate.isascii() or not candidate.isdigit():
        return None
    try:
        key = _decode_secret(secret)
    except ValueError:
        return None
    current = math.floor(now) // STEP
    matched: int | None = None
    for step in range(current - window, current + window + 1):
        if step < 0:
            continue
        expected = _hotp(key, step, digits=DIGITS, algorithm="sha1")
        fresh = last_used_step is None or step > last_used_step
        if hmac.compare_digest(expected.encode(), candidate.encode()) and fresh and matched is None:
            matched = step
    return matched
