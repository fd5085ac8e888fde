"""Channels against real PostgreSQL and OpenBao: default channels, need-to-know, private and direct, read markers."""

from __future__ import annotations

import pytest
from chathelpers import ChatUnderTest, code_of, new_crisis, send_request

from panicsafe.contracts.chat import (
    CellRef,
    ChannelKind,
    CreateChannelRequest,
    CrisisRef,
    HistoryRequest,
    MarkRequest,
    MessageRef,
    ProvisionRequest,
    ReadMarkerRequest,
    SearchRequest,
    SetMembersRequest,
)
from panicsafe.contracts.errors import ErrorCode
from panicsafe.contracts.events import LogbookKind
from panicsafe.core.errors import ServiceError


async def test_default_channels_once(chat: ChatUnderTest) -> None:
    crisis = await new_crisis(chat, cells=("SI", "Communication", "Médical"))
    assert set(crisis.channels) == {"crisis", "external", "SI", "Communication", "Médical"}
    # Provisioning again (a replayed event, the gateway's fallback) creates nothing more.
    created = await chat.channels.provision(
        crisis.tenant,
        ProvisionRequest(crisis=crisis.id, cells=[CellRef(id=i, name=n) for n, i in crisis.cells.items()]),
    )
    assert created == 0


async def test_need_to_know_per_channel(chat: ChatUnderTest) -> None:
    crisis = await new_crisis(chat, cells=("SI", "Médical"))
    director = crisis.person("director")
    it_member = crisis.person("member", cells=("SI",))
    medical_member = crisis.person("member", cells=("Médical",))
    liaison = crisis.person("external_liaison", cells=("Médical",))
    observer = crisis.person("observer")

    def names(listed: list[str]) -> set[str]:
        inverse = {v: k for k, v in crisis.channels.items()}
        return {inverse[c] for c in listed}

    async def visible(person: object) -> set[str]:
        listed = await chat.channels.list_channels(person, CrisisRef(crisis=crisis.id))  # type: ignore[arg-type]
        return names([c.id for c in listed.channels])

    assert await visible(director) == {"crisis", "external", "SI", "Médical"}
    assert await visible(it_member) == {"crisis", "external", "SI"}
    assert await visible(liaison) == {"external", "Médical"}
    assert await visible(observer) == {"crisis", "external"}

    secret = await chat.messages.send(it_member, send_request(crisis.channels["SI"], "mot de passe du coffre SI"))
    for person in (medical_member, liaison, observer):
        with pytest.raises(ServiceError) as refused:
            await chat.reading.history(person, HistoryRequest(channel=crisis.channels["SI"], after=0))
        assert code_of(refused) == ErrorCode.FORBIDDEN
        with pytest.raises(ServiceError):
            await chat.reading.versions(person, MessageRef(message=secret.message.id))
        with pytest.raises(ServiceError):
            await chat.messages.mark(person, MarkRequest(message=secret.message.id, kind=LogbookKind.DECISION))
        found = await chat.search.search(person, SearchRequest(crisis=crisis.id, text="coffre"))
        assert found.messages == []
    with pytest.raises(ServiceError) as read_only:
        await chat.messages.send(observer, send_request(crisis.channels["crisis"], "un observateur écrit"))
    assert code_of(read_only) == ErrorCode.FORBIDDEN
    # Membership changes take effect at once: the next request carries the new cells.
    moved = crisis.person("member", cells=("Médical",))
    moved.subject = it_member.subject
    with pytest.raises(ServiceError):
        await chat.reading.history(moved, HistoryRequest(channel=crisis.channels["SI"], after=0))


async def test_private_and_direct_channels(chat: ChatUnderTest) -> None:
    crisis = await new_crisis(chat, cells=("SI",))
    alice = crisis.person(cells=("SI",), name="Alice")
    bob = crisis.person(cells=("SI",), name="Bob")
    carol = crisis.person(cells=("SI",), name="Carol")
    private = await chat.channels.create_channel(
        alice,
        CreateChannelRequest(
            crisis=crisis.id,
            kind=ChannelKind.PRIVATE,
            name="Forensique",
            cell=crisis.cells["SI"],
            members=[bob.subject],
        ),
    )
    assert sorted(private.members) == sorted([alice.subject, bob.subject])
    await chat.messages.send(bob, send_request(private.id, "indicateurs de compromission"))
    with pytest.raises(ServiceError):
        await chat.reading.history(carol, HistoryRequest(channel=private.id, after=0))
    await chat.channels.set_members(alice, SetMembersRequest(channel=private.id, remove=[bob.subject]))
    with pytest.raises(ServiceError):  # removal takes effect at once
        await chat.reading.history(bob, HistoryRequest(channel=private.id, after=0))
    direct = await chat.channels.create_channel(
        alice, CreateChannelRequest(crisis=crisis.id, kind=ChannelKind.DIRECT, members=[carol.subject])
    )
    again = await chat.channels.create_channel(
        carol, CreateChannelRequest(crisis=crisis.id, kind=ChannelKind.DIRECT, members=[alice.subject])
    )
    assert again.id == direct.id  # one conversation per pair
    with pytest.raises(ServiceError):
        await chat.reading.history(bob, HistoryRequest(channel=direct.id, after=0))
    outside_cell = crisis.person(cells=())
    with pytest.raises(ServiceError) as refused:
        await chat.channels.create_channel(
            outside_cell,
            CreateChannelRequest(crisis=crisis.id, kind=ChannelKind.PRIVATE, name="x", cell=crisis.cells["SI"]),
        )
    assert code_of(refused) == ErrorCode.FORBIDDEN


async def test_read_markers_unread_and_mentions(chat: ChatUnderTest) -> None:
    crisis = await new_crisis(chat, cells=("SI",))
    writer, reader = crisis.person(), crisis.person(cells=("SI",))
    channel = crisis.channels["crisis"]
    await chat.messages.send(writer, send_request(channel, "un"))
    await chat.messages.send(writer, send_request(channel, "deux", mention_users=[reader.subject]))
    await chat.messages.send(writer, send_request(channel, "trois", mention_cells=[crisis.cells["SI"]]))
    await chat.messages.send(reader, send_request(channel, "le mien ne compte pas"))
    listed = await chat.channels.list_channels(reader, CrisisRef(crisis=crisis.id))
    mine = next(c for c in listed.channels if c.id == channel)
    assert (mine.unread, mine.unread_mentions, mine.read_seq) == (3, 2, 0)
    marked = await chat.channels.mark_read(reader, ReadMarkerRequest(channel=channel, seq=2))
    assert (marked.unread, marked.unread_mentions, marked.read_seq) == (1, 1, 2)
    back = await chat.channels.mark_read(reader, ReadMarkerRequest(channel=channel, seq=1))
    assert back.read_seq == 2  # markers only move forward
