"""Envelope encryption against the real OpenBao of the devstack: integrity, binding, tenants, shredding."""

from __future__ import annotations

import hashlib
import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hvac.exceptions import InvalidPath

from panicsafe.contracts.catalog import GATEWAY
from panicsafe.contracts.errors import ErrorCode
from panicsafe.core import crypto
from panicsafe.core.crypto import (
    MAGIC,
    NONCE_BYTES,
    DecryptionError,
    EnvelopeCipher,
    TenantKeyMissingError,
    TenantShreddedError,
    TransitKeys,
    tenant_key_name,
)
from panicsafe.core.devstack import DevStack
from panicsafe.core.openbao import OpenBaoSession
from panicsafe.core.testing import gateway_keys

PLAINTEXT = "Patient 4711: transfert en réanimation, décision du directeur de crise à 14h02.".encode()


class CountingTransitKeys(TransitKeys):
    """The real transit client, counting the round trips the cipher makes.

    With the gateway's identity: the only one that may create and shred tenant keys."""

    def __init__(self, session: OpenBaoSession) -> None:
        super().__init__(session)
        self.data_keys = 0
        self.unwraps = 0

    async def data_key(self, tenant_id: str) -> tuple[bytes, str]:
        self.data_keys += 1
        return await super().data_key(tenant_id)

    async def unwrap(self, tenant_id: str, wrapped: str) -> bytes:
        self.unwraps += 1
        return await super().unwrap(tenant_id, wrapped)


class Ciphers:
    """Builds ciphers on fresh transit clients (no shared caches) and closes their HTTP sessions."""

    def __init__(self, stack: DevStack) -> None:
        self.stack = stack
        self.made: list[CountingTransitKeys] = []

    def new(self, **options: Any) -> EnvelopeCipher:
        keys = CountingTransitKeys(self.stack.openbao.session(GATEWAY))
        self.made.append(keys)
        return EnvelopeCipher(keys, **options)

    def close(self) -> None:
        for keys in self.made:
            keys.client.adapter.close()


@pytest.fixture
def ciphers(stack: DevStack) -> Iterator[Ciphers]:
    made = Ciphers(stack)
    yield made
    made.close()


@pytest.fixture
def cipher(ciphers: Ciphers) -> EnvelopeCipher:
    return ciphers.new()


def counting(cipher: EnvelopeCipher) -> CountingTransitKeys:
    assert isinstance(cipher.keys, CountingTransitKeys)
    return cipher.keys


def new_tenant() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Blob:
    """`b"PS1" | u16 len(wrapped) | wrapped | nonce (12) | ciphertext+tag`, parsed."""

    wrapped: bytes
    nonce: bytes
    sealed: bytes

    @property
    def sealed_offset(self) -> int:
        return len(MAGIC) + 2 + len(self.wrapped)

    @classmethod
    def parse(cls, blob: bytes) -> Blob:
        assert blob[: len(MAGIC)] == MAGIC == b"PS1"
        (length,) = struct.unpack(">H", blob[3:5])
        wrapped = blob[5 : 5 + length]
        nonce = blob[5 + length : 5 + length + NONCE_BYTES]
        sealed = blob[5 + length + NONCE_BYTES :]
        assert len(wrapped) == length
        assert len(nonce) == NONCE_BYTES
        return cls(wrapped=wrapped, nonce=nonce, sealed=sealed)


def flip(blob: bytes, index: int, mask: int = 0x01) -> bytes:
    altered = bytearray(blob)
    altered[index] ^= mask
    return bytes(altered)


async def refused(
    cipher: EnvelopeCipher, tenant: str, record: str, blob: bytes, *, purpose: str = ""
) -> DecryptionError:
    with pytest.raises(DecryptionError) as info:
        await cipher.decrypt(tenant, record, blob, purpose=purpose)
    assert info.value.code == ErrorCode.FORBIDDEN
    return info.value


class FakeClock:
    """Replaces `time` inside the crypto module only (the event loop keeps the real clock)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(crypto, "time", fake)
    return fake


# -- round trip --------------------------------------------------------------------------------


async def test_round_trip(cipher: EnvelopeCipher) -> None:
    tenant = new_tenant()
    blob = await cipher.encrypt(tenant, "rec-1", PLAINTEXT, purpose="logbook.entry")

    assert blob.startswith(b"PS1")
    parsed = Blob.parse(blob)
    assert parsed.wrapped.startswith(b"vault:v1:")
    assert len(parsed.sealed) == len(PLAINTEXT) + 16  # AES-GCM: same length plus a 16-byte tag
    assert len(blob) == 3 + 2 + len(parsed.wrapped) + NONCE_BYTES + len(PLAINTEXT) + 16

    assert await cipher.decrypt(tenant, "rec-1", blob, purpose="logbook.entry") == PLAINTEXT


async def test_round_trip_through_a_fresh_instance(ciphers: Ciphers) -> None:
    tenant = new_tenant()
    blob = await ciphers.new().encrypt(tenant, "rec-1", PLAINTEXT)
    reader = ciphers.new()
    assert await reader.decrypt(tenant, "rec-1", blob) == PLAINTEXT
    assert counting(reader).unwraps == 1


async def test_empty_and_binary_plaintexts_round_trip(cipher: EnvelopeCipher) -> None:
    tenant = new_tenant()
    binary = bytes(range(256)) * 64
    for record, plaintext in (("empty", b""), ("binary", binary)):
        blob = await cipher.encrypt(tenant, record, plaintext)
        assert await cipher.decrypt(tenant, record, blob) == plaintext


async def test_ciphertext_does_not_contain_the_plaintext(cipher: EnvelopeCipher) -> None:
    tenant = new_tenant()
    first = await cipher.encrypt(tenant, "rec-1", PLAINTEXT)
    second = await cipher.encrypt(tenant, "rec-1", PLAINTEXT)

    for blob in (first, second):
        assert PLAINTEXT not in blob
        assert b"Patient 4711" not in blob
        assert b"directeur" not in blob
    # Same key, same record, same plaintext: fresh nonces make the ciphertexts differ.
    assert Blob.parse(first).wrapped == Blob.parse(second).wrapped
    assert Blob.parse(first).nonce != Blob.parse(second).nonce
    assert Blob.parse(first).sealed != Blob.parse(second).sealed


# -- integrity -----------------------------------------------------------------------------------


async def test_flipped_byte_in_the_sealed_part_is_refused(cipher: EnvelopeCipher) -> None:
    tenant = new_tenant()
    blob = await cipher.encrypt(tenant, "rec-1", PLAINTEXT)
    start = Blob.parse(blob).sealed_offset  # nonce, ciphertext and tag

    assert len(blob) - start == NONCE_BYTES + len(PLAINTEXT) + 16
    for index in range(start, len(blob)):
        for mask in (0x01, 0x80):
            await refused(cipher, tenant, "rec-1", flip(blob, index, mask))
    assert await cipher.decrypt(tenant, "rec-1", blob) == PLAINTEXT


async def test_flipped_byte_in_the_wrapped_key_is_refused(ciphers: Ciphers) -> None:
    tenant = new_tenant()
    cipher = ciphers.new()
    blob = await cipher.encrypt(tenant, "rec-1", PLAINTEXT)
    wrapped = Blob.parse(blob).wrapped
    # "vault:v1:" -> "vault:v0:" is opened by OpenBao (v0 is read as v1), but the AEAD refuses it below.
    version_digit = 3 + 2 + wrapped.index(b":v1:") + 2

    reader = ciphers.new()  # no cache: every altered wrapped key goes to OpenBao
    for index in range(5, 5 + len(wrapped)):
        if index == version_digit:
            continue
        await refused(reader, tenant, "rec-1", flip(blob, index, 0x01))
    # Non-ASCII garbage in the wrapped key, too.
    await refused(reader, tenant, "rec-1", flip(blob, 5 + len(wrapped) // 2, 0x80))
    assert counting(reader).unwraps == len(wrapped) - 1  # each went to OpenBao (and failed)
    assert await reader.decrypt(tenant, "rec-1", blob) == PLAINTEXT


async def test_wrapped_key_version_flip_is_refused(ciphers: Ciphers) -> None:
    tenant = new_tenant()
    blob = await ciphers.new().encrypt(tenant, "rec-1", PLAINTEXT)
    index = 3 + 2 + Blob.parse(blob).wrapped.index(b":v1:") + 2
    altered = flip(blob, index, 0x01)
    assert Blob.parse(altered).wrapped.startswith(b"vault:v0:")
    await refused(ciphers.new(), tenant, "rec-1", altered)


async def test_malformed_envelopes_are_refused(cipher: EnvelopeCipher) -> None:
    tenant = new_tenant()
    blob = await cipher.encrypt(tenant, "rec-1", PLAINTEXT)
    parsed = Blob.parse(blob)

    await refused(cipher, tenant, "rec-1", b"")
    await refused(cipher, tenant, "rec-1", b"PS")
    await refused(cipher, tenant, "rec-1", b"PS2" + blob[3:])  # wrong magic
    await refused(cipher, tenant, "rec-1", PLAINTEXT)  # not an envelope at all
    await refused(cipher, tenant, "rec-1", blob[: parsed.sealed_offset + NONCE_BYTES])  # no sealed part
    await refused(cipher, tenant, "rec-1", blob[: parsed.sealed_offset + 5])  # nonce cut short
    await refused(cipher, tenant, "rec-1", blob[:-1])  # tag cut short
    await refused(cipher, tenant, "rec-1", blob + b"\x00")  # trailing byte
    too_long = MAGIC + struct.pack(">H", 0xFFFF) + blob[5:]
    await refused(cipher, tenant, "rec-1", too_long)  # length beyond the blob
    shorter = MAGIC + struct.pack(">H", len(parsed.wrapped) - 1) + blob[5:]
    await refused(cipher, tenant, "rec-1", shorter)  # length field altered


# -- associated data -----------------------------------------------------------------------------


async def test_wrong_record_or_purpose_is_refused(cipher: EnvelopeCipher) -> None:
    tenant = new_tenant()
    blob = await cipher.encrypt(tenant, "rec-1", PLAINTEXT, purpose="chat.message")

    await refused(cipher, tenant, "rec-2", blob, purpose="chat.message")
    await refused(cipher, tenant, "REC-1", blob, purpose="chat.message")
    await refused(cipher, tenant, "rec-1", blob, purpose="chat.attachment")
    await refused(cipher, tenant, "rec-1", blob)  # default purpose "" differs
    assert await cipher.decrypt(tenant, "rec-1", blob, purpose="chat.message") == PLAINTEXT


async def test_record_and_purpose_cannot_be_shifted_across_the_separator(cipher: EnvelopeCipher) -> None:
    tenant = new_tenant()
    blob = await cipher.encrypt(tenant, "rec-1|secret", PLAINTEXT, purpose="p")
    await refused(cipher, tenant, "rec-1", blob, purpose="secret|p")


# -- tenants -------------------------------------------------------------------------------------


async def test_tenant_b_cannot_decrypt_tenant_a(ciphers: Ciphers) -> None:
    cipher = ciphers.new()
    tenant_a, tenant_b = new_tenant(), new_tenant()
    blob_a = await cipher.encrypt(tenant_a, "rec-1", PLAINTEXT)
    blob_b = await cipher.encrypt(tenant_b, "rec-1", b"tenant B data")
    # Each tenant has its own transit key, hence its own data keys.
    assert Blob.parse(blob_a).wrapped != Blob.parse(blob_b).wrapped

    # Same instance, warm caches (A's data key is cached under A only).
    await refused(cipher, tenant_b, "rec-1", blob_a)
    # A separate instance with empty caches: OpenBao refuses B's key on A's data key.
    fresh = ciphers.new()
    await refused(fresh, tenant_b, "rec-1", blob_a)
    assert counting(fresh).unwraps == 1
    await refused(fresh, tenant_a, "rec-1", blob_b)

    # A tenant that has no transit key at all.
    await refused(ciphers.new(), new_tenant(), "rec-1", blob_a)

    assert await fresh.decrypt(tenant_a, "rec-1", blob_a) == PLAINTEXT
    assert await fresh.decrypt(tenant_b, "rec-1", blob_b) == b"tenant B data"


async def test_tenant_ids_must_be_uuids(cipher: EnvelopeCipher) -> None:
    assert tenant_key_name("6F9619FF-8B86-D011-B42D-00C04FC964FF") == ("tenant-6f9619ff-8b86-d011-b42d-00c04fc964ff")
    with pytest.raises(ValueError, match="must be a UUID"):
        await cipher.encrypt("tenant-a", "rec-1", PLAINTEXT)


async def test_shredded_tenant_is_unreadable_everywhere(ciphers: Ciphers) -> None:
    tenant_a, tenant_b = new_tenant(), new_tenant()
    writer = ciphers.new()
    blobs_a = [await writer.encrypt(tenant_a, f"rec-{i}", PLAINTEXT + bytes([i])) for i in range(3)]
    blob_b = await writer.encrypt(tenant_b, "rec-0", b"tenant B data")
    assert await writer.decrypt(tenant_a, "rec-0", blobs_a[0]) == PLAINTEXT + b"\x00"

    await writer.shred_tenant(tenant_a)

    # The tenant key is gone from OpenBao ...
    with pytest.raises(InvalidPath):
        counting(writer).client.secrets.transit.read_key(tenant_key_name(tenant_a))
    # ... the shredding instance forgot every cached key of A ...
    assert tenant_a not in writer._current
    assert all(cached[0] != tenant_a for cached in writer._opened)
    for i, blob in enumerate(blobs_a):
        await refused(writer, tenant_a, f"rec-{i}", blob)
    # ... and a second instance that never saw A cannot read it either.
    fresh = ciphers.new()
    for i, blob in enumerate(blobs_a):
        await refused(fresh, tenant_a, f"rec-{i}", blob)

    # Tenant B is untouched, from both instances.
    assert await writer.decrypt(tenant_b, "rec-0", blob_b) == b"tenant B data"
    assert await fresh.decrypt(tenant_b, "rec-0", blob_b) == b"tenant B data"
    assert await fresh.encrypt(tenant_b, "rec-1", b"more") != b""


# -- data key rotation ---------------------------------------------------------------------------


async def test_data_key_rotates_after_max_uses(ciphers: Ciphers) -> None:
    cipher = ciphers.new(data_key_max_uses=3)
    tenant = new_tenant()
    blobs = [await cipher.encrypt(tenant, f"rec-{i}", PLAINTEXT) for i in range(7)]
    wrapped = [Blob.parse(blob).wrapped for blob in blobs]

    assert wrapped[0] == wrapped[1] == wrapped[2]
    assert wrapped[3] == wrapped[4] == wrapped[5]
    assert wrapped[2] != wrapped[3]
    assert wrapped[6] not in (wrapped[0], wrapped[3])
    assert len(set(wrapped)) == 3
    assert counting(cipher).data_keys == 3

    reader = ciphers.new()
    for i, blob in enumerate(blobs):
        assert await reader.decrypt(tenant, f"rec-{i}", blob) == PLAINTEXT
    assert counting(reader).unwraps == 3  # one per distinct data key


async def test_data_key_rotates_after_its_lifetime(ciphers: Ciphers, clock: FakeClock) -> None:
    cipher = ciphers.new(data_key_lifetime_s=60.0)
    tenant = new_tenant()

    first = await cipher.encrypt(tenant, "rec-1", PLAINTEXT)
    clock.now += 60.0  # exactly the lifetime: still served
    second = await cipher.encrypt(tenant, "rec-2", PLAINTEXT)
    clock.now += 0.5  # past it
    third = await cipher.encrypt(tenant, "rec-3", PLAINTEXT)
    fourth = await cipher.encrypt(tenant, "rec-4", PLAINTEXT)

    assert Blob.parse(first).wrapped == Blob.parse(second).wrapped
    assert Blob.parse(second).wrapped != Blob.parse(third).wrapped
    assert Blob.parse(third).wrapped == Blob.parse(fourth).wrapped
    assert counting(cipher).data_keys == 2

    for record, blob in (("rec-1", first), ("rec-2", second), ("rec-3", third), ("rec-4", fourth)):
        assert await cipher.decrypt(tenant, record, blob) == PLAINTEXT


async def test_data_keys_are_per_tenant(cipher: EnvelopeCipher) -> None:
    tenant_a, tenant_b = new_tenant(), new_tenant()
    a1 = await cipher.encrypt(tenant_a, "rec-1", PLAINTEXT)
    b1 = await cipher.encrypt(tenant_b, "rec-1", PLAINTEXT)
    a2 = await cipher.encrypt(tenant_a, "rec-2", PLAINTEXT)
    assert Blob.parse(a1).wrapped == Blob.parse(a2).wrapped
    assert Blob.parse(a1).wrapped != Blob.parse(b1).wrapped
    assert counting(cipher).data_keys == 2


# -- unwrap cache --------------------------------------------------------------------------------


async def test_unwrap_cache_stays_bounded(ciphers: Ciphers) -> None:
    tenant = new_tenant()
    writer = ciphers.new(data_key_max_uses=1)  # every record gets its own data key
    blobs = [await writer.encrypt(tenant, f"rec-{i}", PLAINTEXT) for i in range(6)]
    assert len({Blob.parse(blob).wrapped for blob in blobs}) == 6

    reader = ciphers.new(unwrap_cache_size=3)
    for i, blob in enumerate(blobs):
        assert await reader.decrypt(tenant, f"rec-{i}", blob) == PLAINTEXT
        assert len(reader._opened) == min(i + 1, 3)
    assert counting(reader).unwraps == 6

    # The three most recent keys are kept; reading them again costs no round trip.
    kept = {(tenant, hashlib.sha256(Blob.parse(blob).wrapped).digest()) for blob in blobs[3:]}
    assert set(reader._opened) == kept
    for i in (3, 4, 5):
        assert await reader.decrypt(tenant, f"rec-{i}", blobs[i]) == PLAINTEXT
    assert counting(reader).unwraps == 6

    # An evicted key is unwrapped again, and the cache stays at its bound.
    assert await reader.decrypt(tenant, "rec-0", blobs[0]) == PLAINTEXT
    assert counting(reader).unwraps == 7
    assert len(reader._opened) == 3


async def test_unwrap_cache_entries_expire(ciphers: Ciphers, clock: FakeClock) -> None:
    tenant = new_tenant()
    blob = await ciphers.new().encrypt(tenant, "rec-1", PLAINTEXT)
    reader = ciphers.new(unwrap_cache_ttl_s=30.0)

    assert await reader.decrypt(tenant, "rec-1", blob) == PLAINTEXT
    clock.now += 29.0
    assert await reader.decrypt(tenant, "rec-1", blob) == PLAINTEXT
    assert counting(reader).unwraps == 1
    clock.now += 2.0
    assert await reader.decrypt(tenant, "rec-1", blob) == PLAINTEXT
    assert counting(reader).unwraps == 2
    assert len(reader._opened) == 1


async def test_shredded_tenant_key_is_never_recreated(stack: DevStack) -> None:
    tenant, other = new_tenant(), new_tenant()
    writer = EnvelopeCipher(gateway_keys(stack))
    await writer.encrypt(tenant, "rec-1", PLAINTEXT)
    await writer.shred_tenant(tenant)
    fresh = EnvelopeCipher(gateway_keys(stack))
    with pytest.raises(TenantShreddedError) as caught:
        await fresh.encrypt(tenant.upper(), "rec-2", PLAINTEXT)  # any spelling of the id
    assert caught.value.code == ErrorCode.FORBIDDEN
    assert await fresh.keys.is_shredded(tenant) is True
    assert await fresh.keys.is_shredded(other) is False
    blob = await fresh.encrypt(other, "rec-1", PLAINTEXT)
    assert await fresh.decrypt(other, "rec-1", blob) == PLAINTEXT


async def test_only_the_gateway_creates_a_tenant_key_then_every_service_seals_with_it(stack: DevStack) -> None:
    tenant = new_tenant()
    chat = EnvelopeCipher(TransitKeys(stack.openbao.session("chat")))
    with pytest.raises(TenantKeyMissingError) as missing:
        await chat.encrypt(tenant, "rec-1", PLAINTEXT)
    assert missing.value.code == ErrorCode.UNAVAILABLE
    gateway = gateway_keys(stack)
    with pytest.raises(InvalidPath):  # the refused attempt created nothing
        await gateway.session.run(gateway.client.secrets.transit.read_key, tenant_key_name(tenant))

    await gateway.ensure_tenant_key(tenant)  # as `create_tenant` does
    blob = await chat.encrypt(tenant, "rec-1", PLAINTEXT)
    # Sealed by chat, opened by the logbook and the gateway (a chat text in the main courante, on screen).
    logbook = EnvelopeCipher(TransitKeys(stack.openbao.session("logbook")))
    assert await logbook.decrypt(tenant, "rec-1", blob) == PLAINTEXT
    assert await EnvelopeCipher(gateway_keys(stack)).decrypt(tenant, "rec-1", blob) == PLAINTEXT
