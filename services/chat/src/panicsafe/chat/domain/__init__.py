"""The chat's rules: who stands where in a crisis, what channels one may open, how fast one may send. No I/O here."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from panicsafe.contracts.actor import LEADING_ROLES, LIMITED_ROLES, READ_ONLY_ROLES, Actor
from panicsafe.contracts.chat import Audience, ChannelKind, CreateChannelRequest, may_read, may_write
from panicsafe.core.errors import forbidden, invalid


@dataclass(frozen=True)
class Standing:
    """One person in one crisis: their roles and cells, as the actor token says now."""

    user: str
    label: str
    roles: frozenset[str]
    cells: frozenset[str]

    @property
    def leads(self) -> bool:
        return bool(self.roles & LEADING_ROLES)

    @property
    def limited(self) -> bool:
        return self.roles <= LIMITED_ROLES

    @property
    def writes(self) -> bool:
        return bool(self.roles - READ_ONLY_ROLES)

    def reads(self, audience: Audience) -> bool:
        return may_read(self.user, self.roles, self.cells, audience)

    def may_write(self, audience: Audience) -> bool:
        return may_write(self.user, self.roles, self.cells, audience)


def standing(actor: Actor, crisis: str) -> Standing:
    membership = actor.membership(crisis)
    if membership is None or not membership.roles:
        raise forbidden("Vous n'êtes pas membre de cette crise.")
    return Standing(
        user=actor.subject,
        label=actor.name or actor.subject,
        roles=frozenset(membership.roles),
        cells=frozenset(membership.cells),
    )


@dataclass(frozen=True)
class NewChannel:
    """A channel someone asked to open, as it is to be stored."""

    name: str
    members: list[str]
    direct_key: str | None  # one direct conversation per pair: the pair's sorted ids


def new_channel(me: Standing, request: CreateChannelRequest) -> NewChannel:
    """Private channels within one of one's cells (leaders: any cell), and direct conversations for two."""
    if not me.writes:
        raise forbidden("Les observateurs lisent sans écrire.")
    members = sorted({*request.members, me.user})
    name = request.name.strip()
    direct_key = None
    if request.kind == ChannelKind.PRIVATE:
        if request.cell is None:
            raise invalid("Un canal privé appartient à une cellule.")
        if not (me.leads or request.cell in me.cells):
            raise forbidden("Créez un canal privé dans une de vos cellules.")
        if not name:
            raise invalid("Donnez un nom au canal.")
    elif request.kind == ChannelKind.DIRECT:
        if len(members) != 2 or request.cell is not None:
            raise invalid("Une conversation directe réunit deux personnes.")
        direct_key = ":".join(members)
        name = name or "Conversation directe"
    else:
        raise invalid("Seuls les canaux privés et les conversations directes se créent à la main.")
    return NewChannel(name=name[:120], members=members, direct_key=direct_key)


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class SendLimiter:
    """A token bucket per person: `rate` messages per second on average, bursts up to `burst`."""

    rate: float = 5.0
    burst: float = 30.0
    max_people: int = 100_000
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def allow(self, who: str, now: float | None = None) -> bool:
        moment = time.monotonic() if now is None else now
        bucket = self._buckets.get(who)
        if bucket is None:
            if len(self._buckets) >= self.max_people:
                self._buckets.clear()  # forget everyone rather than grow without bound
            bucket = self._buckets[who] = _Bucket(self.burst, moment)
        bucket.tokens = min(self.burst, bucket.tokens + (moment - bucket.at) * self.rate)
        bucket.at = moment
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True
