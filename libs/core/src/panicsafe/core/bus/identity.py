"""Who may do what on the bus: one NATS identity per service, its permissions made from the catalog.

Every connection authenticates with an nkey (an Ed25519 seed the process reads from a file; the
server knows only the public key) over TLS. Each service may:

- answer its own operations (`rpc.<service>.>`, as a queue group) and reply to what it was asked
  (`allow_responses`: only the reply subject of a request it received, once);
- call the operations of the services it declares in `calls` (the gateway: every downstream service);
- publish its own events only (`evt.*.*.<service>.>`);
- pull from the durable consumers it declares (`Subscription`), which the platform provisions with
  their declared filters: it cannot create a consumer, so it reads no other subject of the stream;
- receive its replies on its private inbox prefix `_INBOX.<identity>.`, which no one else may read.

The launcher (`make run`, `make status`) may only ask each service's health and the gateway's
development bootstrap; the provisioner creates the stream and the declared consumers (what `infra/`
does in the cluster); the harness, all-powerful, exists only in the test stacks.
"""

from __future__ import annotations

from dataclasses import dataclass

from panicsafe.contracts.catalog import SERVICES, ServiceEntry
from panicsafe.contracts.declarations import Subscription
from panicsafe.contracts.gateway import BOOTSTRAP_DEMO
from panicsafe.core.bus.events import EVENTS_STREAM

LAUNCHER = "launcher"
PROVISIONER = "provisioner"
HARNESS = "harness"
JS_API = "$JS.API"


def inbox_prefix(identity: str) -> str:
    """The private reply prefix of an identity: `_INBOX.<identity>` (nats-py appends `.<random>`)."""
    return f"_INBOX.{identity}"


@dataclass(frozen=True)
class Permissions:
    """The subjects one identity may publish to and subscribe to (allow lists: the rest is denied)."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    allow_responses: bool = True


def _consumer_subjects(durable: str) -> list[str]:
    """Pulling from one provisioned durable consumer: its info, its next batch, acks of its messages."""
    return [
        f"{JS_API}.CONSUMER.INFO.{EVENTS_STREAM}.{durable}",
        f"{JS_API}.CONSUMER.MSG.NEXT.{EVENTS_STREAM}.{durable}",
        f"$JS.ACK.{EVENTS_STREAM}.{durable}.>",
    ]


def service_permissions(entry: ServiceEntry) -> Permissions:
    name = entry.name
    publish = [f"rpc.{callee}.>" for callee in entry.calls]
    # Its own events only (the outbox relay publishes them; JetStream acks on its inbox).
    publish.append(f"evt.*.*.{name}.>")
    publish += [f"{JS_API}.INFO", f"{JS_API}.STREAM.INFO.{EVENTS_STREAM}"]
    for subscription in entry.subscriptions:
        publish += _consumer_subjects(subscription.durable)
    if entry.live_events:
        # Ephemeral ordered consumers (pushed to its own inbox, flow-controlled) for live views: the
        # server refuses a durable on this subject, so it cannot take over a declared consumer.
        # Only the gateway, which decides who sees what, has them.
        publish += [f"{JS_API}.CONSUMER.CREATE.{EVENTS_STREAM}", "$JS.FC.>"]
    micro = f"panicsafe-{name}"
    subscribe = [
        f"rpc.{name}.>",
        f"{inbox_prefix(name)}.>",
        # `nats.micro` discovery: PING/INFO/STATS for all, by name, by name and instance.
        "$SRV.*",
        f"$SRV.*.{micro}",
        f"$SRV.*.{micro}.*",
    ]
    return Permissions(tuple(publish), tuple(subscribe))


def launcher_permissions() -> Permissions:
    return Permissions(
        publish=(*(entry.health.subject for entry in SERVICES), BOOTSTRAP_DEMO.subject),
        subscribe=(f"{inbox_prefix(LAUNCHER)}.>",),
        allow_responses=False,
    )


def provisioner_permissions() -> Permissions:
    return Permissions(
        publish=(f"{JS_API}.>",),
        subscribe=(f"{inbox_prefix(PROVISIONER)}.>",),
        allow_responses=False,
    )


def harness_permissions() -> Permissions:
    return Permissions(publish=(">",), subscribe=(">",), allow_responses=False)


def all_permissions(*, harness: bool = False) -> dict[str, Permissions]:
    """Every identity of a platform, by name."""
    found = {entry.name: service_permissions(entry) for entry in SERVICES}
    found[LAUNCHER] = launcher_permissions()
    found[PROVISIONER] = provisioner_permissions()
    if harness:
        found[HARNESS] = harness_permissions()
    return found


def declared_subscriptions() -> list[Subscription]:
    return [sub for entry in SERVICES for sub in entry.subscriptions]
