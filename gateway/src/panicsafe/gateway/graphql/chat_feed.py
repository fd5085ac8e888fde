"""The crisis chat's live feed: the events a subscriber may read, after what they missed.

A client resuming names the last revision it received on each channel; it gets those channels'
changes since, as the messages now are, then the live events not already covered.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Sequence

import strawberry
from pydantic import ValidationError

from panicsafe.contracts import chat
from panicsafe.contracts.chat import Audience, ChangesRequest, ChatEventData, may_read
from panicsafe.contracts.errors import ErrorCode
from panicsafe.contracts.events import CloudEvent
from panicsafe.core.errors import ServiceError
from panicsafe.gateway.domain.policy import Principal
from panicsafe.gateway.graphql.chat_types import ChannelCursor, ChatUpdate, ChatUpdateKind, message
from panicsafe.gateway.graphql.common import GInfo, validated
from panicsafe.gateway.graphql.streams import Backlog

MAX_RESUME_PAGES = 50  # 10,000 changes per channel; beyond, the client reloads the history

KINDS = {
    chat.MESSAGE_POSTED.type: ChatUpdateKind.POSTED,
    chat.MESSAGE_EDITED.type: ChatUpdateKind.EDITED,
    chat.MESSAGE_REDACTED.type: ChatUpdateKind.REDACTED,
    chat.MESSAGE_PINNED.type: ChatUpdateKind.PINNED,
    chat.MESSAGE_MARKED.type: ChatUpdateKind.MARKED,
    chat.CHANNEL_CREATED.type: ChatUpdateKind.CHANNEL,
    chat.CHANNEL_MEMBERS_CHANGED.type: ChatUpdateKind.CHANNEL,
}


class ParsedEvents:
    """Chat events parsed once per process, however many subscribers they go to."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._parsed: OrderedDict[str, ChatEventData | None] = OrderedDict()

    def of(self, event: CloudEvent) -> ChatEventData | None:
        if event.id in self._parsed:
            return self._parsed[event.id]
        data: ChatEventData | None = None
        with contextlib.suppress(ValidationError):
            data = ChatEventData.model_validate(event.data)
        self._parsed[event.id] = data
        while len(self._parsed) > self.size:
            self._parsed.popitem(last=False)
        return data


PARSED = ParsedEvents()


def reads(principal: Principal, crisis: str, audience: Audience) -> bool:
    access = principal.access(crisis)
    if access is None:
        return False
    return may_read(principal.user_id, {access.role.value}, set(access.cells), audience)


def resume_backlog(info: GInfo, cursors: Sequence[ChannelCursor], delivered: dict[str, int]) -> Backlog:
    """What the client missed on each channel it names, as the messages now are; `delivered` keeps
    the last revision handed over per channel, so that live events already covered are skipped."""

    async def backlog(principal: Principal, crisis: str) -> list[ChatUpdate]:
        out: list[ChatUpdate] = []
        for cursor in cursors:
            channel_id, after = str(cursor.channel_id), max(0, cursor.after_rev)
            for _ in range(MAX_RESUME_PAGES):
                request = validated(lambda c=channel_id, a=after: ChangesRequest(channel=c, after_rev=a))  # type: ignore[misc]
                try:
                    result = await info.context.services.call(principal, chat.CHANGES, request)
                except ServiceError as exc:
                    # A channel one no longer reads (or never could): nothing to resume there, the
                    # others still are.
                    if exc.code in (ErrorCode.FORBIDDEN, ErrorCode.NOT_FOUND):
                        break
                    raise
                if any(view.crisis != crisis for view in result.messages):
                    break  # a channel of another crisis: not this feed's
                for view in result.messages:
                    out.append(
                        ChatUpdate(
                            kind=ChatUpdateKind.SYNCED,
                            channel_id=strawberry.ID(channel_id),
                            message=await message(info, principal.tenant_id, view),
                            channel_name=None,
                        )
                    )
                    after = view.rev
                if not result.has_more:
                    break
            delivered[channel_id] = after
        return out

    return backlog


async def live_update(
    info: GInfo, principal: Principal, crisis: str, event: CloudEvent, delivered: dict[str, int]
) -> ChatUpdate | None:
    """The update this principal may see of a live event, or None (someone else's channel, or already sent)."""
    kind = KINDS.get(event.type)
    data = PARSED.of(event)
    if kind is None or data is None or not reads(principal, crisis, data.audience):
        return None
    view = data.message
    if view is not None:
        if view.rev <= delivered.get(data.channel, 0):
            return None
        delivered[data.channel] = view.rev
    return ChatUpdate(
        kind=kind,
        channel_id=strawberry.ID(data.channel),
        message=await message(info, principal.tenant_id, view) if view is not None else None,
        channel_name=data.channel_name,
    )
