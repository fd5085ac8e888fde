"""The live feed of one crisis for a subscription, shared by every subscription field."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Any

from panicsafe.contracts import gateway
from panicsafe.contracts.errors import ErrorCode
from panicsafe.contracts.events import CloudEvent
from panicsafe.core.errors import ServiceError
from panicsafe.gateway.auth.principal import load_principal
from panicsafe.gateway.domain import policy
from panicsafe.gateway.domain.policy import Principal
from panicsafe.gateway.graphql.common import GInfo, uuid_arg

RECHECK_S = 30.0
# What a subscription delivers before its live events: what the client missed (see `chatUpdates`).
Backlog = Callable[[Principal, str], Awaitable[Sequence[Any]]]


async def crisis_stream(
    info: GInfo, field: str, crisis_id: str, backlog: Backlog | None = None
) -> AsyncGenerator[tuple[Principal, str, CloudEvent | Any], None]:
    """The events of one crisis for a subscription, each with the subscriber as they are now.

    Decided by the policy at the start. Membership changes arrive on this very stream: the decision is
    taken again at once. Sessions are re-checked at least every RECHECK_S (a revoked session or an
    expired token ends the stream). `backlog`, called once the live feed is registered (so nothing
    falls between the two), gives items to deliver first.
    """
    principal = await info.context.principal()
    policy.decide(f"Subscription.{field}", principal, {"crisis_id": crisis_id})
    assert principal is not None
    hub = info.context.services.hub
    if hub is None:
        raise ServiceError(ErrorCode.UNAVAILABLE, "Flux en direct indisponible.")
    key = uuid_arg(crisis_id, "crisisId")
    services = info.context.services
    bearer = info.context.bearer() or ""
    checked = time.monotonic()
    async with hub.subscribe(tenant=principal.tenant_id, crisis=key) as subscription:
        if backlog is not None:
            for item in await backlog(principal, key):
                yield principal, key, item
        async for event in subscription:
            if gateway.MEMBERSHIP_CHANGED.matches(event) or time.monotonic() - checked > RECHECK_S:
                principal = await load_principal(services.db, services.tokens, bearer)
                policy.require_member(principal, key)
                checked = time.monotonic()
            yield principal, key, event
