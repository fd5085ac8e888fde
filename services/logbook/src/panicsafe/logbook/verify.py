"""Verify a logbook evidence bundle with nothing but the bundle: `python -m panicsafe.logbook.verify BUNDLE.json`.

Every body is checked against its commitment, every leaf hash and chain hash is recomputed, the
Merkle root of all entries is compared with the signed checkpoint, whose Ed25519 signature is
checked with the bundle's public key; then every earlier checkpoint (signature, consistency proof,
and the root of the entries up to it) and every inclusion proof. The report names the first entry
that does not verify; when every entry recomputes but the signed root disagrees, the earlier
checkpoints narrow down which entries were changed.

Exit status: 0 verified (a line starting with `OK`), 1 does not verify (lines starting with `FAIL`),
2 the file cannot be read as a bundle.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import gc
import hashlib
import multiprocessing
import os
import re
import secrets
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Final

import pydantic_core
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from panicsafe.logbook.evidence.bundle import (
    Bundle,
    BundleFormatError,
    PublicKeyInfo,
    SignedCheckpoint,
    as_bundle,
    entry_problem,
    load_bundle,
    parse_bundle,
)
from panicsafe.logbook.evidence.leaf import CHAIN_GENESIS, HASH_BYTES, HEX64_PATTERN, MODES, fast_leaf_data
from panicsafe.logbook.evidence.merkle import MerkleLog, verify_consistency, verify_inclusion

# Entry failures listed one by one; beyond, only their number.
MAX_LISTED_ENTRY_FAILURES: Final = 20
# Below this (about 60,000 entries), reading a file in several processes costs more than it saves.
PARALLEL_MIN_BYTES: Final = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Failure:
    """One reason a bundle does not verify. `seq`..`last_seq` are the entries it names, if any."""

    subject: str
    message: str
    seq: int | None = None
    last_seq: int | None = None

    def line(self) -> str:
        return f"FAIL {self.subject}: {self.message}"


@dataclass(frozen=True, slots=True)
class VerificationReport:
    entries: int
    tree_size: int
    root_hash: str  # recomputed from the entries
    key_version: int
    checkpoints: int
    inclusion_proofs: int
    failures: tuple[Failure, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def first_failing_seq(self) -> int | None:
        """The entry named by the first failure that names one."""
        return next((f.seq for f in self.failures if f.seq is not None), None)

    def lines(self) -> list[str]:
        if self.ok:
            return [
                f"OK {self.entries} entries, tree size {self.tree_size}, root {self.root_hash}: bodies, leaves "
                f"and hash chain recompute, the checkpoint signature (key version {self.key_version}) verifies, "
                f"{self.checkpoints} earlier checkpoint(s) and {self.inclusion_proofs} inclusion proof(s) verify."
            ]
        return [failure.line() for failure in self.failures]


def _entry(seq: int, message: str) -> Failure:
    return Failure(f"entry {seq}", message, seq, seq)


def _entries(first: int, last: int) -> str:
    return f"entry {first}" if first == last else f"entries {first} to {last}"


def _stored_hash(entry: Mapping[str, Any], name: str) -> bytes:
    value = entry.get(name)
    return bytes.fromhex(value) if type(value) is str and HEX64_PATTERN.fullmatch(value) else bytes(32)


@dataclass(slots=True)
class _EntryResults:
    """What checking entries found: recomputed leaf hashes, the first failures, how many failed."""

    leaves: list[bytes]
    failures: list[Failure]
    failed: int


def _check_entries(
    entries: Sequence[Mapping[str, Any]],
    tenant: str,
    crisis: str,
    mode: str,
    first_seq: int = 1,
    previous: bytes = CHAIN_GENESIS,
) -> _EntryResults:
    """Check entries numbered from `first_seq`, chained after `previous`: shape, body, leaf and chain hashes.

    Each chain hash is checked from the stored one before it, so one altered entry fails alone.
    """
    sha256 = hashlib.sha256
    fromhex = bytes.fromhex
    leaves: list[bytes] = []
    append = leaves.append
    failures: list[Failure] = []
    failed = 0
    for seq, entry in enumerate(entries, start=first_seq):
        problem = entry_problem(entry, seq, tenant, crisis, mode)
        if problem is None:
            try:
                leaf = sha256(b"\x00" + fast_leaf_data(entry)).digest()
                body = entry["body"]
                body_bytes = None if body is None else body.encode("utf-8")
            except UnicodeEncodeError:
                problem = "its text is not valid Unicode"
        if problem is not None:
            # Its stored hashes stand in for it, so that the entries after it are checked as usual.
            append(_stored_hash(entry, "leaf_hash"))
            previous = _stored_hash(entry, "chain_hash")
            failed += 1
            if len(failures) < MAX_LISTED_ENTRY_FAILURES:
                failures.append(_entry(seq, problem))
            continue
        append(leaf)
        chain = sha256(previous + leaf).digest()
        if body_bytes is None:
            problem = "its body is missing or unreadable (the service could not decrypt it: altered or shredded)"
        elif sha256(fromhex(entry["salt"]) + body_bytes).hexdigest() != entry["body_commitment"]:
            problem = "its body does not match the body commitment"
        elif leaf.hex() != entry["leaf_hash"]:
            problem = "leaf hash does not match its content"
        elif chain.hex() != entry["chain_hash"]:
            problem = "chain hash does not follow from the previous entry"
        if problem is None:
            previous = chain
        else:
            previous = _stored_hash(entry, "chain_hash")
            failed += 1
            if len(failures) < MAX_LISTED_ENTRY_FAILURES:
                failures.append(_entry(seq, problem))
    return _EntryResults(leaves, failures, failed)


def _public_key(info: PublicKeyInfo) -> Ed25519PublicKey | str:
    if info.algorithm != "ed25519":
        return f"its algorithm is {info.algorithm!r}, only ed25519 is known"
    try:
        raw = base64.b64decode(info.key, validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError):
        return "it is not a raw Ed25519 public key in base64"


def _signature_problem(
    checkpoint: SignedCheckpoint, key: Ed25519PublicKey | str, key_version: int, tenant: str, crisis: str
) -> str | None:
    try:
        message = checkpoint.message(tenant, crisis)
    except ValueError as exc:
        return f"it cannot have been signed: {exc}"
    if isinstance(key, str):
        return f"the bundle's public key is unusable: {key}"
    if checkpoint.key_version != key_version:
        return (
            f"it was signed with key version {checkpoint.key_version}, the bundle's public key is version {key_version}"
        )
    try:
        signature = base64.b64decode(checkpoint.signature, validate=True)
        key.verify(signature, message)
    except (binascii.Error, ValueError, InvalidSignature):
        return f"its signature does not verify with the bundle's public key (ed25519, version {key_version})"
    return None


@dataclass(slots=True)
class _Anchor:
    """A checkpoint and what was found about it."""

    checkpoint: SignedCheckpoint
    name: str
    signed: bool = False
    matches: bool = False  # the entries up to its size recompute its root and chain head


def _hashes(values: Sequence[str]) -> list[bytes] | None:
    if all(HEX64_PATTERN.fullmatch(v) for v in values):
        return [bytes.fromhex(v) for v in values]
    return None


def _describe(cp: SignedCheckpoint) -> str:
    return f"the signed checkpoint of {cp.issued_at} (tree size {cp.tree_size})"


def _localise(anchors: list[_Anchor]) -> Failure | None:
    """The entries between the last signed checkpoint they match and the first one they do not match."""
    signed = sorted((a for a in anchors if a.signed), key=lambda a: a.checkpoint.tree_size)
    bad = next((a for a in signed if not a.matches), None)
    if bad is None:
        return None
    good = next((a for a in reversed(signed) if a.matches and a.checkpoint.tree_size < bad.checkpoint.tree_size), None)
    first = 1 if good is None else good.checkpoint.tree_size + 1
    last = bad.checkpoint.tree_size
    message = f"these entries do not match {_describe(bad.checkpoint)}"
    if good is not None:
        message += f", while entries 1 to {good.checkpoint.tree_size} match {_describe(good.checkpoint)}"
    message += f"; an entry from n°{first} to n°{last} was altered, inserted or removed"
    return Failure(_entries(first, last), message, first, last)


def _checkpoint_sizes(b: Bundle) -> set[int]:
    return {b.checkpoint.tree_size} | {cp.tree_size for cp in b.checkpoints}


def verify_bundle(bundle: Bundle | Mapping[str, Any]) -> VerificationReport:
    """Verify everything the bundle claims (raises BundleFormatError if a mapping is not a bundle)."""
    b = as_bundle(bundle)
    checked = _check_entries(b.entries, b.tenant, b.crisis.id, b.crisis.mode)
    n = len(b.entries)
    chains = {size: b.entries[size - 1].get("chain_hash") for size in _checkpoint_sizes(b) if 0 < size <= n}
    return _report(b, n, checked, chains)


def _report(b: Bundle, n: int, checked: _EntryResults, chains: Mapping[int, Any]) -> VerificationReport:
    """The verdict, from the n checked entries and their stored chain hashes at the checkpoints' sizes."""
    tenant, crisis, mode = b.tenant, b.crisis.id, b.crisis.mode
    failures: list[Failure] = []
    if mode not in MODES:
        failures.append(Failure("crisis", f"its mode {mode!r} is neither real nor exercise"))
    leaves, entry_failures = checked.leaves, checked.failures
    failures += entry_failures
    if checked.failed > len(entry_failures):
        failures.append(
            Failure("entries", f"{checked.failed} entries fail in all; the first {len(entry_failures)} are listed")
        )
    log = MerkleLog()
    log.extend(leaves)

    def matches(cp: SignedCheckpoint) -> bool:
        if not 0 <= cp.tree_size <= n:
            return False
        chain = chains.get(cp.tree_size) if cp.tree_size else CHAIN_GENESIS.hex()
        return log.root(cp.tree_size).hex() == cp.root_hash and chain == cp.chain_head

    key = _public_key(b.public_key)
    version = b.public_key.version
    final = b.checkpoint
    final_name = f"checkpoint (tree size {final.tree_size})"
    checkpoint_failures: list[Failure] = []
    final_anchor = _Anchor(final, final_name)
    problem = _signature_problem(final, key, version, tenant, crisis)
    final_anchor.signed = problem is None
    if problem is not None:
        checkpoint_failures.append(Failure(final_name, problem))
    if final.tree_size < n:
        checkpoint_failures.append(
            Failure(final_name, f"{_entries(final.tree_size + 1, n)} not covered by the signed checkpoint")
        )
    elif final.tree_size > n:
        checkpoint_failures.append(
            Failure(final_name, f"{_entries(n + 1, final.tree_size)} missing from the bundle", n + 1)
        )
    else:
        final_anchor.matches = matches(final)
        if not final_anchor.matches:
            checkpoint_failures.append(
                Failure(final_name, "its root hash or chain head does not match the entries of the bundle")
            )
    final_root = bytes.fromhex(final.root_hash) if HEX64_PATTERN.fullmatch(final.root_hash) else None

    anchors = [final_anchor]
    for cp in sorted(b.checkpoints, key=lambda c: c.tree_size):
        name = f"earlier checkpoint (tree size {cp.tree_size}, {cp.issued_at})"
        anchor = _Anchor(cp, name)
        anchors.append(anchor)
        if not 0 < cp.tree_size <= final.tree_size:
            checkpoint_failures.append(Failure(name, f"its size is not within 1..{final.tree_size}"))
            continue
        problem = _signature_problem(cp, key, version, tenant, crisis)
        anchor.signed = problem is None
        if problem is not None:
            checkpoint_failures.append(Failure(name, problem))
        proof = _hashes(cp.consistency_proof or ())
        root = bytes.fromhex(cp.root_hash) if HEX64_PATTERN.fullmatch(cp.root_hash) else None
        if (
            proof is None
            or root is None
            or final_root is None
            or not verify_consistency(cp.tree_size, final.tree_size, root, final_root, proof)
        ):
            checkpoint_failures.append(Failure(name, "its consistency proof to the final checkpoint does not verify"))
        anchor.matches = matches(cp)
        if anchor.signed and not anchor.matches:
            checkpoint_failures.append(Failure(name, "its root hash or chain head does not match the entries"))

    located: list[Failure] = []
    where = _localise(anchors)
    if where is not None and (where.seq, where.last_seq) != (1, n):  # else it says no more than the lines below
        located.append(where)
    authentic = final_anchor.signed and final_anchor.matches
    proof_failures: list[Failure] = []
    for proof_item in b.inclusion_proofs:
        seq = proof_item.seq
        path = _hashes(proof_item.path)
        if not 1 <= seq <= min(n, final.tree_size) or path is None or final_root is None:
            proof_failures.append(Failure(f"inclusion proof of entry {seq}", "it is malformed or names no entry"))
        elif not verify_inclusion(leaves[seq - 1], seq - 1, final.tree_size, path, final_root):
            if authentic:
                proof_failures.append(
                    Failure(
                        f"inclusion proof of entry {seq}",
                        "it does not lead to the signed root (the proof is damaged; the entries match the checkpoint)",
                    )
                )
            elif not any(f.seq == seq for f in entry_failures):
                located.append(
                    _entry(seq, "its content is not what the checkpoint signed (its inclusion proof does not verify)")
                )
    located.sort(key=lambda f: (f.seq != f.last_seq, f.seq or 0))
    failures += located + checkpoint_failures + proof_failures
    return VerificationReport(
        entries=n,
        tree_size=final.tree_size,
        root_hash=log.root().hex(),
        key_version=version,
        checkpoints=len(b.checkpoints),
        inclusion_proofs=len(b.inclusion_proofs),
        failures=tuple(failures),
    )


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a million entries are built: it would rescan them again and again."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# Reading a large file in parallel. Each worker parses and checks a run of entries cut from the file's
# bytes, so no process ever holds all the entries. It is only a faster way to the same verdict: the cut
# is proven to be the top-level entries array and its pieces to be whole entries, and anything unusual
# (another layout, a piece that does not parse) falls back to reading the file whole.

_ENTRIES_OPEN: Final = re.compile(rb'"entries"[ \t\r\n]*:[ \t\r\n]*\[')
# Between two entries of a list: `},` then a line break then `{` (compact lines, or `json.dumps` indents).
_ENTRY_BOUNDARY: Final = re.compile(rb"\}[ \t\r]*,[ \t\r]*\n[ \t\r]*\{")
_WHITESPACE: Final = b" \t\r\n"

# The file a forked worker reads: set just before the fork, inherited, never copied through a pipe.
_forked_data = b""


def _entries_span(data: bytes) -> tuple[int, int] | None:
    """Where the inside of the top-level entries array seems to be: after `"entries": [`, before `], "checkpoint"`."""
    opening = _ENTRIES_OPEN.search(data)
    key = data.rfind(b'"checkpoint"')
    if opening is None or key < opening.end():
        return None
    i = key - 1
    while i > 0 and data[i] in _WHITESPACE:
        i -= 1
    if data[i : i + 1] != b",":
        return None
    i -= 1
    while i > 0 and data[i] in _WHITESPACE:
        i -= 1
    if data[i : i + 1] != b"]" or i < opening.end():
        return None
    return opening.end(), i


def _pieces(data: bytes, start: int, end: int, count: int) -> list[tuple[int, int]]:
    """About `count` byte ranges covering [start, end), each cut between two entries (after the comma)."""
    pieces: list[tuple[int, int]] = []
    first = start
    for k in range(1, count):
        found = _ENTRY_BOUNDARY.search(data, max(first, start + (end - start) * k // count), end)
        if found is None:
            break
        pieces.append((first, found.start() + 1))
        first = found.end() - 1
    pieces.append((first, end))
    return pieces


def _worker(conn: Connection, first: int, last: int, tenant: str, crisis: str, mode: str, sizes: set[int]) -> None:
    """Parse entries from bytes [first, last), report their number, then check them from the place given."""
    try:
        _work(conn, first, last, tenant, crisis, mode, sizes)
    except (EOFError, OSError):  # the parent gave up on this reading (another piece did not parse)
        pass
    finally:
        conn.close()


def _work(conn: Connection, first: int, last: int, tenant: str, crisis: str, mode: str, sizes: set[int]) -> None:
    try:
        piece = b"".join((b"[", memoryview(_forked_data)[first:last], b"]"))  # one copy, not two
        entries = pydantic_core.from_json(piece, cache_strings="all")
        del piece
    except ValueError:
        entries = None
    if type(entries) is not list or not all(type(e) is dict for e in entries):
        conn.send(None)
        return
    conn.send((len(entries), entries[-1].get("chain_hash") if entries else None))
    first_seq, previous = conn.recv()
    results = _check_entries(entries, tenant, crisis, mode, first_seq, previous)
    chains = {
        size: entries[size - first_seq].get("chain_hash") for size in sizes if 0 <= size - first_seq < len(entries)
    }
    conn.send((b"".join(results.leaves), results.failures, results.failed, chains))


def _verify_in_parallel(data: bytes, workers: int) -> VerificationReport | None:
    """The report of a large bundle checked by `workers` processes, or None to read it the usual way."""
    global _forked_data
    span = _entries_span(data)
    if span is None:
        return None
    start, end = span
    sentinel = f"panicsafe-entries-{secrets.token_hex(16)}"
    try:
        # The file with its entries replaced by one marker: if the marker is the top-level entries' only
        # element, [start, end) is exactly the inside of that array.
        outline = pydantic_core.from_json(data[:start] + f'"{sentinel}"'.encode() + data[end:])
    except ValueError:
        return None
    if type(outline) is not dict or outline.get("entries") != [sentinel]:
        return None
    outline["entries"] = []
    try:
        b = parse_bundle(outline)
    except BundleFormatError:
        return None
    sizes = _checkpoint_sizes(b)
    context = multiprocessing.get_context("fork")
    processes: list[tuple[BaseProcess, Connection]] = []
    _forked_data = data
    try:
        for first, last in _pieces(data, start, end, workers):
            here, there = context.Pipe()
            process = context.Process(
                target=_worker, args=(there, first, last, b.tenant, b.crisis.id, b.crisis.mode, sizes), daemon=True
            )
            process.start()
            there.close()
            processes.append((process, here))
        _forked_data = b""
        counted = [conn.recv() for _, conn in processes]
        if any(c is None for c in counted):
            return None
        seq, previous = 1, CHAIN_GENESIS
        for (_, conn), (count, last_chain) in zip(processes, counted, strict=True):
            conn.send((seq, previous))
            seq += count
            previous = _stored_hash({"chain_hash": last_chain}, "chain_hash") if count else previous
        leaves: list[bytes] = []
        failures: list[Failure] = []
        failed = 0
        chains: dict[int, Any] = {}
        for _, conn in processes:
            blob, part_failures, part_failed, part_chains = conn.recv()
            leaves += [blob[i : i + HASH_BYTES] for i in range(0, len(blob), HASH_BYTES)]
            failures += part_failures
            failed += part_failed
            chains.update(part_chains)
    except EOFError:  # a worker died
        return None
    finally:
        _forked_data = b""
        for worker, conn in processes:
            conn.close()
            worker.join(timeout=5)
            if worker.is_alive():
                worker.kill()
    checked = _EntryResults(leaves, failures[:MAX_LISTED_ENTRY_FAILURES], failed)
    return _report(b, len(leaves), checked, chains)


def verify_file(path: Path | str, *, workers: int | None = None) -> VerificationReport:
    """Load and verify a bundle file (raises BundleFormatError if it is not one).

    A large file is read and checked by `workers` forked processes (by default one per available CPU,
    at most 4): call it from a process without threads, like the command line, or with workers=1.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise BundleFormatError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if workers is None:
        workers = min(4, len(os.sched_getaffinity(0)))
    with _collector_paused():
        if workers > 1 and len(data) >= PARALLEL_MIN_BYTES and "fork" in multiprocessing.get_all_start_methods():
            report = _verify_in_parallel(data, workers)
            if report is not None:
                return report
        return verify_bundle(load_bundle(data))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m panicsafe.logbook.verify",
        description="Verify a PanicSAFE logbook evidence bundle offline.",
        epilog="Exit status: 0 verified, 1 does not verify, 2 not a readable bundle.",
    )
    parser.add_argument("bundle", type=Path, help="the bundle file (JSON)")
    args = parser.parse_args(argv)
    try:
        report = verify_file(args.bundle)
    except BundleFormatError as exc:
        sys.stderr.write(f"ERROR {args.bundle}: {exc}\n")
        return 2
    sys.stdout.write("\n".join(report.lines()) + "\n")
    return 0 if report.ok else 1


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Freeing a million parsed entries one by one takes seconds; the process is done with them.
    os._exit(code)
