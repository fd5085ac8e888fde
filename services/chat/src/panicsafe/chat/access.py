"""What every chat operation checks and writes: need-to-know on the channel, and its event.

Need-to-know is decided again on every request from the actor token (the gateway decided first), so
a change of membership takes effect at once. Every change writes its event in the same transaction
(outbox), so nothing is half-written.
"""

from __future__ import annotations

from typing import Any

from panicsafe.chat.domain import Standing, standing
from panicsafe.chat.store import channels as channel_rows
from panicsafe.chat.store import messages as message_rows
from panicsafe.chat.store.channels import Channel
from panicsafe.contracts.actor import Actor
from panicsafe.contracts.chat import ChatEventData
from panicsafe.contracts.declarations import EventType
from panicsafe.contracts.events import LogbookPart, Mode
from panicsafe.core.bus.outbox import append_event
from panicsafe.core.db.database import Connection
from panicsafe.core.errors import conflict, forbidden, not_found

NO_CHANNEL = "Canal introuvable."


async def crisis_state(conn: Connection, crisis: str) -> tuple[Mode, bool]:
    """The crisis' mode and whether it is closed; not found until its chat is provisioned."""
    row = await channel_rows.crisis(conn, crisis)
    if row is None:
        raise not_found("Messagerie de cette crise pas encore prête.")
    return Mode(row["mode"]), bool(row["closed"])


async def readable(conn: Connection, actor: Actor, channel_id: str, *, lock: bool = False) -> tuple[Channel, Standing]:
    """The channel, if the actor may read it; an unknown channel and a hidden one look the same."""
    channel = await channel_rows.channel(conn, channel_id, lock=lock)
    if channel is None:
        raise not_found(NO_CHANNEL)
    membership = actor.membership(channel.crisis)
    if membership is None:
        raise not_found(NO_CHANNEL)
    me = standing(actor, channel.crisis)
    if not me.reads(channel.audience):
        raise forbidden("Ce canal est réservé à ses membres.")
    return channel, me


async def writable(
    conn: Connection, actor: Actor, channel_id: str, *, lock: bool = False
) -> tuple[Channel, Standing, Mode]:
    """The channel, if the actor may write to it and its crisis is still open."""
    channel, me = await readable(conn, actor, channel_id, lock=lock)
    if not me.may_write(channel.audience):
        raise forbidden("Vous lisez ce canal sans pouvoir y écrire.")
    mode, closed = await crisis_state(conn, channel.crisis)
    if closed:
        raise conflict("La crise est close : la messagerie est en lecture seule.")
    return channel, me, mode


async def channel_of(conn: Connection, message_id: str) -> str:
    """The channel of a message (its access is checked on the channel)."""
    channel_id = await message_rows.message_channel(conn, message_id)
    if channel_id is None:
        raise not_found("Message introuvable.")
    return channel_id


async def queue_event(
    conn: Connection,
    tenant: str,
    crisis: str,
    mode: Mode,
    me: Standing | None,
    kind: EventType[ChatEventData],
    data: ChatEventData,
    logbook: LogbookPart | None = None,
    event_id: str | None = None,
) -> None:
    """The change's event, into the outbox in the change's own transaction."""
    fields: dict[str, Any] = {}
    if event_id is not None:
        fields["id"] = event_id
    await append_event(
        conn,
        kind.event(
            data,
            tenant=tenant,
            crisis=crisis,
            actor=me.user if me else None,
            mode=mode,
            logbook=logbook,
            **fields,
        ),
    )
