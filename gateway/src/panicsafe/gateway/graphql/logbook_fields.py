"""The main courante's root fields (the work is done in `logbook`).

Two pieces: the entries (read, write, follow live), and the proof of the log (its signed checkpoint,
its signed export).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from panicsafe.contracts.events import Mode
from panicsafe.contracts.logbook import ExportFormat
from panicsafe.gateway.graphql import logbook as lb
from panicsafe.gateway.graphql.common import GInfo, principal_of, uuid_arg
from panicsafe.gateway.graphql.streams import crisis_stream

# Exposed by `exportLogbook` only: registered by the module that exposes it.
strawberry.enum(ExportFormat, name="ExportFormat", description="Format d'export de la main courante.")


@strawberry.type
class LogbookQuery:
    @strawberry.field(description="La main courante d'une crise : filtres, pagination par curseur.")
    async def logbook(
        self,
        info: GInfo,
        crisis_id: strawberry.ID,
        filter: lb.LogbookFilter | None = None,
        after: int | None = None,
        first: int = 50,
        order: lb.LogbookOrder = lb.LogbookOrder.OLDEST_FIRST,
    ) -> lb.LogbookPage:
        principal = await principal_of(info)
        return await lb.read_logbook(info, principal, uuid_arg(crisis_id, "crisisId"), filter, after, first, order)


@strawberry.type
class LogbookMutation:
    @strawberry.mutation(description="Écrire une entrée dans la main courante (fait, décision, action, communication).")
    async def add_logbook_entry(
        self, info: GInfo, crisis_id: strawberry.ID, entry: lb.LogbookEntryInput
    ) -> lb.LogbookEntry:
        principal = await principal_of(info)
        return await lb.add_entry(info, principal, uuid_arg(crisis_id, "crisisId"), entry)


@strawberry.type
class LogbookSubscription:
    @strawberry.subscription(description="Les nouvelles entrées de la main courante, en direct.")
    async def logbook_entries(self, info: GInfo, crisis_id: strawberry.ID) -> AsyncGenerator[lb.LogbookNotice, None]:
        mode: Mode | None = None
        async for principal, crisis, event in crisis_stream(info, "logbookEntries", crisis_id):
            if mode is None:
                _, mode, _ = await lb.crisis_log(info, principal, crisis)
            if lb.is_notice(event, mode):
                for notice in lb.notices(principal, crisis, event):
                    yield notice


@strawberry.type
class LogbookProofQuery:
    @strawberry.field(description="Le dernier point de contrôle signé de la main courante.")
    async def logbook_checkpoint(self, info: GInfo, crisis_id: strawberry.ID) -> lb.LogbookCheckpoint | None:
        principal = await principal_of(info)
        return await lb.latest_checkpoint(info, principal, uuid_arg(crisis_id, "crisisId"))


@strawberry.type
class LogbookProofMutation:
    @strawberry.mutation(description="Exporter la main courante signée (PDF, CSV, paquet de preuve JSON).")
    async def export_logbook(self, info: GInfo, crisis_id: strawberry.ID, format: ExportFormat) -> lb.LogbookExport:
        principal = await principal_of(info)
        return await lb.export(info, principal, uuid_arg(crisis_id, "crisisId"), format)
