"""What every GraphQL resolver receives: the gateway's services and the caller's principal."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strawberry.fastapi import BaseContext

from panicsafe.contracts.actor import Actor, CrisisMembership
from panicsafe.contracts.declarations import Operation, Rep, Req
from panicsafe.contracts.errors import ErrorCode
from panicsafe.core.bus.rpc import RpcClient
from panicsafe.core.db.database import Database
from panicsafe.core.errors import ServiceError
from panicsafe.core.tokens import TokenSigner
from panicsafe.gateway.auth.access import AccessTokens
from panicsafe.gateway.auth.factors import FactorService
from panicsafe.gateway.auth.principal import PrincipalCache, load_principal
from panicsafe.gateway.auth.service import AuthService
from panicsafe.gateway.domain.policy import Principal, unauthenticated
from panicsafe.gateway.settings import GatewaySettings
from panicsafe.gateway.subscriptions import EventHub


@dataclass
class GatewayServices:
    settings: GatewaySettings
    db: Database
    tokens: AccessTokens
    signer: TokenSigner
    auth: AuthService
    factors: FactorService
    hub: EventHub | None
    rpc: RpcClient | None = None
    principals: PrincipalCache = field(default_factory=PrincipalCache)  # of this process, for GraphQL requests

    async def call(self, principal: Principal, operation: Operation[Req, Rep], request: Req) -> Rep:
        """A downstream RPC on behalf of `principal`, with a fresh actor token addressed to that service."""
        if self.rpc is None:
            raise ServiceError(ErrorCode.UNAVAILABLE, "bus unavailable")
        token = self.signer.issue_reusable(actor_of(principal), audience=f"panicsafe.{operation.service}")
        return await self.rpc.call(operation, request, token=token)


def actor_of(principal: Principal) -> Actor:
    """The internal actor a downstream service sees for this principal: subject, tenant, memberships."""
    return Actor(
        subject=principal.user_id,
        tenant=principal.tenant_id,
        name=principal.display_name,
        tenant_roles=[principal.tenant_role.value],
        memberships=[
            CrisisMembership(crisis=a.crisis_id, roles=[a.role.value], cells=sorted(a.cells))
            for a in principal.crises.values()
        ],
    )


class GatewayContext(BaseContext):
    def __init__(self, services: GatewayServices) -> None:
        super().__init__()
        self.services = services
        self._principal: Principal | None = None
        self._resolved = False

    def bearer(self) -> str | None:
        if self.connection_params and isinstance(self.connection_params, dict):
            value: Any = self.connection_params.get("authorization") or self.connection_params.get("Authorization")
            if isinstance(value, str):
                return value.removeprefix("Bearer ").strip() or None
        if self.request is not None:
            header = self.request.headers.get("authorization", "")
            if header.startswith("Bearer "):
                return header.removeprefix("Bearer ").strip() or None
        return None

    async def principal(self) -> Principal | None:
        """The caller, or None when no valid session comes with the request (cached per request)."""
        if not self._resolved:
            bearer = self.bearer()
            if bearer is not None:
                try:
                    services = self.services
                    self._principal = await load_principal(services.db, services.tokens, bearer, services.principals)
                except ServiceError:
                    self._principal = None
            self._resolved = True
        return self._principal

    async def require_principal(self) -> Principal:
        principal = await self.principal()
        if principal is None:
            raise unauthenticated()
        return principal
