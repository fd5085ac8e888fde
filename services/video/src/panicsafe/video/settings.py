"""Settings of the video service: environment variables prefixed `VIDEO_`."""

from pydantic_settings import SettingsConfigDict

from panicsafe.core.settings import DatabaseSettings, TurnSettings


class VideoSettings(TurnSettings, DatabaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIDEO_", extra="ignore", frozen=True)
