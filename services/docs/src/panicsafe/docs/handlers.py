"""RPC endpoints of the docs service (`rpc.docs.<operation>`); `health` comes from the runtime."""

from panicsafe.core.bus.rpc import RpcRouter

router = RpcRouter("docs")
