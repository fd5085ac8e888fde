"""Settings of the logbook service: environment variables prefixed `LOGBOOK_`."""

from pydantic_settings import SettingsConfigDict

from panicsafe.core.settings import DatabaseSettings, OpenBaoSettings


class LogbookSettings(OpenBaoSettings, DatabaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOGBOOK_", extra="ignore", frozen=True)
