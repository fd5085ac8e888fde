"""RPC endpoints of the sara service (`rpc.sara.<operation>`); `health` comes from the runtime."""

from panicsafe.core.bus.rpc import RpcRouter

router = RpcRouter("sara")
