"""Channels of a crisis: its default ones, private channels and direct conversations, read markers.

`Channels` also follows the gateway's events: the default channels when a crisis is declared, a
channel when a cell is created, read-only when the crisis is closed.
"""

from __future__ import annotations

from panicsafe.chat import access
from panicsafe.chat.domain import Standing, new_channel, standing
from panicsafe.chat.store import channels as store
from panicsafe.chat.store.channels import Channel
from panicsafe.contracts import chat, gateway
from panicsafe.contracts.actor import Actor
from panicsafe.contracts.chat import (
    Audience,
    CellRef,
    ChannelKind,
    ChannelList,
    ChannelRef,
    ChannelView,
    ChatEventData,
    CreateChannelRequest,
    CrisisRef,
    ProvisionRequest,
    ReadMarkerRequest,
    SetMembersRequest,
)
from panicsafe.contracts.events import NO_CRISIS, CloudEvent
from panicsafe.core.db.database import Connection, Database
from panicsafe.core.errors import conflict, forbidden, invalid, not_found


def channel_view(me: Standing, c: Channel, read_seq: int, counts: tuple[int, int]) -> ChannelView:
    """A channel as `me` sees it: read marker, unread counts (others' live messages), writable."""
    return ChannelView(
        id=c.id,
        crisis=c.crisis,
        kind=c.kind,
        name=c.name,
        cell=c.cell,
        members=c.members,
        last_seq=c.last_seq,
        last_rev=c.last_rev,
        read_seq=read_seq,
        unread=counts[0],
        unread_mentions=counts[1],
        writable=me.may_write(c.audience),
        created_at=c.created_at,
    )


class Channels:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- crises and their default channels --------------------------------------------------------

    async def provision(self, tenant: str, request: ProvisionRequest) -> int:
        """The crisis and its default channels (whole cell, one per cell, external), created once."""
        async with self.db.tenant(tenant) as conn:
            return await self.provision_in(conn, tenant, request)

    async def provision_in(self, conn: Connection, tenant: str, request: ProvisionRequest) -> int:
        await store.upsert_crisis(conn, tenant, request.crisis, request.mode.value)
        created: list[tuple[str, ChannelKind, str, str | None]] = []
        for kind, name in store.DEFAULT_CHANNELS:
            channel_id = await store.insert_default_channel(conn, tenant, request.crisis, kind.value, name)
            if channel_id:
                created.append((channel_id, kind, name, None))
        for cell in request.cells:
            channel_id = await store.insert_cell_channel(conn, tenant, request.crisis, cell.id, cell.name)
            if channel_id:
                created.append((channel_id, ChannelKind.CELL, cell.name, cell.id))
        for channel_id, kind, name, cell_id in created:
            data = ChatEventData(channel=channel_id, audience=Audience(kind=kind, cell=cell_id), channel_name=name)
            await access.queue_event(conn, tenant, request.crisis, request.mode, None, chat.CHANNEL_CREATED, data)
        return len(created)

    async def close_crisis(self, conn: Connection, crisis: str) -> None:
        await store.close_crisis(conn, crisis)

    async def on_gateway_event(self, conn: Connection, event: CloudEvent) -> None:
        """Default channels when a crisis is declared, a channel when a cell is created, read-only when closed."""
        if event.crisisid == NO_CRISIS:
            return
        declared = gateway.CRISIS_DECLARED.matches(event)
        if declared or gateway.CELL_CREATED.matches(event):
            payload = gateway.CRISIS_DECLARED.parse(event) if declared else gateway.CELL_CREATED.parse(event)
            cells = [CellRef(id=c.id, name=c.name, kind=c.kind) for c in payload.cells]
            request = ProvisionRequest(crisis=event.crisisid, mode=event.mode, cells=cells)
            await self.provision_in(conn, event.tenantid, request)
        elif gateway.CRISIS_CLOSED.matches(event):
            await self.close_crisis(conn, event.crisisid)

    # -- channels ---------------------------------------------------------------------------------

    async def list_channels(self, actor: Actor, request: CrisisRef) -> ChannelList:
        me = standing(actor, request.crisis)
        async with self.db.tenant(actor.tenant) as conn:
            await access.crisis_state(conn, request.crisis)
            visible = [c for c in await store.channels(conn, request.crisis) if me.reads(c.audience)]
            ids = [c.id for c in visible]
            markers = await store.read_markers(conn, me.user, ids)
            counts = await store.unread(conn, me.user, sorted(me.cells), markers, ids)
        return ChannelList(
            channels=[channel_view(me, c, markers.get(c.id, 0), counts.get(c.id, (0, 0))) for c in visible]
        )

    async def get_channel(self, actor: Actor, request: ChannelRef) -> ChannelView:
        async with self.db.tenant(actor.tenant) as conn:
            channel, me = await access.readable(conn, actor, request.channel)
            markers = await store.read_markers(conn, me.user, [channel.id])
            counts = await store.unread(conn, me.user, sorted(me.cells), markers, [channel.id])
        return channel_view(me, channel, markers.get(channel.id, 0), counts.get(channel.id, (0, 0)))

    async def create_channel(self, actor: Actor, request: CreateChannelRequest) -> ChannelView:
        """Private channels within one cell, and direct conversations; the gateway checked that the
        members belong to the crisis (and to the cell)."""
        me = standing(actor, request.crisis)
        wanted = new_channel(me, request)
        async with self.db.tenant(actor.tenant) as conn:
            mode, closed = await access.crisis_state(conn, request.crisis)
            if closed:
                raise conflict("La crise est close.")
            if request.cell is not None and request.cell not in await store.cell_ids(conn, request.crisis):
                raise not_found("Cellule inconnue pour cette crise.")
            channel_id = await store.insert_channel(
                conn,
                tenant=actor.tenant,
                crisis_id=request.crisis,
                kind=request.kind.value,
                name=wanted.name,
                cell=request.cell,
                direct_key=wanted.direct_key,
                created_by=me.user,
                members=wanted.members,
            )
            if channel_id is None:  # that direct conversation exists: the same one is returned
                assert wanted.direct_key is not None
                channel_id = await store.direct_channel(conn, request.crisis, wanted.direct_key)
                assert channel_id is not None
            else:
                created = await store.channel(conn, channel_id)
                assert created is not None
                data = ChatEventData(channel=channel_id, audience=created.audience, channel_name=created.name)
                await access.queue_event(conn, actor.tenant, request.crisis, mode, me, chat.CHANNEL_CREATED, data)
            found = await store.channel(conn, channel_id)
        assert found is not None
        return channel_view(me, found, 0, (0, 0))

    async def set_members(self, actor: Actor, request: SetMembersRequest) -> ChannelView:
        async with self.db.tenant(actor.tenant) as conn:
            channel, me = await access.readable(conn, actor, request.channel, lock=True)
            if channel.kind != ChannelKind.PRIVATE:
                raise invalid("Seuls les membres d'un canal privé se choisissent.")
            if not me.may_write(channel.audience):
                raise forbidden("Réservé aux membres du canal.")
            mode, _ = await access.crisis_state(conn, channel.crisis)
            await store.add_members(conn, actor.tenant, channel.id, sorted(set(request.add)))
            await store.remove_members(conn, channel.id, sorted(set(request.remove)))
            updated = await store.channel(conn, channel.id)
            assert updated is not None
            if not updated.members:
                raise invalid("Un canal privé garde au moins un membre.")
            data = ChatEventData(channel=channel.id, audience=updated.audience, channel_name=updated.name)
            await access.queue_event(conn, actor.tenant, channel.crisis, mode, me, chat.CHANNEL_MEMBERS_CHANGED, data)
        return channel_view(me, updated, 0, (0, 0))

    async def mark_read(self, actor: Actor, request: ReadMarkerRequest) -> ChannelView:
        """Move the actor's read marker forward (never back, never past the last message)."""
        async with self.db.tenant(actor.tenant) as conn:
            channel, me = await access.readable(conn, actor, request.channel)
            seq = await store.set_read_marker(
                conn, actor.tenant, channel.id, me.user, min(request.seq, channel.last_seq)
            )
            counts = await store.unread(conn, me.user, sorted(me.cells), {channel.id: seq}, [channel.id])
        return channel_view(me, channel, seq, counts.get(channel.id, (0, 0)))
