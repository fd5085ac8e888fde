"""Checkpoint signatures with the tenant's Ed25519 key in OpenBao transit.

The private key never leaves OpenBao (created non-exportable); the service asks it to sign the
checkpoint message and keeps the public keys, by version, to put in exports. The signing key is
distinct from the tenant's encryption key: crypto-shredding a tenant's data leaves its past
checkpoints verifiable.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

import httpx
from hvac.exceptions import InvalidPath

from panicsafe.contracts.errors import ErrorCode
from panicsafe.core.errors import ServiceError
from panicsafe.core.openbao import OpenBaoSession


def signing_key_name(tenant_id: str) -> str:
    return f"logbook-{uuid.UUID(str(tenant_id))}"


class TransitSigner:
    """Sign with, and read the public half of, `transit/keys/logbook-<tenant>` (type ed25519).

    It acts as the logbook's own OpenBao identity (`session`): no other service's policy reaches these keys."""

    def __init__(self, session: OpenBaoSession, *, mount: str = "transit") -> None:
        self.session = session
        self.client = session.client
        self.mount = mount
        self._public: dict[tuple[str, int], bytes] = {}
        self._known: set[str] = set()
        # Signing runs every second while entries arrive: on the event loop with an async client,
        # not in a worker thread whose Python code (hvac, requests) would take the GIL from the loop
        # for milliseconds at a time. Rare calls (creating a key, reading public keys) keep hvac.
        self._http: httpx.AsyncClient | None = None

    def _async_http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(base_url=self.session.address, verify=self.session.ssl_context())
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _ensure(self, name: str) -> None:
        if name in self._known:
            return
        try:
            await self.session.run(self.client.secrets.transit.read_key, name, mount_point=self.mount)
        except InvalidPath:
            await self.session.run(
                self.client.secrets.transit.create_key,
                name,
                key_type="ed25519",
                exportable=False,
                mount_point=self.mount,
            )
        self._known.add(name)

    async def _post_sign(self, name: str, message: bytes) -> httpx.Response:
        return await self._async_http().post(
            f"/v1/{self.mount}/sign/{name}",
            json={"input": base64.b64encode(message).decode()},
            headers={"X-Vault-Token": await self.session.atoken()},
            timeout=10.0,
        )

    async def sign(self, tenant_id: str, message: bytes) -> tuple[bytes, int]:
        """The raw 64-byte signature and the key version that made it."""
        name = signing_key_name(tenant_id)
        await self._ensure(name)
        try:
            response = await self._post_sign(name, message)
            if response.status_code == httpx.codes.FORBIDDEN:  # token revoked or expired: log in again, once
                await self.session.alogin()
                response = await self._post_sign(name, message)
            response.raise_for_status()
            reply: dict[str, Any] = response.json()
        except httpx.HTTPError as exc:
            raise ServiceError(ErrorCode.UNAVAILABLE, f"OpenBao did not sign: {exc}") from exc
        prefix, version, signature = str(reply["data"]["signature"]).split(":", 2)
        if prefix != "vault" or not version.startswith("v"):
            raise ServiceError(ErrorCode.INTERNAL, "unexpected signature format from OpenBao")
        raw = base64.b64decode(signature)
        if len(raw) != 64:
            raise ServiceError(ErrorCode.INTERNAL, "unexpected signature length from OpenBao")
        return raw, int(version[1:])

    async def public_key(self, tenant_id: str, version: int) -> bytes:
        """The raw 32-byte Ed25519 public key of one version (cached: versions never change)."""
        cached = self._public.get((tenant_id, version))
        if cached is not None:
            return cached
        name = signing_key_name(tenant_id)
        await self._ensure(name)
        reply: dict[str, Any] = await self.session.run(
            self.client.secrets.transit.read_key, name, mount_point=self.mount
        )
        keys: dict[str, Any] = reply["data"]["keys"]
        for key_version, material in keys.items():
            self._public[(tenant_id, int(key_version))] = base64.b64decode(material["public_key"])
        if (tenant_id, version) not in self._public:
            raise ServiceError(ErrorCode.NOT_FOUND, f"no version {version} of the logbook signing key")
        return self._public[(tenant_id, version)]
