"""Merkle trees against an independent RFC 6962 reference, Certificate Transparency vectors, and tampering."""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from panicsafe.logbook.evidence import merkle
from panicsafe.logbook.evidence.merkle import MerkleLog

PROPERTY = settings(
    deadline=None,
    database=None,
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- The reference: RFC 6962 §2.1 written as it reads, recursively, on the data entries D[n] ---------


def ref_leaf(d: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + d).digest()


def ref_k(n: int) -> int:
    """The largest power of two smaller than n."""
    k = 1
    while 2 * k < n:
        k *= 2
    return k


def ref_mth(d: list[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return ref_leaf(d[0])
    k = ref_k(len(d))
    return hashlib.sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:])).digest()


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = ref_k(len(d))
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], complete: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if complete else [ref_mth(d)]
    k = ref_k(n)
    if m <= k:
        return [*ref_subproof(m, d[:k], complete), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def ref_proof(m: int, d: list[bytes]) -> list[bytes]:
    return ref_subproof(m, d, True)


def data(n: int, salt: int = 0) -> list[bytes]:
    return [f"entrée {salt}-{i}".encode() for i in range(n)]


def hashes(d: list[bytes]) -> list[bytes]:
    return [ref_leaf(x) for x in d]


# --- Known answers: the Certificate Transparency test vectors (RFC 6962 reference tests) --------------

CT_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION_0_OF_8 = [
    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
]
CT_CONSISTENCY = {
    (1, 8): CT_INCLUSION_0_OF_8,
    (6, 8): [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
    (2, 5): [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
}


def test_empty_tree_root_is_the_hash_of_nothing() -> None:
    expected = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert merkle.EMPTY_ROOT.hex() == expected
    assert merkle.root([]).hex() == expected
    assert MerkleLog().root().hex() == expected
    assert ref_mth([]).hex() == expected


def test_certificate_transparency_vectors() -> None:
    leaves = [merkle.leaf_hash(d) for d in CT_LEAVES]
    log = MerkleLog(leaves)
    for n, expected in enumerate(CT_ROOTS, start=1):
        assert merkle.root(leaves[:n]).hex() == expected
        assert log.root(n).hex() == expected
        assert ref_mth(CT_LEAVES[:n]).hex() == expected
    assert [h.hex() for h in merkle.inclusion_proof(leaves, 0, 8)] == CT_INCLUSION_0_OF_8
    assert [h.hex() for h in log.inclusion_proof(0, 8)] == CT_INCLUSION_0_OF_8
    for (m, n), expected_proof in CT_CONSISTENCY.items():
        assert [h.hex() for h in merkle.consistency_proof(leaves, m, n)] == expected_proof
        assert [h.hex() for h in log.consistency_proof(m, n)] == expected_proof
        assert merkle.verify_consistency(
            m, n, bytes.fromhex(CT_ROOTS[m - 1]), bytes.fromhex(CT_ROOTS[n - 1]), log.consistency_proof(m, n)
        )


# --- Against the reference, every size up to a few hundred, then a few thousand ------------------------


def test_every_prefix_root_up_to_300() -> None:
    d = data(300)
    leaves = hashes(d)
    log = MerkleLog()
    assert log.root() == ref_mth([])
    for n in range(1, 301):
        assert log.append(leaves[n - 1]) == n - 1
        expected = ref_mth(d[:n])
        assert log.root() == expected
        assert merkle.root(leaves[:n]) == expected
    # and every earlier size, from the full tree
    assert all(log.root(n) == merkle.root(leaves[:n]) for n in range(301))


@PROPERTY
@given(n=st.integers(1, 300), salt=st.integers(0, 3), pick=st.randoms(use_true_random=False))
def test_inclusion_proofs_match_the_reference(n: int, salt: int, pick: random.Random) -> None:
    d = data(n, salt)
    leaves = hashes(d)
    log = MerkleLog(leaves)
    root = ref_mth(d)
    indices = {0, n - 1, n // 2, pick.randrange(n)}
    for index in indices:
        expected = ref_path(index, d)
        assert merkle.inclusion_proof(leaves, index, n) == expected
        assert log.inclusion_proof(index, n) == expected
        assert merkle.verify_inclusion(leaves[index], index, n, expected, root)


@PROPERTY
@given(n=st.integers(1, 300), data_=st.data())
def test_consistency_proofs_match_the_reference(n: int, data_: st.DataObject) -> None:
    d = data(n)
    leaves = hashes(d)
    log = MerkleLog(leaves)
    m = data_.draw(st.integers(1, n))
    expected = ref_proof(m, d) if m < n else []
    assert merkle.consistency_proof(leaves, m, n) == expected
    assert log.consistency_proof(m, n) == expected
    assert merkle.verify_consistency(m, n, ref_mth(d[:m]), ref_mth(d), expected)
    # the log also proves between two of its earlier sizes
    k = data_.draw(st.integers(m, n))
    assert log.consistency_proof(m, k) == (ref_proof(m, d[:k]) if m < k else [])


def test_all_proofs_exhaustively_for_small_trees() -> None:
    for n in range(1, 40):
        d = data(n, n)
        leaves = hashes(d)
        log = MerkleLog(leaves)
        for index in range(n):
            assert log.inclusion_proof(index) == merkle.inclusion_proof(leaves, index, n) == ref_path(index, d)
        for m in range(1, n):
            assert log.consistency_proof(m) == merkle.consistency_proof(leaves, m, n) == ref_proof(m, d)


@pytest.mark.parametrize("n", [1023, 1024, 1025, 2047, 3000, 4097])
def test_a_few_thousand_leaves(n: int) -> None:
    d = data(n)
    leaves = hashes(d)
    log = MerkleLog(leaves)
    assert log.root() == merkle.root(leaves) == ref_mth(d)
    for size in (n // 3, n // 2 + 1, n - 1):
        assert log.root(size) == merkle.root(leaves[:size])
    for index in (0, 1, n // 2, n - 2, n - 1):
        assert log.inclusion_proof(index) == ref_path(index, d)
    for m in (1, 2, 3, 511, 512, 513, n - 1):
        assert log.consistency_proof(m) == ref_proof(m, d)
        assert merkle.verify_consistency(m, n, log.root(m), log.root(), log.consistency_proof(m))


@PROPERTY
@given(batches=st.lists(st.integers(0, 70), max_size=12))
def test_extend_in_batches_is_append_one_by_one(batches: list[int]) -> None:
    leaves = hashes(data(sum(batches)))
    one_by_one, batched = MerkleLog(), MerkleLog()
    for leaf in leaves:
        one_by_one.append(leaf)
    first = 0
    for size in batches:
        batched.extend(leaves[first : first + size])
        first += size
        assert batched.root() == one_by_one.root(first)
    assert batched.size == one_by_one.size == len(leaves)
    assert all(batched.leaf(i) == leaves[i] for i in range(len(leaves)))


def test_refuses_what_is_not_a_tree() -> None:
    log = MerkleLog(hashes(data(5)))
    with pytest.raises(ValueError, match="32 bytes"):
        log.append(b"short")
    with pytest.raises(ValueError, match="32 bytes"):
        log.extend([bytes(32), b"x" * 33])
    with pytest.raises(ValueError, match="outside"):
        log.root(6)
    with pytest.raises(ValueError, match="outside"):
        log.inclusion_proof(5, 5)
    with pytest.raises(ValueError, match="cannot prove"):
        log.consistency_proof(4, 3)
    with pytest.raises(IndexError):
        log.leaf(5)
    with pytest.raises(ValueError, match="outside"):
        merkle.inclusion_proof(hashes(data(3)), 0, 4)
    assert log.consistency_proof(0) == log.consistency_proof(5) == []


# --- Tampering: every altered proof is refused ---------------------------------------------------------


def flipped(value: bytes, bit: int = 0) -> bytes:
    return bytes([value[0] ^ (1 << bit)]) + value[1:]


Inclusion = tuple[bytes, int, int, list[bytes], bytes]


def inclusion_variants(log: MerkleLog, index: int, size: int) -> list[Inclusion]:
    """Every way the tests alter the valid claim that leaf `index` is in the tree of `size`; none may verify.

    A size always comes with its own root: a checkpoint signs them together, and the RFC's algorithm
    does not bind a size to a root by itself (a path of leaf 0 in 16 leaves also "proves" it in 15
    leaves under the root of 16).
    """
    leaf, proof, root = log.leaf(index), log.inclusion_proof(index, size), log.root(size)
    out: list[Inclusion] = []
    for i in range(len(proof)):
        out.append((leaf, index, size, [*proof[:i], flipped(proof[i], i % 8), *proof[i + 1 :]], root))
    out += [(leaf, other, size, proof, root) for other in range(-1, size + 1) if other != index]
    for other in range(max(1, index + 1), log.size + 1):
        if other != size and log.inclusion_proof(index, other) != proof:
            out.append((leaf, index, other, proof, log.root(other)))
    out += [(leaf, index, other, proof, root) for other in (0, index, -1)]
    if proof:
        out += [(leaf, index, size, proof[:-1], root), (leaf, index, size, proof[1:], root)]
        out.append((leaf, index, size, [*proof[:-1], proof[-1][:31]], root))
        if len(proof) > 1:
            out.append((leaf, index, size, proof[::-1], root))
    out += [(leaf, index, size, [*proof, bytes(32)], root), (leaf, index, size, [*proof, root], root)]
    out += [(flipped(leaf), index, size, proof, root), (leaf, index, size, proof, flipped(root))]
    return out


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 8, 9, 16, 31, 33])
def test_tampered_inclusion_proofs_are_refused(size: int) -> None:
    log = MerkleLog(hashes(data(2 * size + 3, 9)))
    for index in range(size):
        assert merkle.verify_inclusion(log.leaf(index), index, size, log.inclusion_proof(index, size), log.root(size))
        for variant in inclusion_variants(log, index, size):
            assert not merkle.verify_inclusion(*variant), (index, variant[1:3])


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6, 7, 8, 9, 12, 16, 17, 33])
def test_tampered_consistency_proofs_are_refused(n: int) -> None:
    log = MerkleLog(hashes(data(2 * n + 3, 5)))
    root_n = log.root(n)
    for m in range(1, n):
        proof = log.consistency_proof(m, n)
        root_m = log.root(m)
        assert merkle.verify_consistency(m, n, root_m, root_n, proof)
        variants: list[tuple[int, int, bytes, bytes, list[bytes]]] = []
        for i in range(len(proof)):
            variants.append((m, n, root_m, root_n, [*proof[:i], flipped(proof[i], 3), *proof[i + 1 :]]))
        variants += [(m, n, root_m, root_n, proof[:-1]), (m, n, root_m, root_n, proof[1:])]
        variants += [(m, n, root_m, root_n, [*proof, proof[-1]]), (m, n, root_m, root_n, [*proof, bytes(32)])]
        variants += [(m, n, flipped(root_m), root_n, proof), (m, n, root_m, flipped(root_n), proof)]
        variants += [(m, n, root_n, root_m, proof), (m, n, root_m, root_n, [])]
        # other sizes, each with its own root (see inclusion_variants), unless the proof happens to hold for them
        variants += [(o, n, log.root(o), root_n, proof) for o in range(1, n + 1) if o != m]
        variants += [(m, o, root_m, log.root(o), proof) for o in range(m, log.size + 1) if o != n]
        variants = [v for v in variants if (v[0] == m and v[1] == n) or log.consistency_proof(v[0], v[1]) != proof]
        variants += [(m, o, root_m, root_n, proof) for o in (m - 1, 0)]
        variants.append((m, n, root_m, root_n, [p[:31] for p in proof]))
        for variant in variants:
            assert not merkle.verify_consistency(*variant), (m, variant[0], variant[1])


def test_consistency_of_equal_and_empty_sizes() -> None:
    leaves = hashes(data(6))
    log = MerkleLog(leaves)
    assert merkle.verify_consistency(6, 6, log.root(), log.root(), [])
    assert not merkle.verify_consistency(6, 6, log.root(), log.root(5), [])
    assert not merkle.verify_consistency(6, 6, log.root(), log.root(), [log.root()])
    assert merkle.verify_consistency(0, 6, merkle.EMPTY_ROOT, log.root(), [])
    assert not merkle.verify_consistency(0, 6, log.root(1), log.root(), [])
    assert not merkle.verify_consistency(7, 6, log.root(), log.root(), [])
    assert not merkle.verify_inclusion(leaves[0], 0, 0, [], merkle.EMPTY_ROOT)
