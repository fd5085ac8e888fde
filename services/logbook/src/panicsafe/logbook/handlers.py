"""RPC endpoints of the logbook service (`rpc.logbook.<operation>`); `health` comes from the runtime."""

from panicsafe.core.bus.rpc import RpcRouter

router = RpcRouter("logbook")
