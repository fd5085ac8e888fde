"""Single-use recovery codes: generation, normalisation and hashing for storage."""

from __future__ import annotations

import hashlib
import secrets
import unicodedata

# Digits and lower-case letters without i, l, o and u: 32 symbols, none confusable with another
# (0 and 1 stay, their look-alikes o, i and l are read back as them), 5 bits each.
ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
GROUPS = 3
GROUP_LENGTH = 4
_LOOKALIKES = str.maketrans({"o": "0", "i": "1", "l": "1"})
# Spaces and every kind of dash (pasted from a PDF or a word processor).
_SEPARATORS = str.maketrans("", "", "-_. \t\r\n\u00a0\u2010\u2011\u2012\u2013\u2014\u2212")


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
    """SHA-256 hex of the normalised code (60 random bits make a slow hash unnecessary)."""
    return hashlib.sha256(normalize_recovery_code(code).encode("utf-8")).hexdigest()
