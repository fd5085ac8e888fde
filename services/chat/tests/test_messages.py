"""Messages against real PostgreSQL and OpenBao: order, idempotence, edits and retractions, marks, sealing."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import subprocess
import uuid

import asyncpg
import pytest
from chathelpers import ChatUnderTest, code_of, new_crisis, outbox_events, send_request, text_of
from pydantic import ValidationError

from panicsafe.chat.domain import SendLimiter
from panicsafe.contracts import chat as chat_events
from panicsafe.contracts.chat import (
    ChannelRef,
    ChatEventData,
    EditRequest,
    HistoryRequest,
    MarkRequest,
    MessageRef,
    PinRequest,
    RedactRequest,
    SearchRequest,
    SendRequest,
)
from panicsafe.contracts.errors import ErrorCode
from panicsafe.contracts.events import LOGBOOK_BODY_PURPOSE, LogbookKind
from panicsafe.core.devstack.servers import POSTGRES_BIN_DIRS, find_binary
from panicsafe.core.errors import ServiceError


async def test_concurrent_senders_one_order_and_retries_stored_once(chat: ChatUnderTest) -> None:
    crisis = await new_crisis(chat)
    channel = crisis.channels["crisis"]
    senders = [crisis.person(name=f"Agent {i}") for i in range(20)]

    async def burst(person_index: int) -> list[int]:
        person = senders[person_index]
        seqs = []
        for n in range(10):
            client_id = f"c{person_index:02d}-{n:02d}-{secrets.token_hex(4)}"
            request = send_request(channel, f"message {n} de l'agent {person_index}", client_id)
            first, retry = await asyncio.gather(
                chat.messages.send(person, request), chat.messages.send(person, request)
            )
            assert first.message.id == retry.message.id  # a retry (even a concurrent one) is the same message
            assert [first.duplicate, retry.duplicate].count(False) <= 1
            seqs.append(first.message.seq)
        return seqs

    results = await asyncio.gather(*(burst(i) for i in range(20)))
    every = sorted(s for seqs in results for s in seqs)
    assert every == list(range(1, 201))  # one gap-free order, nothing stored twice
    for seqs in results:
        assert seqs == sorted(seqs)  # each sender's messages in the order they were sent

    async def read_all(reader_index: int) -> list[tuple[int, str]]:
        page = await chat.reading.history(senders[reader_index], HistoryRequest(channel=channel, after=0, first=200))
        return [(m.seq, m.id) for m in page.messages]

    first_reader, second_reader = await asyncio.gather(read_all(0), read_all(7))
    assert first_reader == second_reader
    assert [s for s, _ in first_reader] == list(range(1, 201))


async def test_bad_input_gets_stable_codes(chat: ChatUnderTest) -> None:
    crisis = await new_crisis(chat)
    person = crisis.person()
    for text in ("", "   \n ", "x" * 10_001):
        with pytest.raises(ValidationError):
            SendRequest(channel=crisis.channels["crisis"], client_id="abcdefgh12", text=text)
    assert len(SendRequest(channel=crisis.channels["crisis"], client_id="abcdefgh12", text="é" * 10_000).text) == 10_000
    with pytest.raises(ValidationError):
        SendRequest(channel=crisis.channels["crisis"], client_id="short", text="bonjour")
    with pytest.raises(ServiceError) as unknown:
        await chat.messages.send(person, send_request(str(uuid.uuid4()), "bonjour"))
    assert code_of(unknown) == ErrorCode.NOT_FOUND
    outsider = crisis.person()
    outsider.memberships[0].crisis = str(uuid.uuid4())
    with pytest.raises(ServiceError) as stranger:
        await chat.messages.send(outsider, send_request(crisis.channels["crisis"], "bonjour"))
    assert code_of(stranger) == ErrorCode.NOT_FOUND  # another crisis' channel does not even exist for them
    with pytest.raises(ServiceError) as wrong_reply:
        await chat.messages.send(person, send_request(crisis.channels["crisis"], "réponse", reply_to=str(uuid.uuid4())))
    assert code_of(wrong_reply) == ErrorCode.NOT_FOUND
    history = await chat.reading.history(person, HistoryRequest(channel=crisis.channels["crisis"], after=0))
    assert history.messages == []  # nothing half-written by the refusals


async def test_rate_limit_is_per_person_and_clear(chat: ChatUnderTest) -> None:
    crisis = await new_crisis(chat)
    person, other = crisis.person(), crisis.person()
    previous = chat.messages.limiter
    chat.messages.limiter = SendLimiter(rate=0.001, burst=3)
    try:
        for n in range(3):
            await chat.messages.send(person, send_request(crisis.channels["crisis"], f"message {n}"))
        with pytest.raises(ServiceError) as limited:
            await chat.messages.send(person, send_request(crisis.channels["crisis"], "un de trop"))
        assert code_of(limited) == ErrorCode.RATE_LIMITED
        assert "patientez" in limited.value.message
        await chat.messages.send(other, send_request(crisis.channels["crisis"], "un autre peut écrire"))
    finally:
        chat.messages.limiter = previous
    page = await chat.reading.history(person, HistoryRequest(channel=crisis.channels["crisis"], after=0))
    assert len(page.messages) == 4


async def test_edit_redact_pin_keep_history(chat: ChatUnderTest) -> None:
    crisis = await new_crisis(chat)
    author, director, other = crisis.person(), crisis.person("director"), crisis.person()
    channel = crisis.channels["crisis"]
    sent = (await chat.messages.send(author, send_request(channel, "Serveur PACS arrêté à 03h10"))).message
    edited = await chat.messages.edit(author, EditRequest(message=sent.id, text="Serveur PACS arrêté à 03h12"))
    assert edited.version == 2 and edited.edited_at is not None and edited.rev > sent.rev
    assert await text_of(chat, crisis.tenant, edited.id, 2, edited.body_sealed) == "Serveur PACS arrêté à 03h12"
    with pytest.raises(ServiceError) as not_author:
        await chat.messages.edit(other, EditRequest(message=sent.id, text="falsifié"))
    assert code_of(not_author) == ErrorCode.FORBIDDEN
    history = await chat.reading.versions(other, MessageRef(message=sent.id))
    assert [v.version for v in history.versions] == [1]
    assert (
        await text_of(chat, crisis.tenant, sent.id, 1, history.versions[0].body_sealed) == "Serveur PACS arrêté à 03h10"
    )
    # An old version's ciphertext cannot pass for the current one.
    with pytest.raises(ServiceError):
        await text_of(chat, crisis.tenant, sent.id, 2, history.versions[0].body_sealed)

    pinned = await chat.messages.pin(other, PinRequest(message=sent.id))
    assert pinned.pinned_at is not None
    found = await chat.search.search(other, SearchRequest(crisis=crisis.id, text="pacs"))
    assert [m.id for m in found.messages] == [sent.id]

    redacted = await chat.messages.redact(director, RedactRequest(message=sent.id, reason="erreur de canal"))
    assert redacted.body_sealed is None and redacted.redacted_at is not None
    assert redacted.redacted_by is not None and "erreur de canal" in redacted.redacted_by
    page = await chat.reading.history(other, HistoryRequest(channel=channel, after=0))
    assert [m.id for m in page.messages] == [sent.id]  # the tombstone keeps its place
    # Its event parses as every live subscriber's gateway reads it (no text, a tombstone).
    redaction = [
        e for e in await outbox_events(chat) if chat_events.MESSAGE_REDACTED.matches(e) and e.crisisid == crisis.id
    ]
    assert len(redaction) == 1
    parsed = ChatEventData.model_validate(redaction[0].data)
    assert parsed.message is not None and parsed.message.body_sealed is None and parsed.message.redacted_at
    assert (await chat.search.search(other, SearchRequest(crisis=crisis.id, text="pacs"))).messages == []
    with pytest.raises(ServiceError):  # the retracted text is for the crisis' leaders only
        await chat.reading.versions(other, MessageRef(message=sent.id))
    kept = await chat.reading.versions(director, MessageRef(message=sent.id))
    assert [v.version for v in kept.versions] == [1, 2]
    with pytest.raises(ServiceError) as gone:
        await chat.messages.edit(author, EditRequest(message=sent.id, text="encore"))
    assert code_of(gone) == ErrorCode.CONFLICT


async def test_mark_is_one_logbook_event_with_sealed_body(chat: ChatUnderTest) -> None:
    crisis = await new_crisis(chat, cells=("SI",))
    author = crisis.person(cells=("SI",), name="Chef SI")
    director = crisis.person("director", name="Directrice")
    sent = (
        await chat.messages.send(author, send_request(crisis.channels["SI"], "Décision : couper le VPN à 04h00"))
    ).message
    marked = await chat.messages.mark(director, MarkRequest(message=sent.id, kind=LogbookKind.DECISION))
    again = await chat.messages.mark(director, MarkRequest(message=sent.id, kind=LogbookKind.DECISION))
    assert marked.marked_kind == again.marked_kind == LogbookKind.DECISION and marked.rev == again.rev
    with pytest.raises(ServiceError) as other_kind:
        await chat.messages.mark(director, MarkRequest(message=sent.id, kind=LogbookKind.FACT))
    assert code_of(other_kind) == ErrorCode.CONFLICT
    with pytest.raises(ValidationError):
        MarkRequest(message=sent.id, kind=LogbookKind.SYSTEM)
    events = [e for e in await outbox_events(chat) if e.crisisid == crisis.id and e.logbook is not None]
    assert len(events) == 1
    event = events[0]
    assert chat_events.MESSAGE_MARKED.matches(event) and event.logbook is not None
    assert event.logbook.kind == LogbookKind.DECISION
    assert event.logbook.links == {"message": sent.id, "channel": crisis.channels["SI"]}
    assert event.logbook.cell == crisis.cells["SI"]
    assert "VPN" not in event.model_dump_json()  # the text travels sealed only
    assert event.logbook.body_sealed is not None
    body = await chat.cipher.decrypt(
        crisis.tenant, event.id, base64.b64decode(event.logbook.body_sealed), purpose=LOGBOOK_BODY_PURPOSE
    )
    assert body.decode() == "Décision : couper le VPN à 04h00"


async def test_no_message_text_in_the_schema_or_events(chat: ChatUnderTest) -> None:
    crisis = await new_crisis(chat, cells=("SI",))
    person = crisis.person(cells=("SI",))
    marker = f"Zorglub{secrets.token_hex(4)}"
    sent = (
        await chat.messages.send(person, send_request(crisis.channels["SI"], f"Le code est {marker} ; éteignez"))
    ).message
    await chat.messages.edit(person, EditRequest(message=sent.id, text=f"Le code est {marker}, éteignez tout"))
    await chat.messages.mark(person, MarkRequest(message=sent.id, kind=LogbookKind.FACT))
    await chat.messages.pin(person, PinRequest(message=sent.id))
    conn = await asyncpg.connect(chat.admin_dsn)
    try:
        tables = await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", chat.roles.schema
        )
        dump = []
        for table in tables:
            rows = await conn.fetch(f"SELECT t::text AS line FROM {chat.roles.schema}.{table['table_name']} t")
            dump += [r["line"] for r in rows]
    finally:
        await conn.close()
    # And pg_dump itself, binary columns and all, as a backup of the schema would hold it.
    pg_dump = find_binary("pg_dump", POSTGRES_BIN_DIRS)
    backup = subprocess.run(
        [pg_dump, "--data-only", f"--schema={chat.roles.schema}", f"--dbname={chat.admin_dsn}"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode("utf-8", errors="replace")
    assert sent.id in backup
    dump.append(backup)
    everything = "\n".join(dump)
    assert len(tables) >= 9 and sent.id in everything  # the dump did read the messages
    for needle in (marker, marker.lower(), "éteignez", "eteignez", marker.encode().hex()):
        assert needle not in everything
    payloads = json.dumps([e.model_dump(mode="json") for e in await outbox_events(chat)])
    assert marker not in payloads and marker.lower() not in payloads
    pinned = await chat.reading.pinned(person, ChannelRef(channel=crisis.channels["SI"]))
    assert [m.id for m in pinned.messages] == [sent.id]
