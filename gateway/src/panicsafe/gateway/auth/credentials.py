"""Second-factor credentials, shared by enrolment, login, re-authentication and factor changes:
checking a TOTP code against the sealed secret, storing a passkey, issuing and spending recovery codes.
"""

from __future__ import annotations

import asyncio
import time

from panicsafe.core.crypto import EnvelopeCipher
from panicsafe.core.db.database import Connection
from panicsafe.gateway.auth import store
from panicsafe.gateway.auth.rules import TOTP_PURPOSE, passkey_taken
from panicsafe.gateway.identity import recovery, totp
from panicsafe.gateway.identity.passkeys import NewPasskey


async def check_totp(
    cipher: EnvelopeCipher, *, tenant_id: str, user_id: str, sealed: bytes, code: str, last_used_step: int | None
) -> int | None:
    """The time step `code` belongs to if it is valid now for the sealed secret and not used yet; else None."""
    secret = await cipher.decrypt(tenant_id, user_id, sealed, purpose=TOTP_PURPOSE)
    return totp.verify_code(secret.decode(), code, now=time.time(), last_used_step=last_used_step)


async def store_passkey(conn: Connection, user_id: str, tenant_id: str, created: NewPasskey) -> None:
    """A new passkey of the user; a credential registered already (by anyone) is refused."""
    if await store.passkey_exists(conn, created.credential_id):
        raise passkey_taken()
    await store.add_passkey(conn, user_id=user_id, tenant_id=tenant_id, created=created)


async def replace_recovery_codes(conn: Connection, user_id: str, tenant_id: str) -> list[str]:
    """Ten fresh codes for the user, stored as salted Argon2id hashes; the previous ones are gone."""
    codes = recovery.new_recovery_codes()
    hashes = await asyncio.gather(*(asyncio.to_thread(recovery.hash_recovery_code, code) for code in codes))
    await store.replace_recovery_hashes(conn, user_id=user_id, tenant_id=tenant_id, hashes=list(hashes))
    return codes


async def take_recovery_code(conn: Connection, user_id: str, code: str) -> bool:
    """Mark the user's unused code `code` used; False if it is not one (each candidate: one Argon2id check)."""
    stored = await store.unused_recovery_hashes(conn, user_id)
    matched = await asyncio.to_thread(recovery.matching_code, code, stored)
    return matched is not None and await store.spend_recovery_code(conn, user_id, matched)
