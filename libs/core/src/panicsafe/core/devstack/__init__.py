"""The real servers, started locally: the one place that knows how to start them."""

from panicsafe.core.devstack.servers import DevStackError
from panicsafe.core.devstack.stack import ALL_COMPONENTS, DevStack

__all__ = ["ALL_COMPONENTS", "DevStack", "DevStackError"]
