"""Settings of the gateway: environment variables prefixed `GATEWAY_`."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from panicsafe.core.settings import DatabaseSettings

DOWNSTREAM = ("chat", "video", "logbook", "docs", "sara")


class GatewaySettings(DatabaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", frozen=True)

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=1, le=65535)
    downstream_services: tuple[str, ...] = DOWNSTREAM
