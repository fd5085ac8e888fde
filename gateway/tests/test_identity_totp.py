"""RFC 6238 TOTP: test vectors, provisioning URI, single use."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

import pytest
import segno

from panicsafe.gateway.identity.qr import qr_svg
from panicsafe.gateway.identity.totp import code_at, new_secret, provisioning_uri, verify_code

SEED_SHA1 = b"12345678901234567890"
SEED_SHA256 = b"12345678901234567890123456789012"
SEED_SHA512 = b"1234567890123456789012345678901234567890123456789012345678901234"


def b32(seed: bytes) -> str:
    return base64.b32encode(seed).decode("ascii").rstrip("=")


# RFC 6238, Appendix B.
@pytest.mark.parametrize(
    ("at", "sha1", "sha256", "sha512"),
    [
        (59, "94287082", "46119246", "90693936"),
        (1111111109, "07081804", "68084774", "25091201"),
        (1111111111, "14050471", "67062674", "99943326"),
        (1234567890, "89005924", "91819424", "93441116"),
        (2000000000, "69279037", "90698825", "38618901"),
        (20000000000, "65353130", "77737706", "47863826"),
    ],
)
def test_rfc6238_vectors(at: int, sha1: str, sha256: str, sha512: str) -> None:
    assert code_at(b32(SEED_SHA1), at, digits=8, algorithm="sha1") == sha1
    assert code_at(b32(SEED_SHA256), at, digits=8, algorithm="sha256") == sha256
    assert code_at(b32(SEED_SHA512), at, digits=8, algorithm="sha512") == sha512


def test_rfc4226_hotp_vectors_as_six_digit_steps() -> None:
    expected = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583"]
    assert [code_at(b32(SEED_SHA1), step * 30 + 7) for step in range(8)] == expected


def test_unknown_algorithm_is_refused() -> None:
    with pytest.raises(ValueError, match="md5"):
        code_at(b32(SEED_SHA1), 59, algorithm="md5")


def test_new_secret_is_160_bits_of_unpadded_base32() -> None:
    secrets_ = {new_secret() for _ in range(20)}
    assert len(secrets_) == 20
    for secret in secrets_:
        assert len(secret) == 32
        assert "=" not in secret
        assert len(base64.b32decode(secret)) == 20


def test_provisioning_uri_is_encoded() -> None:
    uri = provisioning_uri("JBSWY3DPEHPK3PXP", account="marie.curie@chu-exemple.fr", issuer="PanicSAFE CHU")
    assert uri == (
        "otpauth://totp/PanicSAFE%20CHU:marie.curie%40chu-exemple.fr"
        "?secret=JBSWY3DPEHPK3PXP&issuer=PanicSAFE%20CHU&algorithm=SHA1&digits=6&period=30"
    )
    parts = urlsplit(provisioning_uri(new_secret(), account="Zoé Dupré&co"))
    assert parts.scheme == "otpauth"
    assert parts.netloc == "totp"
    assert parts.path == "/PanicSAFE:Zo%C3%A9%20Dupr%C3%A9%26co"
    query = parse_qs(parts.query)
    assert query["issuer"] == ["PanicSAFE"]
    assert query["digits"] == ["6"]


def test_provisioning_uri_refuses_colons() -> None:
    with pytest.raises(ValueError, match="':'"):
        provisioning_uri(new_secret(), account="a:b")


NOW = 1_700_000_015.0  # step 56_666_667, 15 s into it
STEP = 56_666_667


def test_current_code_returns_its_step() -> None:
    secret = new_secret()
    assert verify_code(secret, code_at(secret, NOW), now=NOW, last_used_step=None) == STEP


def test_window_accepts_one_step_each_side_only() -> None:
    secret = new_secret()
    assert verify_code(secret, code_at(secret, NOW - 30), now=NOW, last_used_step=None) == STEP - 1
    assert verify_code(secret, code_at(secret, NOW + 30), now=NOW, last_used_step=None) == STEP + 1
    assert verify_code(secret, code_at(secret, NOW - 60), now=NOW, last_used_step=None) is None
    assert verify_code(secret, code_at(secret, NOW + 60), now=NOW, last_used_step=None) is None
    assert verify_code(secret, code_at(secret, NOW - 30), now=NOW, last_used_step=None, window=0) is None


def test_a_code_is_accepted_once() -> None:
    secret = new_secret()
    code = code_at(secret, NOW)
    step = verify_code(secret, code, now=NOW, last_used_step=None)
    assert step == STEP
    assert verify_code(secret, code, now=NOW, last_used_step=step) is None
    assert verify_code(secret, code, now=NOW + 20, last_used_step=step) is None
    # An older code inside the window is refused too once a later one was used.
    assert verify_code(secret, code_at(secret, NOW - 30), now=NOW, last_used_step=step) is None
    # The next step's code is still accepted.
    nxt = code_at(secret, NOW + 30)
    assert verify_code(secret, nxt, now=NOW + 30, last_used_step=step) == STEP + 1


def test_wrong_code_is_refused() -> None:
    secret = b32(SEED_SHA1)
    good = code_at(secret, NOW)
    wrong = f"{(int(good) + 1) % 1_000_000:06d}"
    assert verify_code(secret, wrong, now=NOW, last_used_step=None) is None
    assert verify_code(new_secret(), good, now=NOW, last_used_step=None) is None


def test_spaces_are_tolerated() -> None:
    secret = new_secret()
    code = code_at(secret, NOW)
    assert verify_code(secret, f" {code[:3]} {code[3:]} ", now=NOW, last_used_step=None) == STEP


@pytest.mark.parametrize("code", ["", "12345", "1234567", "12a456", "١٢٣٤٥٦", "１２３４５６", "-12345", "+123456"])
def test_malformed_codes_are_refused(code: str) -> None:
    assert verify_code(b32(SEED_SHA1), code, now=NOW, last_used_step=None) is None


def test_malformed_secret_is_refused_not_raised() -> None:
    assert verify_code("not base32 !", "123456", now=NOW, last_used_step=None) is None
    assert verify_code("", "123456", now=NOW, last_used_step=None) is None


def test_secret_tolerates_case_and_padding() -> None:
    secret = b32(SEED_SHA1)
    assert code_at(secret.lower(), 59, digits=8) == "94287082"
    assert code_at(secret + "====", 59, digits=8) == "94287082"


def test_qr_svg_of_the_provisioning_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    uri = provisioning_uri("JBSWY3DPEHPK3PXP", account="marie.curie@chu-exemple.fr")
    made: list[dict[str, object]] = []
    real_make = segno.make

    def spy(content: str, **kwargs: object) -> segno.QRCode:
        made.append({"content": content, **kwargs})
        return real_make(content, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(segno, "make", spy)
    svg = qr_svg(uri)
    assert made == [{"content": uri, "error": "m", "micro": False, "boost_error": False}]
    root = ElementTree.fromstring(svg)  # noqa: S314 (our own output)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.attrib["width"] == root.attrib["height"] == "342"  # version 8: (49 + 2 x 4) x 6
    assert 'fill="#fff"' in svg
    assert 'stroke="#000"' in svg
