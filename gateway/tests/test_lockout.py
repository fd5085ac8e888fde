"""README, "Abuse": progressive delays, then a 15-minute lockout after 20 failures, keyed by the login
as typed; a failure budget per address. Checked exactly, with a clock the test moves (no sleeping)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from gwdb import PASSWORD, FakeClock, active_member, auth_service, client, migrated_schema, opened

from panicsafe.core.db.database import Database
from panicsafe.core.devstack import DevStack
from panicsafe.core.errors import ServiceError
from panicsafe.core.testing import gateway_keys
from panicsafe.gateway.auth.throttle import Throttle, ThrottlePolicy, account_key, address_key
from panicsafe.gateway.settings import GatewaySettings

MICROSECOND = timedelta(microseconds=1)
LOCKOUT_AFTER = 20
LOCKOUT = timedelta(minutes=15)
# The delay after the n-th failure, n = 1..19: none for the first four (typos are free), then
# doubling from one second, never more than a minute.
DELAYS_S = [0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 60, 60, 60, 60, 60, 60, 60]


@pytest.fixture
async def db(stack: DevStack) -> AsyncIterator[Database]:
    async with opened(await migrated_schema(stack)) as database:
        yield database


async def throttle_row(db: Database, key: str) -> Any:
    return await db.pool.fetchrow("SELECT failures, locked_until FROM auth_throttle WHERE key = $1", key)


def test_the_deployed_threshold_is_twenty() -> None:
    assert GatewaySettings.model_fields["lockout_after_failures"].default == LOCKOUT_AFTER
    assert ThrottlePolicy().lockout_after == LOCKOUT_AFTER


async def test_delays_from_the_fifth_failure_then_a_fifteen_minute_lock_at_the_twentieth(db: Database) -> None:
    clock = FakeClock()
    throttle = Throttle(db, ThrottlePolicy(), clock=clock)
    typed = f"Quelqu.Un-{secrets.token_hex(3)}"
    key = account_key(typed)
    assert key == account_key(f"  {typed.upper()} ")  # the login as typed, case and spaces aside
    assert len(DELAYS_S) == LOCKOUT_AFTER - 1
    for n, delay_s in enumerate(DELAYS_S, start=1):
        assert await throttle.failure(key) == set()
        row = await throttle_row(db, key)
        assert row["failures"] == n
        if not delay_s:
            assert row["locked_until"] is None
            assert not await throttle.locked(key)
            continue
        delay = timedelta(seconds=delay_s)
        assert row["locked_until"] == clock.now + delay, n
        clock.advance(delay - MICROSECOND)
        assert await throttle.locked(key), n
        clock.advance(MICROSECOND)
        assert not await throttle.locked(key), n

    assert await throttle.failure(key) == {key}  # the 20th: this one locks for the full lockout
    row = await throttle_row(db, key)
    assert row["failures"] == LOCKOUT_AFTER
    assert row["locked_until"] == clock.now + LOCKOUT
    clock.advance(LOCKOUT - MICROSECOND)
    assert await throttle.locked(key)
    clock.advance(MICROSECOND)
    assert not await throttle.locked(key)


async def test_an_address_has_a_budget_of_failures_across_logins(db: Database) -> None:
    clock = FakeClock()
    policy = ThrottlePolicy()
    throttle = Throttle(db, policy, clock=clock)
    address = address_key(f"test-{secrets.token_hex(4)}")
    for n in range(policy.address_budget - 1):
        assert await throttle.failure(account_key(f"spray-{n}-{secrets.token_hex(2)}"), address) == set()
    assert not await throttle.locked(address)
    assert await throttle.failure(account_key(f"spray-{secrets.token_hex(4)}"), address) == {address}
    clock.advance(policy.address_window - MICROSECOND)
    assert await throttle.locked(address)
    clock.advance(MICROSECOND)
    assert not await throttle.locked(address)


async def test_the_right_password_is_refused_for_fifteen_minutes_after_the_twentieth_failure(
    stack: DevStack, db: Database
) -> None:
    clock = FakeClock()
    auth = auth_service(stack, db, clock=clock)
    member = await active_member(db, gateway_keys(stack))
    me = client()

    async def wrong_password() -> ServiceError:
        with pytest.raises(ServiceError) as failed:
            await auth.login_password(member.login, "mauvais-mot-de-passe", me)
        return failed.value

    for delay_s in DELAYS_S:
        answer = await wrong_password()
        clock.advance(timedelta(seconds=delay_s))  # each attempt after the previous delay ran out
    # 19 failures: below the threshold, the right password still reaches the second-factor step.
    assert (await auth.login_password(member.login, PASSWORD, me)).challenge_token

    assert (await wrong_password()).body() == answer.body()  # the 20th
    clock.advance(LOCKOUT - MICROSECOND)
    with pytest.raises(ServiceError) as refused:
        await auth.login_password(member.login, PASSWORD, me)
    assert refused.value.body() == answer.body()  # locked answers like wrong: nothing leaks

    # That attempt counted too: the 15 minutes run from the last failure.
    key = account_key(member.login)
    assert (await throttle_row(db, key))["locked_until"] == clock.now + LOCKOUT
    clock.advance(LOCKOUT - MICROSECOND)
    assert await auth.throttle.locked(key)
    clock.advance(MICROSECOND)
    assert (await auth.login_password(member.login, PASSWORD, me)).methods == ["recovery"]
