"""The JSON evidence bundle (`panicsafe-logbook-bundle/v1`): its model, loader, writer and builder.

A bundle carries every entry of one log (one crisis in one mode) with its body, salt and hashes, the
final signed checkpoint over all of them, earlier signed checkpoints with consistency proofs to the
final one, inclusion proofs, and the Ed25519 public key. `panicsafe.logbook.verify` checks it with
nothing else.

Reading is in two levels: `parse_bundle` checks the structure and types (a file that fails is not a
bundle), while the values of each entry (`entry_problem`) and every hash and signature are the
verifier's business, so that a tampered entry is reported by its number.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final, cast

import pydantic_core
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from panicsafe.logbook.evidence.leaf import (
    CHAIN_GENESIS,
    HASH_BYTES,
    HEX64_PATTERN,
    KINDS,
    LEAF_FIELDS,
    LEAF_VERSION,
    SALT_BYTES,
    TIME_PATTERN,
    LeafFields,
    chain_hash,
    checkpoint_message,
    fast_leaf_data,
    format_time,
)
from panicsafe.logbook.evidence.merkle import MerkleLog, leaf_hash

BUNDLE_FORMAT: Final = "panicsafe-logbook-bundle/v1"
# The keys of an entry in a bundle: the leaf fields, then what lets a reader check them.
ENTRY_EXTRA_FIELDS: Final = ("salt", "body", "leaf_hash", "chain_hash")
ENTRY_FIELDS: Final = LEAF_FIELDS + ENTRY_EXTRA_FIELDS
_ENTRY_KEYS: Final = frozenset(ENTRY_FIELDS)
_AUTHOR_KEYS: Final = frozenset({"id", "label"})
_SALT_PATTERN: Final = re.compile(f"[0-9a-f]{{{2 * SALT_BYTES}}}")
# occurred_at, recorded_at, salt and body commitment at once (one regular expression call instead of four)
_FAST_TEXT_MATCH: Final = re.compile(
    f"(?:{TIME_PATTERN.pattern}){{2}}[0-9a-f]{{{2 * SALT_BYTES}}}{HEX64_PATTERN.pattern}"
).fullmatch
_STR_OR_NONE: Final = (str, type(None))
# The entry's values in the order of ENTRY_FIELDS, and every allowed combination of their types
# (cell, event_id and corrects may be null; body too, checked on its own).
_FAST_FIELDS: Final = operator.itemgetter(*ENTRY_FIELDS)
_FAST_TYPES: Final = frozenset(
    (
        int,
        str,
        str,
        int,
        str,
        str,
        bool,
        dict,
        str,
        str,
        str,
        str,
        str,
        cell,
        dict,
        corrects,
        event,
        str,
        body,
        str,
        str,
    )
    for cell in _STR_OR_NONE
    for corrects in (int, type(None))
    for event in _STR_OR_NONE
    for body in _STR_OR_NONE
)

# A checkpoint message -> its Ed25519 signature, standard base64.
Signer = Callable[[bytes], str]


class BundleFormatError(ValueError):
    """The file is not a readable bundle (not JSON, another format, or the wrong structure)."""


class BundleEntry(LeafFields):
    """An entry as exported: leaf fields, then salt (hex), body (None: could not be read), hashes (hex)."""

    salt: str
    body: str | None
    leaf_hash: str
    chain_hash: str


@dataclass(frozen=True, slots=True)
class CrisisInfo:
    id: str
    title: str
    mode: str


@dataclass(frozen=True, slots=True)
class PublicKeyInfo:
    """The Ed25519 key checkpoints are signed with: raw 32 bytes in standard base64, and its version."""

    key: str
    version: int
    algorithm: str = "ed25519"

    @classmethod
    def from_raw(cls, raw: bytes, version: int) -> PublicKeyInfo:
        return cls(key=base64.b64encode(raw).decode("ascii"), version=version)


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    """A signed (tree size, root, chain head); earlier ones in a bundle carry a consistency proof to the final one."""

    tree_size: int
    root_hash: str
    chain_head: str
    issued_at: str
    signature: str
    key_version: int
    consistency_proof: tuple[str, ...] | None = None

    def message(self, tenant: str, crisis: str) -> bytes:
        """The signed bytes (raises ValueError when a hash is not 64 lowercase hex digits)."""
        return checkpoint_message(tenant, crisis, self.tree_size, self.root_hash, self.chain_head, self.issued_at)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
            "chain_head": self.chain_head,
            "issued_at": self.issued_at,
            "signature": self.signature,
            "key_version": self.key_version,
        }
        if self.consistency_proof is not None:
            out["consistency_proof"] = list(self.consistency_proof)
        return out


@dataclass(frozen=True, slots=True)
class InclusionProof:
    seq: int
    path: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Bundle:
    format: str
    exported_at: str
    tenant: str
    crisis: CrisisInfo
    entries: list[BundleEntry]
    checkpoint: SignedCheckpoint
    checkpoints: tuple[SignedCheckpoint, ...]
    inclusion_proofs: tuple[InclusionProof, ...]
    public_key: PublicKeyInfo

    def as_json(self) -> dict[str, Any]:
        """The bundle as JSON-ready objects (entries are shared, not copied)."""
        return {
            "format": self.format,
            "exported_at": self.exported_at,
            "tenant": self.tenant,
            "crisis": {"id": self.crisis.id, "title": self.crisis.title, "mode": self.crisis.mode},
            "entries": self.entries,
            "checkpoint": self.checkpoint.as_json(),
            "checkpoints": [cp.as_json() for cp in self.checkpoints],
            "inclusion_proofs": [{"seq": p.seq, "path": list(p.path)} for p in self.inclusion_proofs],
            "public_key": {
                "algorithm": self.public_key.algorithm,
                "key": self.public_key.key,
                "version": self.public_key.version,
            },
        }


# Reading


def _object(value: Any, where: str, keys: Iterable[str], optional: Iterable[str] = ()) -> dict[str, Any]:
    if type(value) is not dict:
        raise BundleFormatError(f"{where} must be a JSON object")
    required = set(keys)
    allowed = required | set(optional)
    missing = sorted(required - value.keys())
    if missing:
        raise BundleFormatError(f"{where} lacks {', '.join(missing)}")
    extra = sorted(value.keys() - allowed)
    if extra:
        raise BundleFormatError(f"{where} has unknown fields: {', '.join(extra)}")
    return cast(dict[str, Any], value)


def _typed(value: Any, kind: type, where: str) -> Any:
    # bool is an int in Python, not in a bundle
    if type(value) is not kind:
        names = {str: "a string", int: "an integer", list: "a list", dict: "an object"}
        raise BundleFormatError(f"{where} must be {names.get(kind, kind.__name__)}")
    return value


def _strings(value: Any, where: str) -> tuple[str, ...]:
    items = _typed(value, list, where)
    for index, item in enumerate(items):
        _typed(item, str, f"{where}[{index}]")
    return tuple(items)


def _checkpoint(value: Any, where: str, *, earlier: bool) -> SignedCheckpoint:
    keys = ("tree_size", "root_hash", "chain_head", "issued_at", "signature", "key_version")
    obj = _object(value, where, keys + (("consistency_proof",) if earlier else ()))
    return SignedCheckpoint(
        tree_size=_typed(obj["tree_size"], int, f"{where}.tree_size"),
        root_hash=_typed(obj["root_hash"], str, f"{where}.root_hash"),
        chain_head=_typed(obj["chain_head"], str, f"{where}.chain_head"),
        issued_at=_typed(obj["issued_at"], str, f"{where}.issued_at"),
        signature=_typed(obj["signature"], str, f"{where}.signature"),
        key_version=_typed(obj["key_version"], int, f"{where}.key_version"),
        consistency_proof=_strings(obj["consistency_proof"], f"{where}.consistency_proof") if earlier else None,
    )


def parse_bundle(value: Any) -> Bundle:
    """The bundle in parsed JSON, its structure and types checked; entries are only checked to be objects."""
    if type(value) is not dict or value.get("format") != BUNDLE_FORMAT:
        found = value.get("format") if type(value) is dict else None
        raise BundleFormatError(f"not a PanicSAFE logbook bundle (format {found!r}, expected {BUNDLE_FORMAT!r})")
    top = _object(
        value,
        "the bundle",
        (
            "format",
            "exported_at",
            "tenant",
            "crisis",
            "entries",
            "checkpoint",
            "checkpoints",
            "inclusion_proofs",
            "public_key",
        ),
    )
    crisis = _object(top["crisis"], "crisis", ("id", "title", "mode"))
    entries = _typed(top["entries"], list, "entries")
    for index, entry in enumerate(entries):
        if type(entry) is not dict:
            raise BundleFormatError(f"entries[{index}] must be a JSON object")
    checkpoints = _typed(top["checkpoints"], list, "checkpoints")
    proofs = _typed(top["inclusion_proofs"], list, "inclusion_proofs")
    inclusion: list[InclusionProof] = []
    for index, proof in enumerate(proofs):
        obj = _object(proof, f"inclusion_proofs[{index}]", ("seq", "path"))
        inclusion.append(
            InclusionProof(
                seq=_typed(obj["seq"], int, f"inclusion_proofs[{index}].seq"),
                path=_strings(obj["path"], f"inclusion_proofs[{index}].path"),
            )
        )
    key = _object(top["public_key"], "public_key", ("algorithm", "key", "version"))
    return Bundle(
        format=BUNDLE_FORMAT,
        exported_at=_typed(top["exported_at"], str, "exported_at"),
        tenant=_typed(top["tenant"], str, "tenant"),
        crisis=CrisisInfo(
            id=_typed(crisis["id"], str, "crisis.id"),
            title=_typed(crisis["title"], str, "crisis.title"),
            mode=_typed(crisis["mode"], str, "crisis.mode"),
        ),
        entries=cast(list[BundleEntry], entries),
        checkpoint=_checkpoint(top["checkpoint"], "checkpoint", earlier=False),
        checkpoints=tuple(
            _checkpoint(cp, f"checkpoints[{index}]", earlier=True) for index, cp in enumerate(checkpoints)
        ),
        inclusion_proofs=tuple(inclusion),
        public_key=PublicKeyInfo(
            algorithm=_typed(key["algorithm"], str, "public_key.algorithm"),
            key=_typed(key["key"], str, "public_key.key"),
            version=_typed(key["version"], int, "public_key.version"),
        ),
    )


def load_bundle(source: Path | str | bytes) -> Bundle:
    """Read and parse a bundle from a file path or from its JSON bytes."""
    if isinstance(source, bytes):
        data = source
    else:
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise BundleFormatError(f"cannot read {source}: {exc.strerror or exc}") from exc
    try:
        # pydantic-core's parser: about twice as fast as json.loads on a million entries
        value = pydantic_core.from_json(data, cache_strings="all")
    except ValueError as exc:
        raise BundleFormatError(f"not valid JSON: {exc}") from exc
    return parse_bundle(value)


def as_bundle(bundle: Bundle | Mapping[str, Any]) -> Bundle:
    """A `Bundle` from itself or from its JSON objects."""
    return bundle if isinstance(bundle, Bundle) else parse_bundle(dict(bundle))


def entry_problem(entry: Mapping[str, Any], seq: int, tenant: str, crisis: str, mode: str) -> str | None:
    """What is wrong with the shape or values of the entry expected at `seq` of this log, or None.

    A body of None is not a problem of shape (the verifier reports it on its own). Hash fields are
    only checked to be 64 characters long: the verifier compares them with what it recomputes.
    """
    # One expression for the common case (a million entries in a verification); the detail says why.
    if entry.keys() == _ENTRY_KEYS:
        values = _FAST_FIELDS(entry)
        (v, tenant_, crisis_, seq_, occurred, recorded, _, author, _, kind, mode_, _, commitment) = values[:13]
        (_, links, corrects, _, salt, _, leaf, chain) = values[13:]
        if (
            tuple(map(type, values)) in _FAST_TYPES
            and seq_ == seq
            and v == LEAF_VERSION
            and tenant_ == tenant
            and crisis_ == crisis
            and mode_ == mode
            and kind in KINDS
            and author.keys() == _AUTHOR_KEYS
            and type(author["label"]) is str
            and type(author["id"]) in _STR_OR_NONE
            and (corrects is None or 1 <= corrects < seq)
            and (not links or all(type(k) is str and type(v) is str for k, v in links.items()))
            and len(leaf) == len(chain) == 2 * HASH_BYTES
            and _FAST_TEXT_MATCH(occurred + recorded + salt + commitment)
        ):
            return None
    return _entry_problem_detail(entry, seq, tenant, crisis, mode)


def _entry_problem_detail(entry: Mapping[str, Any], seq: int, tenant: str, crisis: str, mode: str) -> str | None:
    if entry.keys() != _ENTRY_KEYS:
        missing = [name for name in ENTRY_FIELDS if name not in entry]
        if missing:
            return f"field(s) missing: {', '.join(missing)}"
        return f"unknown field(s): {', '.join(sorted(entry.keys() - _ENTRY_KEYS))}"
    value = entry["seq"]
    if type(value) is not int:
        return "its sequence number is not an integer"
    if value != seq:
        return f"its sequence number is {value} where {seq} was expected (entries are numbered from 1 without gaps)"
    if entry["v"] != LEAF_VERSION or type(entry["v"]) is not int:
        return f"unsupported entry version {entry['v']!r}"
    if entry["tenant"] != tenant or type(entry["tenant"]) is not str:
        return "it belongs to another tenant than the bundle"
    if entry["crisis"] != crisis or type(entry["crisis"]) is not str:
        return "it belongs to another crisis than the bundle"
    if entry["mode"] != mode or type(entry["mode"]) is not str:
        return f"its mode {entry['mode']!r} is not the log's mode {mode!r}"
    for name in ("occurred_at", "recorded_at"):
        value = entry[name]
        if type(value) is not str or not TIME_PATTERN.fullmatch(value):
            return f"{name} is not a UTC timestamp YYYY-MM-DDTHH:MM:SS.ffffffZ"
    if type(entry["rekeyed"]) is not bool:
        return "rekeyed is not true or false"
    author = entry["author"]
    if type(author) is not dict or author.keys() != _AUTHOR_KEYS:
        return "author must be an object with id and label"
    if type(author["label"]) is not str or (author["id"] is not None and type(author["id"]) is not str):
        return "author id or label is not a string"
    for name in ("source", "summary"):
        if type(entry[name]) is not str:
            return f"{name} is not a string"
    if type(entry["kind"]) is not str or entry["kind"] not in KINDS:  # the type first: a list is unhashable
        return f"kind {entry['kind']!r} is not one of {', '.join(sorted(KINDS))}"
    for name in ("cell", "event_id"):
        value = entry[name]
        if value is not None and type(value) is not str:
            return f"{name} is not a string"
    links = entry["links"]
    if type(links) is not dict or not all(type(k) is str and type(v) is str for k, v in links.items()):
        return "links must map names to strings"
    value = entry["corrects"]
    if value is not None and (type(value) is not int or not 1 <= value < seq):
        return "corrects must name an earlier entry"
    body = entry["body"]
    if body is not None and type(body) is not str:
        return "body is not a string"
    salt = entry["salt"]
    if type(salt) is not str or not _SALT_PATTERN.fullmatch(salt):
        return f"salt is not {SALT_BYTES} bytes in lowercase hex"
    value = entry["body_commitment"]
    if type(value) is not str or not HEX64_PATTERN.fullmatch(value):
        return "body_commitment is not 64 lowercase hex digits"
    for name in ("leaf_hash", "chain_hash"):
        value = entry[name]
        if type(value) is not str or len(value) != 2 * HASH_BYTES:
            return f"{name} is not 64 hex digits"
    return None


# Writing


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _json_list(items: Sequence[Any], batch: int = 2000) -> Iterator[bytes]:
    for start in range(0, len(items), batch):
        chunk = items[start : start + batch]
        last = start + batch >= len(items)
        yield b",\n".join(_json(item) for item in chunk) + (b"\n" if last else b",\n")


def iter_bundle_json(bundle: Bundle) -> Iterator[bytes]:
    """The bundle as UTF-8 JSON in chunks: compact, one entry, checkpoint or proof per line."""
    obj = bundle.as_json()
    head = {key: obj[key] for key in ("format", "exported_at", "tenant", "crisis")}
    yield _json(head)[:-1] + b',\n"entries":[\n'
    yield from _json_list(obj["entries"])
    yield b'],\n"checkpoint":' + _json(obj["checkpoint"]) + b',\n"checkpoints":[\n'
    yield from _json_list(obj["checkpoints"])
    yield b'],\n"inclusion_proofs":[\n'
    yield from _json_list(obj["inclusion_proofs"])
    yield b'],\n"public_key":' + _json(obj["public_key"]) + b"}\n"


def bundle_json(bundle: Bundle) -> bytes:
    """The whole bundle file (see `iter_bundle_json`)."""
    return b"".join(iter_bundle_json(bundle))


def dump_bundle(bundle: Bundle, stream: IO[bytes]) -> None:
    """Write the bundle file to a binary stream without holding it whole in memory."""
    for chunk in iter_bundle_json(bundle):
        stream.write(chunk)


# Building


def ed25519_signer(private_key: Ed25519PrivateKey) -> Signer:
    """A signer with a local key (tests, benchmarks; the service signs with OpenBao's transit key)."""

    def sign(message: bytes) -> str:
        return base64.b64encode(private_key.sign(message)).decode("ascii")

    return sign


def _hex(value: bytes | str) -> str:
    return value.hex() if isinstance(value, bytes) else value


def _bundle_entry(fields: Mapping[str, Any]) -> BundleEntry:
    entry: dict[str, Any] = {name: fields[name] for name in LEAF_FIELDS}
    author = fields["author"]
    entry["author"] = {"id": author["id"], "label": author["label"]}
    entry["links"] = dict(fields["links"])
    entry["salt"] = _hex(fields["salt"])
    entry["body"] = fields["body"]
    return cast(BundleEntry, entry)


def _signed(
    signer: Signer, tenant: str, crisis: str, log: MerkleLog, chain: bytes, issued_at: str, key_version: int
) -> SignedCheckpoint:
    root = log.root().hex()
    signature = signer(checkpoint_message(tenant, crisis, log.size, root, chain.hex(), issued_at))
    return SignedCheckpoint(log.size, root, chain.hex(), issued_at, signature, key_version)


def build_bundle(
    *,
    tenant: str,
    crisis: CrisisInfo,
    entries: Iterable[Mapping[str, Any]],
    public_key: PublicKeyInfo,
    checkpoint: SignedCheckpoint | None = None,
    signer: Signer | None = None,
    issued_at: str | None = None,
    earlier_checkpoints: Iterable[SignedCheckpoint] = (),
    inclusion_proofs: bool | Iterable[int] = True,
    exported_at: str | None = None,
    sign_earlier_at: Iterable[int] = (),
) -> Bundle:
    """A bundle of `entries` (in seq order, from 1).

    Each entry has the leaf fields, `salt` (bytes or hex) and `body` (str, or None when it could not
    be read), and may have `leaf_hash` and `chain_hash` (bytes or hex) as stored: stored hashes are
    exported as they are, so that a store that was tampered with yields a bundle that fails; missing
    ones are computed. The final checkpoint is `checkpoint` (it must cover every entry) or a new one
    signed now by `signer` with the key version of `public_key`. Earlier checkpoints get their
    consistency proofs to the final one; `inclusion_proofs` is True (every entry), False, or the seqs.
    `sign_earlier_at` has `signer` sign earlier checkpoints at these sizes as well (tests, benchmarks).
    """
    earlier_sizes = set(sign_earlier_at)
    if earlier_sizes and signer is None:
        raise ValueError("signing earlier checkpoints needs a signer")
    earlier = list(earlier_checkpoints)
    log = MerkleLog()
    rows: list[BundleEntry] = []
    chain = CHAIN_GENESIS
    for seq, fields in enumerate(entries, start=1):
        entry = _bundle_entry(fields)
        problem = entry_problem(
            {**entry, "leaf_hash": "0" * 64, "chain_hash": "0" * 64}, seq, tenant, crisis.id, crisis.mode
        )
        if problem is not None:
            raise ValueError(f"entry {seq}: {problem}")
        stored_leaf = fields.get("leaf_hash")
        leaf = leaf_hash(fast_leaf_data(entry)) if stored_leaf is None else bytes.fromhex(_hex(stored_leaf))
        stored_chain = fields.get("chain_hash")
        chain = chain_hash(chain, leaf) if stored_chain is None else bytes.fromhex(_hex(stored_chain))
        entry["leaf_hash"] = leaf.hex()
        entry["chain_hash"] = chain.hex()
        log.append(leaf)
        rows.append(entry)
        if seq in earlier_sizes and signer is not None:
            earlier.append(_signed(signer, tenant, crisis.id, log, chain, entry["recorded_at"], public_key.version))
    size = log.size
    if checkpoint is None:
        if signer is None:
            raise ValueError("a bundle needs a final checkpoint or a signer to sign one")
        issued = issued_at or format_time(datetime.now(UTC))
        checkpoint = _signed(signer, tenant, crisis.id, log, chain, issued, public_key.version)
    elif checkpoint.tree_size != size:
        raise ValueError(f"the final checkpoint covers {checkpoint.tree_size} entries, not the {size} exported")
    proved = []
    for cp in earlier:
        if not 0 < cp.tree_size <= size:
            raise ValueError(f"an earlier checkpoint of size {cp.tree_size} is not within 1..{size}")
        proof = tuple(h.hex() for h in log.consistency_proof(cp.tree_size, size))
        proved.append(dataclasses.replace(cp, consistency_proof=proof))
    if inclusion_proofs is True:
        seqs: Iterable[int] = range(1, size + 1)
    elif inclusion_proofs is False:
        seqs = ()
    else:
        seqs = inclusion_proofs
    proofs = tuple(InclusionProof(seq, tuple(h.hex() for h in log.inclusion_proof(seq - 1, size))) for seq in seqs)
    return Bundle(
        format=BUNDLE_FORMAT,
        exported_at=exported_at or format_time(datetime.now(UTC)),
        tenant=tenant,
        crisis=crisis,
        entries=rows,
        checkpoint=checkpoint,
        checkpoints=tuple(sorted(proved, key=lambda cp: cp.tree_size)),
        inclusion_proofs=proofs,
        public_key=public_key,
    )
