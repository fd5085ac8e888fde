"""Each service's own identity in OpenBao, and what that identity may reach.

A service logs in with its AppRole (a role id and a secret id, read from files) and holds the token
it gets; it logs in again once half the token's lifetime has passed, and at once when OpenBao
refuses the token (revoked, or expired while the machine slept), so a service running for days
never loses OpenBao. No service holds a root or shared token.

`SERVICE_USES` says what each service does with OpenBao; `policy_for` turns it into the policy of
its AppRole (the devstack writes them; a cluster bootstrap writes the same):
- tenant data: data keys from, and unwrapping by, the tenants' transit keys `tenant-<id>` (records
  sealed by one service are opened by another: chat seals the logbook bodies it emits, the gateway
  opens chat texts), and reading the crypto-shredding tombstones;
- tenant keys (the gateway alone): creating tenant keys, allowing their deletion, deleting them,
  writing the tombstones;
- logbook signing (the logbook alone): the tenants' Ed25519 checkpoint keys `logbook-<id>`.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import hvac
from hvac.exceptions import Forbidden, VaultError

log = logging.getLogger(__name__)

T = TypeVar("T")
APPROLE_MOUNT = "approle"
TRANSIT_MOUNT = "transit"
KV_MOUNT = "secret"
TENANT_KEY_PREFIX = "tenant-"
LOGBOOK_KEY_PREFIX = "logbook-"
TOMBSTONES = "panicsafe/shredded-tenants"
# A token is replaced by a new login once this share of its lifetime has passed.
RELOGIN_AT = 0.5


class Use(StrEnum):
    TENANT_DATA = "tenant-data"
    TENANT_KEYS = "tenant-keys"
    LOGBOOK_SIGNING = "logbook-signing"


# What each service does with OpenBao today (grep `TransitKeys`, `EnvelopeCipher`, `TransitSigner`).
# docs, video and sara encrypt nothing yet: their AppRole reaches nothing but its own token.
SERVICE_USES: dict[str, frozenset[Use]] = {
    "chat": frozenset({Use.TENANT_DATA}),
    "video": frozenset(),
    "logbook": frozenset({Use.TENANT_DATA, Use.LOGBOOK_SIGNING}),
    "docs": frozenset(),
    "sara": frozenset(),
    "gateway": frozenset({Use.TENANT_DATA, Use.TENANT_KEYS}),
}


def policy_name(service: str) -> str:
    return f"panicsafe-{service}"


def _rule(path: str, *capabilities: str) -> str:
    quoted = ", ".join(f'"{c}"' for c in capabilities)
    return f'path "{path}" {{\n  capabilities = [{quoted}]\n}}\n'


def policy_for(service: str, *, transit: str = TRANSIT_MOUNT, kv: str = KV_MOUNT) -> str:
    """The HCL policy of a service's AppRole: exactly its `SERVICE_USES`, nothing else.

    A path is granted once with every capability it needs (OpenBao applies the most specific rule
    for a path, so two rules on the same path would not add up)."""
    uses = SERVICE_USES[service]
    rules: dict[str, set[str]] = {}

    def grant(path: str, *capabilities: str) -> None:
        rules.setdefault(path, set()).update(capabilities)

    tenant, signing = TENANT_KEY_PREFIX, LOGBOOK_KEY_PREFIX
    if Use.TENANT_DATA in uses:
        grant(f"{transit}/keys/{tenant}*", "read")  # does the key exist (metadata, never material)
        grant(f"{transit}/datakey/plaintext/{tenant}*", "update")
        grant(f"{transit}/decrypt/{tenant}*", "update")
        grant(f"{kv}/data/{TOMBSTONES}/*", "read")
    if Use.TENANT_KEYS in uses:
        # create (a POST on keys/<name>), allow deletion (keys/<name>/config), delete
        grant(f"{transit}/keys/{tenant}*", "read", "update", "delete")
        grant(f"{kv}/data/{TOMBSTONES}/*", "read", "create", "update")
    if Use.LOGBOOK_SIGNING in uses:
        grant(f"{transit}/keys/{signing}*", "read", "update")  # create a tenant's key, read its public halves
        grant(f"{transit}/sign/{signing}*", "update")
    order = ("create", "read", "update", "delete", "list")
    body = "".join(_rule(path, *sorted(caps, key=order.index)) for path, caps in sorted(rules.items()))
    return f"# {policy_name(service)}: {', '.join(sorted(uses)) or 'nothing beyond its own token'}\n" + body


@dataclass(frozen=True)
class AppRoleCredentials:
    role_id: str
    secret_id: str = field(repr=False)

    @classmethod
    def from_files(cls, role_id_file: Path, secret_id_file: Path) -> AppRoleCredentials:
        return cls(role_id_file.read_text().strip(), secret_id_file.read_text().strip())


class OpenBaoSession:
    """An hvac client logged in as one service; calls go through `call` (blocking) or `run` (async).

    hvac is blocking: async callers run it in a worker thread (`run`). The token is replaced by a new
    login before it expires, and once more when OpenBao answers 403 (a token revoked or expired
    behind our back); a second 403 is a real refusal and is raised.
    """

    def __init__(
        self,
        address: str,
        credentials: AppRoleCredentials,
        *,
        ca_file: Path | str | None = None,
        mount: str = APPROLE_MOUNT,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.address = address
        self.ca_file = str(ca_file) if ca_file else None
        self.verify: str | bool = self.ca_file or True  # for requests (hvac)
        self.credentials = credentials
        self.mount = mount
        self.client = hvac.Client(url=address, verify=self.verify, timeout=timeout)
        self._clock = clock
        self._relogin_at = 0.0
        self._lock = threading.Lock()
        self.logins = 0

    def ssl_context(self) -> ssl.SSLContext:
        """For other HTTP clients (httpx): the same trust as hvac's."""
        return ssl.create_default_context(cafile=self.ca_file)

    @property
    def token(self) -> str | None:
        token = self.client.token
        return str(token) if token else None

    def login(self) -> str:
        """A new token for this identity (blocking)."""
        with self._lock:
            reply: dict[str, Any] = self.client.auth.approle.login(
                self.credentials.role_id, self.credentials.secret_id, use_token=True, mount_point=self.mount
            )
            auth = reply["auth"]
            ttl = float(auth.get("lease_duration") or 0)
            self._relogin_at = self._clock() + ttl * RELOGIN_AT if ttl > 0 else float("inf")
            self.logins += 1
            return str(auth["client_token"])

    def fresh(self) -> bool:
        return self.token is not None and self._clock() < self._relogin_at

    def current_token(self) -> str:
        """The token, after a new login if it is missing or half-way through its life (blocking)."""
        token = self.token
        if token is not None and self._clock() < self._relogin_at:
            return token
        return self.login()

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`fn(*args, **kwargs)` (an hvac call on `self.client`) with a valid token (blocking)."""
        self.current_token()
        try:
            return fn(*args, **kwargs)
        except Forbidden:
            self.login()
            return fn(*args, **kwargs)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(self.call, fn, *args, **kwargs)

    async def atoken(self) -> str:
        """The token for a request made without hvac; a login runs in a worker thread when needed."""
        token = self.token
        if token is not None and self.fresh():
            return token
        return await asyncio.to_thread(self.current_token)

    async def alogin(self) -> str:
        return await asyncio.to_thread(self.login)

    async def aclose(self) -> None:
        """Revoke this process's token (a service stopping leaves no live token behind)."""
        if self.token is None:
            return
        try:
            await asyncio.to_thread(self.client.auth.token.revoke_self)
        except (VaultError, OSError) as exc:
            log.warning("could not revoke the OpenBao token: %s", exc)
        self.client.token = None
