"""The chat core against real PostgreSQL and OpenBao: order, idempotence, need-to-know, sealing, search."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import subprocess
import uuid

import asyncpg
import pytest
from chathelpers import ChatUnderTest, new_crisis, send_request
from pydantic import ValidationError

from panicsafe.chat.domain import SendLimiter
from panicsafe.chat.search import words
from panicsafe.contracts.chat import (
    CellRef,
    ChangesRequest,
    ChannelKind,
    ChannelRef,
    ChatEventData,
    CreateChannelRequest,
    CrisisRef,
    EditRequest,
    HistoryRequest,
    MarkRequest,
    MessageRef,
    PinRequest,
    ProvisionRequest,
    ReadMarkerRequest,
    RedactRequest,
    SearchRequest,
    SendRequest,
    SetMembersRequest,
    message_purpose,
)
from panicsafe.contracts.errors import ErrorCode
from panicsafe.contracts.events import LOGBOOK_BODY_PURPOSE, CloudEvent, LogbookKind
from panicsafe.core.devstack.servers import POSTGRES_BIN_DIRS, find_binary
from panicsafe.core.errors import ServiceError


async def text_of(chat: ChatUnderTest, tenant: str, message_id: str, version: int, sealed: str | None) -> str | None:
    if sealed is None:
        return None
    plain = await chat.core.cipher.decrypt(
        tenant, message_id, base64.b64decode(sealed), purpose=message_purpose(version)
    )
    return plain.decode()


async def outbox_events(chat: ChatUnderTest) -> list[CloudEvent]:
    """The events queued by the core (no relay runs in these tests: they stay in the outbox)."""
    conn = await asyncpg.connect(chat.admin_dsn)
    try:
        rows = await conn.fetch(f"SELECT payload FROM {chat.roles.schema}.outbox ORDER BY seq")
    finally:
        await conn.close()
    return [CloudEvent.model_validate_json(bytes(r["payload"])) for r in rows]


def code_of(exc: pytest.ExceptionInfo[ServiceError]) -> ErrorCode:
    return exc.value.code


async def test_default_channels_once(chat: ChatUnderTest) -> None:
    crisis = await new_crisis(chat, cells=("SI", "Communication", "Médical"))
    assert set(crisis.channels) == {"crisis", "external", "SI", "Communication", "Médical"}
    # Provisioning again (a replayed event, the gateway's fallback) creates nothing more.
    created = await chat.core.provision(
        crisis.tenant,
        ProvisionRequest(crisis=crisis.id, cells=[CellRef(id=i, name=n) for n, i in crisis.cells.items()]),
    )
    assert created == 0


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
            first, retry = await asyncio.gather(chat.core.send(person, request), chat.core.send(person, request))
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
        page = await chat.core.history(senders[reader_index], HistoryRequest(channel=channel, after=0, first=200))
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
        await chat.core.send(person, send_request(str(uuid.uuid4()), "bonjour"))
    assert code_of(unknown) == ErrorCode.NOT_FOUND
    outsider = crisis.person()
    outsider.memberships[0].crisis = str(uuid.uuid4())
    with pytest.raises(ServiceError) as stranger:
        await chat.core.send(outsider, send_request(crisis.channels["crisis"], "bonjour"))
    assert code_of(stranger) == ErrorCode.NOT_FOUND  # another crisis' channel does not even exist for them
    with pytest.raises(ServiceError) as wrong_reply:
        await chat.core.send(person, send_request(crisis.channels["crisis"], "réponse", reply_to=str(uuid.uuid4())))
    assert code_of(wrong_reply) == ErrorCode.NOT_FOUND
    history = await chat.core.history(person, HistoryRequest(channel=crisis.channels["crisis"], after=0))
    assert history.messages == []  # nothing half-written by the refusals


async def test_rate_limit_is_per_person_and_clear(chat: ChatUnderTest) -> None:
    crisis = await new_crisis(chat)
    person, other = crisis.person(), crisis.person()
    previous = chat.core.limiter
    chat.core.limiter = SendLimiter(rate=0.001, burst=3)
    try:
        for n in range(3):
            await chat.core.send(person, send_request(crisis.channels["crisis"], f"message {n}"))
        with pytest.raises(ServiceError) as limited:
            await chat.core.send(person, send_request(crisis.channels["crisis"], "un de trop"))
        assert code_of(limited) == ErrorCode.RATE_LIMITED
        assert "patientez" in limited.value.message
        await chat.core.send(other, send_request(crisis.channels["crisis"], "un autre peut écrire"))
    finally:
        chat.core.limiter = previous
    page = await chat.core.history(person, HistoryRequest(channel=crisis.channels["crisis"], after=0))
    assert len(page.messages) == 4


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
        listed = await chat.core.list_channels(person, CrisisRef(crisis=crisis.id))  # type: ignore[arg-type]
        return names([c.id for c in listed.channels])

    assert await visible(director) == {"crisis", "external", "SI", "Médical"}
    assert await visible(it_member) == {"crisis", "external", "SI"}
    assert await visible(liaison) == {"external", "Médical"}
    assert await visible(observer) == {"crisis", "external"}

    secret = await chat.core.send(it_member, send_request(crisis.channels["SI"], "mot de passe du coffre SI"))
    for person in (medical_member, liaison, observer):
        with pytest.raises(ServiceError) as refused:
            await chat.core.history(person, HistoryRequest(channel=crisis.channels["SI"], after=0))
        assert code_of(refused) == ErrorCode.FORBIDDEN
        with pytest.raises(ServiceError):
            await chat.core.versions(person, MessageRef(message=secret.message.id))
        with pytest.raises(ServiceError):
            await chat.core.mark(person, MarkRequest(message=secret.message.id, kind=LogbookKind.DECISION))
        found = await chat.core.search(person, SearchRequest(crisis=crisis.id, text="coffre"))
        assert found.messages == []
    with pytest.raises(ServiceError) as read_only:
        await chat.core.send(observer, send_request(crisis.channels["crisis"], "un observateur écrit"))
    assert code_of(read_only) == ErrorCode.FORBIDDEN
    # Membership changes take effect at once: the next request carries the new cells.
    moved = crisis.person("member", cells=("Médical",))
    moved.subject = it_member.subject
    with pytest.raises(ServiceError):
        await chat.core.history(moved, HistoryRequest(channel=crisis.channels["SI"], after=0))


async def test_private_and_direct_channels(chat: ChatUnderTest) -> None:
    crisis = await new_crisis(chat, cells=("SI",))
    alice = crisis.person(cells=("SI",), name="Alice")
    bob = crisis.person(cells=("SI",), name="Bob")
    carol = crisis.person(cells=("SI",), name="Carol")
    private = await chat.core.create_channel(
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
    await chat.core.send(bob, send_request(private.id, "indicateurs de compromission"))
    with pytest.raises(ServiceError):
        await chat.core.history(carol, HistoryRequest(channel=private.id, after=0))
    await chat.core.set_members(alice, SetMembersRequest(channel=private.id, remove=[bob.subject]))
    with pytest.raises(ServiceError):  # removal takes effect at once
        await chat.core.history(bob, HistoryRequest(channel=private.id, after=0))
    direct = await chat.core.create_channel(
        alice, CreateChannelRequest(crisis=crisis.id, kind=ChannelKind.DIRECT, members=[carol.subject])
    )
    again = await chat.core.create_channel(
        carol, CreateChannelRequest(crisis=crisis.id, kind=ChannelKind.DIRECT, members=[alice.subject])
    )
    assert again.id == direct.id  # one conversation per pair
    with pytest.raises(ServiceError):
        await chat.core.history(bob, HistoryRequest(channel=direct.id, after=0))
    outside_cell = crisis.person(cells=())
    with pytest.raises(ServiceError) as refused:
        await chat.core.create_channel(
            outside_cell,
            CreateChannelRequest(crisis=crisis.id, kind=ChannelKind.PRIVATE, name="x", cell=crisis.cells["SI"]),
        )
    assert code_of(refused) == ErrorCode.FORBIDDEN


async def test_edit_redact_pin_keep_history(chat: ChatUnderTest) -> None:
    crisis = await new_crisis(chat)
    author, director, other = crisis.person(), crisis.person("director"), crisis.person()
    channel = crisis.channels["crisis"]
    sent = (await chat.core.send(author, send_request(channel, "Serveur PACS arrêté à 03h10"))).message
    edited = await chat.core.edit(author, EditRequest(message=sent.id, text="Serveur PACS arrêté à 03h12"))
    assert edited.version == 2 and edited.edited_at is not None and edited.rev > sent.rev
    assert await text_of(chat, crisis.tenant, edited.id, 2, edited.body_sealed) == "Serveur PACS arrêté à 03h12"
    with pytest.raises(ServiceError) as not_author:
        await chat.core.edit(other, EditRequest(message=sent.id, text="falsifié"))
    assert code_of(not_author) == ErrorCode.FORBIDDEN
    history = await chat.core.versions(other, MessageRef(message=sent.id))
    assert [v.version for v in history.versions] == [1]
    assert (
        await text_of(chat, crisis.tenant, sent.id, 1, history.versions[0].body_sealed) == "Serveur PACS arrêté à 03h10"
    )
    # An old version's ciphertext cannot pass for the current one.
    with pytest.raises(ServiceError):
        await text_of(chat, crisis.tenant, sent.id, 2, history.versions[0].body_sealed)

    pinned = await chat.core.pin(other, PinRequest(message=sent.id))
    assert pinned.pinned_at is not None
    found = await chat.core.search(other, SearchRequest(crisis=crisis.id, text="pacs"))
    assert [m.id for m in found.messages] == [sent.id]

    redacted = await chat.core.redact(director, RedactRequest(message=sent.id, reason="erreur de canal"))
    assert redacted.body_sealed is None and redacted.redacted_at is not None
    assert redacted.redacted_by is not None and "erreur de canal" in redacted.redacted_by
    page = await chat.core.history(other, HistoryRequest(channel=channel, after=0))
    assert [m.id for m in page.messages] == [sent.id]  # the tombstone keeps its place
    # Its event parses as every live subscriber's gateway reads it (no text, a tombstone).
    redaction = [e for e in await outbox_events(chat) if e.short_type == "message_redacted" and e.crisisid == crisis.id]
    assert len(redaction) == 1
    parsed = ChatEventData.model_validate(redaction[0].data)
    assert parsed.message is not None and parsed.message.body_sealed is None and parsed.message.redacted_at
    assert (await chat.core.search(other, SearchRequest(crisis=crisis.id, text="pacs"))).messages == []
    with pytest.raises(ServiceError):  # the retracted text is for the crisis' leaders only
        await chat.core.versions(other, MessageRef(message=sent.id))
    kept = await chat.core.versions(director, MessageRef(message=sent.id))
    assert [v.version for v in kept.versions] == [1, 2]
    with pytest.raises(ServiceError) as gone:
        await chat.core.edit(author, EditRequest(message=sent.id, text="encore"))
    assert code_of(gone) == ErrorCode.CONFLICT


async def test_resume_by_revision_misses_nothing(chat: ChatUnderTest) -> None:
    crisis = await new_crisis(chat)
    person = crisis.person()
    channel = crisis.channels["crisis"]
    first = [(await chat.core.send(person, send_request(channel, f"avant {n}"))).message for n in range(3)]
    cursor = max(m.rev for m in first)
    later = [(await chat.core.send(person, send_request(channel, f"après {n}"))).message for n in range(3)]
    await chat.core.edit(person, EditRequest(message=first[0].id, text="avant 0, corrigé"))
    changes = await chat.core.changes(person, ChangesRequest(channel=channel, after_rev=cursor))
    ids = [m.id for m in changes.messages]
    assert ids == [m.id for m in later] + [first[0].id]  # new messages and the edit, in revision order
    revs = [m.rev for m in changes.messages]
    assert revs == sorted(revs) and revs[0] == cursor + 1


async def test_read_markers_unread_and_mentions(chat: ChatUnderTest) -> None:
    crisis = await new_crisis(chat, cells=("SI",))
    writer, reader = crisis.person(), crisis.person(cells=("SI",))
    channel = crisis.channels["crisis"]
    await chat.core.send(writer, send_request(channel, "un"))
    await chat.core.send(writer, send_request(channel, "deux", mention_users=[reader.subject]))
    await chat.core.send(writer, send_request(channel, "trois", mention_cells=[crisis.cells["SI"]]))
    await chat.core.send(reader, send_request(channel, "le mien ne compte pas"))
    listed = await chat.core.list_channels(reader, CrisisRef(crisis=crisis.id))
    mine = next(c for c in listed.channels if c.id == channel)
    assert (mine.unread, mine.unread_mentions, mine.read_seq) == (3, 2, 0)
    marked = await chat.core.mark_read(reader, ReadMarkerRequest(channel=channel, seq=2))
    assert (marked.unread, marked.unread_mentions, marked.read_seq) == (1, 1, 2)
    back = await chat.core.mark_read(reader, ReadMarkerRequest(channel=channel, seq=1))
    assert back.read_seq == 2  # markers only move forward


async def test_search_despite_encryption(chat: ChatUnderTest) -> None:
    crisis = await new_crisis(chat, cells=("SI",))
    other_crisis = await new_crisis(chat, tenant=crisis.tenant)
    person = crisis.person(cells=("SI",))
    channel = crisis.channels["crisis"]
    a = (await chat.core.send(person, send_request(channel, "Le RANÇONGICIEL a chiffré l'Active Directory."))).message
    b = (
        await chat.core.send(person, send_request(crisis.channels["SI"], "Rançongiciel : sauvegardes intactes"))
    ).message
    await chat.core.send(person, send_request(channel, "Rien à voir"))
    other = other_crisis.person()
    await chat.core.send(other, send_request(other_crisis.channels["crisis"], "rançongiciel ailleurs"))
    everywhere = await chat.core.search(person, SearchRequest(crisis=crisis.id, text="rancongiciel"))
    assert [m.id for m in everywhere.messages] == [b.id, a.id]  # newest first, accents and case ignored
    both_words = await chat.core.search(person, SearchRequest(crisis=crisis.id, text="active rançongiciel"))
    assert [m.id for m in both_words.messages] == [a.id]
    one_channel = await chat.core.search(person, SearchRequest(crisis=crisis.id, text="rançongiciel", channel=channel))
    assert [m.id for m in one_channel.messages] == [a.id]
    with pytest.raises(ServiceError) as nothing:
        await chat.core.search(person, SearchRequest(crisis=crisis.id, text="!"))
    assert code_of(nothing) == ErrorCode.INVALID
    assert words("L'Active-Directory, 2024 é") == ["active", "directory", "2024"]


async def test_mark_is_one_logbook_event_with_sealed_body(chat: ChatUnderTest) -> None:
    crisis = await new_crisis(chat, cells=("SI",))
    author = crisis.person(cells=("SI",), name="Chef SI")
    director = crisis.person("director", name="Directrice")
    sent = (
        await chat.core.send(author, send_request(crisis.channels["SI"], "Décision : couper le VPN à 04h00"))
    ).message
    marked = await chat.core.mark(director, MarkRequest(message=sent.id, kind=LogbookKind.DECISION))
    again = await chat.core.mark(director, MarkRequest(message=sent.id, kind=LogbookKind.DECISION))
    assert marked.marked_kind == again.marked_kind == LogbookKind.DECISION and marked.rev == again.rev
    with pytest.raises(ServiceError) as other_kind:
        await chat.core.mark(director, MarkRequest(message=sent.id, kind=LogbookKind.FACT))
    assert code_of(other_kind) == ErrorCode.CONFLICT
    with pytest.raises(ValidationError):
        MarkRequest(message=sent.id, kind=LogbookKind.SYSTEM)
    events = [e for e in await outbox_events(chat) if e.crisisid == crisis.id and e.logbook is not None]
    assert len(events) == 1
    event = events[0]
    assert event.short_type == "message_marked" and event.logbook is not None
    assert event.logbook.kind == LogbookKind.DECISION
    assert event.logbook.links == {"message": sent.id, "channel": crisis.channels["SI"]}
    assert event.logbook.cell == crisis.cells["SI"]
    assert "VPN" not in event.model_dump_json()  # the text travels sealed only
    assert event.logbook.body_sealed is not None
    body = await chat.core.cipher.decrypt(
        crisis.tenant, event.id, base64.b64decode(event.logbook.body_sealed), purpose=LOGBOOK_BODY_PURPOSE
    )
    assert body.decode() == "Décision : couper le VPN à 04h00"


async def test_no_message_text_in_the_schema_or_events(chat: ChatUnderTest) -> None:
    crisis = await new_crisis(chat, cells=("SI",))
    person = crisis.person(cells=("SI",))
    marker = f"Zorglub{secrets.token_hex(4)}"
    sent = (
        await chat.core.send(person, send_request(crisis.channels["SI"], f"Le code est {marker} ; éteignez"))
    ).message
    await chat.core.edit(person, EditRequest(message=sent.id, text=f"Le code est {marker}, éteignez tout"))
    await chat.core.mark(person, MarkRequest(message=sent.id, kind=LogbookKind.FACT))
    await chat.core.pin(person, PinRequest(message=sent.id))
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
    pinned = await chat.core.pinned(person, ChannelRef(channel=crisis.channels["SI"]))
    assert [m.id for m in pinned.messages] == [sent.id]
