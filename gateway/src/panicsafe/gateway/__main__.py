"""Entry point: `python -m panicsafe.gateway` (one gateway process, or a supervisor of several)."""

import asyncio
import sys

from panicsafe.core.telemetry import configure_logging, configure_tracing
from panicsafe.gateway.app import serve
from panicsafe.gateway.settings import GatewaySettings
from panicsafe.gateway.workers import supervise

if __name__ == "__main__":
    settings = GatewaySettings()
    configure_logging(settings.log_level)
    if settings.http_workers > 1:
        sys.exit(supervise(settings.http_workers))
    configure_tracing("panicsafe-gateway")
    asyncio.run(serve(settings))
