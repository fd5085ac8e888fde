"""Entry point: `python -m panicsafe.gateway`."""

import asyncio

from panicsafe.core.telemetry import configure_logging, configure_tracing
from panicsafe.gateway.app import serve
from panicsafe.gateway.settings import GatewaySettings

if __name__ == "__main__":
    settings = GatewaySettings()
    configure_logging(settings.log_level)
    configure_tracing("panicsafe-gateway")
    asyncio.run(serve(settings))
