"""Argon2id hashing and the password policy."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, Type

from panicsafe.gateway.identity import passwords
from panicsafe.gateway.identity.passwords import (
    PasswordProblem,
    hash_password,
    needs_rehash,
    password_problems,
    verify_against_dummy,
    verify_password,
)

STRONG = "vélo-Tortue-Grenade-47!"


def codes(password: str, *user_inputs: str) -> list[str]:
    return [p.code for p in password_problems(password, user_inputs=user_inputs)]


def test_hash_is_argon2id_with_owasp_parameters_and_salted() -> None:
    first = hash_password(STRONG)
    second = hash_password(STRONG)
    assert first.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert first != second
    assert verify_password(first, STRONG) is True
    assert verify_password(second, STRONG) is True


def test_wrong_password_is_refused() -> None:
    stored = hash_password(STRONG)
    assert verify_password(stored, STRONG + "x") is False
    assert verify_password(stored, STRONG.upper()) is False
    assert verify_password(stored, "") is False


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "not a hash",
        "$argon2id$v=19$m=19456,t=2,p=1$$",
        "$argon2id$v=19$m=1,t=2,p=1$c2FsdHNhbHQ$aGFzaA",
        "éééé",
        "$2b$12$abcdefghijklmnopqrstuuVuj1rjV0V6ZTcw1N3Y3BTKbK2a6dwm",
    ],
)
def test_malformed_hash_is_a_mismatch_not_an_error(stored: str) -> None:
    assert verify_password(stored, STRONG) is False
    assert needs_rehash(stored) is True


def test_password_is_nfkc_normalised_before_hashing() -> None:
    composed = "Caf\u00e9-Tortue-Grenade-47"
    decomposed = "Cafe\u0301-Tortue-Grenade-47"
    assert composed != decomposed
    assert verify_password(hash_password(composed), decomposed) is True


def test_needs_rehash_only_for_other_parameters() -> None:
    assert needs_rehash(hash_password(STRONG)) is False
    weaker = PasswordHasher(type=Type.ID, time_cost=1, memory_cost=8192, parallelism=1)
    assert needs_rehash(weaker.hash(STRONG)) is True
    argon2i = PasswordHasher(type=Type.I, time_cost=2, memory_cost=19456, parallelism=1)
    assert needs_rehash(argon2i.hash(STRONG)) is True


class _CountingHasher:
    """Wraps the real hasher and records which hashes were verified."""

    def __init__(self, real: PasswordHasher) -> None:
        self.real = real
        self.verified: list[str] = []

    def verify(self, stored: str, password: str) -> bool:
        self.verified.append(stored)
        return self.real.verify(stored, password)


def test_dummy_verification_does_a_real_argon2_verification(monkeypatch: pytest.MonkeyPatch) -> None:
    # Same parameters as a stored hash, hence the same cost.
    assert needs_rehash(passwords._DUMMY_HASH) is False
    assert passwords._DUMMY_HASH.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    spy = _CountingHasher(passwords._HASHER)
    monkeypatch.setattr(passwords, "_HASHER", spy)
    assert verify_against_dummy(STRONG) is False
    assert verify_against_dummy("") is False
    assert spy.verified == [passwords._DUMMY_HASH, passwords._DUMMY_HASH]


def test_strong_password_has_no_problem() -> None:
    assert password_problems(STRONG) == []
    assert password_problems(STRONG, user_inputs=["mcurie", "Marie Curie"]) == []


def test_too_short_with_french_message() -> None:
    assert password_problems("Zq7!vB2#") == [
        PasswordProblem("too_short", "Le mot de passe doit contenir au moins 12 caractères."),
        PasswordProblem(
            "too_common",
            "Ce mot de passe est trop facile à deviner : allongez-le ou choisissez une phrase "
            "de plusieurs mots inhabituels.",
        ),
    ]


def test_length_is_counted_in_code_points_after_nfkc() -> None:
    # Twelve code points as typed, six once "e" + combining accent are composed.
    assert "too_short" in codes("e\u0301" * 6)
    # Eleven code points as typed, twelve once the "fi" ligature is decomposed.
    assert len("\ufb01Quartz-V82") == 11
    assert "too_short" not in codes("\ufb01Quartz-V82")
    assert "too_short" in codes("fQuartz-V82")


def test_too_long_above_256() -> None:
    at_limit = ("Tortue-Grenade-47!" * 15)[:256]
    assert "too_long" not in codes(at_limit)
    problems = password_problems("a" * 257)
    assert [p.code for p in problems] == ["too_long"]
    assert problems[0].message == "Le mot de passe ne doit pas dépasser 256 caractères."


@pytest.mark.parametrize("password", ["password1234", "Motdepasse123", "qwertyuiop123", "aaaaaaaaaaaaaaa"])
def test_common_passwords(password: str) -> None:
    assert codes(password) == ["too_common"]


def test_contains_login() -> None:
    assert codes("jdupont-Kestrel-Maple-93", "jdupont", "Jean Dupont") == ["contains_personal"]
    assert codes("JDUPONT-Kestrel-Maple-93", "jdupont") == ["contains_personal"]


def test_contains_display_name_token_accent_and_case_insensitive() -> None:
    assert codes("Helene!Quartz-Violon-82", "hmartin", "Hélène Martin-Dubois") == ["contains_personal"]
    assert codes("Quartz-DUBOIS-Violon-82", "hmartin", "Hélène Martin-Dubois") == ["contains_personal"]
    message = password_problems("Quartz-DUBOIS-Violon-82", user_inputs=["Hélène Martin-Dubois"])[0].message
    assert message == "Le mot de passe ne doit contenir ni votre identifiant ni votre nom."


def test_short_name_tokens_are_ignored() -> None:
    assert codes("Wu!Quartz-Violon-82x", "lw", "Li Wu") == []
