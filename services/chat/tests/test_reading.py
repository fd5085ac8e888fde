"""Reading a channel against real PostgreSQL and OpenBao: resuming by revision."""

from __future__ import annotations

from chathelpers import ChatUnderTest, new_crisis, send_request

from panicsafe.contracts.chat import (
    ChangesRequest,
    EditRequest,
)


async def test_resume_by_revision_misses_nothing(chat: ChatUnderTest) -> None:
    crisis = await new_crisis(chat)
    person = crisis.person()
    channel = crisis.channels["crisis"]
    first = [(await chat.messages.send(person, send_request(channel, f"avant {n}"))).message for n in range(3)]
    cursor = max(m.rev for m in first)
    later = [(await chat.messages.send(person, send_request(channel, f"après {n}"))).message for n in range(3)]
    await chat.messages.edit(person, EditRequest(message=first[0].id, text="avant 0, corrigé"))
    changes = await chat.reading.changes(person, ChangesRequest(channel=channel, after_rev=cursor))
    ids = [m.id for m in changes.messages]
    assert ids == [m.id for m in later] + [first[0].id]  # new messages and the edit, in revision order
    revs = [m.rev for m in changes.messages]
    assert revs == sorted(revs) and revs[0] == cursor + 1
