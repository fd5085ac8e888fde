"""Settings of the chat service: environment variables prefixed `CHAT_`."""

from pydantic_settings import SettingsConfigDict

from panicsafe.core.settings import DatabaseSettings, OpenBaoSettings


class ChatSettings(OpenBaoSettings, DatabaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHAT_", extra="ignore", frozen=True)

    # Per person: messages per second on average, and the burst allowed above it.
    send_rate_per_s: float = 5.0
    send_burst: float = 30.0
