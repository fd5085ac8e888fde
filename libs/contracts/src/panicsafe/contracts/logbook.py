"""RPC models of the logbook service (`rpc.logbook.<operation>`): the main courante.

A log is one crisis in one mode (real or exercise): exercise entries can never land in a real
crisis' log, its proofs or its exports. The tenant's own journal (account and administration events
that belong to no crisis) is the log whose crisis id is the tenant's own id (`journal_of`).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, field_validator

from panicsafe.contracts.declarations import EventType, Operation, Subscription
from panicsafe.contracts.events import LogbookKind, Mode, Uuid, canonical_uuid

MAX_SUMMARY = 500
MAX_BODY = 20_000
MAX_PAGE = 200


def journal_of(tenant: str) -> str:
    """The crisis id of a tenant's own journal: the tenant id (random UUIDs never collide with a crisis)."""
    return canonical_uuid(tenant)


class LogRef(BaseModel):
    """Which log: a crisis (or the tenant journal) in one mode."""

    crisis: Uuid
    mode: Mode = Mode.REAL


class AppendEntryRequest(LogRef):
    """A manual entry by a member: what they saw, decided, did or said."""

    kind: LogbookKind
    summary: str = Field(min_length=1, max_length=MAX_SUMMARY)
    body: str = Field(default="", max_length=MAX_BODY)
    occurred_at: datetime | None = None
    cell: Uuid | None = None
    corrects: int | None = Field(default=None, ge=1)

    @field_validator("summary")
    @classmethod
    def _summary(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be blank")
        return value

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must carry a time zone")
        return value


class EntryView(BaseModel):
    id: str
    crisis: str
    mode: Mode
    seq: int
    occurred_at: datetime
    recorded_at: datetime
    rekeyed: bool
    author_id: str | None
    author_label: str
    source: str
    kind: LogbookKind
    summary: str
    body: str | None = Field(description="None when it cannot be decrypted (shredded tenant or altered data)")
    cell: str | None
    links: dict[str, str]
    corrects: int | None
    leaf_hash: str
    chain_hash: str


class ListEntriesRequest(LogRef):
    kinds: list[LogbookKind] = Field(default_factory=list, max_length=5)
    cell: Uuid | None = None
    author: Uuid | None = None
    source: str | None = Field(default=None, max_length=32)
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = Field(default=None, min_length=1, max_length=200)
    after: int | None = Field(default=None, ge=0, description="cursor: the last seq already seen")
    before: int | None = Field(default=None, ge=1, description="cursor for reading backwards")
    first: int = Field(default=50, ge=1, le=MAX_PAGE)


class EntryPage(BaseModel):
    entries: list[EntryView]
    size: int = Field(description="entries in the whole log (all cells), the tree size")
    has_more: bool


class CheckpointView(BaseModel):
    crisis: str
    mode: Mode
    tree_size: int
    root_hash: str
    chain_head: str
    issued_at: str
    signature: str
    key_version: int
    public_key: str


class CheckpointRequest(LogRef):
    pass


class CheckpointReply(BaseModel):
    checkpoint: CheckpointView | None


class InclusionProofRequest(LogRef):
    seq: int = Field(ge=1)
    tree_size: int | None = Field(default=None, ge=1)


class InclusionProofReply(BaseModel):
    seq: int
    tree_size: int
    leaf_hash: str
    root_hash: str
    path: list[str]


class ConsistencyProofRequest(LogRef):
    from_size: int = Field(ge=1)
    to_size: int = Field(ge=1)


class ConsistencyProofReply(BaseModel):
    from_size: int
    to_size: int
    from_root: str
    to_root: str
    path: list[str]


class ExportFormat(StrEnum):
    PDF = "pdf"
    CSV = "csv"
    JSON = "json"


class ExportRequest(LogRef):
    format: ExportFormat
    title: str = Field(min_length=1, max_length=200)


class ExportReply(BaseModel):
    export_id: str
    filename: str
    content_type: str
    size: int
    sha256: str
    chunks: int
    entries: int
    tree_size: int
    root_hash: str


class ExportChunkRequest(BaseModel):
    export_id: Uuid
    index: int = Field(ge=0)


class ExportChunk(BaseModel):
    index: int
    data: str = Field(description="base64")
    last: bool
    filename: str
    content_type: str
    size: int
    sha256: str


class NoticeEntry(BaseModel):
    """One new entry as live views show it: its place and log line, never its body."""

    seq: int
    kind: LogbookKind
    summary: str
    cell: str | None
    source: str
    author: str
    occurred_at: str


class EntriesRecorded(BaseModel):
    """`data` of a notice: entries just recorded in one log (a few hundred at most per notice)."""

    mode: Mode
    entries: list[NoticeEntry]


# -- operations (`rpc.logbook.<name>`) and events (`evt.<t>.<c>.logbook.<name>`) ----------------------

SERVICE = "logbook"
APPEND = Operation(SERVICE, "append", AppendEntryRequest, EntryView, "A manual entry by a member")
LIST = Operation(SERVICE, "list", ListEntriesRequest, EntryPage, "A filtered page of a log's entries")
CHECKPOINT = Operation(SERVICE, "checkpoint", CheckpointRequest, CheckpointReply, "A log's latest signed checkpoint")
INCLUSION_PROOF = Operation(
    SERVICE, "inclusion_proof", InclusionProofRequest, InclusionProofReply, "Proof that an entry is in a tree"
)
CONSISTENCY_PROOF = Operation(
    SERVICE,
    "consistency_proof",
    ConsistencyProofRequest,
    ConsistencyProofReply,
    "Proof that a later tree extends an earlier one",
)
EXPORT = Operation(SERVICE, "export", ExportRequest, ExportReply, "Write a signed export (PDF, CSV or JSON bundle)")
EXPORT_CHUNK = Operation(SERVICE, "export_chunk", ExportChunkRequest, ExportChunk, "One chunk of a written export")
OPERATIONS: tuple[Operation[Any, Any], ...] = (
    APPEND,
    LIST,
    CHECKPOINT,
    INCLUSION_PROOF,
    CONSISTENCY_PROOF,
    EXPORT,
    EXPORT_CHUNK,
)

ENTRIES_RECORDED = EventType(SERVICE, "entries_recorded", EntriesRecorded, "New entries of one log, for live views")
EVENTS: tuple[EventType[Any], ...] = (ENTRIES_RECORDED,)

# What the logbook reads from the bus: every event, since any service's event may carry a logbook part.
WRITER = Subscription(
    SERVICE,
    "logbook-writer",
    everything=True,
    description="writes the main courante from every event with a logbook part",
)
SUBSCRIPTIONS: tuple[Subscription, ...] = (WRITER,)
