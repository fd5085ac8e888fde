"""Create a service's schema and roles: `<schema>_owner` migrates, `<schema>_app` runs.

The runtime role owns nothing, so row-level security and any revoked privilege (the logbook's
UPDATE and DELETE) bind it. Run by `make run`, the test fixtures, and in the cluster by the
bootstrap job, with the administrator's connection.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from panicsafe.core.db.database import asyncpg_dsn, check_schema_name


@dataclass(frozen=True)
class ServiceRoles:
    schema: str
    owner_password: str
    app_password: str

    @property
    def owner(self) -> str:
        return f"{self.schema}_owner"

    @property
    def app(self) -> str:
        return f"{self.schema}_app"

    def owner_dsn(self, host: str, port: int, database: str) -> str:
        return f"postgresql://{self.owner}:{self.owner_password}@{host}:{port}/{database}"

    def app_dsn(self, host: str, port: int, database: str) -> str:
        return f"postgresql://{self.app}:{self.app_password}@{host}:{port}/{database}"


def _password_in(path: Path) -> str:
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(24)
    path.write_text(password)
    path.chmod(0o600)
    return password


def load_or_create_roles(schema: str, folder: Path) -> ServiceRoles:
    """The service's roles with their passwords kept in `folder` (0600): made once, then reused.

    PostgreSQL checks each role's password (scram-sha-256): the files are the only place they live."""
    return ServiceRoles(
        schema,
        owner_password=_password_in(folder / "database_owner_password"),
        app_password=_password_in(folder / "database_app_password"),
    )


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


async def provision_service(admin_dsn: str, roles: ServiceRoles) -> None:
    """Idempotent: roles (re)get their passwords, the schema and default privileges exist."""
    schema = check_schema_name(roles.schema)
    conn = await asyncpg.connect(asyncpg_dsn(admin_dsn))
    try:
        async with conn.transaction():
            # Serialise concurrent provisioning of the same cluster (parallel service start-up).
            await conn.execute("SELECT pg_advisory_xact_lock(7243001)")
            for role, password in ((roles.owner, roles.owner_password), (roles.app, roles.app_password)):
                exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
                verb = "ALTER" if exists else "CREATE"
                await conn.execute(
                    f"{verb} ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS "
                    f"PASSWORD {_literal(password)}"
                )
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {roles.owner}")
            await conn.execute(f"REVOKE ALL ON SCHEMA {schema} FROM PUBLIC")
            await conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO {roles.app}")
            await conn.execute(
                f"ALTER DEFAULT PRIVILEGES FOR ROLE {roles.owner} IN SCHEMA {schema} "
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {roles.app}"
            )
            await conn.execute(
                f"ALTER DEFAULT PRIVILEGES FOR ROLE {roles.owner} IN SCHEMA {schema} "
                f"GRANT USAGE, SELECT ON SEQUENCES TO {roles.app}"
            )
            await conn.execute(
                f"ALTER DEFAULT PRIVILEGES FOR ROLE {roles.owner} IN SCHEMA {schema} "
                f"GRANT EXECUTE ON FUNCTIONS TO {roles.app}"
            )
    finally:
        await conn.close()
