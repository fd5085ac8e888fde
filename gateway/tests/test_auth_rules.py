"""The pure rules of the identity flows (`auth.rules`)."""

from __future__ import annotations

import uuid

from panicsafe.contracts.errors import ErrorCode
from panicsafe.gateway.auth import rules
from panicsafe.gateway.identity.passwords import PasswordProblem


def test_second_factor_methods_offer_recovery_always_and_the_rest_when_enrolled() -> None:
    assert rules.second_factor_methods(totp_enabled=False, passkeys=0) == ["recovery"]
    assert rules.second_factor_methods(totp_enabled=True, passkeys=0) == ["totp", "recovery"]
    assert rules.second_factor_methods(totp_enabled=False, passkeys=2) == ["passkey", "recovery"]
    assert rules.second_factor_methods(totp_enabled=True, passkeys=1) == ["totp", "passkey", "recovery"]


def test_a_passkey_answers_only_for_its_owner() -> None:
    owner, other = uuid.uuid4(), uuid.uuid4()
    assert rules.passkey_fits(challenge_user=None, key_user=owner, user_handle=None)
    assert rules.passkey_fits(challenge_user=owner, key_user=owner, user_handle=owner.bytes)
    assert not rules.passkey_fits(challenge_user=other, key_user=owner, user_handle=None)
    assert not rules.passkey_fits(challenge_user=None, key_user=owner, user_handle=other.bytes)


def test_a_malformed_token_matches_nothing() -> None:
    token = uuid.uuid4()
    assert rules.canonical_token(str(token).upper()) == str(token)
    for bad in ("", "not-a-uuid", "x" * 64):
        assert rules.canonical_token(bad) == rules.NO_SUCH_ID


def test_password_refusal_names_each_broken_rule() -> None:
    assert rules.password_refusal([]) is None
    refusal = rules.password_refusal(
        [PasswordProblem("too_short", "Trop court."), PasswordProblem("too_common", "Trop commun.")]
    )
    assert refusal is not None
    assert refusal.code == ErrorCode.INVALID
    assert refusal.message == "Trop court. Trop commun."
    assert [(f.field, f.message) for f in refusal.fields] == [("password", "too_short"), ("password", "too_common")]
