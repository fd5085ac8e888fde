"""Settings of the docs service: environment variables prefixed `DOCS_`."""

from pydantic_settings import SettingsConfigDict

from panicsafe.core.settings import DatabaseSettings, OpenBaoSettings, S3Settings


class DocsSettings(S3Settings, OpenBaoSettings, DatabaseSettings):
    model_config = SettingsConfigDict(env_prefix="DOCS_", extra="ignore", frozen=True)
