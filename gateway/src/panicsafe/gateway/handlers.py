"""RPC endpoints of the gateway (`rpc.gateway.<operation>`); `health` comes from the runtime."""

from panicsafe.core.bus.rpc import RpcRouter

router = RpcRouter("gateway")
