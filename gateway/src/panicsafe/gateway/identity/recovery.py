"""Single-use recovery codes: generation, normalisation, and storage as salted Argon2id hashes.

A code has 60 random bits. Its bare SHA-256 (what was stored before revision 0006) lets one guess be
tried against every stored code at once, at billions of guesses a second; an Argon2id hash with a
salt of its own makes each guess cost ~20 ms against a single code. Stored forms:

- `$argon2id$...`: Argon2id of the normalised code (every code made since revision 0006);
- `sha256$argon2id$...`: Argon2id of the old SHA-256 hex digest of the normalised code: the codes
  made before, whose bare digests revision 0006 wrapped (the codes themselves were never stored);
- a bare SHA-256 hex digest: only if a replica still running the old code writes one during a rolling
  upgrade. Still accepted, so that no code a person holds stops working; regenerating replaces it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from collections.abc import Iterable

from argon2.exceptions import VerificationError

from panicsafe.gateway.identity.passwords import ARGON2ID

# Digits and lower-case letters without i, l, o and u: 32 symbols, none confusable with another
# (0 and 1 stay, their look-alikes o, i and l are read back as them), 5 bits each.
ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
GROUPS = 3
GROUP_LENGTH = 4
LEGACY_PREFIX = "sha256"
_LOOKALIKES = str.maketrans({"o": "0", "i": "1", "l": "1"})
# Spaces and every kind of dash (pasted from a PDF or a word processor).
_SEPARATORS = str.maketrans("", "", "-_. \t\r\n\u00a0\u2010\u2011\u2012\u2013\u2014\u2212")
_BARE_DIGEST = re.compile(r"[0-9a-f]{64}")


def new_recovery_codes(count: int = 10) -> list[str]:
    """Fresh codes `xxxx-xxxx-xxxx`, 60 random bits each."""
    if count < 1:
        raise ValueError("count must be at least 1")
    return ["-".join(_group() for _ in range(GROUPS)) for _ in range(count)]


def _group() -> str:
    """Four random symbols of the alphabet."""
    return "".join(secrets.choice(ALPHABET) for _ in range(GROUP_LENGTH))


def normalize_recovery_code(text: str) -> str:
    """The canonical form of a typed code: lower case, no spaces or dashes, look-alikes mapped."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return folded.translate(_SEPARATORS).translate(_LOOKALIKES)


def hash_recovery_code(code: str) -> str:
    """Argon2id hash (PHC string, salt of its own) of the normalised code, for storage."""
    return ARGON2ID.hash(normalize_recovery_code(code))


def legacy_digest(code: str) -> str:
    """SHA-256 hex of the normalised code: how codes were stored before revision 0006."""
    return hashlib.sha256(normalize_recovery_code(code).encode("utf-8")).hexdigest()


def wrap_legacy_digest(digest: str) -> str:
    """The stored form of an old code known only by its bare digest: Argon2id over that digest."""
    if not _BARE_DIGEST.fullmatch(digest):
        raise ValueError("not a SHA-256 hex digest")
    return LEGACY_PREFIX + ARGON2ID.hash(digest)


def is_bare_digest(stored: str) -> bool:
    return _BARE_DIGEST.fullmatch(stored) is not None


def verify_recovery_code(stored: str, code: str) -> bool:
    """Whether `code` is the one `stored` was made from, whichever stored form; never raises."""
    try:
        if stored.startswith(LEGACY_PREFIX + "$"):
            return ARGON2ID.verify(stored.removeprefix(LEGACY_PREFIX), legacy_digest(code))
        if is_bare_digest(stored):
            return hmac.compare_digest(stored, legacy_digest(code))
        return ARGON2ID.verify(stored, normalize_recovery_code(code))
    except (VerificationError, ValueError):
        # A mismatch, a corrupt hash (InvalidHashError), a non-ASCII hash string.
        return False


def matching_code(code: str, stored: Iterable[str]) -> str | None:
    """The stored hash `code` matches, if any: one Argon2id verification per candidate (run it in a thread)."""
    return next((candidate for candidate in stored if verify_recovery_code(candidate, code)), None)
