"""Settings of the logbook service: environment variables prefixed `LOGBOOK_`."""

from pydantic_settings import SettingsConfigDict

from panicsafe.core.settings import DatabaseSettings, OpenBaoSettings, S3Settings


class LogbookSettings(S3Settings, OpenBaoSettings, DatabaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOGBOOK_", extra="ignore", frozen=True)

    checkpoint_interval_s: float = 1.0
    # Appends that arrive within this interval of the first share one notice on the bus.
    notice_interval_s: float = 0.05
    export_ttl_s: int = 3600
