"""RPC endpoints of the gateway (`rpc.gateway.<operation>`); `health` comes from the runtime."""

from __future__ import annotations

from panicsafe.contracts import gateway
from panicsafe.contracts.gateway import BootstrapDemoReply, BootstrapDemoRequest
from panicsafe.core.bus.rpc import RpcContext, RpcRouter
from panicsafe.core.crypto import TransitKeys
from panicsafe.core.db.database import Database
from panicsafe.core.errors import forbidden
from panicsafe.gateway.bootstrap import DEMO_TENANT, ensure_demo, invitation_link
from panicsafe.gateway.settings import GatewaySettings


def build_router(db: Database, keys: TransitKeys, settings: GatewaySettings) -> RpcRouter:
    router = RpcRouter(gateway.SERVICE)

    @router.handle(gateway.BOOTSTRAP_DEMO)
    async def bootstrap_demo(request: BootstrapDemoRequest, ctx: RpcContext) -> BootstrapDemoReply:
        """Development only: `make run` seeds the demo tenant through this call."""
        if settings.environment != "development":
            raise forbidden("bootstrap_demo exists only in development")
        demo = await ensure_demo(db, keys, request.tenant_id)
        token = demo.invitation_token
        return BootstrapDemoReply(
            tenant_id=demo.tenant_id,
            tenant_name=DEMO_TENANT,
            admin_login=demo.admin_login,
            enrolment_link=invitation_link(settings.public_url, token) if token else None,
            created=demo.created,
        )

    return router
