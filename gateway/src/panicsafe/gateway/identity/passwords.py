"""Password hashing (Argon2id) and the policy a new password must meet."""

from __future__ import annotations

import re
import secrets
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from argon2 import PasswordHasher, Type
from argon2.exceptions import VerificationError
from zxcvbn import zxcvbn  # no type hints: see the mypy override in pyproject.toml

MIN_LENGTH = 12
MAX_LENGTH = 256
MIN_SCORE = 3
MIN_PERSONAL_TOKEN = 4

# OWASP minimum for Argon2id: 19 MiB, 2 iterations, 1 lane. Recovery codes use it too (`recovery`).
ARGON2ID = PasswordHasher(type=Type.ID, time_cost=2, memory_cost=19456, parallelism=1)
_HASHER = ARGON2ID
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(32))
# zxcvbn stores the user inputs in a module-level dictionary: calls must not interleave.
_ZXCVBN_LOCK = threading.Lock()
_TOKEN_SPLIT = re.compile(r"[\W_]+")


def _normalize(password: str) -> str:
    """NFKC form, so the same password typed on another keyboard or system still matches."""
    return unicodedata.normalize("NFKC", password)


def hash_password(password: str) -> str:
    """Argon2id hash (PHC string) of the NFKC-normalised password."""
    return _HASHER.hash(_normalize(password))


def verify_password(stored_hash: str, password: str) -> bool:
    """Whether the password matches the stored hash; False (never an exception) otherwise."""
    try:
        return _HASHER.verify(stored_hash, _normalize(password))
    except (VerificationError, ValueError):
        # VerifyMismatchError, a corrupt hash (InvalidHashError), a non-ASCII hash string.
        return False


def needs_rehash(stored_hash: str) -> bool:
    """Whether the hash was made with other parameters than today's (True for a malformed hash)."""
    try:
        return _HASHER.check_needs_rehash(stored_hash)
    except ValueError:
        return True


def verify_against_dummy(password: str) -> bool:
    """Always False, after the same work as a real verification (for unknown accounts)."""
    verify_password(_DUMMY_HASH, password)
    return False


@dataclass(frozen=True)
class PasswordProblem:
    """One rule a candidate password breaks: a stable code and a French message."""

    code: str
    message: str


def _fold(text: str) -> str:
    """Case- and accent-insensitive form for comparisons."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _personal_tokens(user_inputs: Sequence[str]) -> set[str]:
    """Each input whole, and each of its words, when at least 4 characters long."""
    tokens: set[str] = set()
    for value in user_inputs:
        folded = _fold(value.strip())
        for token in (folded, *_TOKEN_SPLIT.split(folded)):
            if len(token) >= MIN_PERSONAL_TOKEN:
                tokens.add(token)
    return tokens


def _score(password: str, user_inputs: Sequence[str]) -> int:
    """zxcvbn score from 0 (guessable) to 4."""
    with _ZXCVBN_LOCK:
        result = zxcvbn(password, user_inputs=list(user_inputs), max_length=MAX_LENGTH)
    score = result["score"]
    return int(score)


def password_problems(password: str, *, user_inputs: Sequence[str] = ()) -> list[PasswordProblem]:
    """Every rule the password breaks (empty when acceptable); user_inputs: login, names, e-mail."""
    normalized = _normalize(password)
    length = len(normalized)
    problems: list[PasswordProblem] = []
    if length < MIN_LENGTH:
        problems.append(
            PasswordProblem("too_short", f"Le mot de passe doit contenir au moins {MIN_LENGTH} caractères.")
        )
    if length > MAX_LENGTH:
        problems.append(PasswordProblem("too_long", f"Le mot de passe ne doit pas dépasser {MAX_LENGTH} caractères."))
        return problems
    if _score(normalized, user_inputs) < MIN_SCORE:
        problems.append(
            PasswordProblem(
                "too_common",
                "Ce mot de passe est trop facile à deviner : allongez-le ou choisissez une phrase "
                "de plusieurs mots inhabituels.",
            )
        )
    folded = _fold(normalized)
    if any(token in folded for token in _personal_tokens(user_inputs)):
        problems.append(
            PasswordProblem(
                "contains_personal",
                "Le mot de passe ne doit contenir ni votre identifiant ni votre nom.",
            )
        )
    return problems
