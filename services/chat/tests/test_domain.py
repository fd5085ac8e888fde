"""The chat's pure rules, without servers: which channels a person may open by hand."""

from __future__ import annotations

import uuid

import pytest

from panicsafe.chat.domain import Standing, new_channel
from panicsafe.contracts.chat import ChannelKind, CreateChannelRequest
from panicsafe.contracts.errors import ErrorCode
from panicsafe.core.errors import ServiceError

CRISIS = str(uuid.uuid4())
CELL = str(uuid.uuid4())


def person(role: str = "member", cells: tuple[str, ...] = ()) -> Standing:
    return Standing(user=str(uuid.uuid4()), label="Agent", roles=frozenset({role}), cells=frozenset(cells))


def refusal(me: Standing, request: CreateChannelRequest) -> ErrorCode:
    with pytest.raises(ServiceError) as refused:
        new_channel(me, request)
    return refused.value.code


def test_direct_conversation_is_one_per_pair_whoever_opens_it() -> None:
    alice, bob = person(), person()
    by_alice = new_channel(alice, CreateChannelRequest(crisis=CRISIS, kind=ChannelKind.DIRECT, members=[bob.user]))
    by_bob = new_channel(bob, CreateChannelRequest(crisis=CRISIS, kind=ChannelKind.DIRECT, members=[alice.user]))
    assert by_alice.direct_key == by_bob.direct_key == ":".join(sorted([alice.user, bob.user]))
    assert by_alice.members == sorted([alice.user, bob.user]) and by_alice.name == "Conversation directe"
    three = CreateChannelRequest(crisis=CRISIS, kind=ChannelKind.DIRECT, members=[bob.user, person().user])
    assert refusal(alice, three) == ErrorCode.INVALID


def test_private_channel_in_ones_own_cell_and_named() -> None:
    request = CreateChannelRequest(crisis=CRISIS, kind=ChannelKind.PRIVATE, name=" Forensique ", cell=CELL)
    opened = new_channel(person(cells=(CELL,)), request)
    assert opened.name == "Forensique" and opened.direct_key is None
    assert new_channel(person("director"), request).name == "Forensique"  # leaders: any cell
    assert refusal(person(), request) == ErrorCode.FORBIDDEN
    assert refusal(person("observer", cells=(CELL,)), request) == ErrorCode.FORBIDDEN
    unnamed = CreateChannelRequest(crisis=CRISIS, kind=ChannelKind.PRIVATE, cell=CELL)
    assert refusal(person(cells=(CELL,)), unnamed) == ErrorCode.INVALID
    default = CreateChannelRequest(crisis=CRISIS, kind=ChannelKind.CELL, name="x", cell=CELL)
    assert refusal(person("director"), default) == ErrorCode.INVALID
