"""NATS: connection lifecycle, JetStream events, transactional outbox, idempotent consumers, RPC."""

from panicsafe.core.bus.connection import connect_nats
from panicsafe.core.bus.events import EVENTS_STREAM, ensure_events_stream, publish_event
from panicsafe.core.bus.rpc import RpcClient, RpcContext, RpcRouter

__all__ = [
    "EVENTS_STREAM",
    "RpcClient",
    "RpcContext",
    "RpcRouter",
    "connect_nats",
    "ensure_events_stream",
    "publish_event",
]
