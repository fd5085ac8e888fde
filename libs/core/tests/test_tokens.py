"""The internal actor token: round trip, expiry, forgery, audience, lifetime, algorithms, rotation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from panicsafe.contracts.actor import Actor, CrisisMembership
from panicsafe.contracts.errors import ErrorCode
from panicsafe.core.tokens import (
    ALGORITHM,
    ISSUER,
    LEEWAY_S,
    MAX_TTL_S,
    SigningKey,
    TokenError,
    TokenSigner,
    TokenVerifier,
    load_or_create_key,
    public_pem,
    write_private_keys,
    write_public_keys,
)

AUDIENCE = "chat"
T0 = 1_900_000_000.0  # a fixed clock: every test passes `now=` explicitly


def make_actor() -> Actor:
    crisis_a, crisis_b = str(uuid.uuid4()), str(uuid.uuid4())
    return Actor(
        subject=f"user-{uuid.uuid4().hex[:8]}",
        tenant=str(uuid.uuid4()),
        tenant_roles=["tenant-admin"],
        memberships=[
            CrisisMembership(crisis=crisis_a, roles=["director", "scribe"], cells=["decision", "comms"]),
            CrisisMembership(crisis=crisis_b, roles=["observer"], cells=[]),
        ],
    )


def verifier_for(*keys: SigningKey, audience: str = AUDIENCE) -> TokenVerifier:
    verifier = TokenVerifier(audience=audience)
    for key in keys:
        verifier.add_key(key.kid, key.public_key)
    return verifier


def claims_for(actor: Actor, *, issued: int, lifetime: int, audience: str = AUDIENCE) -> dict[str, Any]:
    return {
        "iss": ISSUER,
        "aud": audience,
        "sub": actor.subject,
        "iat": issued,
        "nbf": issued,
        "exp": issued + lifetime,
        "jti": uuid.uuid4().hex,
        "act": actor.model_dump(mode="json", exclude={"subject"}),
    }


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def refused(verifier: TokenVerifier, token: str, *, now: float = T0, match: str | None = None) -> TokenError:
    with pytest.raises(TokenError, match=match) as info:
        verifier.verify(token, now=now)
    assert info.value.code == ErrorCode.UNAUTHENTICATED
    return info.value


def test_valid_token_round_trips_to_the_same_actor() -> None:
    key = SigningKey.generate()
    actor = make_actor()
    token = TokenSigner(key, ttl_s=120).issue(actor, audience=AUDIENCE, now=T0)

    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA"
    assert header["kid"] == key.kid

    verified = verifier_for(key).verify(token, now=T0 + 60)
    assert verified == actor
    assert verified.subject == actor.subject
    assert verified.tenant == actor.tenant
    assert verified.tenant_roles == ["tenant-admin"]
    first = verified.membership(actor.memberships[0].crisis)
    assert first is not None
    assert first.roles == ["director", "scribe"]
    assert first.cells == ["decision", "comms"]
    second = verified.membership(actor.memberships[1].crisis)
    assert second is not None
    assert second.roles == ["observer"]
    assert second.cells == []


def test_issued_claims_carry_issuer_audience_and_lifetime() -> None:
    key = SigningKey.generate()
    actor = make_actor()
    token = TokenSigner(key, ttl_s=90).issue(actor, audience=AUDIENCE, now=T0)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == ISSUER
    assert claims["aud"] == AUDIENCE
    assert claims["sub"] == actor.subject
    assert claims["iat"] == claims["nbf"] == int(T0)
    assert claims["exp"] == int(T0) + 90
    assert "subject" not in claims["act"]


def test_expired_token_is_refused() -> None:
    key = SigningKey.generate()
    verifier = verifier_for(key)
    actor = make_actor()
    token = TokenSigner(key, ttl_s=60).issue(actor, audience=AUDIENCE, now=T0)

    # Still accepted at the very edge of the leeway ...
    assert verifier.verify(token, now=T0 + 60 + LEEWAY_S) == actor
    # ... refused one second later, and long after.
    refused(verifier, token, now=T0 + 60 + LEEWAY_S + 1, match="expired")
    refused(verifier, token, now=T0 + 3600, match="expired")


def test_token_not_yet_valid_is_refused() -> None:
    key = SigningKey.generate()
    verifier = verifier_for(key)
    token = TokenSigner(key).issue(make_actor(), audience=AUDIENCE, now=T0)
    refused(verifier, token, now=T0 - LEEWAY_S - 1, match="not yet valid")


@pytest.mark.parametrize("part", ["signature", "payload", "header"])
def test_altered_token_is_refused(part: str) -> None:
    key = SigningKey.generate()
    verifier = verifier_for(key)
    actor = make_actor()
    token = TokenSigner(key).issue(actor, audience=AUDIENCE, now=T0)
    header_b64, payload_b64, signature_b64 = token.split(".")

    if part == "signature":
        signature = bytearray(base64.urlsafe_b64decode(signature_b64 + "=" * (-len(signature_b64) % 4)))
        assert len(signature) == 64
        signature[10] ^= 0x01
        forged = f"{header_b64}.{payload_b64}.{b64url(bytes(signature))}"
    elif part == "payload":
        claims = jwt.decode(token, options={"verify_signature": False})
        claims["act"]["tenant_roles"] = ["tenant-admin", "superuser"]
        payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
        forged = f"{header_b64}.{payload}.{signature_b64}"
    else:
        header = jwt.get_unverified_header(token)
        header["typ"] = "JOSE"
        forged = f"{b64url(json.dumps(header).encode())}.{payload_b64}.{signature_b64}"

    assert forged != token
    refused(verifier, forged)
    # The untouched token still verifies: the refusal came from the alteration.
    assert verifier.verify(token, now=T0) == actor


def test_token_signed_by_another_key_reusing_the_kid_is_refused() -> None:
    key = SigningKey.generate()
    impostor = SigningKey(kid=key.kid, private_key=Ed25519PrivateKey.generate())
    token = TokenSigner(impostor).issue(make_actor(), audience=AUDIENCE, now=T0)
    assert jwt.get_unverified_header(token)["kid"] == key.kid
    refused(verifier_for(key), token)


def test_token_signed_by_an_unknown_kid_is_refused() -> None:
    known, unknown = SigningKey.generate(), SigningKey.generate()
    token = TokenSigner(unknown).issue(make_actor(), audience=AUDIENCE, now=T0)
    refused(verifier_for(known), token, match="unknown signing key")


def test_token_without_kid_is_refused() -> None:
    key = SigningKey.generate()
    actor = make_actor()
    token = jwt.encode(claims_for(actor, issued=int(T0), lifetime=60), key.private_key, algorithm=ALGORITHM)
    assert "kid" not in jwt.get_unverified_header(token)
    refused(verifier_for(key), token, match="unknown signing key")


def test_token_for_another_audience_is_refused() -> None:
    key = SigningKey.generate()
    token = TokenSigner(key).issue(make_actor(), audience="video", now=T0)
    refused(verifier_for(key, audience=AUDIENCE), token, match="another service")
    assert verifier_for(key, audience="video").verify(token, now=T0).tenant


def test_token_from_another_issuer_is_refused() -> None:
    key = SigningKey.generate()
    claims = {**claims_for(make_actor(), issued=int(T0), lifetime=60), "iss": "someone-else"}
    token = jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})
    refused(verifier_for(key), token)


def test_token_living_longer_than_five_minutes_is_refused() -> None:
    key = SigningKey.generate()
    verifier = verifier_for(key)
    actor = make_actor()

    exactly_max = jwt.encode(
        claims_for(actor, issued=int(T0), lifetime=MAX_TTL_S),
        key.private_key,
        algorithm=ALGORITHM,
        headers={"kid": key.kid},
    )
    assert verifier.verify(exactly_max, now=T0 + 1) == actor

    too_long = jwt.encode(
        claims_for(actor, issued=int(T0), lifetime=MAX_TTL_S + 1),
        key.private_key,
        algorithm=ALGORITHM,
        headers={"kid": key.kid},
    )
    # Correctly signed, within its own validity window, and still refused.
    refused(verifier, too_long, now=T0 + 1, match="five minutes")


def test_token_with_malformed_time_claims_is_refused() -> None:
    key = SigningKey.generate()
    claims = claims_for(make_actor(), issued=int(T0), lifetime=60)
    claims["exp"] = float(claims["exp"]) + 0.5
    token = jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})
    refused(verifier_for(key), token, match="time claims malformed")


@pytest.mark.parametrize("missing", ["exp", "iat", "nbf", "sub", "aud", "iss"])
def test_token_missing_a_required_claim_is_refused(missing: str) -> None:
    key = SigningKey.generate()
    claims = claims_for(make_actor(), issued=int(T0), lifetime=60)
    del claims[missing]
    token = jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})
    refused(verifier_for(key), token)


def test_unsigned_alg_none_token_is_refused() -> None:
    key = SigningKey.generate()
    claims = claims_for(make_actor(), issued=int(T0), lifetime=60)
    for alg in ("none", "None", "NONE"):
        header = {"alg": alg, "typ": "JWT", "kid": key.kid}
        unsigned = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}."
        refused(verifier_for(key), unsigned, match="algorithm")


def test_hs256_token_is_refused() -> None:
    key = SigningKey.generate()
    claims = claims_for(make_actor(), issued=int(T0), lifetime=60)
    hmac_token = jwt.encode(claims, secrets.token_bytes(64), algorithm="HS256", headers={"kid": key.kid})
    assert jwt.get_unverified_header(hmac_token)["alg"] == "HS256"
    refused(verifier_for(key), hmac_token, match="algorithm")


def test_hs256_token_keyed_with_the_public_key_is_refused() -> None:
    """Algorithm confusion: an HMAC over the (public) verification key must not pass."""
    key = SigningKey.generate()
    claims = claims_for(make_actor(), issued=int(T0), lifetime=60)
    header = {"alg": "HS256", "typ": "JWT", "kid": key.kid}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    mac = hmac.new(public_pem(key.public_key), signing_input.encode(), hashlib.sha256).digest()
    refused(verifier_for(key), f"{signing_input}.{b64url(mac)}", match="algorithm")


@pytest.mark.parametrize("garbage", ["", "not-a-token", "a.b.c", "a.b", "...."])
def test_malformed_token_is_refused(garbage: str) -> None:
    refused(verifier_for(SigningKey.generate()), garbage)


def test_rotation_keeps_old_tokens_until_they_expire() -> None:
    old, new = SigningKey.generate(), SigningKey.generate()
    signer = TokenSigner(old, ttl_s=120)
    verifier = verifier_for(old)
    actor = make_actor()

    old_token = signer.issue(actor, audience=AUDIENCE, now=T0)
    assert jwt.get_unverified_header(old_token)["kid"] == old.kid

    # Verifiers learn the new public key first, then the gateway switches to it.
    verifier.add_key(new.kid, new.public_key)
    signer.rotate(new)
    new_token = signer.issue(actor, audience=AUDIENCE, now=T0 + 30)
    assert jwt.get_unverified_header(new_token)["kid"] == new.kid
    assert signer.key is new

    # Both are valid side by side.
    assert verifier.verify(old_token, now=T0 + 60) == actor
    assert verifier.verify(new_token, now=T0 + 60) == actor
    # The old token still dies at its own expiry.
    refused(verifier, old_token, now=T0 + 120 + LEEWAY_S + 1, match="expired")
    assert verifier.verify(new_token, now=T0 + 120 + LEEWAY_S + 1) == actor

    # Once the old key leaves the ring, tokens it signed are refused even inside their lifetime.
    verifier.remove_key(old.kid)
    assert set(verifier.keys) == {new.kid}
    refused(verifier, old_token, now=T0 + 60, match="unknown signing key")
    assert verifier.verify(new_token, now=T0 + 60) == actor
    # Removing an absent key is a no-op.
    verifier.remove_key(old.kid)


def test_new_key_not_yet_published_is_refused() -> None:
    """Rotating the signer before the verifiers know the key breaks calls: the order matters."""
    old, new = SigningKey.generate(), SigningKey.generate()
    signer = TokenSigner(old)
    signer.rotate(new)
    token = signer.issue(make_actor(), audience=AUDIENCE, now=T0)
    refused(verifier_for(old), token, match="unknown signing key")


@pytest.mark.parametrize("ttl", [0, -1, MAX_TTL_S + 1, 3600])
def test_signer_refuses_lifetime_beyond_limits(ttl: int) -> None:
    with pytest.raises(ValueError, match="lifetime"):
        TokenSigner(SigningKey.generate(), ttl_s=ttl)


def test_signer_accepts_the_maximum_lifetime() -> None:
    assert TokenSigner(SigningKey.generate(), ttl_s=MAX_TTL_S).ttl_s == 300
    assert TokenSigner(SigningKey.generate(), ttl_s=1).ttl_s == 1


def test_key_ring_round_trips_through_two_directories(tmp_path: Path) -> None:
    """The signer's folder holds the private keys; the verifiers' folder the public halves only."""
    first, second = SigningKey.generate(), SigningKey.generate()
    private, public = tmp_path / "signer", tmp_path / "ring"
    write_private_keys(private, [first, second])
    write_public_keys(public, [first, second])

    assert sorted(p.name for p in private.iterdir()) == sorted([f"{first.kid}.pem", f"{second.kid}.pem"])
    assert sorted(p.name for p in public.iterdir()) == sorted([f"{first.kid}.pub.pem", f"{second.kid}.pub.pem"])
    assert private.stat().st_mode & 0o777 == 0o700
    for key in (first, second):
        assert (private / f"{key.kid}.pem").stat().st_mode & 0o777 == 0o600

    # A stray file or a non-Ed25519 key in the directory is ignored.
    (public / "README.txt").write_text("not a key")

    verifier = TokenVerifier.from_directory(AUDIENCE, public)
    assert set(verifier.keys) == {first.kid, second.kid}
    assert verifier.audience == AUDIENCE

    actor = make_actor()
    for key in (first, second):
        reloaded = SigningKey.from_pem(key.kid, (private / f"{key.kid}.pem").read_bytes())
        assert reloaded.kid == key.kid
        token = TokenSigner(reloaded).issue(actor, audience=AUDIENCE, now=T0)
        assert jwt.get_unverified_header(token)["kid"] == key.kid
        assert verifier.verify(token, now=T0) == actor

    stranger = SigningKey.generate()
    refused(verifier, TokenSigner(stranger).issue(actor, audience=AUDIENCE, now=T0))


def test_a_verifier_refuses_a_folder_that_holds_a_private_key(tmp_path: Path) -> None:
    """Whoever reads a private key can mint a token for anyone: services must be given public keys only."""
    key = SigningKey.generate()
    write_public_keys(tmp_path, [key])
    write_private_keys(tmp_path, [key])
    with pytest.raises(ValueError, match="private keys"):
        TokenVerifier.from_directory(AUDIENCE, tmp_path)


def test_the_signing_key_is_made_once_then_reused(tmp_path: Path) -> None:
    made = load_or_create_key(tmp_path / "signer")
    again = load_or_create_key(tmp_path / "signer")
    assert again.kid == made.kid
    assert again.private_pem() == made.private_pem()
    assert [p.name for p in (tmp_path / "signer").iterdir()] == [f"{made.kid}.pem"]


def test_from_directory_skips_non_ed25519_public_keys(tmp_path: Path) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    (tmp_path / "k-ec.pub.pem").write_bytes(
        ec_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    key = SigningKey.generate()
    write_public_keys(tmp_path, [key])
    verifier = TokenVerifier.from_directory(AUDIENCE, tmp_path)
    assert set(verifier.keys) == {key.kid}


def test_from_pem_refuses_a_non_ed25519_key() -> None:
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ValueError, match="not an Ed25519 private key"):
        SigningKey.from_pem("k-ec", pem)


def test_subject_comes_from_sub_not_from_the_actor_claims() -> None:
    key = SigningKey.generate()
    actor = make_actor()
    claims = claims_for(actor, issued=int(T0), lifetime=60)
    claims["act"]["subject"] = "someone-else"
    token = jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})
    assert verifier_for(key).verify(token, now=T0).subject == actor.subject


def test_token_with_actor_claims_of_the_wrong_shape_is_refused() -> None:
    key = SigningKey.generate()
    claims = claims_for(make_actor(), issued=int(T0), lifetime=60)
    claims["act"] = {"tenant": 5, "memberships": "all"}
    token = jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})
    refused(verifier_for(key), token, match="claims malformed")


@pytest.mark.parametrize("act", [None, ["tenant-admin"], "tenant-admin"])
def test_token_with_non_object_actor_claims_is_refused(act: object) -> None:
    key = SigningKey.generate()
    claims = {**claims_for(make_actor(), issued=int(T0), lifetime=60), "act": act}
    token = jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})
    refused(verifier_for(key), token, match="claims malformed")


def test_token_with_future_iat_cannot_outlive_five_minutes() -> None:
    key = SigningKey.generate()
    claims = claims_for(make_actor(), issued=int(T0), lifetime=MAX_TTL_S)
    claims["iat"] = int(T0) + 86_400  # exp - iat == 300, yet valid from nbf = T0 for a day
    claims["exp"] = claims["iat"] + MAX_TTL_S
    token = jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})
    refused(verifier_for(key), token, now=T0 + 3600)


def test_reusable_tokens_follow_the_claims() -> None:
    """The gateway reuses a token for identical claims; any change of roles or memberships gets a new one."""
    key = SigningKey.generate()
    signer = TokenSigner(key, ttl_s=120)
    verifier = verifier_for(key)
    actor = make_actor()
    first = signer.issue_reusable(actor, audience=AUDIENCE)
    assert signer.issue_reusable(actor, audience=AUDIENCE) == first
    assert verifier.verify(first) == actor
    assert verifier.verify(first) == actor  # the second time from the verifier's cache
    assert signer.issue_reusable(actor, audience="docs") != first
    demoted = actor.model_copy(update={"memberships": actor.memberships[1:]})
    other = signer.issue_reusable(demoted, audience=AUDIENCE)
    assert other != first
    assert verifier.verify(other).memberships == actor.memberships[1:]
    signer.rotate(SigningKey.generate())
    assert signer.issue_reusable(actor, audience=AUDIENCE) != first
