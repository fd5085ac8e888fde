"""Settings base: one pydantic-settings class per service, secrets read from files.

Every secret field `x` may be given as `PREFIX_X` or, preferably, `PREFIX_X_FILE` naming a file
(Kubernetes mounts OpenBao secrets as files). Placeholder secrets are refused outside development.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from panicsafe.core.bus.connection import NatsCredentials

PLACEHOLDERS = frozenset({"", "changeme", "change-me", "changethis", "secret", "password", "dev", "root", "test"})


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class SettingsError(Exception):
    """A setting is missing, unreadable or unsafe (not a ValueError, so pydantic lets it through)."""


class PanicSettings(BaseSettings):
    """Fields every process shares. Subclasses set `model_config` with their env prefix."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)
    secret_fields: ClassVar[tuple[str, ...]] = ("nats_nkey_seed",)

    environment: Environment = Environment.PRODUCTION
    instance: str = Field(default_factory=lambda: f"{os.uname().nodename}-{os.getpid()}")
    log_level: str = "INFO"
    nats_url: str = "tls://127.0.0.1:4222"
    # The process's bus identity (see `panicsafe.core.bus.identity`): its nkey seed (from a file) and
    # the CA that signed the NATS server's certificate.
    nats_nkey_seed: SecretStr = SecretStr("")
    nats_ca_file: Path | None = None
    rpc_timeout_s: float = Field(default=5.0, gt=0, le=60)
    # Ed25519 public keys accepted for actor tokens: a directory of `<kid>.pem` files.
    token_keys_dir: Path | None = None
    token_audience: str = ""

    def nats_credentials(self, identity: str) -> NatsCredentials:
        return NatsCredentials(
            identity=identity,
            seed=self.nats_nkey_seed.get_secret_value() or None,
            ca_file=str(self.nats_ca_file) if self.nats_ca_file else None,
        )

    @classmethod
    def all_secret_fields(cls) -> tuple[str, ...]:
        """Secret fields declared anywhere in the class hierarchy (settings are built from mixins)."""
        names: list[str] = []
        for klass in reversed(cls.__mro__):
            for name in klass.__dict__.get("secret_fields", ()):
                if name not in names:
                    names.append(name)
        return tuple(names)

    @model_validator(mode="before")
    @classmethod
    def _read_secret_files(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        prefix = str(cls.model_config.get("env_prefix", "")).upper()
        for name in cls.all_secret_fields():
            env_file = os.environ.get(f"{prefix}{name.upper()}_FILE")
            if env_file and name not in data:
                try:
                    data[name] = Path(env_file).read_text(encoding="utf-8").strip()
                except OSError as exc:
                    raise SettingsError(f"{prefix}{name.upper()}_FILE: cannot read {env_file}: {exc}") from exc
        return data

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Self:
        if self.environment == Environment.DEVELOPMENT:
            return self
        for name in self.all_secret_fields():
            value = getattr(self, name)
            raw = value.get_secret_value() if isinstance(value, SecretStr) else str(value or "")
            if "://" in raw:  # a URL: judge the password it carries
                raw = urlsplit(raw).password or ""
            if raw.strip().lower() in PLACEHOLDERS or len(raw) < 12:
                raise SettingsError(
                    f"{name}: a real secret is required outside development (placeholder or shorter than 12)"
                )
        return self


class DatabaseSettings(PanicSettings):
    """The service's own schema: `database_url` runs as `<schema>_app`, migrations as `<schema>_owner`."""

    secret_fields: ClassVar[tuple[str, ...]] = ("database_url", "database_owner_url")
    database_url: SecretStr = SecretStr("")
    database_owner_url: SecretStr = SecretStr("")
    database_pool_size: int = Field(default=10, ge=1, le=100)


class S3Settings(PanicSettings):
    secret_fields: ClassVar[tuple[str, ...]] = ("s3_secret_key",)
    s3_endpoint: str = "127.0.0.1:8333"
    s3_access_key: str = ""
    s3_secret_key: SecretStr = SecretStr("")
    s3_bucket: str = "panicsafe"
    s3_secure: bool = True
    s3_region: str = "us-east-1"


class OpenBaoSettings(PanicSettings):
    """The service's own AppRole (`OPENBAO_ROLE_ID_FILE`, `OPENBAO_SECRET_ID_FILE`): no shared token."""

    secret_fields: ClassVar[tuple[str, ...]] = ("openbao_role_id", "openbao_secret_id")
    openbao_addr: str = "https://127.0.0.1:8200"
    openbao_role_id: SecretStr = SecretStr("")
    openbao_secret_id: SecretStr = SecretStr("")
    # The CA that signed OpenBao's certificate (the system's trust store when unset).
    openbao_ca_file: Path | None = None
    openbao_approle_mount: str = "approle"
    openbao_transit_mount: str = "transit"


class TurnSettings(PanicSettings):
    secret_fields: ClassVar[tuple[str, ...]] = ("turn_secret",)
    turn_host: str = "127.0.0.1"
    turn_port: int = 3478
    turn_realm: str = "panicsafe.local"
    turn_secret: SecretStr = SecretStr("")
