"""The crisis chat's root fields: channels, messages and the live feed.

The work is done in `chat` (calls to the chat service) and `chat_feed` (the live feed); the types
are in `chat_types`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from panicsafe.contracts import chat as chat_ops
from panicsafe.contracts.chat import EditRequest, MarkRequest, PinRequest, RedactRequest
from panicsafe.gateway.graphql import chat as ch
from panicsafe.gateway.graphql.chat_feed import live_update, resume_backlog
from panicsafe.gateway.graphql.chat_types import (
    ChannelCursor,
    ChatChannel,
    ChatMessage,
    ChatMessagePage,
    ChatMessageVersion,
    ChatUpdate,
    SendMessageInput,
    SendMessageResult,
)
from panicsafe.gateway.graphql.common import GInfo, LogbookKind, principal_of, uuid_arg
from panicsafe.gateway.graphql.streams import crisis_stream


@strawberry.type
class ChatQuery:
    @strawberry.field(description="Les canaux de la crise que vous pouvez lire, avec les non-lus.")
    async def chat_channels(self, info: GInfo, crisis_id: strawberry.ID) -> list[ChatChannel]:
        return await ch.list_channels(info, await principal_of(info), uuid_arg(crisis_id, "crisisId"))

    @strawberry.field(description="L'historique d'un canal : avant `before` (du plus récent) ou après `after`.")
    async def chat_history(
        self,
        info: GInfo,
        channel_id: strawberry.ID,
        before: int | None = None,
        after: int | None = None,
        first: int = 50,
    ) -> ChatMessagePage:
        return await ch.history(info, await principal_of(info), str(channel_id), before, after, first)

    @strawberry.field(description="Les messages épinglés d'un canal.")
    async def chat_pinned(self, info: GInfo, channel_id: strawberry.ID) -> list[ChatMessage]:
        return await ch.pinned(info, await principal_of(info), str(channel_id))

    @strawberry.field(description="Recherche par mots entiers (sans casse ni accents) dans la crise ou un canal.")
    async def chat_search(
        self, info: GInfo, crisis_id: strawberry.ID, text: str, channel_id: strawberry.ID | None = None, first: int = 20
    ) -> ChatMessagePage:
        principal = await principal_of(info)
        channel = str(channel_id) if channel_id else None
        return await ch.search(info, principal, uuid_arg(crisis_id, "crisisId"), text, channel, first)

    @strawberry.field(description="Les versions d'un message modifié (d'un message retiré : responsables seulement).")
    async def chat_message_versions(self, info: GInfo, message_id: strawberry.ID) -> list[ChatMessageVersion]:
        return await ch.versions(info, await principal_of(info), str(message_id))


@strawberry.type
class ChatMutation:
    @strawberry.mutation(description="Envoie un message ; le même clientId renvoyé ne crée rien de plus.")
    async def send_message(self, info: GInfo, input: SendMessageInput) -> SendMessageResult:
        return await ch.send(info, await principal_of(info), input)

    @strawberry.mutation(description="Modifie votre message (l'ancienne version est conservée).")
    async def edit_message(self, info: GInfo, message_id: strawberry.ID, text: str) -> ChatMessage:
        return await ch.change(
            info, await principal_of(info), chat_ops.EDIT, lambda: EditRequest(message=str(message_id), text=text)
        )

    @strawberry.mutation(description="Retire un message : il reste une trace (qui, quand), plus le texte.")
    async def redact_message(self, info: GInfo, message_id: strawberry.ID, reason: str = "") -> ChatMessage:
        return await ch.change(
            info,
            await principal_of(info),
            chat_ops.REDACT,
            lambda: RedactRequest(message=str(message_id), reason=reason),
        )

    @strawberry.mutation(description="Épingle (ou détache) un message.")
    async def pin_message(self, info: GInfo, message_id: strawberry.ID, pinned: bool = True) -> ChatMessage:
        return await ch.change(
            info, await principal_of(info), chat_ops.PIN, lambda: PinRequest(message=str(message_id), pinned=pinned)
        )

    @strawberry.mutation(description="Inscrit un message à la main courante : décision, fait, action ou communication.")
    async def mark_message(self, info: GInfo, message_id: strawberry.ID, kind: LogbookKind) -> ChatMessage:
        return await ch.change(
            info, await principal_of(info), chat_ops.MARK, lambda: MarkRequest(message=str(message_id), kind=kind)
        )

    @strawberry.mutation(description="Marque un canal comme lu jusqu'au message `seq`.")
    async def mark_channel_read(self, info: GInfo, channel_id: strawberry.ID, seq: int) -> ChatChannel:
        return await ch.mark_read(info, await principal_of(info), str(channel_id), seq)

    @strawberry.mutation(description="Ouvre un canal privé dans une cellule, pour certains de ses membres.")
    async def create_private_channel(
        self,
        info: GInfo,
        crisis_id: strawberry.ID,
        cell_id: strawberry.ID,
        name: str,
        member_ids: list[strawberry.ID],
    ) -> ChatChannel:
        crisis = uuid_arg(crisis_id, "crisisId")
        cell = uuid_arg(cell_id, "cellId")
        members = [uuid_arg(m, "memberIds") for m in member_ids]
        return await ch.create_private(info, await principal_of(info), crisis, cell, name, members)

    @strawberry.mutation(description="Ouvre (ou retrouve) une conversation directe avec un membre de la crise.")
    async def open_direct_channel(self, info: GInfo, crisis_id: strawberry.ID, user_id: strawberry.ID) -> ChatChannel:
        principal = await principal_of(info)
        return await ch.open_direct(info, principal, uuid_arg(crisis_id, "crisisId"), uuid_arg(user_id, "userId"))

    @strawberry.mutation(description="Ajoute ou retire des membres d'un canal privé.")
    async def set_channel_members(
        self,
        info: GInfo,
        channel_id: strawberry.ID,
        add: list[strawberry.ID] | None = None,
        remove: list[strawberry.ID] | None = None,
    ) -> ChatChannel:
        return await ch.set_members(info, await principal_of(info), str(channel_id), add or [], remove or [])


@strawberry.type
class ChatSubscription:
    @strawberry.subscription(
        description="La messagerie de la crise en direct ; `resume` rattrape d'abord ce qui a été manqué."
    )
    async def chat_updates(
        self, info: GInfo, crisis_id: strawberry.ID, resume: list[ChannelCursor] | None = None
    ) -> AsyncGenerator[ChatUpdate, None]:
        delivered: dict[str, int] = {}
        backlog = resume_backlog(info, resume or [], delivered)
        async for principal, crisis, item in crisis_stream(info, "chatUpdates", crisis_id, backlog):
            if isinstance(item, ChatUpdate):
                yield item
                continue
            update = await live_update(info, principal, crisis, item, delivered)
            if update is not None:
                yield update
