"""The bytes a logbook entry commits to: canonical leaf data, body commitment, hash chain, checkpoint message.

Everything here is part of the evidence format (`v: 1`): the service writes with it, the verifier
rebuilds with it, so any change is a new format version.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any, Final, TypedDict

LEAF_VERSION: Final = 1
KINDS: Final = frozenset({"fact", "decision", "action", "communication", "system"})
MODES: Final = frozenset({"real", "exercise"})
# The fields of a leaf, in the order of the spec (the canonical JSON sorts them anyway).
LEAF_FIELDS: Final = (
    "v",
    "tenant",
    "crisis",
    "seq",
    "occurred_at",
    "recorded_at",
    "rekeyed",
    "author",
    "source",
    "kind",
    "mode",
    "summary",
    "body_commitment",
    "cell",
    "links",
    "corrects",
    "event_id",
)
SALT_BYTES: Final = 16
HASH_BYTES: Final = 32
# chain_0: the hash chain starts from 32 zero bytes.
CHAIN_GENESIS: Final = bytes(HASH_BYTES)
CHECKPOINT_DOMAIN: Final = b"panicsafe-logbook-checkpoint/v1\n"

TIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%S.%fZ"
TIME_PATTERN: Final = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
HEX64_PATTERN: Final = re.compile(r"[0-9a-f]{64}")

_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class Author(TypedDict):
    id: str | None
    label: str


class LeafFields(TypedDict):
    """The content of one leaf (an entry of the main courante as it is hashed)."""

    v: int
    tenant: str
    crisis: str
    seq: int
    occurred_at: str
    recorded_at: str
    rekeyed: bool
    author: Author
    source: str
    kind: str
    mode: str
    summary: str
    body_commitment: str
    cell: str | None
    links: dict[str, str]
    corrects: int | None
    event_id: str | None


def format_time(moment: datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC; a naive datetime is refused (its zone would be a guess)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a logbook timestamp needs a time zone")
    # isoformat gives the same digits as strftime(TIME_FORMAT), several times faster, then "+00:00".
    return moment.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def parse_time(text: str) -> datetime:
    """The UTC datetime of a timestamp written by `format_time`; anything else raises ValueError."""
    if not TIME_PATTERN.fullmatch(text):
        raise ValueError(f"not a logbook timestamp (YYYY-MM-DDTHH:MM:SS.ffffffZ): {text!r}")
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


def body_commitment(salt: bytes, body: str) -> str:
    """Hex SHA-256 of salt || UTF-8 body: the leaf commits to the body without revealing it."""
    if len(salt) != SALT_BYTES:
        raise ValueError(f"a body salt is {SALT_BYTES} bytes")
    return hashlib.sha256(salt + body.encode("utf-8")).hexdigest()


def leaf_data(fields: Mapping[str, Any]) -> bytes:
    """The canonical JSON of the leaf fields (other keys of `fields` are ignored)."""
    missing = [name for name in LEAF_FIELDS if name not in fields]
    if missing:
        raise ValueError(f"leaf fields missing: {', '.join(missing)}")
    return _CANONICAL.encode({name: fields[name] for name in LEAF_FIELDS}).encode("utf-8")


def fast_leaf_data(entry: Mapping[str, Any]) -> bytes:
    """The same bytes as `leaf_data`, several times faster, for an entry that passed `bundle.entry_problem`.

    Only for checked entries: exact types (a bool where an int is expected would be written
    differently from `json.dumps`), and timestamps, kind and body commitment of known characters,
    written without escaping. The verifier uses it for a million entries.
    """
    es = encode_basestring
    author = entry["author"]
    author_id = author["id"]
    cell = entry["cell"]
    corrects = entry["corrects"]
    event_id = entry["event_id"]
    links = entry["links"]
    links_json = ",".join([es(k) + ":" + es(links[k]) for k in sorted(links)]) if links else ""
    # Keys in sorted order: author, body_commitment, cell, corrects, crisis, event_id, kind, links, mode,
    # occurred_at, recorded_at, rekeyed, seq, source, summary, tenant, v.
    text = (
        f'{{"author":{{"id":{"null" if author_id is None else es(author_id)},"label":{es(author["label"])}}},'
        f'"body_commitment":"{entry["body_commitment"]}","cell":{"null" if cell is None else es(cell)},'
        f'"corrects":{"null" if corrects is None else int.__repr__(corrects)},"crisis":{es(entry["crisis"])},'
        f'"event_id":{"null" if event_id is None else es(event_id)},"kind":"{entry["kind"]}",'
        f'"links":{{{links_json}}},"mode":{es(entry["mode"])},"occurred_at":"{entry["occurred_at"]}",'
        f'"recorded_at":"{entry["recorded_at"]}","rekeyed":{"true" if entry["rekeyed"] else "false"},'
        f'"seq":{int.__repr__(entry["seq"])},"source":{es(entry["source"])},"summary":{es(entry["summary"])},'
        f'"tenant":{es(entry["tenant"])},"v":{int.__repr__(entry["v"])}}}'
    )
    return text.encode("utf-8")


# The two leaf fields only known once an entry has its place in the log.
_PLACE_FIELDS: Final = ("recorded_at", "seq")


@dataclass(frozen=True, slots=True)
class LeafTemplate:
    """The canonical leaf data of an entry still waiting for its place: `data(seq, recorded_at)` is
    `leaf_data` of the same fields with that place, with everything else encoded beforehand (the
    writer numbers a batch on its critical path; this keeps the JSON encoding off it).

    In sorted-key order `recorded_at` and `seq` are neighbours but for `rekeyed`; the template is the
    text before, between and after them."""

    head: str
    middle: str
    tail: str

    @classmethod
    def of(cls, fields: Mapping[str, Any]) -> LeafTemplate:
        """From leaf fields with or without `recorded_at` and `seq` (their values here are ignored)."""
        missing = [name for name in LEAF_FIELDS if name not in fields and name not in _PLACE_FIELDS]
        if missing:
            raise ValueError(f"leaf fields missing: {', '.join(missing)}")
        first, last = _PLACE_FIELDS
        before = {name: fields[name] for name in LEAF_FIELDS if name < first}
        between = {name: fields[name] for name in LEAF_FIELDS if first < name < last}
        after = {name: fields[name] for name in LEAF_FIELDS if name > last}
        inner = _CANONICAL.encode(between)[1:-1]
        return cls(
            head=_CANONICAL.encode(before)[:-1] + f',"{first}":"',
            middle='"' + (f",{inner}" if inner else "") + f',"{last}":',
            tail="," + _CANONICAL.encode(after)[1:],
        )

    @classmethod
    def of_entry(
        cls,
        *,
        tenant: str,
        crisis: str,
        occurred_at: str,
        rekeyed: bool,
        author_id: str | None,
        author_label: str,
        source: str,
        kind: str,
        mode: str,
        summary: str,
        body_commitment: str,
        cell: str | None,
        links: Mapping[str, str],
        corrects: int | None,
        event_id: str | None,
    ) -> LeafTemplate:
        """As `of`, written out field by field (several times faster: the writer makes one per entry).
        Values of any other type than annotated take the general path."""
        strings = (tenant, crisis, occurred_at, author_label, source, kind, mode, summary, body_commitment)
        optional = (author_id, cell, event_id)
        if (
            any(type(v) is not str for v in strings)
            or any(v is not None and type(v) is not str for v in optional)
            or type(rekeyed) is not bool
            or (corrects is not None and type(corrects) is not int)
            or any(type(k) is not str or type(v) is not str for k, v in links.items())
        ):
            return cls.of(
                {
                    "v": LEAF_VERSION,
                    "tenant": tenant,
                    "crisis": crisis,
                    "occurred_at": occurred_at,
                    "rekeyed": rekeyed,
                    "author": {"id": author_id, "label": author_label},
                    "source": source,
                    "kind": kind,
                    "mode": mode,
                    "summary": summary,
                    "body_commitment": body_commitment,
                    "cell": cell,
                    "links": dict(links),
                    "corrects": corrects,
                    "event_id": event_id,
                }
            )
        es = encode_basestring
        links_json = ",".join([es(k) + ":" + es(links[k]) for k in sorted(links)])
        return cls(
            head=(
                f'{{"author":{{"id":{"null" if author_id is None else es(author_id)},"label":{es(author_label)}}},'
                f'"body_commitment":{es(body_commitment)},"cell":{"null" if cell is None else es(cell)},'
                f'"corrects":{"null" if corrects is None else int.__repr__(corrects)},"crisis":{es(crisis)},'
                f'"event_id":{"null" if event_id is None else es(event_id)},"kind":{es(kind)},'
                f'"links":{{{links_json}}},"mode":{es(mode)},"occurred_at":{es(occurred_at)},"recorded_at":"'
            ),
            middle=f'","rekeyed":{"true" if rekeyed else "false"},"seq":',
            tail=f',"source":{es(source)},"summary":{es(summary)},"tenant":{es(tenant)},"v":{LEAF_VERSION}}}',
        )

    def data(self, seq: int, recorded_at: str) -> bytes:
        """`recorded_at` as written by `format_time` (no character of it needs escaping)."""
        return (self.head + recorded_at + self.middle + int.__repr__(seq) + self.tail).encode("utf-8")

    def hash(self, seq: int, recorded_at: str) -> bytes:
        """RFC 6962 leaf hash, as `leaf_hash_of`."""
        return hashlib.sha256(b"\x00" + self.data(seq, recorded_at)).digest()


def leaf_hash_of(fields: Mapping[str, Any]) -> bytes:
    """RFC 6962 leaf hash of an entry: SHA-256(0x00 || leaf data)."""
    return hashlib.sha256(b"\x00" + leaf_data(fields)).digest()


def chain_hash(previous: bytes, leaf_hash: bytes) -> bytes:
    """chain_n = SHA-256(chain_{n-1} || leafhash_n), from `CHAIN_GENESIS`."""
    return hashlib.sha256(previous + leaf_hash).digest()


def checkpoint_message(
    tenant: str, crisis: str, tree_size: int, root_hash: str, chain_head: str, issued_at: str
) -> bytes:
    """The bytes a checkpoint signature covers (hashes as lowercase hex, `issued_at` from `format_time`)."""
    if type(tree_size) is not int or tree_size < 0:
        raise ValueError("a tree size is a non-negative integer")
    for name, value in (("root_hash", root_hash), ("chain_head", chain_head)):
        if not HEX64_PATTERN.fullmatch(value):
            raise ValueError(f"{name} must be 64 lowercase hex digits")
    for name, value in (("tenant", tenant), ("crisis", crisis), ("issued_at", issued_at)):
        if "\n" in value:
            raise ValueError(f"{name} cannot contain a line break")
    text = f"{tenant}\n{crisis}\n{tree_size}\n{root_hash}\n{chain_head}\n{issued_at}\n"
    return CHECKPOINT_DOMAIN + text.encode("utf-8")
