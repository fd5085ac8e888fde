"""Settings of the chat service: environment variables prefixed `CHAT_`."""

from pydantic_settings import SettingsConfigDict

from panicsafe.core.settings import DatabaseSettings, OpenBaoSettings


class ChatSettings(OpenBaoSettings, DatabaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHAT_", extra="ignore", frozen=True)
