"""The main courante through the gateway: read, write, checkpoint, export, and a live feed.

The gateway decides with the policy module (root fields `Query.logbook`, `Mutation.addLogbookEntry`,
...), looks up the crisis' mode (a log is one crisis in one mode), then calls the logbook service
with a fresh actor token; the service decides need-to-know again from that token.

The root fields come in two pieces: the entries (read, write, follow live), and the proof of the log
(its signed checkpoint, its signed export).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncGenerator
from datetime import datetime
from enum import StrEnum
from typing import Any, cast

import strawberry
from strawberry.scalars import JSON

from panicsafe.contracts import logbook
from panicsafe.contracts.events import CloudEvent, Mode
from panicsafe.contracts.logbook import (
    AppendEntryRequest,
    CheckpointRequest,
    EntryView,
    ExportChunkRequest,
    ExportFormat,
    ExportRequest,
    ListEntriesRequest,
)
from panicsafe.core.errors import forbidden, invalid
from panicsafe.gateway.domain import policy
from panicsafe.gateway.domain.policy import Principal
from panicsafe.gateway.graphql.common import GInfo, LogbookKind, principal_of, uuid_arg, validated
from panicsafe.gateway.graphql.streams import crisis_stream
from panicsafe.gateway.store import tenancy

# Exposed by `exportLogbook` only: registered by the module that exposes it.
strawberry.enum(ExportFormat, name="ExportFormat", description="Format d'export de la main courante.")


@strawberry.enum(description="Sens de lecture de la main courante.")
class LogbookOrder(StrEnum):
    OLDEST_FIRST = "oldest_first"
    NEWEST_FIRST = "newest_first"


@strawberry.type(description="Une entrée de la main courante, avec son empreinte.")
class LogbookEntry:
    id: strawberry.ID
    seq: int
    occurred_at: datetime
    recorded_at: datetime
    rekeyed: bool = strawberry.field(description="Saisie a posteriori (par exemple depuis le papier).")
    author_id: strawberry.ID | None
    author: str
    source: str
    kind: LogbookKind
    summary: str
    body: str | None = strawberry.field(description="Null si le contenu est illisible (clé détruite ou altération).")
    cell_id: strawberry.ID | None
    links: JSON
    corrects: int | None
    leaf_hash: str
    chain_hash: str


@strawberry.type(description="Une page de la main courante.")
class LogbookPage:
    entries: list[LogbookEntry]
    size: int = strawberry.field(description="Nombre total d'entrées de la main courante (toutes cellules).")
    has_more: bool
    cursor: int | None = strawberry.field(description="Numéro de la dernière entrée de la page, pour la suite.")


@strawberry.type(description="Point de contrôle signé : taille, racine de l'arbre de Merkle, signature Ed25519.")
class LogbookCheckpoint:
    tree_size: int
    root_hash: str
    chain_head: str
    issued_at: str
    signature: str
    key_version: int
    public_key: str


@strawberry.type(description="Un export prêt à télécharger (une heure, par vous seul).")
class LogbookExport:
    id: strawberry.ID
    filename: str
    content_type: str
    size: int
    sha256: str
    entries: int
    tree_size: int
    root_hash: str
    download_path: str


@strawberry.type(description="Une nouvelle entrée de la main courante (relire la page pour le contenu).")
class LogbookNotice:
    seq: int
    kind: LogbookKind
    summary: str
    cell_id: strawberry.ID | None
    source: str
    author: str
    occurred_at: str


@strawberry.input(description="Filtres de lecture de la main courante.")
class LogbookFilter:
    kinds: list[LogbookKind] | None = None
    cell_id: strawberry.ID | None = None
    author_id: strawberry.ID | None = None
    source: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None


@strawberry.input(description="Une entrée saisie à la main.")
class LogbookEntryInput:
    kind: LogbookKind
    summary: str
    body: str = ""
    occurred_at: datetime | None = None
    cell_id: strawberry.ID | None = None
    corrects: int | None = None


def _entry(view: EntryView) -> LogbookEntry:
    return LogbookEntry(
        id=strawberry.ID(view.id),
        seq=view.seq,
        occurred_at=view.occurred_at,
        recorded_at=view.recorded_at,
        rekeyed=view.rekeyed,
        author_id=strawberry.ID(view.author_id) if view.author_id else None,
        author=view.author_label,
        source=view.source,
        kind=view.kind,
        summary=view.summary,
        body=view.body,
        cell_id=strawberry.ID(view.cell) if view.cell else None,
        links=cast(JSON, view.links),
        corrects=view.corrects,
        leaf_hash=view.leaf_hash,
        chain_hash=view.chain_hash,
    )


async def crisis_log(info: GInfo, principal: Principal, crisis_id: str) -> tuple[str, Mode, str]:
    """The crisis' canonical id, its mode and title (a log is one crisis in one mode)."""
    async with info.context.services.db.tenant(principal.tenant_id) as conn:
        row = await tenancy.crisis(conn, crisis_id)
    if row is None:
        raise forbidden("Vous n'êtes pas membre de cette crise.")
    return str(row["id"]), Mode(row["mode"]), str(row["title"])


async def read_logbook(
    info: GInfo,
    principal: Principal,
    crisis_id: str,
    filter: LogbookFilter | None,
    after: int | None,
    first: int,
    order: LogbookOrder,
) -> LogbookPage:
    crisis, mode, _ = await crisis_log(info, principal, crisis_id)
    f = filter or LogbookFilter()
    newest_first = order == LogbookOrder.NEWEST_FIRST
    request = validated(
        lambda: ListEntriesRequest(
            crisis=crisis,
            mode=mode,
            kinds=f.kinds or [],
            cell=f.cell_id,
            author=f.author_id,
            source=f.source,
            since=f.since,
            until=f.until,
            text=f.text.strip() if f.text and f.text.strip() else None,
            after=None if newest_first else after,
            before=(after if after is not None else 2**62) if newest_first else None,
            first=first,
        )
    )
    page = await info.context.services.call(principal, logbook.LIST, request)
    entries = [_entry(e) for e in page.entries]
    return LogbookPage(
        entries=entries, size=page.size, has_more=page.has_more, cursor=entries[-1].seq if entries else after
    )


async def add_entry(info: GInfo, principal: Principal, crisis_id: str, entry: LogbookEntryInput) -> LogbookEntry:
    crisis, mode, _ = await crisis_log(info, principal, crisis_id)
    if entry.cell_id is not None and not policy.can_see_cell(principal, crisis, str(entry.cell_id)):
        raise forbidden("Écrivez dans la main courante d'une de vos cellules.")
    request = validated(
        lambda: AppendEntryRequest(
            crisis=crisis,
            mode=mode,
            kind=entry.kind,
            summary=entry.summary,
            body=entry.body,
            occurred_at=entry.occurred_at,
            cell=entry.cell_id,
            corrects=entry.corrects,
        )
    )
    view = await info.context.services.call(principal, logbook.APPEND, request)
    return _entry(view)


async def latest_checkpoint(info: GInfo, principal: Principal, crisis_id: str) -> LogbookCheckpoint | None:
    crisis, mode, _ = await crisis_log(info, principal, crisis_id)
    reply = await info.context.services.call(principal, logbook.CHECKPOINT, CheckpointRequest(crisis=crisis, mode=mode))
    cp = reply.checkpoint
    if cp is None:
        return None
    return LogbookCheckpoint(
        tree_size=cp.tree_size,
        root_hash=cp.root_hash,
        chain_head=cp.chain_head,
        issued_at=cp.issued_at,
        signature=cp.signature,
        key_version=cp.key_version,
        public_key=cp.public_key,
    )


async def export(info: GInfo, principal: Principal, crisis_id: str, format: ExportFormat) -> LogbookExport:
    crisis, mode, title = await crisis_log(info, principal, crisis_id)
    reply = await info.context.services.call(
        principal, logbook.EXPORT, ExportRequest(crisis=crisis, mode=mode, format=format, title=title)
    )
    return LogbookExport(
        id=strawberry.ID(reply.export_id),
        filename=reply.filename,
        content_type=reply.content_type,
        size=reply.size,
        sha256=reply.sha256,
        entries=reply.entries,
        tree_size=reply.tree_size,
        root_hash=reply.root_hash,
        download_path=f"/exports/{reply.export_id}",
    )


def visible_notice_entries(principal: Principal, crisis: str, event: CloudEvent) -> list[dict[str, Any]]:
    """The entries of a logbook notice this principal may see (need-to-know by cell)."""
    entries = event.data.get("entries")
    if not isinstance(entries, list):
        return []
    return [
        e
        for e in entries
        if isinstance(e, dict) and policy.can_see_entry(principal, crisis, str(e["cell"]) if e.get("cell") else None)
    ]


def notices(principal: Principal, crisis: str, event: CloudEvent) -> list[LogbookNotice]:
    out = []
    for e in visible_notice_entries(principal, crisis, event):
        try:
            out.append(
                LogbookNotice(
                    seq=int(e["seq"]),
                    kind=LogbookKind(e["kind"]),
                    summary=str(e["summary"]),
                    cell_id=strawberry.ID(str(e["cell"])) if e.get("cell") else None,
                    source=str(e["source"]),
                    author=str(e["author"]),
                    occurred_at=str(e["occurred_at"]),
                )
            )
        except (KeyError, ValueError, TypeError):
            continue  # a malformed notice is skipped, never fatal to the feed
    return out


def is_notice(event: CloudEvent, mode: Mode) -> bool:
    return logbook.ENTRIES_RECORDED.matches(event) and event.mode == mode


def chunk_request(export_id: str, index: int) -> ExportChunkRequest:
    request = validated(lambda: ExportChunkRequest(export_id=export_id, index=index))
    return request


def decode_chunk(data: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except ValueError as exc:
        raise invalid("morceau d'export illisible") from exc


# -- root fields -----------------------------------------------------------------------------------


@strawberry.type
class LogbookQuery:
    @strawberry.field(description="La main courante d'une crise : filtres, pagination par curseur.")
    async def logbook(
        self,
        info: GInfo,
        crisis_id: strawberry.ID,
        filter: LogbookFilter | None = None,
        after: int | None = None,
        first: int = 50,
        order: LogbookOrder = LogbookOrder.OLDEST_FIRST,
    ) -> LogbookPage:
        principal = await principal_of(info)
        return await read_logbook(info, principal, uuid_arg(crisis_id, "crisisId"), filter, after, first, order)


@strawberry.type
class LogbookMutation:
    @strawberry.mutation(description="Écrire une entrée dans la main courante (fait, décision, action, communication).")
    async def add_logbook_entry(self, info: GInfo, crisis_id: strawberry.ID, entry: LogbookEntryInput) -> LogbookEntry:
        principal = await principal_of(info)
        return await add_entry(info, principal, uuid_arg(crisis_id, "crisisId"), entry)


@strawberry.type
class LogbookSubscription:
    @strawberry.subscription(description="Les nouvelles entrées de la main courante, en direct.")
    async def logbook_entries(self, info: GInfo, crisis_id: strawberry.ID) -> AsyncGenerator[LogbookNotice, None]:
        mode: Mode | None = None
        async for principal, crisis, event in crisis_stream(info, "logbookEntries", crisis_id):
            if mode is None:
                _, mode, _ = await crisis_log(info, principal, crisis)
            if is_notice(event, mode):
                for notice in notices(principal, crisis, event):
                    yield notice


@strawberry.type
class LogbookProofQuery:
    @strawberry.field(description="Le dernier point de contrôle signé de la main courante.")
    async def logbook_checkpoint(self, info: GInfo, crisis_id: strawberry.ID) -> LogbookCheckpoint | None:
        principal = await principal_of(info)
        return await latest_checkpoint(info, principal, uuid_arg(crisis_id, "crisisId"))


@strawberry.type
class LogbookProofMutation:
    @strawberry.mutation(description="Exporter la main courante signée (PDF, CSV, paquet de preuve JSON).")
    async def export_logbook(self, info: GInfo, crisis_id: strawberry.ID, format: ExportFormat) -> LogbookExport:
        principal = await principal_of(info)
        return await export(info, principal, uuid_arg(crisis_id, "crisisId"), format)
