"""Settings of the sara service: environment variables prefixed `SARA_`."""

from pydantic_settings import SettingsConfigDict

from panicsafe.core.settings import DatabaseSettings


class SaraSettings(DatabaseSettings):
    model_config = SettingsConfigDict(env_prefix="SARA_", extra="ignore", frozen=True)
