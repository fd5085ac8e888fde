"""RPC endpoints of the video service (`rpc.video.<operation>`); `health` comes from the runtime."""

from panicsafe.core.bus.rpc import RpcRouter

router = RpcRouter("video")
