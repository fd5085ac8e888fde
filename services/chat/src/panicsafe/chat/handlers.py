"""RPC endpoints of the chat service (`rpc.chat.<operation>`); `health` comes from the runtime."""

from panicsafe.core.bus.rpc import RpcRouter

router = RpcRouter("chat")
