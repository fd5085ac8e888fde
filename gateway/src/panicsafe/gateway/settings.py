"""Settings of the gateway: environment variables prefixed `GATEWAY_`."""

from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from panicsafe.contracts.catalog import DOWNSTREAM
from panicsafe.core.settings import DatabaseSettings, OpenBaoSettings

# The repository's web client build, when the gateway runs from a checkout.
WEB_DIST = Path(__file__).resolve().parents[4] / "web" / "dist"


class GatewaySettings(OpenBaoSettings, DatabaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", frozen=True)
    secret_fields: ClassVar[tuple[str, ...]] = ()

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=1, le=65535)
    # Processes serving HTTP: above 1, `python -m panicsafe.gateway` supervises that many gateway
    # processes, each listening on the port with SO_REUSEPORT (the kernel spreads connections).
    http_workers: int = Field(default=1, ge=1, le=64)
    # Listen with SO_REUSEPORT, beside the other processes of this gateway (set by the supervisor).
    http_reuse_port: bool = False
    # Where browsers reach the platform: the passkey origin and relying-party id derive from it.
    public_url: str = "http://127.0.0.1:8080"
    # The built web client (`web/dist`, made by `make run` and `make test`); without it `/` serves the
    # plain access page (enrolment and login).
    web_dist: Path | None = WEB_DIST if WEB_DIST.is_dir() else None
    downstream_services: tuple[str, ...] = DOWNSTREAM
    # Ed25519 private keys (PKCS#8 PEM, file name `<kid>.pem`): user access tokens and internal
    # actor tokens are signed with different keys.
    access_signing_key_file: Path | None = None
    internal_signing_key_file: Path | None = None
    access_token_ttl_s: int = Field(default=600, ge=60, le=600)
    refresh_idle_s: int = Field(default=12 * 3600, ge=300)
    session_max_s: int = Field(default=7 * 24 * 3600, ge=3600)
    invitation_ttl_s: int = Field(default=72 * 3600, ge=600, le=14 * 24 * 3600)
    # Abuse resistance: progressive lockout per login, rate limit per address.
    lockout_after_failures: int = Field(default=20, ge=3)
    address_failures_per_window: int = Field(default=100, ge=10)
    address_window_s: int = Field(default=900, ge=60)

    @property
    def origin(self) -> str:
        parts = urlsplit(self.public_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def rp_id(self) -> str:
        return urlsplit(self.public_url).hostname or "localhost"
