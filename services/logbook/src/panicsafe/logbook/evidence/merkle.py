"""Merkle trees of RFC 6962 §2.1: roots, inclusion and consistency proofs, and their verification.

The pure functions take the list of leaf hashes; `MerkleLog` is the incremental tree the service keeps
per log, answering the same questions in O(log n) hashes from the complete subtrees it stores.
Verification follows RFC 9162 §2.1.3.2 and §2.1.4.2.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Final

HASH_BYTES: Final = 32
EMPTY_ROOT: Final = hashlib.sha256(b"").digest()

_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data)."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return _sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of all the leaf hashes.

    Built bottom-up: pairing neighbours level by level and carrying an odd last node up unchanged
    gives the same tree as the RFC's split at the largest power of two below n.
    """
    level = list(leaf_hashes)
    if not level:
        return EMPTY_ROOT
    sha256 = _sha256
    while len(level) > 1:
        paired = [sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def _check_size(leaf_hashes: Sequence[bytes], size: int) -> None:
    if not 0 <= size <= len(leaf_hashes):
        raise ValueError(f"tree size {size} is outside 0..{len(leaf_hashes)}")


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int, size: int) -> list[bytes]:
    """PATH(index, D[size]): the audit path of leaf `index` in the tree of the first `size` leaves."""
    _check_size(leaf_hashes, size)
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    path: list[bytes] = []  # from the top down; the RFC lists it bottom-up
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            path.append(root(leaf_hashes[start + k : end]))
            end = start + k
        else:
            path.append(root(leaf_hashes[start : start + k]))
            start += k
    path.reverse()
    return path


def consistency_proof(leaf_hashes: Sequence[bytes], m: int, n: int) -> list[bytes]:
    """PROOF(m, D[n]): that the tree of the first m leaves is a prefix of the tree of the first n.

    Empty when m is 0 or m == n (nothing to prove).
    """
    _check_size(leaf_hashes, n)
    if not 0 <= m <= n:
        raise ValueError(f"cannot prove size {m} against size {n}")
    if m in (0, n):
        return []
    proof: list[bytes] = []  # from the top down
    start, end, complete = 0, n, True
    while True:
        size = end - start
        if m == size:
            if not complete:
                proof.append(root(leaf_hashes[start:end]))
            break
        k = _split(size)
        if m <= k:
            proof.append(root(leaf_hashes[start + k : end]))
            end = start + k
        else:
            proof.append(root(leaf_hashes[start : start + k]))
            start += k
            m -= k
            complete = False
    proof.reverse()
    return proof


def _well_formed(proof: Sequence[bytes]) -> bool:
    return all(isinstance(p, bytes) and len(p) == HASH_BYTES for p in proof)


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """Whether `proof` shows the leaf `index` with this hash in the tree of `size` leaves and this root."""
    if not 0 <= index < size or not _well_formed(proof):
        return False
    fn, sn = index, size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(m: int, n: int, root_m: bytes, root_n: bytes, proof: Sequence[bytes]) -> bool:
    """Whether `proof` shows the tree of m leaves with `root_m` is a prefix of the one of n leaves with `root_n`."""
    if not 0 <= m <= n or not _well_formed(proof):
        return False
    if m == n:
        return not proof and root_m == root_n
    if m == 0:
        return not proof and root_m == EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if m & (m - 1) == 0:  # m is a power of two: its root is a node of the larger tree
        path.insert(0, root_m)
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == root_m and sr == root_n and sn == 0


class MerkleLog:
    """An append-only RFC 6962 tree kept as its complete subtrees, level by level.

    `_levels[h][i]` is the root of leaves [i·2^h, (i+1)·2^h). Every subtree the RFC's recursion
    meets on its left is such an aligned complete subtree, so roots and proofs for any size up to
    the current one cost O(log n) lookups and at most O(log² n) hashes. Memory: about 2n hashes.
    """

    __slots__ = ("_levels",)

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]
        self.extend(leaf_hashes)

    @property
    def size(self) -> int:
        return len(self._levels[0])

    def leaf(self, index: int) -> bytes:
        """The hash of leaf `index`."""
        if not 0 <= index < self.size:
            raise IndexError(f"no leaf {index} in a log of size {self.size}")
        return self._levels[0][index]

    def append(self, leaf_hash: bytes) -> int:
        """Add one leaf hash; returns its index."""
        if not isinstance(leaf_hash, bytes) or len(leaf_hash) != HASH_BYTES:
            raise ValueError("a leaf hash is 32 bytes")
        levels = self._levels
        levels[0].append(leaf_hash)
        index = position = len(levels[0]) - 1
        height = 0
        while position & 1:  # a right child completes its parent
            level = levels[height]
            parent = _sha256(b"\x01" + level[position - 1] + level[position]).digest()
            height += 1
            if height == len(levels):
                levels.append([])
            levels[height].append(parent)
            position >>= 1
        return index

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Add many leaf hashes, hashing each new level in one pass."""
        new = list(leaf_hashes)
        if not all(isinstance(h, bytes) and len(h) == HASH_BYTES for h in new):
            raise ValueError("a leaf hash is 32 bytes")
        levels = self._levels
        levels[0].extend(new)
        sha256 = _sha256
        height = 0
        while True:
            level = levels[height]
            if height + 1 == len(levels):
                if len(level) < 2:
                    return
                levels.append([])
            upper = levels[height + 1]
            start = 2 * len(upper)
            end = len(level) - (len(level) - start) % 2
            if end <= start:
                return
            upper.extend([sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(start, end, 2)])
            height += 1

    def _size_or_current(self, size: int | None) -> int:
        if size is None:
            return self.size
        if not 0 <= size <= self.size:
            raise ValueError(f"tree size {size} is outside 0..{self.size}")
        return size

    def _subtree(self, start: int, end: int) -> bytes:
        """MTH of leaves [start, end), where start is aligned on the largest power of two <= end - start."""
        lefts: list[bytes] = []
        levels = self._levels
        while True:
            n = end - start
            if n & (n - 1) == 0:
                height = n.bit_length() - 1
                acc = levels[height][start >> height]
                break
            k = _split(n)
            height = k.bit_length() - 1
            lefts.append(levels[height][start >> height])
            start += k
        for left in reversed(lefts):
            acc = _sha256(b"\x01" + left + acc).digest()
        return acc

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first `size` leaves (all of them by default)."""
        size = self._size_or_current(size)
        return EMPTY_ROOT if size == 0 else self._subtree(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """PATH(index, D[size])."""
        size = self._size_or_current(size)
        if not 0 <= index < size:
            raise ValueError(f"leaf index {index} is outside a tree of size {size}")
        path: list[bytes] = []
        start, end = 0, size
        while end - start > 1:
            k = _split(end - start)
            if index < start + k:
                path.append(self._subtree(start + k, end))
                end = start + k
            else:
                path.append(self._subtree(start, start + k))
                start += k
        path.reverse()
        return path

    def consistency_proof(self, m: int, n: int | None = None) -> list[bytes]:
        """PROOF(m, D[n]); empty when m is 0 or m == n."""
        n = self._size_or_current(n)
        if not 0 <= m <= n:
            raise ValueError(f"cannot prove size {m} against size {n}")
        if m in (0, n):
            return []
        proof: list[bytes] = []
        start, end, complete = 0, n, True
        while True:
            size = end - start
            if m == size:
                if not complete:
                    proof.append(self._subtree(start, end))
                break
            k = _split(size)
            if m <= k:
                proof.append(self._subtree(start + k, end))
                end = start + k
            else:
                proof.append(self._subtree(start, start + k))
                start += k
                m -= k
                complete = False
        proof.reverse()
        return proof
