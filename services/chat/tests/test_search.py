"""Search over sealed messages against real PostgreSQL and OpenBao: the blind index."""

from __future__ import annotations

import pytest
from chathelpers import ChatUnderTest, code_of, new_crisis, send_request

from panicsafe.chat.search import words
from panicsafe.contracts.chat import (
    SearchRequest,
)
from panicsafe.contracts.errors import ErrorCode
from panicsafe.core.errors import ServiceError


async def test_search_despite_encryption(chat: ChatUnderTest) -> None:
    crisis = await new_crisis(chat, cells=("SI",))
    other_crisis = await new_crisis(chat, tenant=crisis.tenant)
    person = crisis.person(cells=("SI",))
    channel = crisis.channels["crisis"]
    a = (
        await chat.messages.send(person, send_request(channel, "Le RANÇONGICIEL a chiffré l'Active Directory."))
    ).message
    b = (
        await chat.messages.send(person, send_request(crisis.channels["SI"], "Rançongiciel : sauvegardes intactes"))
    ).message
    await chat.messages.send(person, send_request(channel, "Rien à voir"))
    other = other_crisis.person()
    await chat.messages.send(other, send_request(other_crisis.channels["crisis"], "rançongiciel ailleurs"))
    everywhere = await chat.search.search(person, SearchRequest(crisis=crisis.id, text="rancongiciel"))
    assert [m.id for m in everywhere.messages] == [b.id, a.id]  # newest first, accents and case ignored
    both_words = await chat.search.search(person, SearchRequest(crisis=crisis.id, text="active rançongiciel"))
    assert [m.id for m in both_words.messages] == [a.id]
    one_channel = await chat.search.search(
        person, SearchRequest(crisis=crisis.id, text="rançongiciel", channel=channel)
    )
    assert [m.id for m in one_channel.messages] == [a.id]
    with pytest.raises(ServiceError) as nothing:
        await chat.search.search(person, SearchRequest(crisis=crisis.id, text="!"))
    assert code_of(nothing) == ErrorCode.INVALID
    assert words("L'Active-Directory, 2024 é") == ["active", "directory", "2024"]
