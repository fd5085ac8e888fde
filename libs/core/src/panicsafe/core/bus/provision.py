"""What the platform sets up on the bus before any service starts: the stream and the declared consumers.

Services may not create either (their identities only pull from their own consumers): the devstack
runs this with the provisioner identity, as `infra/` does in the cluster. Idempotent: an existing
consumer is updated to its declared filters.
"""

from __future__ import annotations

import logging

from nats.js import JetStreamContext
from nats.js.errors import BadRequestError

from panicsafe.contracts.declarations import Subscription
from panicsafe.core.bus.consumer import consumer_config
from panicsafe.core.bus.events import EVENTS_STREAM, ensure_events_stream
from panicsafe.core.bus.identity import declared_subscriptions

log = logging.getLogger(__name__)


async def provision_consumer(js: JetStreamContext, subscription: Subscription) -> None:
    config = consumer_config(subscription.durable, subscription.filter_subjects)
    try:
        await js.add_consumer(EVENTS_STREAM, config=config)
    except BadRequestError as exc:
        # An existing consumer whose settings cannot change in place: keep it, say so.
        log.warning("consumer %s kept as it is: %s", subscription.durable, exc)


async def provision_bus(js: JetStreamContext, *, replicas: int = 1) -> list[str]:
    """The `EVENTS` stream and every declared durable consumer; returns their names."""
    await ensure_events_stream(js, replicas=replicas)
    subscriptions = declared_subscriptions()
    for subscription in subscriptions:
        await provision_consumer(js, subscription)
    return [subscription.durable for subscription in subscriptions]
