"""Envelope encryption with one OpenBao transit key per tenant.

A data key (AES-256) is drawn from `transit/datakey/plaintext/tenant-<id>`; OpenBao returns it in
clear and wrapped by the tenant key. Records are sealed locally with AES-256-GCM; the associated
data binds the tenant, the record id, a purpose and a hash of the wrapped key, each part
length-prefixed, so a ciphertext moved to another record or tenant, or with an altered wrapped
key, fails. The wrapped key travels with each ciphertext:

    b"PS1" | u16 len(wrapped) | wrapped | nonce (12) | ciphertext+tag

A data key serves a bounded time and number of records; unwrapped keys are cached briefly.
Deleting the tenant's transit key (crypto-shredding) makes every ciphertext of that tenant
unreadable for good; a tombstone in OpenBao's KV store keeps the key from being created again.
Other processes may hold a cached data key of that tenant until their cache lifetime ends.
The gateway creates a tenant's key with the tenant; no other service may create or delete one
(each reaches OpenBao with its own identity and policy: `panicsafe.core.openbao`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import hvac
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hvac.exceptions import Forbidden, InvalidPath, InvalidRequest, VaultError

from panicsafe.contracts.errors import ErrorCode
from panicsafe.contracts.events import canonical_uuid
from panicsafe.core.errors import ServiceError
from panicsafe.core.openbao import KV_MOUNT, TENANT_KEY_PREFIX, TOMBSTONES, TRANSIT_MOUNT, OpenBaoSession

MAGIC = b"PS1"
NONCE_BYTES = 12


class TenantShreddedError(ServiceError):
    """The tenant's key was destroyed: nothing of it can be read or written again."""

    def __init__(self, tenant_id: str) -> None:
        super().__init__(ErrorCode.FORBIDDEN, f"tenant {tenant_id} was crypto-shredded")


class TenantKeyMissingError(ServiceError):
    """The tenant has no key yet, and this service may not create one (the gateway does, with the tenant)."""

    def __init__(self, tenant_id: str) -> None:
        super().__init__(ErrorCode.UNAVAILABLE, f"tenant {tenant_id} has no key yet (the gateway creates it)")


class DecryptionError(ServiceError):
    """The ciphertext was altered, belongs elsewhere, or its tenant key is gone."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.FORBIDDEN, message)


_AD_VERSION = b"panicsafe/v1"
_AD_PREFIX = struct.pack(">I", len(_AD_VERSION)) + _AD_VERSION


def _bound_to(tenant_id: str, record_id: str, purpose: str, wrapped_digest: bytes) -> bytes:
    """The associated data of a record (see `EnvelopeCipher.associated_data`)."""
    tenant, record, use = tenant_id.encode(), str(record_id).encode(), purpose.encode()
    return b"".join(
        (
            _AD_PREFIX,
            struct.pack(">I", len(tenant)),
            tenant,
            struct.pack(">I", len(record)),
            record,
            struct.pack(">I", len(use)),
            use,
            struct.pack(">I", len(wrapped_digest)),
            wrapped_digest,
        )
    )


def canonical_tenant(tenant_id: str) -> str:
    return canonical_uuid(str(tenant_id))


def tenant_key_name(tenant_id: str) -> str:
    return f"{TENANT_KEY_PREFIX}{canonical_tenant(tenant_id)}"


class TransitKeys:
    """The tenant keys in OpenBao transit, reached with one service's identity (`OpenBaoSession`).

    Only the gateway's identity may create a tenant key (with the tenant) or destroy it: for any other
    service a missing key is `TenantKeyMissingError`, refused by OpenBao, not made on the spot."""

    def __init__(
        self,
        session: OpenBaoSession,
        *,
        mount: str = TRANSIT_MOUNT,
        kv_mount: str = KV_MOUNT,
    ) -> None:
        self.session = session
        self.mount = mount
        self.kv_mount = kv_mount
        self._known: set[str] = set()

    @property
    def client(self) -> hvac.Client:
        return self.session.client

    def _tombstone_path(self, tenant_id: str) -> str:
        return f"{TOMBSTONES}/{canonical_tenant(tenant_id)}"

    async def ensure_tenant_key(self, tenant_id: str) -> str:
        """The tenant's key name; the key is created if missing and this identity may create it."""
        name = tenant_key_name(tenant_id)
        if name in self._known:
            return name
        try:
            await self.session.run(self.client.secrets.transit.read_key, name, mount_point=self.mount)
        except InvalidPath:
            if await self.is_shredded(tenant_id):
                raise TenantShreddedError(canonical_tenant(tenant_id)) from None
            try:
                await self.session.run(
                    self.client.secrets.transit.create_key, name, key_type="aes256-gcm96", mount_point=self.mount
                )
            except Forbidden:
                raise TenantKeyMissingError(canonical_tenant(tenant_id)) from None
        self._known.add(name)
        return name

    async def is_shredded(self, tenant_id: str) -> bool:
        try:
            await self.session.run(
                self.client.secrets.kv.v2.read_secret_version,
                self._tombstone_path(tenant_id),
                mount_point=self.kv_mount,
                raise_on_deleted_version=True,
            )
        except InvalidPath:
            return False
        return True

    async def data_key(self, tenant_id: str) -> tuple[bytes, str]:
        name = await self.ensure_tenant_key(tenant_id)
        reply: dict[str, Any] = await self.session.run(
            self.client.secrets.transit.generate_data_key,
            name,
            key_type="plaintext",
            bits=256,
            mount_point=self.mount,
        )
        return base64.b64decode(reply["data"]["plaintext"]), str(reply["data"]["ciphertext"])

    async def unwrap(self, tenant_id: str, wrapped: str) -> bytes:
        try:
            reply: dict[str, Any] = await self.session.run(
                self.client.secrets.transit.decrypt_data,
                tenant_key_name(tenant_id),
                wrapped,
                mount_point=self.mount,
            )
        except (InvalidPath, InvalidRequest) as exc:
            raise DecryptionError("the tenant key cannot open this data key") from exc
        return base64.b64decode(reply["data"]["plaintext"])

    async def delete_tenant_key(self, tenant_id: str) -> None:
        """Crypto-shredding (the gateway's identity only: OpenBao refuses any other)."""
        name = tenant_key_name(tenant_id)
        # The tombstone first: a crash after it leaves a key that can no longer be recreated.
        await self.session.run(
            self.client.secrets.kv.v2.create_or_update_secret,
            self._tombstone_path(tenant_id),
            secret={"shredded": "true"},
            mount_point=self.kv_mount,
        )
        await self.session.run(
            self.client.secrets.transit.update_key_configuration,
            name,
            deletion_allowed=True,
            mount_point=self.mount,
        )
        await self.session.run(self.client.secrets.transit.delete_key, name, mount_point=self.mount)
        self._known.discard(name)

    async def ping(self) -> None:
        """OpenBao answers unsealed, and this identity holds a live token (or gets one)."""
        try:
            status = await asyncio.to_thread(self.client.sys.read_health_status, method="GET")
        except (VaultError, OSError) as exc:
            raise ConnectionError(f"openbao: {exc}") from exc
        if isinstance(status, dict) and status.get("sealed"):
            raise ConnectionError("openbao is sealed")
        try:
            await self.session.atoken()
        except (VaultError, OSError) as exc:
            raise ConnectionError(f"openbao refused this service's login: {exc}") from exc


@dataclass
class _DataKey:
    key: bytes
    wrapped: bytes
    created: float
    uses: int = 0
    # Derived once per key rather than per record: the cipher object and the wrapped key's digest.
    aead: AESGCM = field(init=False, repr=False)
    wrapped_digest: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.aead = AESGCM(self.key)
        self.wrapped_digest = hashlib.sha256(self.wrapped).digest()


class EnvelopeCipher:
    """Seals and opens records of a tenant; the only way services touch content keys."""

    def __init__(
        self,
        keys: TransitKeys,
        *,
        data_key_lifetime_s: float = 300.0,
        data_key_max_uses: int = 100_000,
        unwrap_cache_size: int = 1024,
        unwrap_cache_ttl_s: float = 300.0,
    ) -> None:
        self.keys = keys
        self.lifetime_s = data_key_lifetime_s
        self.max_uses = data_key_max_uses
        self.cache_size = unwrap_cache_size
        self.cache_ttl_s = unwrap_cache_ttl_s
        self._current: dict[str, _DataKey] = {}
        # Unwrapped keys by (tenant, digest of the wrapped key): their cipher objects, until expiry.
        self._opened: OrderedDict[tuple[str, bytes], tuple[AESGCM, float]] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}

    @staticmethod
    def associated_data(tenant_id: str, record_id: str, purpose: str, wrapped: bytes) -> bytes:
        """Each part length-prefixed: no two different bindings produce the same bytes."""
        return _bound_to(tenant_id, record_id, purpose, hashlib.sha256(wrapped).digest())

    async def _data_key(self, tenant_id: str) -> _DataKey:
        lock = self._locks.setdefault(tenant_id, asyncio.Lock())
        async with lock:
            current = self._current.get(tenant_id)
            now = time.monotonic()
            if current is None or current.uses >= self.max_uses or now - current.created > self.lifetime_s:
                key, wrapped = await self.keys.data_key(tenant_id)
                current = _DataKey(key=key, wrapped=wrapped.encode(), created=now)
                self._current[tenant_id] = current
            current.uses += 1
            return current

    async def encrypt(self, tenant_id: str, record_id: str, plaintext: bytes, *, purpose: str = "") -> bytes:
        tenant_id = canonical_tenant(tenant_id)
        data_key = await self._data_key(tenant_id)
        nonce = os.urandom(NONCE_BYTES)
        sealed = data_key.aead.encrypt(
            nonce, plaintext, _bound_to(tenant_id, record_id, purpose, data_key.wrapped_digest)
        )
        return MAGIC + struct.pack(">H", len(data_key.wrapped)) + data_key.wrapped + nonce + sealed

    async def decrypt(self, tenant_id: str, record_id: str, blob: bytes, *, purpose: str = "") -> bytes:
        tenant_id = canonical_tenant(tenant_id)
        if len(blob) < len(MAGIC) + 2 or not blob.startswith(MAGIC):
            raise DecryptionError("not a PanicSAFE ciphertext")
        (length,) = struct.unpack(">H", blob[3:5])
        wrapped = blob[5 : 5 + length]
        nonce = blob[5 + length : 5 + length + NONCE_BYTES]
        sealed = blob[5 + length + NONCE_BYTES :]
        if len(wrapped) != length or len(nonce) != NONCE_BYTES or not sealed:
            raise DecryptionError("truncated ciphertext")
        digest = hashlib.sha256(wrapped).digest()
        aead = await self._open_key(tenant_id, wrapped, digest)
        try:
            return aead.decrypt(nonce, sealed, _bound_to(tenant_id, record_id, purpose, digest))
        except InvalidTag as exc:
            raise DecryptionError("ciphertext altered or bound to another record") from exc

    async def _open_key(self, tenant_id: str, wrapped: bytes, digest: bytes) -> AESGCM:
        cache_key = (str(tenant_id), digest)
        hit = self._opened.get(cache_key)
        now = time.monotonic()
        if hit is not None and hit[1] > now:
            self._opened.move_to_end(cache_key)
            return hit[0]
        try:
            key = await self.keys.unwrap(tenant_id, wrapped.decode("ascii"))
        except UnicodeDecodeError as exc:
            raise DecryptionError("corrupted wrapped key") from exc
        aead = AESGCM(key)
        self._opened[cache_key] = (aead, now + self.cache_ttl_s)
        while len(self._opened) > self.cache_size:
            self._opened.popitem(last=False)
        return aead

    def forget_tenant(self, tenant_id: str) -> None:
        """Drop every cached key of a tenant from this process's memory."""
        tenant_id = canonical_tenant(tenant_id)
        self._current.pop(tenant_id, None)
        for cache_key in [k for k in self._opened if k[0] == tenant_id]:
            del self._opened[cache_key]

    async def shred_tenant(self, tenant_id: str) -> None:
        """Crypto-shredding: delete the tenant key in OpenBao, then forget it here."""
        await self.keys.delete_tenant_key(tenant_id)
        self.forget_tenant(tenant_id)
