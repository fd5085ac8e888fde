"""Abuse resistance: progressive lockout per login and a failure budget per address.

Keys are the login *as typed* (`acct:<login>`) and the client address (`addr:<ip>`), whether or not
the account exists: an unknown login locks exactly like a real one, so lockout reveals nothing.
Failures are recorded in their own short transactions, so a failed login cannot roll them back.
Time comes from the throttle's clock (the wall clock unless a test gives another), never from the
database, so that delays and lock durations can be checked exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from panicsafe.core.db.database import Database

PROGRESSIVE_FROM = 5  # failures before delays start: typos are free
MAX_PROGRESSIVE_DELAY_S = 60
LOCKOUT = timedelta(minutes=15)


@dataclass(frozen=True)
class ThrottlePolicy:
    lockout_after: int = 20
    address_budget: int = 100
    address_window: timedelta = timedelta(minutes=15)


def account_key(login: str) -> str:
    return "acct:" + login.strip().lower()[:128]


def address_key(address: str | None) -> str:
    return "addr:" + (address or "unknown")[:64]


def lock_for(failures: int, policy: ThrottlePolicy, *, is_account: bool) -> timedelta | None:
    """How long a key is locked after `failures` failures in its window (pure, tested on its own)."""
    if is_account:
        if failures >= policy.lockout_after:
            return LOCKOUT
        if failures >= PROGRESSIVE_FROM:
            return timedelta(seconds=min(2 ** (failures - PROGRESSIVE_FROM), MAX_PROGRESSIVE_DELAY_S))
        return None
    return policy.address_window if failures >= policy.address_budget else None


def wall_clock() -> datetime:
    return datetime.now(UTC)


class Throttle:
    def __init__(self, db: Database, policy: ThrottlePolicy, *, clock: Callable[[], datetime] = wall_clock) -> None:
        self.db = db
        self.policy = policy
        self.clock = clock

    async def locked(self, *keys: str) -> bool:
        """Whether any of the keys is locked now (by a progressive delay or the full lockout)."""
        value = await self.db.pool.fetchval(
            "SELECT bool_or(locked_until > $2) FROM auth_throttle WHERE key = ANY($1::text[])",
            list(keys),
            self.clock(),
        )
        return bool(value)

    async def failure(self, *keys: str) -> set[str]:
        """Count one failure against each key; return the keys this failure locked for the full lockout."""
        now = self.clock()
        locked: set[str] = set()
        async with self.db.transaction() as conn:
            for key in keys:
                row = await conn.fetchrow(
                    "INSERT INTO auth_throttle AS t (key, failures, window_start) VALUES ($1, 1, $2) "
                    "ON CONFLICT (key) DO UPDATE SET "
                    "failures = CASE WHEN t.window_start < $2 - $3::interval AND "
                    "(t.locked_until IS NULL OR t.locked_until < $2) THEN 1 ELSE t.failures + 1 END, "
                    "window_start = CASE WHEN t.window_start < $2 - $3::interval AND "
                    "(t.locked_until IS NULL OR t.locked_until < $2) THEN $2 ELSE t.window_start END "
                    "RETURNING failures",
                    key,
                    now,
                    self.policy.address_window,
                )
                assert row is not None
                failures = int(row["failures"])
                lock = lock_for(failures, self.policy, is_account=key.startswith("acct:"))
                if lock is not None:
                    await conn.execute("UPDATE auth_throttle SET locked_until = $2 WHERE key = $1", key, now + lock)
                    if failures == self.policy.lockout_after or not key.startswith("acct:"):
                        locked.add(key)
        return locked

    async def success(self, key: str) -> None:
        await self.db.pool.execute("DELETE FROM auth_throttle WHERE key = $1", key)
