"""Recovery codes: format, entropy, normalisation and hashing."""

from __future__ import annotations

import hashlib
import math
import re

import pytest

from panicsafe.gateway.identity.recovery import (
    ALPHABET,
    hash_recovery_code,
    matching_code,
    new_recovery_codes,
    normalize_recovery_code,
    verify_recovery_code,
    wrap_legacy_digest,
)

FORMAT = re.compile(r"[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}")


def test_alphabet_has_no_look_alikes_and_gives_60_bits() -> None:
    assert len(ALPHABET) == len(set(ALPHABET)) == 32
    assert not set(ALPHABET) & set("ilou")
    assert 12 * math.log2(len(ALPHABET)) >= 60


def test_ten_codes_by_default_in_the_expected_format() -> None:
    codes = new_recovery_codes()
    assert len(codes) == 10
    assert len(set(codes)) == 10
    for code in codes:
        assert FORMAT.fullmatch(code), code


def test_count_and_spread() -> None:
    codes = new_recovery_codes(400)
    assert len(codes) == 400
    used = {c for code in codes for c in code.replace("-", "")}
    assert used == set(ALPHABET)
    with pytest.raises(ValueError, match="count"):
        new_recovery_codes(0)


def test_normalisation() -> None:
    assert normalize_recovery_code("ab3d-ef9h-jk2m") == "ab3def9hjk2m"
    assert normalize_recovery_code("  AB3D EF9H\tJK2M\n") == "ab3def9hjk2m"
    assert normalize_recovery_code("ab3d\u2013ef9h\u2011jk2m") == "ab3def9hjk2m"
    # Look-alikes are read as the symbols of the alphabet.
    assert normalize_recovery_code("OOIL-0011") == "00110011"
    # Full-width characters typed on some keyboards.
    assert normalize_recovery_code("ＡＢ３Ｄ") == "ab3d"


def test_hash_is_salted_argon2id_of_the_normalised_code() -> None:
    code = "ab3d-ef9h-jk2m"
    stored = hash_recovery_code(code)
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert hash_recovery_code(code) != stored  # a salt of its own: equal codes, different hashes
    assert hashlib.sha256(b"ab3def9hjk2m").hexdigest() not in stored
    for typed in (code, "AB3D EF9H JK2M", "ab3def9hjk2m", "ab3d\u2013ef9h-jk2m"):
        assert verify_recovery_code(stored, typed)
    assert not verify_recovery_code(stored, "ab3d-ef9h-jk2n")
    assert not verify_recovery_code(stored, "")


def test_codes_made_before_argon2id_still_verify() -> None:
    code = "ab3d-ef9h-jk2m"
    digest = hashlib.sha256(b"ab3def9hjk2m").hexdigest()
    wrapped = wrap_legacy_digest(digest)  # what revision 0006 stores for an old code
    assert wrapped.startswith("sha256$argon2id$")
    assert digest not in wrapped
    assert verify_recovery_code(wrapped, "AB3D EF9H JK2M")
    assert not verify_recovery_code(wrapped, "ab3d-ef9h-jk2n")
    assert not verify_recovery_code(wrapped, digest)  # knowing the old digest is not knowing the code
    # A bare digest written by a replica on the old code during a rolling upgrade.
    assert verify_recovery_code(digest, code)
    assert not verify_recovery_code(digest, "ab3d-ef9h-jk2n")
    with pytest.raises(ValueError, match="digest"):
        wrap_legacy_digest("not-a-digest")


def test_a_corrupt_stored_hash_matches_nothing() -> None:
    for stored in ("", "$argon2id$garbage", "sha256$nothing", "é" * 64):
        assert not verify_recovery_code(stored, "ab3d-ef9h-jk2m")


def test_matching_code_names_the_stored_hash() -> None:
    codes = new_recovery_codes(3)
    stored = [hash_recovery_code(code) for code in codes]
    assert matching_code(codes[1].upper(), stored) == stored[1]
    assert matching_code("zzzz-zzzz-zzzz", stored) is None
    assert matching_code(codes[0], []) is None
