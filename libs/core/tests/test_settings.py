"""Settings: secrets read from `*_FILE`, unreadable files reported, placeholders refused outside dev."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import SecretStr, ValidationError
from pydantic_settings import SettingsConfigDict

from panicsafe.core.settings import (
    DatabaseSettings,
    Environment,
    OpenBaoSettings,
    PanicSettings,
    SettingsError,
)

STRONG = "k8Zq-3vLr-Wp2x-9TmB"
STRONG_URL = f"postgresql://svc_app:{STRONG}@db.internal:5432/panicsafe"
NKEY_SEED = "SUAEXAMPLEXSEEDXOFXAXBUSXIDENTITYXNOTXREALXAAAAAAAAAAAAAAAAA"
STRONG_OWNER_URL = f"postgresql://svc_owner:{STRONG}-owner@db.internal:5432/panicsafe"


class SvcSettings(DatabaseSettings):
    """A small service: its own secret on top of the database ones, env prefix TESTSVC_."""

    model_config = SettingsConfigDict(env_prefix="TESTSVC_")
    secret_fields: ClassVar[tuple[str, ...]] = ("api_secret",)

    api_secret: SecretStr = SecretStr("")
    greeting: str = "bonjour"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("TESTSVC_"):
            monkeypatch.delenv(name)


def valid_env(monkeypatch: pytest.MonkeyPatch, **overrides: str) -> None:
    values = {
        "TESTSVC_API_SECRET": STRONG,
        "TESTSVC_NATS_NKEY_SEED": NKEY_SEED,
        "TESTSVC_DATABASE_URL": STRONG_URL,
        "TESTSVC_DATABASE_OWNER_URL": STRONG_OWNER_URL,
        **overrides,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def settings_error(build: Callable[[], object]) -> SettingsError:
    """The SettingsError a constructor raised, bare or (as pydantic does today) wrapped."""
    try:
        build()
    except SettingsError as error:
        return error
    except ValidationError as error:
        details = error.errors()
        assert len(details) == 1, details
        cause = details[0].get("ctx", {}).get("error")
        assert isinstance(cause, SettingsError), details
        return cause
    pytest.fail("no SettingsError raised")


def test_secret_fields_collected_across_the_hierarchy() -> None:
    assert SvcSettings.all_secret_fields() == ("nats_nkey_seed", "database_url", "database_owner_url", "api_secret")

    class Both(SvcSettings, OpenBaoSettings):
        model_config = SettingsConfigDict(env_prefix="TESTSVC_")

    assert set(Both.all_secret_fields()) == {
        "nats_nkey_seed",
        "database_url",
        "database_owner_url",
        "api_secret",
        "openbao_role_id",
        "openbao_secret_id",
    }
    assert PanicSettings.all_secret_fields() == ("nats_nkey_seed",)  # every process has a bus identity


def test_plain_environment_values_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    valid_env(monkeypatch, TESTSVC_GREETING="salut", TESTSVC_DATABASE_POOL_SIZE="7")
    settings = SvcSettings()
    assert settings.environment == Environment.PRODUCTION
    assert settings.greeting == "salut"
    assert settings.database_pool_size == 7
    assert settings.api_secret.get_secret_value() == STRONG
    assert settings.database_url.get_secret_value() == STRONG_URL
    # Secrets never show in a repr or a log line.
    assert STRONG not in repr(settings)
    assert STRONG not in str(settings)


def test_secret_read_from_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    valid_env(monkeypatch)
    monkeypatch.delenv("TESTSVC_API_SECRET")
    monkeypatch.delenv("TESTSVC_DATABASE_URL")
    api_file = tmp_path / "api_secret"
    api_file.write_text("  from-the-file-0123456789\n", encoding="utf-8")
    url_file = tmp_path / "database_url"
    url_file.write_text(STRONG_URL + "\n", encoding="utf-8")
    monkeypatch.setenv("TESTSVC_API_SECRET_FILE", str(api_file))
    monkeypatch.setenv("TESTSVC_DATABASE_URL_FILE", str(url_file))

    settings = SvcSettings()

    assert settings.api_secret.get_secret_value() == "from-the-file-0123456789"  # stripped
    assert settings.database_url.get_secret_value() == STRONG_URL
    assert settings.database_owner_url.get_secret_value() == STRONG_OWNER_URL


def test_file_of_another_prefix_is_ignored(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret_file = tmp_path / "api_secret"
    secret_file.write_text("from-the-wrong-prefix-0123", encoding="utf-8")
    monkeypatch.setenv("OTHERSVC_API_SECRET_FILE", str(secret_file))
    settings = SvcSettings(environment=Environment.DEVELOPMENT)
    assert settings.api_secret.get_secret_value() == ""


def test_explicit_value_wins_over_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    valid_env(monkeypatch)
    secret_file = tmp_path / "api_secret"
    secret_file.write_text("from-the-file-0123456789", encoding="utf-8")
    monkeypatch.setenv("TESTSVC_API_SECRET_FILE", str(secret_file))
    settings = SvcSettings(api_secret=SecretStr("from-the-caller-0123456"))
    assert settings.api_secret.get_secret_value() == "from-the-caller-0123456"


def test_missing_secret_file_raises_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    valid_env(monkeypatch)
    monkeypatch.delenv("TESTSVC_API_SECRET")
    missing = tmp_path / "nowhere" / "api_secret"
    monkeypatch.setenv("TESTSVC_API_SECRET_FILE", str(missing))

    error = settings_error(lambda: SvcSettings())

    message = str(error)
    assert message.startswith("TESTSVC_API_SECRET_FILE: cannot read ")
    assert str(missing) in message
    assert "No such file or directory" in message


def test_secret_file_that_is_a_directory_raises(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TESTSVC_DATABASE_URL_FILE", str(tmp_path))
    error = settings_error(lambda: SvcSettings(environment=Environment.DEVELOPMENT))
    assert str(error).startswith(f"TESTSVC_DATABASE_URL_FILE: cannot read {tmp_path}")
    assert "Is a directory" in str(error)


def test_settings_error_reaches_the_caller(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TESTSVC_API_SECRET_FILE", str(tmp_path / "missing"))
    with pytest.raises(SettingsError, match="TESTSVC_API_SECRET_FILE: cannot read"):
        SvcSettings(environment=Environment.DEVELOPMENT)


@pytest.mark.parametrize("environment", [Environment.PRODUCTION, Environment.TEST])
@pytest.mark.parametrize("placeholder", ["changeme", "CHANGEME", " change-me ", "password", "secret", "", "short-123"])
def test_placeholder_secret_refused_outside_development(
    monkeypatch: pytest.MonkeyPatch, environment: Environment, placeholder: str
) -> None:
    valid_env(monkeypatch, TESTSVC_API_SECRET=placeholder, TESTSVC_ENVIRONMENT=environment.value)
    error = settings_error(lambda: SvcSettings())
    assert str(error).startswith("api_secret: a real secret is required outside development")


@pytest.mark.parametrize("placeholder", ["changeme", "", "short-123"])
def test_placeholder_secret_accepted_in_development(monkeypatch: pytest.MonkeyPatch, placeholder: str) -> None:
    valid_env(monkeypatch, TESTSVC_API_SECRET=placeholder, TESTSVC_ENVIRONMENT="development")
    settings = SvcSettings()
    assert settings.environment == Environment.DEVELOPMENT
    assert settings.api_secret.get_secret_value() == placeholder


def test_placeholder_secret_from_file_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    valid_env(monkeypatch)
    monkeypatch.delenv("TESTSVC_API_SECRET")
    secret_file = tmp_path / "api_secret"
    secret_file.write_text("changeme\n", encoding="utf-8")
    monkeypatch.setenv("TESTSVC_API_SECRET_FILE", str(secret_file))
    error = settings_error(lambda: SvcSettings())
    assert str(error).startswith("api_secret: ")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://svc_app:changeme@db.internal:5432/panicsafe",
        "postgresql://svc_app:CHANGEME@db.internal:5432/panicsafe",
        "postgresql://svc_app:short@db.internal:5432/panicsafe",
        "postgresql://svc_app@db.internal:5432/panicsafe",  # no password at all
    ],
)
def test_database_url_with_placeholder_password_refused(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    valid_env(monkeypatch, TESTSVC_DATABASE_URL=url)
    error = settings_error(lambda: SvcSettings())
    assert str(error).startswith("database_url: a real secret is required outside development")

    monkeypatch.setenv("TESTSVC_ENVIRONMENT", "development")
    assert SvcSettings().database_url.get_secret_value() == url


def test_database_url_with_a_long_user_but_placeholder_password_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The URL as a whole is long; only the password it carries is judged."""
    url = "postgresql://a_very_long_service_user_name:changeme@db.internal:5432/panicsafe"
    valid_env(monkeypatch, TESTSVC_DATABASE_OWNER_URL=url)
    error = settings_error(lambda: SvcSettings())
    assert str(error).startswith("database_owner_url: ")


def test_unset_secrets_refused_in_production() -> None:
    error = settings_error(lambda: SvcSettings())
    assert str(error).startswith("nats_nkey_seed: ")  # the first secret field in declaration order (the base's first)


def test_real_secrets_accepted_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    valid_env(monkeypatch)
    settings = SvcSettings()
    assert settings.environment == Environment.PRODUCTION
    assert settings.database_owner_url.get_secret_value() == STRONG_OWNER_URL
    assert settings.api_secret.get_secret_value() == STRONG


def test_settings_are_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    valid_env(monkeypatch)
    settings = SvcSettings()
    with pytest.raises(ValidationError, match="frozen"):
        settings.greeting = "hello"  # type: ignore[misc]
