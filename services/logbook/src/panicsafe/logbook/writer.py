"""Group commit: appends that arrive together share one transaction and one fsync.

Each caller awaits its own entry. The writer takes whatever is waiting (up to `max_batch`), writes
it per log in one statement (`store.append`: one round trip, one commit), and wakes the callers;
while that commit is in flight the next batch gathers. Throughput follows the batch size, latency
stays near one commit. If a batch fails (a bad correction reference, say), its entries are retried
one by one so that only the bad one fails.

Under steady load a batch of one costs a whole statement and fsync for a single entry. When the
one append waiting came less than `2 * gather_s` after the one before it (500 appends/s and more),
the writer gives the next append up to `gather_s` (1 ms) to join it, as PostgreSQL's `commit_delay`
does for commits when others are in progress; it ends as soon as one arrives. A quiet log (a cell
typing at 3 am) pays no delay. Measured at 1,000 appends/s on two cores, paired runs: about a third
fewer statements and fsyncs, some 12 % of a core less for the service and PostgreSQL together, and
the median and p99 latency unchanged or slightly lower.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from panicsafe.core.db.database import Database
from panicsafe.logbook import store
from panicsafe.logbook.store import Draft, Heads, LogKey, Stored

log = logging.getLogger(__name__)

Pending = tuple[Draft, "asyncio.Future[Stored]"]


class GroupCommitWriter:
    def __init__(
        self,
        db: Database,
        heads: Heads,
        *,
        max_batch: int = 200,
        gather_s: float = 0.001,
        committed: Callable[[list[Stored]], None] | None = None,
    ) -> None:
        self.db = db
        self.heads = heads
        self.committed = committed  # told of each batch once it is committed
        self.max_batch = max_batch
        self.gather_s = gather_s
        self._last_arrival = 0.0
        self._gap = float("inf")  # between the last two appends, in seconds
        self._pending: list[Pending] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="logbook-writer")

    async def close(self) -> None:
        """Write what is waiting, then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def append(self, draft: Draft) -> Stored:
        if self._closing or self._task is None:
            raise RuntimeError("writer not running")
        draft.prepared  # noqa: B018 (encoded now, while a batch may be in flight, not on the next one's path)
        future: asyncio.Future[Stored] = asyncio.get_running_loop().create_future()
        self._pending.append((draft, future))
        now = time.monotonic()
        self._gap, self._last_arrival = now - self._last_arrival, now
        self._wake.set()
        return await future

    async def _run(self) -> None:
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if len(self._pending) == 1 and self._gap < 2 * self.gather_s and not self._closing:
                await self._gather()
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            by_log: dict[LogKey, list[Pending]] = {}
            for item in batch:
                by_log.setdefault(item[0].key, []).append(item)
            groups = list(by_log.values())
            if len(groups) == 1:  # the usual case: no task to gather
                await self._write(groups[0])
            else:  # one statement per log, at once
                await asyncio.gather(*(self._write(items) for items in groups))

    async def _gather(self) -> None:
        """Wait for the next append (or `close`), at most `gather_s`. A timer, not `wait_for`: no
        task per batch."""
        self._wake.clear()
        timer = asyncio.get_running_loop().call_later(self.gather_s, self._wake.set)
        try:
            await self._wake.wait()
        finally:
            timer.cancel()

    async def _write(self, items: list[Pending]) -> None:
        try:
            stored = await self._append([d for d, _ in items])
        except Exception as exc:  # noqa: BLE001 (handed to the caller, or isolated below)
            if len(items) == 1:
                future = items[0][1]
                if not future.done():
                    future.set_exception(exc)
            else:
                for item in items:  # one by one, in order: only the bad entry fails
                    await self._write([item])
            return
        for (_, future), entry in zip(items, stored, strict=True):
            if not future.done():
                future.set_result(entry)

    async def _append(self, drafts: list[Draft]) -> list[Stored]:
        async with self.db.autocommit() as conn:
            stored = await store.append(conn, drafts, recorded_at=datetime.now(UTC), heads=self.heads)
        if self.committed is not None:
            self.committed(stored)
        return stored
