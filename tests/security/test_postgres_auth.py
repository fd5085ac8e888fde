"""Attacks on PostgreSQL from inside the bunker: a process on the same host, with no password or another's.

Against the devstack's real PostgreSQL: scram-sha-256 for every login, one password per role, kept in
files (the superuser's in the stack folder, each service's in its own secrets folder).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from panicsafe.core.db.database import asyncpg_dsn
from panicsafe.core.db.provision import load_or_create_roles, provision_service
from panicsafe.core.devstack import DevStack
from panicsafe.core.testing import ProvisionedSchema, make_schema


@pytest.fixture(autouse=True)
def no_ambient_password(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Nothing but what the test passes: no PGPASSWORD, no ~/.pgpass."""
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "none"))
    return


async def login(stack: DevStack, user: str, password: str | None = None, *, host: str | None = None) -> None:
    pg = stack.postgres
    conn = await asyncpg.connect(
        host=host or pg.host, port=pg.port, user=user, password=password, database=pg.database, timeout=10
    )
    try:
        assert await conn.fetchval("SELECT current_user") == user
    finally:
        await conn.close()


async def test_the_superuser_needs_its_password(stack: DevStack) -> None:
    with pytest.raises(asyncpg.InvalidPasswordError):
        await login(stack, "postgres")
    with pytest.raises(asyncpg.InvalidPasswordError):
        await login(stack, "postgres", "postgres")
    with pytest.raises(asyncpg.InvalidPasswordError):
        await login(stack, "postgres", stack.postgres.admin_password[:-1])
    await login(stack, "postgres", stack.postgres.admin_password)
    superuser_file = stack.directory / "postgres" / "superuser.password"
    assert superuser_file.read_text().strip() == stack.postgres.admin_password
    assert superuser_file.stat().st_mode & 0o777 == 0o600


async def test_a_service_role_logs_in_with_its_own_password_only(stack: DevStack, schema: ProvisionedSchema) -> None:
    other = await make_schema(stack)
    mine, theirs = schema.roles, other.roles
    with pytest.raises(asyncpg.InvalidPasswordError):
        await login(stack, mine.app)
    with pytest.raises(asyncpg.InvalidPasswordError):
        await login(stack, mine.app, theirs.app_password)  # another service's password
    with pytest.raises(asyncpg.InvalidPasswordError):
        await login(stack, mine.app, mine.owner_password)  # its own owner role's
    with pytest.raises(asyncpg.InvalidPasswordError):
        await login(stack, mine.owner, mine.app_password)
    with pytest.raises(asyncpg.InvalidPasswordError):
        await login(stack, "postgres", mine.app_password)
    await login(stack, mine.app, mine.app_password)
    await login(stack, mine.owner, mine.owner_password)


async def test_the_local_socket_admits_no_service_role(stack: DevStack, schema: ProvisionedSchema) -> None:
    """Only TCP on loopback with a password; the socket only for the superuser, with its password too."""
    socket_dir = stack.postgres.data_dir
    with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError, match=r"no pg_hba\.conf entry"):
        await login(stack, schema.roles.app, schema.roles.app_password, host=socket_dir)
    with pytest.raises(asyncpg.InvalidPasswordError):
        await login(stack, "postgres", host=socket_dir)


async def test_every_rule_is_scram_and_every_password_is_stored_as_scram(
    stack: DevStack, schema: ProvisionedSchema
) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(stack.postgres.admin_dsn))
    try:
        methods = {row["auth_method"] for row in await conn.fetch("SELECT auth_method FROM pg_hba_file_rules")}
        assert methods == {"scram-sha-256"}
        stored = await conn.fetch(
            "SELECT rolname, rolpassword FROM pg_authid WHERE rolname = ANY($1::text[])",
            ["postgres", schema.roles.app, schema.roles.owner],
        )
    finally:
        await conn.close()
    assert len(stored) == 3
    assert all(row["rolpassword"].startswith("SCRAM-SHA-256$") for row in stored)


async def test_role_passwords_are_made_once_and_kept(stack: DevStack, tmp_path: Path) -> None:
    """`make run` again: the same passwords from the same files, and they still open the database."""
    folder = tmp_path / "secrets" / "svc"
    first = load_or_create_roles(f"keep_{secrets.token_hex(4)}", folder)
    again = load_or_create_roles(first.schema, folder)
    assert (again.owner_password, again.app_password) == (first.owner_password, first.app_password)
    assert first.owner_password != first.app_password
    for name in ("database_owner_password", "database_app_password"):
        assert (folder / name).stat().st_mode & 0o777 == 0o600
    await provision_service(stack.postgres.admin_dsn, first)
    await provision_service(stack.postgres.admin_dsn, again)
    await login(stack, again.app, again.app_password)
