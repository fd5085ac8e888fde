"""Recovery codes: format, entropy, normalisation and hashing."""

from __future__ import annotations

import hashlib
import math
import re

import pytest

from panicsafe.gateway.identity.recovery import (
    ALPHABET,
    hash_recovery_code,
    new_recovery_codes,
    normalize_recovery_code,
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


def test_hash_is_sha256_of_the_normalised_code() -> None:
    code = "ab3d-ef9h-jk2m"
    expected = hashlib.sha256(b"ab3def9hjk2m").hexdigest()
    assert hash_recovery_code(code) == expected
    assert hash_recovery_code("AB3D EF9H JK2M") == expected
    assert hash_recovery_code("ab3def9hjk2m") == expected
    assert hash_recovery_code("ab3d-ef9h-jk2n") != expected
    assert re.fullmatch(r"[0-9a-f]{64}", expected)
