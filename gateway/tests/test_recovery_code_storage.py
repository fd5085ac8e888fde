"""Recovery codes at rest: salted Argon2id, and the codes of a database made before (revision 0006)."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import secrets
from datetime import UTC, datetime

from gwdb import (
    PASSWORD,
    Member,
    active_member,
    auth_service,
    client,
    member_before_tenant_codes,
    migrated_schema,
    opened,
)

from panicsafe.core.db.database import Database
from panicsafe.core.db.migrations import upgrade
from panicsafe.core.devstack import DevStack
from panicsafe.core.errors import ServiceError
from panicsafe.core.testing import gateway_keys
from panicsafe.gateway.app import MIGRATIONS
from panicsafe.gateway.auth.service import AuthService, replace_recovery_codes
from panicsafe.gateway.identity.recovery import legacy_digest, new_recovery_codes, normalize_recovery_code


async def stored_codes(db: Database, member: Member) -> list[tuple[str, bool]]:
    async with db.tenant(member.tenant_id) as conn:
        rows = await conn.fetch(
            "SELECT code_hash, used_at IS NOT NULL AS used FROM recovery_codes WHERE user_id = $1 ORDER BY code_hash",
            member.user_id,
        )
    return [(row["code_hash"], row["used"]) for row in rows]


async def recover(auth: AuthService, member: Member, code: str) -> str:
    """A login with the password then `code`: the session id, or the error's code."""
    me = client()
    challenge = await auth.login_password(member.login, PASSWORD, me)
    try:
        return (await auth.login_recovery(challenge.challenge_token, code, me)).session_id
    except ServiceError as error:
        return str(error.code)


async def test_codes_are_stored_salted_and_slow_and_work_once(stack: DevStack) -> None:
    async with opened(await migrated_schema(stack)) as db:
        member = await active_member(db, gateway_keys(stack))
        async with db.tenant(member.tenant_id) as conn:
            codes = await replace_recovery_codes(conn, member.user_id, member.tenant_id)
        stored = [hashed for hashed, _ in await stored_codes(db, member)]
        assert len(stored) == len(codes) == 10
        assert all(hashed.startswith("$argon2id$") for hashed in stored)
        assert len({hashed.rsplit("$", 2)[1] for hashed in stored}) == 10  # ten different salts
        text = " ".join(stored)
        for code in codes:
            assert normalize_recovery_code(code) not in text and legacy_digest(code) not in text

        auth = auth_service(stack, db)
        assert await recover(auth, member, codes[4]) != "unauthenticated"
        assert await recover(auth, member, codes[4]) == "unauthenticated"
        assert await recover(auth, member, "zzzz-zzzz-zzzz") == "unauthenticated"
        assert sum(used for _, used in await stored_codes(db, member)) == 1


async def test_codes_handed_out_before_the_migration_keep_working(stack: DevStack) -> None:
    schema = await migrated_schema(stack, "0005")
    kept, spent = new_recovery_codes(2)
    async with opened(schema) as db:
        member = await member_before_tenant_codes(db, "GHT Avant", f"m-{secrets.token_hex(4)}")
        async with db.tenant(member.tenant_id) as conn:  # as the gateway stored them before 0006
            await conn.executemany(
                "INSERT INTO recovery_codes (user_id, tenant_id, code_hash, used_at) VALUES ($1, $2, $3, $4)",
                [
                    (
                        member.user_id,
                        member.tenant_id,
                        hashlib.sha256(normalize_recovery_code(code).encode()).hexdigest(),
                        used,
                    )
                    for code, used in ((kept, None), (spent, datetime(2026, 11, 30, 10, tzinfo=UTC)))
                ],
            )
    await asyncio.to_thread(upgrade, MIGRATIONS, schema.owner_dsn, schema.schema)

    member = dataclasses.replace(member, login=f"{member.login}@ght-avant")  # 0008
    async with opened(schema) as db:
        after = await stored_codes(db, member)
        assert len(after) == 2  # nothing lost
        assert all(hashed.startswith("sha256$argon2id$") for hashed, _ in after)
        assert sorted(used for _, used in after) == [False, True]  # a spent code stays spent
        assert not {legacy_digest(kept), legacy_digest(spent)} & {hashed for hashed, _ in after}

        auth = auth_service(stack, db)
        assert await recover(auth, member, spent) == "unauthenticated"
        assert await recover(auth, member, kept.upper().replace("-", " ")) != "unauthenticated"
        assert await recover(auth, member, kept) == "unauthenticated"  # still single use


async def test_regenerating_replaces_every_old_code(stack: DevStack) -> None:
    async with opened(await migrated_schema(stack)) as db:
        member = await active_member(db, gateway_keys(stack))
        async with db.tenant(member.tenant_id) as conn:
            old = await replace_recovery_codes(conn, member.user_id, member.tenant_id)
            new = await replace_recovery_codes(conn, member.user_id, member.tenant_id)
        assert len(await stored_codes(db, member)) == 10
        auth = auth_service(stack, db)
        assert await recover(auth, member, old[0]) == "unauthenticated"
        assert await recover(auth, member, new[0]) != "unauthenticated"
