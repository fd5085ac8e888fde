"""Passkeys through passkeys.py with a software authenticator: ceremonies and every refusal."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from panicsafe.contracts.errors import ErrorCode
from panicsafe.core.errors import ServiceError
from panicsafe.gateway.identity.passkeys import (
    NewPasskey,
    PasskeyConfig,
    authentication_options,
    credential_id_of,
    registration_options,
    user_handle_of,
    verify_authentication,
    verify_registration,
)


def _load_softauthn() -> ModuleType:
    """softauthn.py sits next to this file; pytest's importlib mode does not put it on sys.path."""
    spec = importlib.util.spec_from_file_location("gateway_tests_softauthn", Path(__file__).with_name("softauthn.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


softauthn = _load_softauthn()
SoftAuthenticator: Any = softauthn.SoftAuthenticator
b64url: Callable[[bytes], str] = softauthn.b64url
unb64url: Callable[[str], bytes] = softauthn.unb64url

ORIGIN = "https://bunker.chu-exemple.fr"
RP_ID = "bunker.chu-exemple.fr"
CONFIG = PasskeyConfig(rp_id=RP_ID, rp_name="PanicSAFE", origin=ORIGIN)
USER_ID = bytes(range(16))


def refused(action: Callable[[], object]) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        action()
    assert caught.value.code == ErrorCode.FORBIDDEN
    return caught.value


def register(authenticator: Any, user_id: bytes = USER_ID) -> NewPasskey:
    options, challenge = registration_options(CONFIG, user_id=user_id, user_name="mcurie", display_name="Marie Curie")
    return verify_registration(CONFIG, credential=authenticator.create(options), expected_challenge=challenge)


def sign_in(authenticator: Any, passkey: NewPasskey, sign_count: int) -> int:
    options, challenge = authentication_options(CONFIG, allow_credentials=[passkey.credential_id])
    return verify_authentication(
        CONFIG,
        credential=authenticator.get(options),
        expected_challenge=challenge,
        public_key=passkey.public_key,
        sign_count=sign_count,
    )


def test_registration_options_shape() -> None:
    options, challenge = registration_options(
        CONFIG,
        user_id=USER_ID,
        user_name="mcurie",
        display_name="Marie Curie",
        exclude_credentials=[b"\x01\x02"],
    )
    assert len(challenge) == 64
    assert options == {
        "rp": {"name": "PanicSAFE", "id": RP_ID},
        "user": {"id": b64url(USER_ID), "name": "mcurie", "displayName": "Marie Curie"},
        "challenge": b64url(challenge),
        "pubKeyCredParams": [
            {"type": "public-key", "alg": -7},
            {"type": "public-key", "alg": -8},
            {"type": "public-key", "alg": -257},
        ],
        "timeout": 120000,
        "excludeCredentials": [{"id": "AQI", "type": "public-key"}],
        "authenticatorSelection": {
            "residentKey": "preferred",
            "requireResidentKey": False,
            "userVerification": "required",
        },
        "attestation": "none",
    }
    json.dumps(options)  # JSON-ready


def test_registration_options_refuse_bad_user_handles() -> None:
    with pytest.raises(ValueError, match="user handle"):
        registration_options(CONFIG, user_id=b"", user_name="m", display_name="M")
    with pytest.raises(ValueError, match="user handle"):
        registration_options(CONFIG, user_id=b"x" * 65, user_name="m", display_name="M")


def test_authentication_options_shape() -> None:
    options, challenge = authentication_options(CONFIG)
    assert options == {
        "challenge": b64url(challenge),
        "timeout": 120000,
        "rpId": RP_ID,
        "allowCredentials": [],
        "userVerification": "required",
    }
    allowed, _ = authentication_options(CONFIG, allow_credentials=[b"\xff\xfe"])
    assert allowed["allowCredentials"] == [{"id": "__4", "type": "public-key"}]


def test_register_then_authenticate() -> None:
    authenticator = SoftAuthenticator(ORIGIN, RP_ID)
    passkey = register(authenticator)
    stored = authenticator.credentials[0]
    assert passkey.credential_id == stored.credential_id
    assert len(passkey.credential_id) == 16
    assert passkey.public_key == stored.cose_public_key()
    assert passkey.sign_count == 0
    assert passkey.transports == ["hybrid", "internal"]
    assert sign_in(authenticator, passkey, passkey.sign_count) == 1
    assert sign_in(authenticator, passkey, 1) == 2


def test_credential_given_as_json_text() -> None:
    authenticator = SoftAuthenticator(ORIGIN, RP_ID)
    options, challenge = registration_options(CONFIG, user_id=USER_ID, user_name="m", display_name="M")
    passkey = verify_registration(
        CONFIG, credential=json.dumps(authenticator.create(options)), expected_challenge=challenge
    )
    options, challenge = authentication_options(CONFIG)
    assertion = json.dumps(authenticator.get(options))
    assert credential_id_of(assertion) == passkey.credential_id
    count = verify_authentication(
        CONFIG,
        credential=assertion,
        expected_challenge=challenge,
        public_key=passkey.public_key,
        sign_count=0,
    )
    assert count == 1


def test_discoverable_login_reveals_credential_and_user_handle() -> None:
    authenticator = SoftAuthenticator(ORIGIN, RP_ID)
    register(authenticator, user_id=b"other-user-00001")
    passkey = register(authenticator, user_id=USER_ID)
    options, challenge = authentication_options(CONFIG)
    assertion = authenticator.get(options)
    assert credential_id_of(assertion) == passkey.credential_id
    assert user_handle_of(assertion) == USER_ID
    new_count = verify_authentication(
        CONFIG,
        credential=assertion,
        expected_challenge=challenge,
        public_key=passkey.public_key,
        sign_count=0,
    )
    assert new_count == 1


def test_user_handle_absent() -> None:
    assertion = {"id": "AQI", "rawId": "AQI", "response": {"userHandle": None}}
    assert user_handle_of(assertion) is None
    assert user_handle_of({"rawId": "AQI", "response": {}}) is None
    assert credential_id_of({"id": "AQI"}) == b"\x01\x02"


@pytest.mark.parametrize(
    "credential",
    ["", "not json", "[]", {}, {"rawId": 12}, {"rawId": "a+b/"}, {"rawId": "AQI!"}, {"rawId": ""}],
)
def test_credential_id_of_malformed(credential: dict[str, Any] | str) -> None:
    refused(lambda: credential_id_of(credential))


def test_user_handle_of_malformed() -> None:
    refused(lambda: user_handle_of({"rawId": "AQI"}))
    refused(lambda: user_handle_of({"rawId": "AQI", "response": {"userHandle": "%%%"}}))


def test_excluded_credentials_are_not_registered_twice() -> None:
    authenticator = SoftAuthenticator(ORIGIN, RP_ID)
    passkey = register(authenticator)
    options, _ = registration_options(
        CONFIG,
        user_id=USER_ID,
        user_name="mcurie",
        display_name="Marie Curie",
        exclude_credentials=[passkey.credential_id],
    )
    assert options["excludeCredentials"] == [{"id": b64url(passkey.credential_id), "type": "public-key"}]
    with pytest.raises(LookupError, match="InvalidStateError"):
        authenticator.create(options)


# Registration refusals.


def test_registration_wrong_challenge() -> None:
    options, challenge = registration_options(CONFIG, user_id=USER_ID, user_name="m", display_name="M")
    credential = SoftAuthenticator(ORIGIN, RP_ID).create(options)
    error = refused(lambda: verify_registration(CONFIG, credential=credential, expected_challenge=challenge[::-1]))
    assert error.message == "passkey registration could not be verified"
    refused(lambda: verify_registration(CONFIG, credential=credential, expected_challenge=b""))
    assert verify_registration(CONFIG, credential=credential, expected_challenge=challenge).sign_count == 0


@pytest.mark.parametrize(
    ("origin", "rp_id"),
    [
        ("https://evil.example", RP_ID),
        ("http://bunker.chu-exemple.fr", RP_ID),
        ("https://bunker.chu-exemple.fr:8443", RP_ID),
        (ORIGIN, "evil.example"),
        (ORIGIN, "chu-exemple.fr"),
    ],
)
def test_registration_wrong_origin_or_rp_id(origin: str, rp_id: str) -> None:
    options, challenge = registration_options(CONFIG, user_id=USER_ID, user_name="m", display_name="M")
    credential = SoftAuthenticator(origin, rp_id).create(options)
    refused(lambda: verify_registration(CONFIG, credential=credential, expected_challenge=challenge))


def test_registration_without_user_verification() -> None:
    options, challenge = registration_options(CONFIG, user_id=USER_ID, user_name="m", display_name="M")
    credential = SoftAuthenticator(ORIGIN, RP_ID, user_verified=False).create(options)
    refused(lambda: verify_registration(CONFIG, credential=credential, expected_challenge=challenge))


def test_registration_with_mismatched_ids_or_tampered_data() -> None:
    options, challenge = registration_options(CONFIG, user_id=USER_ID, user_name="m", display_name="M")
    credential = SoftAuthenticator(ORIGIN, RP_ID).create(options)
    other_id = dict(credential, id=b64url(b"\x00" * 16))
    refused(lambda: verify_registration(CONFIG, credential=other_id, expected_challenge=challenge))
    broken = dict(credential, response=dict(credential["response"], attestationObject=b64url(b"\xa0")))
    refused(lambda: verify_registration(CONFIG, credential=broken, expected_challenge=challenge))
    no_response = {k: v for k, v in credential.items() if k != "response"}
    refused(lambda: verify_registration(CONFIG, credential=no_response, expected_challenge=challenge))


def test_an_assertion_is_not_a_registration() -> None:
    authenticator = SoftAuthenticator(ORIGIN, RP_ID)
    register(authenticator)
    options, challenge = authentication_options(CONFIG)
    assertion = authenticator.get(options)
    refused(lambda: verify_registration(CONFIG, credential=assertion, expected_challenge=challenge))


# Authentication refusals.


def _assertion(authenticator: Any) -> tuple[dict[str, Any], bytes]:
    options, challenge = authentication_options(CONFIG)
    return authenticator.get(options), challenge


def test_authentication_wrong_challenge() -> None:
    authenticator = SoftAuthenticator(ORIGIN, RP_ID)
    passkey = register(authenticator)
    assertion, challenge = _assertion(authenticator)
    _, other_challenge = authentication_options(CONFIG)
    error = refused(
        lambda: verify_authentication(
            CONFIG,
            credential=assertion,
            expected_challenge=other_challenge,
            public_key=passkey.public_key,
            sign_count=0,
        )
    )
    assert error.message == "passkey sign-in could not be verified"
    refused(
        lambda: verify_authentication(
            CONFIG, credential=assertion, expected_challenge=b"", public_key=passkey.public_key, sign_count=0
        )
    )
    good = verify_authentication(
        CONFIG,
        credential=assertion,
        expected_challenge=challenge,
        public_key=passkey.public_key,
        sign_count=0,
    )
    assert good == 1


@pytest.mark.parametrize(
    ("origin", "rp_id"),
    [("https://evil.example", RP_ID), ("http://bunker.chu-exemple.fr", RP_ID), (ORIGIN, "evil.example")],
)
def test_authentication_wrong_origin_or_rp_id(origin: str, rp_id: str) -> None:
    authenticator = SoftAuthenticator(ORIGIN, RP_ID)
    passkey = register(authenticator)
    authenticator.origin = origin
    authenticator.rp_id = rp_id
    authenticator.credentials[0].rp_id = rp_id
    assertion, challenge = _assertion(authenticator)
    refused(
        lambda: verify_authentication(
            CONFIG,
            credential=assertion,
            expected_challenge=challenge,
            public_key=passkey.public_key,
            sign_count=0,
        )
    )


def test_authentication_without_user_verification() -> None:
    authenticator = SoftAuthenticator(ORIGIN, RP_ID)
    passkey = register(authenticator)
    authenticator.user_verified = False
    assertion, challenge = _assertion(authenticator)
    refused(
        lambda: verify_authentication(
            CONFIG,
            credential=assertion,
            expected_challenge=challenge,
            public_key=passkey.public_key,
            sign_count=0,
        )
    )


def _flip(text: str, index: int) -> str:
    raw = bytearray(unb64url(text))
    raw[index] ^= 0x01
    return b64url(bytes(raw))


@pytest.mark.parametrize(
    ("field", "index"),
    [("signature", -1), ("signature", 10), ("authenticatorData", -1), ("clientDataJSON", -3)],
)
def test_tampered_assertion(field: str, index: int) -> None:
    authenticator = SoftAuthenticator(ORIGIN, RP_ID)
    passkey = register(authenticator)
    assertion, challenge = _assertion(authenticator)
    response = dict(assertion["response"])
    response[field] = _flip(response[field], index)
    tampered = dict(assertion, response=response)
    refused(
        lambda: verify_authentication(
            CONFIG,
            credential=tampered,
            expected_challenge=challenge,
            public_key=passkey.public_key,
            sign_count=0,
        )
    )


def test_replayed_assertion_and_lower_sign_count() -> None:
    authenticator = SoftAuthenticator(ORIGIN, RP_ID)
    passkey = register(authenticator)
    assertion, challenge = _assertion(authenticator)
    count = verify_authentication(
        CONFIG,
        credential=assertion,
        expected_challenge=challenge,
        public_key=passkey.public_key,
        sign_count=0,
    )
    assert count == 1
    # The same assertion again (even with the same challenge): the counter did not move.
    refused(
        lambda: verify_authentication(
            CONFIG,
            credential=assertion,
            expected_challenge=challenge,
            public_key=passkey.public_key,
            sign_count=count,
        )
    )
    # A cloned authenticator behind the stored counter.
    later, later_challenge = _assertion(authenticator)
    refused(
        lambda: verify_authentication(
            CONFIG,
            credential=later,
            expected_challenge=later_challenge,
            public_key=passkey.public_key,
            sign_count=5,
        )
    )


def test_unknown_credential_is_refused() -> None:
    mine = SoftAuthenticator(ORIGIN, RP_ID)
    passkey = register(mine)
    stranger = SoftAuthenticator(ORIGIN, RP_ID)
    register(stranger)
    assertion, challenge = _assertion(stranger)
    assert credential_id_of(assertion) != passkey.credential_id
    refused(
        lambda: verify_authentication(
            CONFIG,
            credential=assertion,
            expected_challenge=challenge,
            public_key=passkey.public_key,
            sign_count=0,
        )
    )
    # Even claiming the known credential id does not help: the signature is the stranger's.
    disguised = dict(assertion, id=b64url(passkey.credential_id), rawId=b64url(passkey.credential_id))
    refused(
        lambda: verify_authentication(
            CONFIG,
            credential=disguised,
            expected_challenge=challenge,
            public_key=passkey.public_key,
            sign_count=0,
        )
    )


def test_allow_list_excludes_other_credentials() -> None:
    authenticator = SoftAuthenticator(ORIGIN, RP_ID)
    register(authenticator)
    options, _ = authentication_options(CONFIG, allow_credentials=[b"\x00" * 16])
    with pytest.raises(LookupError, match="NotAllowedError"):
        authenticator.get(options)


@pytest.mark.parametrize("public_key", [b"", b"\xa0", b"not cbor at all"])
def test_corrupt_stored_public_key(public_key: bytes) -> None:
    authenticator = SoftAuthenticator(ORIGIN, RP_ID)
    register(authenticator)
    assertion, challenge = _assertion(authenticator)
    refused(
        lambda: verify_authentication(
            CONFIG, credential=assertion, expected_challenge=challenge, public_key=public_key, sign_count=0
        )
    )


@pytest.mark.parametrize("credential", ["", "{", "[]", {}, {"id": "AQI", "rawId": "AQI", "type": "public-key"}])
def test_malformed_assertions(credential: dict[str, Any] | str) -> None:
    refused(
        lambda: verify_authentication(
            CONFIG, credential=credential, expected_challenge=b"c" * 32, public_key=b"\xa0", sign_count=0
        )
    )
