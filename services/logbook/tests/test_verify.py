"""The offline verifier: a real Ed25519-signed bundle verifies; any altered byte of an entry is named."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from evidence_samples import SampleLog, sample_entries, sample_log
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from panicsafe.logbook import verify
from panicsafe.logbook.evidence import bundle as bundle_module
from panicsafe.logbook.evidence.bundle import (
    BundleFormatError,
    PublicKeyInfo,
    bundle_json,
    entry_problem,
    load_bundle,
)
from panicsafe.logbook.evidence.leaf import (
    CHAIN_GENESIS,
    LEAF_FIELDS,
    TIME_FORMAT,
    LeafTemplate,
    chain_hash,
    fast_leaf_data,
    format_time,
    leaf_data,
    leaf_hash_of,
    parse_time,
)
from panicsafe.logbook.evidence.merkle import MerkleLog
from panicsafe.logbook.verify import VerificationReport, verify_bundle, verify_file

PROPERTY = settings(
    deadline=None,
    database=None,
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def signed() -> SampleLog:
    return sample_log(200, checkpoint_every=50, inclusion_proofs=True)


def as_json(log: SampleLog) -> dict[str, Any]:
    """A deep copy of the bundle's JSON objects, to alter."""
    return copy.deepcopy(json.loads(bundle_json(log.bundle)))


def write(tmp_path: Path, value: dict[str, Any] | bytes, name: str = "bundle.json") -> Path:
    path = tmp_path / name
    path.write_bytes(value if isinstance(value, bytes) else json.dumps(value, ensure_ascii=False).encode())
    return path


def run_cli(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "panicsafe.logbook.verify", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def rehash_from(entries: list[dict[str, Any]], first: int) -> None:
    """Recompute leaf and chain hashes from entry n° `first` on, as a careful forger would."""
    chain = bytes.fromhex(entries[first - 2]["chain_hash"]) if first > 1 else CHAIN_GENESIS
    for entry in entries[first - 1 :]:
        leaf = leaf_hash_of(entry)
        chain = chain_hash(chain, leaf)
        entry["leaf_hash"], entry["chain_hash"] = leaf.hex(), chain.hex()


# --- A genuine bundle -------------------------------------------------------------------------------


def test_a_signed_bundle_verifies_on_the_command_line(signed: SampleLog, tmp_path: Path) -> None:
    path = tmp_path / "main-courante.json"
    path.write_bytes(bundle_json(signed.bundle))
    result = run_cli(path)
    assert result.returncode == 0, result.stdout + result.stderr
    root = signed.bundle.checkpoint.root_hash
    assert result.stdout.startswith(f"OK 200 entries, tree size 200, root {root}")
    assert "3 earlier checkpoint(s) and 200 inclusion proof(s) verify" in result.stdout


def test_the_report_of_a_genuine_bundle(signed: SampleLog) -> None:
    report = verify_bundle(signed.bundle)
    assert report.ok and report.failures == ()
    assert (report.entries, report.tree_size, report.key_version) == (200, 200, 3)
    assert report.root_hash == signed.bundle.checkpoint.root_hash
    assert report.first_failing_seq is None
    # the same from its JSON objects, and from a file written by `json.dumps` with indents
    assert verify_bundle(as_json(signed)).ok


def test_an_empty_log_and_a_single_entry_verify() -> None:
    assert verify_bundle(sample_log(0, checkpoint_every=0).bundle).ok
    one = sample_log(1, checkpoint_every=0)
    assert verify_bundle(one.bundle).ok
    assert one.bundle.checkpoint.chain_head == one.entries[0]["chain_hash"]


def test_reference_and_fast_leaf_encoders_agree_on_the_samples(signed: SampleLog) -> None:
    for entry in signed.bundle.entries:
        assert fast_leaf_data(entry) == leaf_data(entry)


_text = st.text(max_size=40)
_uuid_or_none = st.one_of(st.none(), st.uuids().map(str))


@settings(max_examples=300, deadline=None)
@given(
    seq=st.integers(min_value=1, max_value=2**62),
    recorded=st.datetimes(timezones=st.just(UTC)),
    occurred=st.datetimes(timezones=st.just(UTC)),
    rekeyed=st.booleans(),
    label=_text,
    summary=_text,
    source=_text,
    cell=_uuid_or_none,
    event_id=_uuid_or_none,
    author_id=_uuid_or_none,
    corrects=st.one_of(st.none(), st.integers(min_value=1, max_value=2**62)),
    links=st.dictionaries(_text, _text, max_size=4),
)
def test_the_writers_leaf_template_gives_the_reference_leaf_data(
    seq: int,
    recorded: datetime,
    occurred: datetime,
    rekeyed: bool,
    label: str,
    summary: str,
    source: str,
    cell: str | None,
    event_id: str | None,
    author_id: str | None,
    corrects: int | None,
    links: dict[str, str],
) -> None:
    """The writer encodes a leaf before knowing its place (`LeafTemplate`); the verifier rebuilds it
    with `leaf_data`: the bytes must be the same for any content."""
    fields: dict[str, Any] = {
        "v": 1,
        "tenant": "0b9d2f6e-6a57-4d0c-9d1e-0d6a6f1e2a33",
        "crisis": "5f0c1a43-2f7e-4b8e-8d6c-3e1c2b9f0a11",
        "seq": 0,
        "occurred_at": format_time(occurred),
        "recorded_at": "",
        "rekeyed": rekeyed,
        "author": {"id": author_id, "label": label},
        "source": source,
        "kind": "decision",
        "mode": "exercise",
        "summary": summary,
        "body_commitment": "ab" * 32,
        "cell": cell,
        "links": links,
        "corrects": corrects,
        "event_id": event_id,
    }
    written_out = LeafTemplate.of_entry(**_entry_args(fields))
    placed = fields | {"seq": seq, "recorded_at": format_time(recorded)}
    for template in (LeafTemplate.of(fields), written_out):
        assert template.data(seq, format_time(recorded)) == leaf_data(placed)
        assert template.hash(seq, format_time(recorded)) == leaf_hash_of(placed)
    # A value of another type than annotated (a bool where an int is expected) takes the general path.
    odd = LeafTemplate.of_entry(**{**_entry_args(fields), "corrects": True})
    assert odd.data(seq, format_time(recorded)) == leaf_data(placed | {"corrects": True})


def _entry_args(fields: dict[str, Any]) -> dict[str, Any]:
    names = ("tenant", "crisis", "occurred_at", "rekeyed", "source", "kind", "mode", "summary", "body_commitment")
    return {name: fields[name] for name in names} | {
        "author_id": fields["author"]["id"],
        "author_label": fields["author"]["label"],
        "cell": fields["cell"],
        "links": fields["links"],
        "corrects": fields["corrects"],
        "event_id": fields["event_id"],
    }


def test_a_leaf_template_needs_every_other_field() -> None:
    with pytest.raises(ValueError, match="leaf fields missing: summary"):
        LeafTemplate.of({name: 1 for name in LEAF_FIELDS if name != "summary"})


# --- Single bytes altered ----------------------------------------------------------------------------


def entry_lines(data: bytes) -> dict[int, tuple[int, int]]:
    """Byte ranges of each entry's line in a file written by `bundle_json` (one entry per line)."""
    lines: dict[int, tuple[int, int]] = {}
    start = data.index(b'"entries":[\n') + len(b'"entries":[\n')
    seq = 1
    while data[start : start + 1] == b"{":
        end = data.index(b"\n", start)
        lines[seq] = (start, end)
        seq += 1
        start = end + 1
    return lines


def verdict(data: bytes) -> tuple[int, int | None, str]:
    """(exit status, first entry named, first line) as the command line would give them."""
    try:
        report = verify_bundle(load_bundle(data))
    except BundleFormatError as exc:
        return 2, None, str(exc)
    return (0 if report.ok else 1), report.first_failing_seq, report.lines()[0]


def test_every_single_byte_of_an_entry_altered_is_caught(tmp_path: Path) -> None:
    small = sample_log(24, checkpoint_every=8, inclusion_proofs=True)
    data = bundle_json(small.bundle)
    assert verdict(data)[0] == 0
    lines = entry_lines(data)
    tried = caught = 0
    for seq in (1, 10, 24):
        start, end = lines[seq]
        for position in range(start, end):
            for mask in (0x01, 0x20):
                altered = bytearray(data)
                altered[position] ^= mask
                status, named, first = verdict(bytes(altered))
                tried += 1
                assert status != 0, f"byte {position - start} of entry {seq} ^ {mask:#x} went unnoticed"
                if status == 1:
                    caught += 1
                    assert named == seq, (seq, position - start, first)
                    assert first.startswith(f"FAIL entry {seq}:"), first
    assert caught > tried // 2  # most alterations keep valid JSON, and are named


FIELD_CHANGES: list[tuple[str, str]] = [
    ("summary", "le contenu change d'un caractère"),
    ("body", "le corps change d'un caractère"),
    ("author.label", "l'auteur change"),
    ("author.id", "uuid"),
    ("kind", "kind"),
    ("occurred_at", "date"),
    ("recorded_at", "date"),
    ("links.message", "uuid"),
    ("seq", "number"),
    ("salt", "hex"),
    ("body_commitment", "hex"),
    ("leaf_hash", "hex"),
    ("chain_hash", "hex"),
    ("source", "text"),
    ("cell", "uuid"),
    ("event_id", "uuid"),
    ("corrects", "number"),
    ("rekeyed", "bool"),
    ("mode", "mode"),
    ("tenant", "uuid"),
]


def changed(value: Any, how: str) -> Any:
    if how == "number":
        return value + 1
    if how == "bool":
        return not value
    if how == "kind":
        return "decision" if value != "decision" else "action"
    if how == "mode":
        return "exercise" if value == "real" else "real"
    text = str(value)
    if how == "date":  # still a valid timestamp, a microsecond later or earlier
        return text[:-2] + ("7" if text[-2] != "7" else "8") + "Z"
    middle = len(text) // 2
    return text[:middle] + ("0" if text[middle] != "0" else "1") + text[middle + 1 :]


@pytest.mark.parametrize(("field", "how"), FIELD_CHANGES)
def test_each_field_of_an_entry_altered_names_the_entry(
    signed: SampleLog, tmp_path: Path, field: str, how: str
) -> None:
    value = as_json(signed)
    target, _, key = field.partition(".")

    def holder(entry: dict[str, Any]) -> dict[str, Any]:
        return entry[target] if key else entry

    name = key or target
    seq = next(e["seq"] for e in value["entries"] if e["seq"] >= 57 and holder(e).get(name) is not None)
    place = holder(value["entries"][seq - 1])
    place[name] = changed(place[name], how)
    report = verify_bundle(value)
    assert not report.ok
    assert report.first_failing_seq == seq, report.lines()
    assert report.lines()[0].startswith(f"FAIL entry {seq}:")


@pytest.mark.parametrize("value", [[], {}, ["fact"], 1, None])
def test_a_field_of_the_wrong_json_type_names_the_entry(signed: SampleLog, value: Any) -> None:
    """A kind that is a list or an object once crashed the check (unhashable) instead of failing it."""
    bundle = as_json(signed)
    bundle["entries"][41]["kind"] = value
    report = verify_bundle(bundle)
    assert not report.ok
    assert report.first_failing_seq == 42, report.lines()
    assert report.lines()[0].startswith("FAIL entry 42: kind"), report.lines()


def test_the_command_line_names_the_altered_entry(signed: SampleLog, tmp_path: Path) -> None:
    value = as_json(signed)
    value["entries"][41]["summary"] = value["entries"][41]["summary"].replace("n°", "n˚")
    value["entries"][149]["body"] += " "
    result = run_cli(write(tmp_path, value))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "FAIL entry 42: leaf hash does not match its content"
    assert lines[1] == "FAIL entry 150: its body does not match the body commitment"


def test_a_body_that_could_not_be_read_fails_naming_its_entry(signed: SampleLog, tmp_path: Path) -> None:
    value = as_json(signed)
    value["entries"][76]["body"] = None
    result = run_cli(write(tmp_path, value))
    assert result.returncode == 1
    assert result.stdout.startswith("FAIL entry 77: its body is missing or unreadable"), result.stdout


def test_entries_removed_reordered_or_added_are_caught(signed: SampleLog) -> None:
    value = as_json(signed)
    del value["entries"][-1]
    report = verify_bundle(value)
    assert not report.ok and any("entry 200 missing from the bundle" in line for line in report.lines())

    value = as_json(signed)
    value["entries"][10], value["entries"][11] = value["entries"][11], value["entries"][10]
    assert verify_bundle(value).first_failing_seq == 11

    value = as_json(signed)
    del value["entries"][30]
    assert verify_bundle(value).first_failing_seq == 31

    value = as_json(signed)
    extra = copy.deepcopy(value["entries"][-1])
    extra["seq"] = 201
    value["entries"].append(extra)
    report = verify_bundle(value)
    assert report.first_failing_seq == 201
    assert any("entry 201 not covered by the signed checkpoint" in line for line in report.lines())


# --- A consistent forgery: every hash recomputed, only the signatures stand in the way -----------------


def test_a_consistent_rewrite_is_localised_by_earlier_checkpoints(signed: SampleLog, tmp_path: Path) -> None:
    value = as_json(signed)
    value["inclusion_proofs"] = []
    value["entries"][119]["summary"] = "Décision : aucune (réécrite après coup)"
    rehash_from(value["entries"], 120)
    # the forger also puts the new root and chain head in the checkpoint: its signature no longer verifies
    forged = MerkleLog([bytes.fromhex(e["leaf_hash"]) for e in value["entries"]])
    value["checkpoint"]["root_hash"] = forged.root().hex()
    value["checkpoint"]["chain_head"] = value["entries"][-1]["chain_hash"]
    result = run_cli(write(tmp_path, value))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("FAIL entries 101 to 150: these entries do not match the signed checkpoint of"), lines
    assert "(tree size 150)" in lines[0] and "entries 1 to 100 match" in lines[0]
    assert any("checkpoint (tree size 200): its signature does not verify" in line for line in lines)
    report = verify_bundle(value)
    assert (report.failures[0].seq, report.failures[0].last_seq) == (101, 150)


def test_a_consistent_rewrite_after_the_last_checkpoint(signed: SampleLog) -> None:
    value = as_json(signed)
    value["inclusion_proofs"] = []
    value["entries"][179]["author"]["label"] = "Quelqu'un d'autre"
    rehash_from(value["entries"], 180)
    report = verify_bundle(value)
    assert report.lines()[0].startswith("FAIL entries 151 to 200:")
    assert any("its root hash or chain head does not match" in line for line in report.lines())


def test_inclusion_proofs_pin_down_the_rewritten_entry(signed: SampleLog) -> None:
    value = as_json(signed)
    value["entries"][119]["occurred_at"] = value["entries"][119]["occurred_at"][:-4] + "999Z"
    rehash_from(value["entries"], 120)
    report = verify_bundle(value)
    assert report.lines()[0].startswith("FAIL entry 120: its content is not what the checkpoint signed")
    assert report.lines()[1].startswith("FAIL entries 101 to 150:")


def test_a_rewrite_without_earlier_checkpoints_says_the_checkpoint_does_not_match() -> None:
    log = sample_log(30, checkpoint_every=0, inclusion_proofs=False)
    value = as_json(log)
    value["entries"][4]["summary"] = "réécrit"
    rehash_from(value["entries"], 5)
    assert verify_bundle(value).lines() == [
        "FAIL checkpoint (tree size 30): its root hash or chain head does not match the entries of the bundle"
    ]


# --- Keys, signatures, proofs ------------------------------------------------------------------------


def test_another_public_key_fails(signed: SampleLog, tmp_path: Path) -> None:
    value = as_json(signed)
    other = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    value["public_key"]["key"] = PublicKeyInfo.from_raw(other, 3).key
    result = run_cli(write(tmp_path, value))
    assert result.returncode == 1
    assert result.stdout.startswith(
        "FAIL checkpoint (tree size 200): its signature does not verify with the bundle's public key"
    )
    assert result.stdout.count("signature does not verify") == 4  # the final and the three earlier ones


@pytest.mark.parametrize(
    ("where", "change", "expected"),
    [
        ("public_key", {"version": 4}, "signed with key version 3, the bundle's public key is version 4"),
        ("public_key", {"key": "pas une clé"}, "the bundle's public key is unusable"),
        ("public_key", {"algorithm": "rsa"}, "only ed25519 is known"),
        ("checkpoint", {"issued_at": "2026-11-23T18:00:00.000001Z"}, "its signature does not verify"),
        ("checkpoint", {"signature": "AAAA"}, "its signature does not verify"),
        ("checkpoint", {"tree_size": 199}, "entry 200 not covered"),
        ("checkpoint", {"root_hash": "00" * 32}, "its signature does not verify"),
        ("checkpoint", {"root_hash": "zz"}, "cannot have been signed"),
    ],
)
def test_checkpoint_and_key_changes_fail(signed: SampleLog, where: str, change: dict[str, Any], expected: str) -> None:
    value = as_json(signed)
    value[where].update(change)
    report = verify_bundle(value)
    assert not report.ok
    assert any(expected in line for line in report.lines()), report.lines()


def test_altered_earlier_checkpoints_and_proofs_fail(signed: SampleLog) -> None:
    value = as_json(signed)
    value["checkpoints"][1]["root_hash"] = "ab" * 32
    lines = verify_bundle(value).lines()
    assert any(line.startswith("FAIL earlier checkpoint (tree size 100") and "signature" in line for line in lines)

    value = as_json(signed)
    proof = value["checkpoints"][0]["consistency_proof"]
    proof[0] = ("0" if proof[0][0] != "0" else "1") + proof[0][1:]
    assert any("consistency proof to the final checkpoint does not verify" in x for x in verify_bundle(value).lines())

    value = as_json(signed)
    path = value["inclusion_proofs"][6]["path"]
    path[-1] = ("0" if path[-1][0] != "0" else "1") + path[-1][1:]
    assert verify_bundle(value).lines() == [
        "FAIL inclusion proof of entry 7: it does not lead to the signed root "
        "(the proof is damaged; the entries match the checkpoint)"
    ]

    value = as_json(signed)
    value["inclusion_proofs"][0]["seq"] = 201
    assert verify_bundle(value).lines() == ["FAIL inclusion proof of entry 201: it is malformed or names no entry"]


def test_many_failing_entries_are_counted(signed: SampleLog) -> None:
    value = as_json(signed)
    for entry in value["entries"]:
        entry["body"] = None
    report = verify_bundle(value)
    assert report.first_failing_seq == 1
    assert f"FAIL entries: 200 entries fail in all; the first {verify.MAX_LISTED_ENTRY_FAILURES} are listed" in (
        report.lines()
    )


# --- Files that are not bundles ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not valid JSON"),
        (b'{"format": "panicsafe-logbook-bundle/v1"', "not valid JSON"),
        (b"[1, 2]", "not a PanicSAFE logbook bundle"),
        (b'{"format": "autre chose"}', "not a PanicSAFE logbook bundle (format 'autre chose'"),
        (b'{"format": "panicsafe-logbook-bundle/v1"}', "the bundle lacks"),
    ],
)
def test_unreadable_files_exit_2(tmp_path: Path, content: bytes, message: str) -> None:
    result = run_cli(write(tmp_path, content))
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_structural_errors_exit_2_with_the_place(signed: SampleLog, tmp_path: Path) -> None:
    value = as_json(signed)
    value["checkpoint"]["tree_size"] = "200"
    result = run_cli(write(tmp_path, value))
    assert result.returncode == 2
    assert "checkpoint.tree_size must be an integer" in result.stderr
    value = as_json(signed)
    value["entries"][3] = "entrée"
    with pytest.raises(BundleFormatError, match=r"entries\[3\] must be a JSON object"):
        verify_bundle(value)
    assert run_cli(tmp_path / "absent.json").returncode == 2


# --- The fast paths give the verdict of the plain ones --------------------------------------------------


def verdicts(tmp_path: Path, data: bytes, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[str]]:
    """The lines of the plain reading, and of the reading in two processes."""
    path = write(tmp_path, data, "parallel.json")
    plain = verify_bundle(load_bundle(data)).lines()
    monkeypatch.setattr(verify, "PARALLEL_MIN_BYTES", 0)
    calls: list[VerificationReport | None] = []
    real = verify._verify_in_parallel

    def spy(content: bytes, workers: int) -> VerificationReport | None:
        calls.append(real(content, workers))
        return calls[-1]

    monkeypatch.setattr(verify, "_verify_in_parallel", spy)
    parallel = verify_file(path, workers=2).lines()
    assert calls and calls[0] is not None, "the parallel reading fell back"
    return plain, parallel


@pytest.mark.parametrize("indent", [None, 1])
def test_reading_in_two_processes_gives_the_same_verdicts(
    signed: SampleLog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, indent: int | None
) -> None:
    def dumped(value: dict[str, Any]) -> bytes:
        if indent is None:
            return json.dumps(value, ensure_ascii=False, separators=(",", ":")).replace('},{"v"', '},\n{"v"').encode()
        return json.dumps(value, ensure_ascii=False, indent=indent).encode()

    genuine = as_json(signed)
    plain, parallel = verdicts(tmp_path, dumped(genuine), monkeypatch)
    assert plain == parallel and plain[0].startswith("OK 200 entries")

    for seq in (1, 99, 100, 101, 102, 200):  # around the cut between the two halves, and the ends
        value = as_json(signed)
        value["entries"][seq - 1]["summary"] += "!"
        plain, parallel = verdicts(tmp_path, dumped(value), monkeypatch)
        assert plain == parallel and plain[0].startswith(f"FAIL entry {seq}:"), (seq, plain, parallel)

    value = as_json(signed)
    value["inclusion_proofs"] = []
    value["entries"][100]["kind"] = "fact" if value["entries"][100]["kind"] != "fact" else "action"
    rehash_from(value["entries"], 101)
    plain, parallel = verdicts(tmp_path, dumped(value), monkeypatch)
    assert plain == parallel and plain[0].startswith("FAIL entries 101 to 150:")


def test_a_piece_that_does_not_parse_falls_back_to_the_plain_reading(
    signed: SampleLog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = as_json(signed)
    for entry in value["entries"]:  # lists of objects inside entries: cuts between them do not parse alone
        entry["extra"] = [{"n": n} for n in range(30)]
    data = json.dumps(value, ensure_ascii=False, indent=1).encode()
    monkeypatch.setattr(verify, "PARALLEL_MIN_BYTES", 0)
    # cut between two of those objects for sure: the pieces do not parse, the reading falls back
    monkeypatch.setattr(verify, "_ENTRY_BOUNDARY", re.compile(rb'\},\n *\{\n *"n"'))
    assert verify._verify_in_parallel(data, 2) is None
    path = write(tmp_path, data)
    assert verify_file(path, workers=2).lines() == verify_bundle(load_bundle(data)).lines()
    assert verify_file(path, workers=2).lines()[0] == "FAIL entry 1: unknown field(s): extra"


def test_an_unusual_layout_falls_back_to_the_plain_reading(signed: SampleLog, tmp_path: Path) -> None:
    value = as_json(signed)
    reordered = {"checkpoint": value.pop("checkpoint"), **value}  # entries no longer just before the checkpoint
    path = write(tmp_path, json.dumps(reordered, ensure_ascii=False, indent=1).encode())
    assert verify._verify_in_parallel(path.read_bytes(), 2) is None
    assert verify_file(path, workers=2).ok
    # a first "entries" key, which a JSON reader overrides with the last one, is not taken for the entries
    decoy = json.dumps(as_json(signed), ensure_ascii=False, indent=1).replace("{", '{"entries": [\n {"v": 1}\n],', 1)
    path = write(tmp_path, decoy.encode())
    assert verify._verify_in_parallel(path.read_bytes(), 2) is None
    assert verify_file(path, workers=2).ok


# --- The checks of an entry's shape: the fast expression agrees with the detailed one ---------------------

VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 300),
    st.text(max_size=8),
    st.sampled_from(["fact", "real", "exercise", "2026-11-23T18:00:00.000000Z", "ab" * 16, "cd" * 32]),
    st.dictionaries(st.text(max_size=3), st.one_of(st.text(max_size=3), st.integers()), max_size=2),
    st.lists(st.integers(), max_size=2),
)


MUTABLE_FIELDS = [*bundle_module.ENTRY_FIELDS, "author.id", "author.label", "links.x", "extra"]


@PROPERTY
@given(data=st.data())
def test_entry_problem_fast_and_detailed_checks_agree(signed: SampleLog, data: st.DataObject) -> None:
    entry: dict[str, Any] = copy.deepcopy(dict(data.draw(st.sampled_from(signed.bundle.entries[:20]))))
    seq, tenant, crisis = entry["seq"], signed.bundle.tenant, signed.bundle.crisis.id
    for _ in range(data.draw(st.integers(0, 3))):
        name = data.draw(st.sampled_from(MUTABLE_FIELDS))
        target, _, key = name.partition(".")
        if key:
            if isinstance(entry.get(target), dict):
                entry[target][key] = data.draw(VALUES)
        elif data.draw(st.booleans()) or name == "extra":
            entry[name] = data.draw(VALUES)
        else:
            entry.pop(name, None)
    fast = entry_problem(entry, seq, tenant, crisis, "real")
    detailed = bundle_module._entry_problem_detail(entry, seq, tenant, crisis, "real")
    assert (fast is None) == (detailed is None), (fast, detailed)
    if fast is None:
        assert fast_leaf_data(entry) == leaf_data(entry)


@PROPERTY
@given(
    label=st.text(),
    summary=st.text(),
    source=st.text(max_size=10),
    links=st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=4),
    numbers=st.tuples(st.integers(1, 10**12), st.one_of(st.none(), st.integers(1, 10**6))),
)
def test_fast_leaf_encoder_is_json_dumps(
    label: str, summary: str, source: str, links: dict[str, str], numbers: tuple[int, int | None]
) -> None:
    entry = sample_entries(1, "t", "c")[0]
    seq, corrects = numbers
    entry.update(seq=seq, summary=summary, source=source, links=links, corrects=corrects)
    entry["author"] = {"id": label or None, "label": label}
    assert fast_leaf_data(entry) == leaf_data(entry)


@PROPERTY
@given(moment=st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9998, 12, 31), timezones=st.timezones()))
def test_timestamps_are_written_as_strftime_would(moment: datetime) -> None:
    """`format_time` (the evidence format's timestamps) is the UTC strftime of `TIME_FORMAT`, and parses back."""
    written = format_time(moment)
    assert written == moment.astimezone(UTC).strftime(TIME_FORMAT)
    assert parse_time(written) == moment.astimezone(UTC)


def test_a_timestamp_without_a_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        format_time(datetime(2026, 11, 29, 21, 0))
