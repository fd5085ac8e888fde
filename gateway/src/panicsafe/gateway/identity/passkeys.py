"""Passkeys (WebAuthn): a typed wrapper over py_webauthn where every failure is FORBIDDEN."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import options_to_json_dict, parse_registration_credential_json
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from panicsafe.contracts.errors import ErrorCode
from panicsafe.core.errors import ServiceError

TIMEOUT_MS = 120_000
MAX_CREDENTIAL_ID_BYTES = 1023
MAX_USER_HANDLE_BYTES = 64
# ES256 (almost every authenticator), EdDSA, RS256 (Windows Hello).
ALGORITHMS = [
    COSEAlgorithmIdentifier.ECDSA_SHA_256,
    COSEAlgorithmIdentifier.EDDSA,
    COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256,
]
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")

Credential = dict[str, Any] | str


@dataclass(frozen=True)
class PasskeyConfig:
    """The relying party: its id (a domain), its display name and the exact web origin."""

    rp_id: str
    rp_name: str
    origin: str


@dataclass(frozen=True)
class NewPasskey:
    """A verified registration: what to store for the credential."""

    credential_id: bytes
    public_key: bytes
    sign_count: int
    transports: list[str]


def _forbidden(message: str) -> ServiceError:
    """The single error this module raises."""
    return ServiceError(ErrorCode.FORBIDDEN, message)


def _b64url_decode(value: object) -> bytes:
    """Strict base64url decoding (padding optional)."""
    if not isinstance(value, str) or not _BASE64URL.fullmatch(value):
        raise _forbidden("malformed passkey credential")
    stripped = value.rstrip("=")
    try:
        return base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    except ValueError as exc:
        raise _forbidden("malformed passkey credential") from exc


def _as_dict(credential: Credential) -> dict[str, Any]:
    """The credential as a JSON object, whether given as a dict or as its JSON text."""
    if isinstance(credential, str):
        try:
            credential = json.loads(credential)
        except ValueError as exc:
            raise _forbidden("malformed passkey credential") from exc
    if not isinstance(credential, dict):
        raise _forbidden("malformed passkey credential")
    return credential


def credential_id_of(credential: Credential) -> bytes:
    """The raw credential id (from `rawId`, else `id`), to find the stored passkey."""
    data = _as_dict(credential)
    raw = data.get("rawId", data.get("id"))
    credential_id = _b64url_decode(raw)
    if not credential_id or len(credential_id) > MAX_CREDENTIAL_ID_BYTES:
        raise _forbidden("malformed passkey credential")
    return credential_id


def user_handle_of(credential: Credential) -> bytes | None:
    """The user handle an assertion carries (discoverable credentials), or None."""
    response = _as_dict(credential).get("response")
    if not isinstance(response, dict):
        raise _forbidden("malformed passkey credential")
    handle = response.get("userHandle")
    if handle is None or handle == "":
        return None
    return _b64url_decode(handle) or None


def _descriptors(ids: Sequence[bytes]) -> list[PublicKeyCredentialDescriptor]:
    """Credential descriptors for allow and exclude lists."""
    return [PublicKeyCredentialDescriptor(id=bytes(i)) for i in ids]


def registration_options(
    config: PasskeyConfig,
    *,
    user_id: bytes,
    user_name: str,
    display_name: str,
    exclude_credentials: Sequence[bytes] = (),
) -> tuple[dict[str, Any], bytes]:
    """Options for navigator.credentials.create() as JSON-ready dict, and the challenge to keep."""
    if not 1 <= len(user_id) <= MAX_USER_HANDLE_BYTES:
        raise ValueError("a WebAuthn user handle must be 1 to 64 bytes")
    options = generate_registration_options(
        rp_id=config.rp_id,
        rp_name=config.rp_name,
        user_id=bytes(user_id),
        user_name=user_name,
        user_display_name=display_name,
        timeout=TIMEOUT_MS,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            require_resident_key=False,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=_descriptors(exclude_credentials),
        supported_pub_key_algs=ALGORITHMS,
    )
    return options_to_json_dict(options), options.challenge


def authentication_options(
    config: PasskeyConfig, *, allow_credentials: Sequence[bytes] = ()
) -> tuple[dict[str, Any], bytes]:
    """Options for navigator.credentials.get() (empty allow list: discoverable passkeys), and challenge."""
    options = generate_authentication_options(
        rp_id=config.rp_id,
        timeout=TIMEOUT_MS,
        allow_credentials=_descriptors(allow_credentials),
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return options_to_json_dict(options), options.challenge


def verify_registration(config: PasskeyConfig, *, credential: Credential, expected_challenge: bytes) -> NewPasskey:
    """Check an attestation (challenge, origin, rp id, UV, algorithm) and return what to store."""
    if not expected_challenge:
        raise _forbidden("no passkey registration is pending")
    credential_id_of(credential)
    try:
        parsed = parse_registration_credential_json(_as_dict(credential))
        verified = verify_registration_response(
            credential=parsed,
            expected_challenge=expected_challenge,
            expected_rp_id=config.rp_id,
            expected_origin=config.origin,
            require_user_presence=True,
            require_user_verification=True,
            supported_pub_key_algs=ALGORITHMS,
        )
    except Exception as exc:  # any library failure means the passkey is not accepted
        raise _forbidden("passkey registration could not be verified") from exc
    transports = [t.value for t in parsed.response.transports or []]
    return NewPasskey(
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=transports,
    )


def verify_authentication(
    config: PasskeyConfig,
    *,
    credential: Credential,
    expected_challenge: bytes,
    public_key: bytes,
    sign_count: int,
) -> int:
    """Check an assertion against the stored key and counter; return the new sign count to store."""
    if not expected_challenge:
        raise _forbidden("no passkey sign-in is pending")
    credential_id_of(credential)
    try:
        verified = verify_authentication_response(
            credential=_as_dict(credential),
            expected_challenge=expected_challenge,
            expected_rp_id=config.rp_id,
            expected_origin=config.origin,
            credential_public_key=public_key,
            credential_current_sign_count=sign_count,
            require_user_verification=True,
        )
    except Exception as exc:  # any library failure means the sign-in is refused
        raise _forbidden("passkey sign-in could not be verified") from exc
    return verified.new_sign_count
