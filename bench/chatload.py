"""The chat benchmark's load driver, the same for every chat server (ours, Matrix Synapse, ...).

A chat server is reached through a `ChatAdapter`, named by an import path ("bench.chat_synapse:SynapseAdapter")
and built in each worker process from a picklable `config` dict: `adapter = cls(config)`. The driver knows
nothing else of the server.

Method:

- `listener_processes` processes (multiprocessing, 'spawn') each run their share of `clients` subscribers
  in one asyncio loop (`adapter.listen`). Every text of the form `bench:<msgid>:<send_time_ns>` that a
  subscriber receives is one delivery, whose latency is `time.time_ns()` on receipt minus the send time
  written into the text by the sender just before it handed the message to the adapter (same machine,
  same clock). Other texts are ignored. Each process keeps, per phase, the latency of every delivery and
  a count of deliveries per message, and hands them to the parent when asked at the end of the phase.
- One sender process, separate from the listeners, paces `adapter.send` at a total rate spread over
  `senders` sender indexes (round-robin), open loop on a fixed schedule but with at most `max_in_flight`
  sends pending: a slow server shows as a lower achieved rate, not as unbounded concurrency. The achieved
  rate is the number of sends issued within the phase's window that succeeded, divided by the window
  (sends still pending when the window closes are awaited and still count).
- The parent starts the processes, waits until every subscriber is ready, then runs:
  a warm-up (not reported), phase A "steady" (`rate` msg/s for `seconds`, then a drain) and phase B
  "ramp" (steps of `ramp` msg/s for `step_seconds` each, each followed by a drain). A step passes if the
  achieved send rate is at least 95 % of its target, at least 99 % of the expected deliveries (messages
  sent successfully x clients) arrived, and the delivery p99 is under 2000 ms; the ramp stops at the first
  failing step, and the figure is the achieved rate of the highest passing step.
- Latency percentiles are taken over all (subscriber, message) deliveries of the phase. They include the
  client side's own queueing: the listeners, the sender and the server share the machine's cores.

`CHAT_BENCH_SECONDS` and `CHAT_BENCH_STEP_SECONDS` override the phase durations for quick runs. Every
worker process is killed if anything fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import multiprocessing
import os
import time
import traceback
from array import array
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any, Protocol

log = logging.getLogger(__name__)

PREFIX = "bench:"
STEADY_RATE = 10.0
STEADY_SECONDS = 60.0
RAMP_RATES: tuple[float, ...] = (20.0, 50.0, 100.0, 200.0, 400.0, 800.0)
STEP_SECONDS = 10.0
DRAIN_S = 5.0
WARMUP_S = 3.0
MAX_IN_FLIGHT = 64
READY_TIMEOUT_S = 300.0
REPLY_TIMEOUT_S = 120.0  # a worker answering a command (beyond the time the command itself takes)
PASS_SENT_RATIO = 0.95
PASS_DELIVERED_RATIO = 0.99
PASS_P99_MS = 2000.0


class ChatAdapter(Protocol):
    """One chat server, as seen by the driver; built in each worker process as `cls(config)`."""

    async def open(self) -> None:
        """Once per process, before anything else (connection pools, ...)."""
        ...

    async def listen(self, client: int, on_text: Callable[[str], None], ready: asyncio.Event) -> None:
        """Subscriber number `client`: call `on_text` for each text message, `ready.set()` once subscribed.

        Runs until cancelled; it should ride out transient errors itself (an exception fails the run).
        """
        ...

    async def send(self, sender: int, text: str) -> None:
        """Send one text message as sender number `sender`; return once the server accepted it."""
        ...

    async def close(self) -> None: ...


class ChatLoadError(RuntimeError):
    """A worker process failed, died or did not answer in time."""


@dataclass
class ScenarioFigures:
    steady_p50_ms: float
    steady_p99_ms: float
    steady_delivered_ratio: float
    steady_sent_per_s: float
    max_sustained_per_s: float
    steps: list[dict[str, Any]]  # one per ramp step run, as `PhaseStats.as_dict()` plus target and pass
    steady: dict[str, Any] = field(default_factory=dict)  # every statistic of phase A
    settings: dict[str, Any] = field(default_factory=dict)  # clients, senders, rates, durations

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_adapter(adapter_path: str, config: dict[str, Any]) -> ChatAdapter:
    """`"package.module:Class"` -> `Class(config)`."""
    module_name, _, attribute = adapter_path.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"adapter path must be 'module:Class', not {adapter_path!r}")
    cls = getattr(importlib.import_module(module_name), attribute)
    adapter: ChatAdapter = cls(config)
    return adapter


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (`q` in 0..100) of an already sorted sequence; 0 when empty."""
    if not ordered:
        return 0.0
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n q / 100), at least 1
    return float(ordered[min(len(ordered), int(rank)) - 1])


def bench_text(msgid: str) -> str:
    return f"{PREFIX}{msgid}:{time.time_ns()}"


# -- worker side: command channel ------------------------------------------------------------------
class _Commands:
    """Commands from the parent, read from the pipe by the event loop (no thread left blocked in recv)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._queue: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(conn.fileno(), self._readable)

    def _readable(self) -> None:
        try:
            while self._conn.poll():
                self._queue.put_nowait(self._conn.recv())
        except (EOFError, OSError):  # the parent is gone: stop
            self._loop.remove_reader(self._conn.fileno())
            self._queue.put_nowait(("stop",))

    async def get(self) -> tuple[Any, ...]:
        return await self._queue.get()

    def close(self) -> None:
        self._loop.remove_reader(self._conn.fileno())


def _worker(target: Callable[[Connection], Any], conn: Connection) -> None:
    """Run a worker coroutine; report any failure to the parent before exiting non-zero."""
    try:
        asyncio.run(target(conn))
    except BaseException:  # noqa: BLE001 (whatever it was, the parent must hear of it)
        with contextlib.suppress(OSError):
            conn.send(("error", traceback.format_exc()))
        raise SystemExit(1) from None


# -- listener processes ----------------------------------------------------------------------------
class _Tally:
    """Deliveries per phase: one latency per (subscriber, message), and a count per message."""

    def __init__(self) -> None:
        self.latencies: dict[str, array[float]] = {}
        self.counts: dict[str, dict[str, int]] = {}
        self.closed: set[str] = set()
        self.late = 0  # deliveries of a phase already reported, since the last report

    def on_text(self, text: str) -> None:
        if not text.startswith(PREFIX):
            return
        now = time.time_ns()
        parts = text.split(":")
        if len(parts) != 3:
            return
        msgid = parts[1]
        try:
            sent_ns = int(parts[2])
        except ValueError:
            return
        phase = msgid.partition(".")[0]
        if phase in self.closed:
            self.late += 1
            return
        latencies = self.latencies.get(phase)
        if latencies is None:
            latencies = self.latencies[phase] = array("d")
            self.counts[phase] = {}
        latencies.append((now - sent_ns) / 1e6)
        counts = self.counts[phase]
        counts[msgid] = counts.get(msgid, 0) + 1

    def pop(self, phase: str) -> tuple[array[float], dict[str, int], int]:
        """The phase's deliveries (later ones are only counted as late) and the late count since last time."""
        self.closed.add(phase)
        late, self.late = self.late, 0
        return self.latencies.pop(phase, array("d")), self.counts.pop(phase, {}), late


async def _listener_worker(conn: Connection, adapter_path: str, config: dict[str, Any], clients: list[int]) -> None:
    adapter = load_adapter(adapter_path, config)
    await adapter.open()
    commands = _Commands(conn)
    tally = _Tally()
    readies = [asyncio.Event() for _ in clients]
    tasks: list[asyncio.Task[Any]] = [
        asyncio.create_task(adapter.listen(client, tally.on_text, ready), name=f"listen-{client}")
        for client, ready in zip(clients, readies, strict=True)
    ]

    async def all_ready() -> None:
        for ready in readies:
            await ready.wait()

    def check(done: set[asyncio.Task[Any]]) -> None:
        for task in done:
            if task in tasks:
                exc = task.exception()
                raise ChatLoadError(f"{task.get_name()} ended: {exc!r}") from exc

    try:
        waiter = asyncio.create_task(all_ready())
        done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
        check(done)
        conn.send(("ready", len(clients)))
        while True:
            command: asyncio.Task[Any] = asyncio.create_task(commands.get())
            done, _ = await asyncio.wait([command, *tasks], return_when=asyncio.FIRST_COMPLETED)
            if command not in done:
                command.cancel()
                check(done)
            kind, *args = command.result()
            if kind == "collect":
                phase = str(args[0])
                latencies, counts, late = tally.pop(phase)
                conn.send(("result", phase, latencies, counts, late))
            elif kind == "stop":
                break
    finally:
        commands.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await adapter.close()


def _listener_main(conn: Connection, adapter_path: str, config: dict[str, Any], clients: list[int]) -> None:
    _worker(lambda c: _listener_worker(c, adapter_path, config, clients), conn)


# -- sender process --------------------------------------------------------------------------------
async def _paced(
    adapter: ChatAdapter, phase: str, rate: float, seconds: float, senders: int, max_in_flight: int
) -> dict[str, Any]:
    """Send at `rate` msg/s for `seconds` on a fixed schedule, at most `max_in_flight` pending."""
    slots = asyncio.Semaphore(max_in_flight)
    ok: list[int] = []
    send_ms = array("d")
    errors: dict[str, int] = {}
    pending: set[asyncio.Task[None]] = set()

    async def one(seq: int) -> None:
        text = bench_text(f"{phase}.{seq}")
        started = time.perf_counter()
        try:
            await adapter.send(seq % senders, text)
        except Exception as exc:  # noqa: BLE001 (a failed send is a figure, not a crash)
            name = type(exc).__name__
            errors[name] = errors.get(name, 0) + 1
        else:
            ok.append(seq)
            send_ms.append((time.perf_counter() - started) * 1000)
        finally:
            slots.release()

    interval = 1.0 / rate
    start = time.perf_counter()
    end = start + seconds
    seq = 0
    while True:
        due = start + seq * interval
        if due >= end:
            break
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await slots.acquire()  # behind schedule: send as soon as a slot frees, until the window closes
        if time.perf_counter() >= end:
            slots.release()
            break
        task = asyncio.create_task(one(seq))
        pending.add(task)
        task.add_done_callback(pending.discard)
        seq += 1
    if pending:
        await asyncio.wait(pending)
    elapsed = time.perf_counter() - start
    ordered = sorted(send_ms)
    return {
        "attempted": seq,
        "ok": ok,
        "failed": seq - len(ok),
        "errors": errors,
        "elapsed_s": elapsed,  # the window plus the wait for the last pending sends
        # Sends issued within the window that succeeded, per second of window: with at most
        # `max_in_flight` pending, a server slower than the target caps this at its own rate.
        "sent_per_s": len(ok) / seconds,
        "send_p50_ms": percentile(ordered, 50),
        "send_p99_ms": percentile(ordered, 99),
    }


async def _sender_worker(
    conn: Connection, adapter_path: str, config: dict[str, Any], senders: int, max_in_flight: int
) -> None:
    adapter = load_adapter(adapter_path, config)
    await adapter.open()
    commands = _Commands(conn)
    try:
        conn.send(("ready", senders))
        while True:
            kind, *args = await commands.get()
            if kind == "send":
                phase, rate, seconds = str(args[0]), float(args[1]), float(args[2])
                stats = await _paced(adapter, phase, rate, seconds, senders, max_in_flight)
                conn.send(("sent", phase, stats))
            elif kind == "stop":
                break
    finally:
        commands.close()
        await adapter.close()


def _sender_main(conn: Connection, adapter_path: str, config: dict[str, Any], senders: int, max_in_flight: int) -> None:
    _worker(lambda c: _sender_worker(c, adapter_path, config, senders, max_in_flight), conn)


# -- parent side -----------------------------------------------------------------------------------
@dataclass
class _Worker:
    name: str
    process: BaseProcess
    conn: Connection

    def send(self, *message: Any) -> None:
        self.conn.send(message)

    def recv(self, expect: str, timeout: float) -> tuple[Any, ...]:
        """The next message, which must be `expect`; raises if the worker failed, died or timed out."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChatLoadError(f"{self.name}: no '{expect}' within {timeout:.0f} s")
            ready = wait([self.conn, self.process.sentinel], timeout=left)
            if self.conn in ready:
                try:
                    message: tuple[Any, ...] = self.conn.recv()
                except EOFError:
                    raise ChatLoadError(f"{self.name} died (exit code {self.process.exitcode})") from None
                if message[0] == "error":
                    raise ChatLoadError(f"{self.name} failed:\n{message[1]}")
                if message[0] != expect:
                    raise ChatLoadError(f"{self.name}: expected '{expect}', got '{message[0]}'")
                return message
            if ready:  # the sentinel alone: the process ended without a word
                self.process.join(1)
                raise ChatLoadError(f"{self.name} died (exit code {self.process.exitcode})")


@dataclass
class PhaseStats:
    """What one phase measured."""

    target_per_s: float
    seconds: float
    attempted: int
    sent: int
    failed: int
    sent_per_s: float
    expected: int
    delivered: int
    delivered_ratio: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    send_p50_ms: float
    send_p99_ms: float
    late: int  # deliveries of earlier phases that arrived during this one (after their own drain)
    errors: dict[str, int]  # failed sends by exception type

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, float):
                out[key] = round(value, 3)
        return out


class _Run:
    """The worker processes of one scenario, and the phases run through them."""

    def __init__(self, clients: int, drain_s: float) -> None:
        self.clients = clients
        self.drain_s = drain_s
        self.listeners: list[_Worker] = []
        self.sender: _Worker | None = None

    def start(
        self,
        adapter_path: str,
        config: dict[str, Any],
        senders: int,
        listener_processes: int,
        max_in_flight: int,
        ready_timeout_s: float,
    ) -> None:
        ctx = multiprocessing.get_context("spawn")
        for index in range(listener_processes):
            share = list(range(index, self.clients, listener_processes))
            parent, child = ctx.Pipe()
            process = ctx.Process(
                target=_listener_main,
                args=(child, adapter_path, config, share),
                name=f"chat-listener-{index}",
                daemon=True,
            )
            process.start()
            child.close()
            self.listeners.append(_Worker(process.name, process, parent))
        parent, child = ctx.Pipe()
        process = ctx.Process(
            target=_sender_main,
            args=(child, adapter_path, config, senders, max_in_flight),
            name="chat-sender",
            daemon=True,
        )
        process.start()
        child.close()
        self.sender = _Worker(process.name, process, parent)
        started = time.monotonic()
        for worker in [*self.listeners, self.sender]:
            worker.recv("ready", max(1.0, ready_timeout_s - (time.monotonic() - started)))
        log.info("chatload: %d subscribers ready in %.1f s", self.clients, time.monotonic() - started)

    def phase(self, name: str, rate: float, seconds: float) -> PhaseStats:
        assert self.sender is not None
        self.sender.send("send", name, rate, seconds)
        sent = self.sender.recv("sent", seconds + REPLY_TIMEOUT_S)[2]
        time.sleep(self.drain_s)
        for listener in self.listeners:
            listener.send("collect", name)
        samples: list[float] = []
        counts: dict[str, int] = {}
        late = 0
        for listener in self.listeners:
            _, _, latencies, part, late_part = listener.recv("result", REPLY_TIMEOUT_S)
            samples.extend(latencies)
            late += int(late_part)
            for msgid, count in part.items():
                counts[msgid] = counts.get(msgid, 0) + count
        ok = {f"{name}.{seq}" for seq in sent["ok"]}
        # A message counts at most once per subscriber; deliveries of failed sends are not expected.
        delivered = sum(min(count, self.clients) for msgid, count in counts.items() if msgid in ok)
        expected = len(ok) * self.clients
        samples.sort()
        return PhaseStats(
            target_per_s=rate,
            seconds=seconds,
            attempted=int(sent["attempted"]),
            sent=len(ok),
            failed=int(sent["failed"]),
            sent_per_s=float(sent["sent_per_s"]),
            expected=expected,
            delivered=delivered,
            delivered_ratio=delivered / expected if expected else 0.0,
            p50_ms=percentile(samples, 50),
            p99_ms=percentile(samples, 99),
            max_ms=samples[-1] if samples else 0.0,
            send_p50_ms=float(sent["send_p50_ms"]),
            send_p99_ms=float(sent["send_p99_ms"]),
            late=late,
            errors=dict(sent["errors"]),
        )

    def stop(self) -> None:
        """Ask every worker to stop, then kill whatever is still alive."""
        workers = [*self.listeners, *([self.sender] if self.sender else [])]
        for worker in workers:
            with contextlib.suppress(OSError):
                worker.send("stop")
        deadline = time.monotonic() + 10
        for worker in workers:
            worker.process.join(max(0.1, deadline - time.monotonic()))
        for worker in workers:
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(5)
            worker.conn.close()
        self.listeners.clear()
        self.sender = None


def step_passes(stats: PhaseStats) -> bool:
    return (
        stats.sent_per_s >= PASS_SENT_RATIO * stats.target_per_s
        and stats.delivered_ratio >= PASS_DELIVERED_RATIO
        and stats.p99_ms < PASS_P99_MS
    )


def _env_seconds(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def run_scenario(
    adapter_path: str,
    config: dict[str, Any],
    *,
    clients: int = 200,
    senders: int = 10,
    listener_processes: int = 2,
    rate: float = STEADY_RATE,
    seconds: float | None = None,
    ramp: Sequence[float] = RAMP_RATES,
    step_seconds: float | None = None,
    drain_s: float = DRAIN_S,
    warmup_s: float = WARMUP_S,
    max_in_flight: int = MAX_IN_FLIGHT,
    ready_timeout_s: float = READY_TIMEOUT_S,
) -> ScenarioFigures:
    """Run the steady phase then the ramp against one chat server; every worker process is gone after."""
    if clients < 1 or senders < 1 or listener_processes < 1:
        raise ValueError("clients, senders and listener_processes must be at least 1")
    seconds = seconds if seconds is not None else _env_seconds("CHAT_BENCH_SECONDS", STEADY_SECONDS)
    step_seconds = step_seconds if step_seconds is not None else _env_seconds("CHAT_BENCH_STEP_SECONDS", STEP_SECONDS)
    listener_processes = min(listener_processes, clients)
    run = _Run(clients, drain_s)
    try:
        run.start(adapter_path, config, senders, listener_processes, max_in_flight, ready_timeout_s)
        if warmup_s > 0:
            run.phase("warmup", rate, warmup_s)
        steady = run.phase("steady", rate, seconds)
        log.info("chatload: steady %s", steady.as_dict())
        steps: list[dict[str, Any]] = []
        best = 0.0
        for index, target in enumerate(ramp):
            stats = run.phase(f"ramp{index}", target, step_seconds)
            passed = step_passes(stats)
            steps.append({**stats.as_dict(), "passed": passed})
            log.info("chatload: ramp %s msg/s %s: %s", target, "passed" if passed else "FAILED", stats.as_dict())
            if not passed:
                break
            best = stats.sent_per_s
    finally:
        run.stop()
    return ScenarioFigures(
        steady_p50_ms=steady.p50_ms,
        steady_p99_ms=steady.p99_ms,
        steady_delivered_ratio=steady.delivered_ratio,
        steady_sent_per_s=steady.sent_per_s,
        max_sustained_per_s=best,
        steps=steps,
        steady=steady.as_dict(),
        settings={
            "clients": clients,
            "senders": senders,
            "listener_processes": listener_processes,
            "rate": rate,
            "seconds": seconds,
            "ramp": list(ramp),
            "step_seconds": step_seconds,
            "drain_s": drain_s,
            "warmup_s": warmup_s,
            "max_in_flight": max_in_flight,
        },
    )


# -- a lean HTTP client for load generators ---------------------------------------------------------
class TransientError(Exception):
    """A reply worth retrying (429, 5xx)."""


class HttpConnection:
    """One HTTP/1.1 keep-alive connection to a server under test, one request at a time.

    The subscribers' `/sync` loops and the sends use this rather than httpx: on this machine an httpx
    request costs 1 to 3 ms of client CPU (more without `sniffio` installed), against some 40 us here,
    and 200 long-polling clients would otherwise take more of the 2 cores than Synapse itself.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, target: str, headers: bytes, body: bytes = b"") -> tuple[int, bytes]:
        """`headers`: ready-made header lines, each ending in CRLF. Returns status and body."""
        try:
            if self.reader is None or self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
            head = f"{method} {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n".encode() + headers
            if body:
                head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
            self.writer.write(head + b"\r\n" + body)
            status, fields = parse_head(await self.reader.readuntil(b"\r\n\r\n"))
            if "content-length" in fields:
                data = await self.reader.readexactly(int(fields["content-length"]))
            elif fields.get("transfer-encoding", "").lower() == "chunked":
                data = await self._chunked(self.reader)
            else:  # the body runs to the end of the connection
                data = await self.reader.read()
                self.close()
            if fields.get("connection", "").lower() == "close":
                self.close()
            return status, data
        except BaseException:
            self.close()
            raise

    @staticmethod
    async def _chunked(reader: asyncio.StreamReader) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":  # trailer fields
                    pass
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    fields: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            fields[name.strip().lower()] = value.strip()
    return status, fields


# Connection-level failures a client rides out by retrying.
NETWORK_ERRORS = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, TransientError)
