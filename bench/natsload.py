"""A lean NATS request driver for open-loop benchmarks.

The generator shares the machine's two cores with what it measures; every microsecond it spends per
request is taken from the services under test and delays the replies it times. nats-py costs a task,
a future and a subscription lookup per request; this speaks the client protocol directly (CONNECT,
SUB, HPUB; MSG and HMSG back) over one socket and one inbox subscription, and times each reply in
the read loop. Nothing else: no reconnection, no JetStream, loopback only.

An open-loop schedule is best kept by a thread (see `bench.logbook.paced`); `RawSender` lets that
thread publish the requests itself, on a blocking socket of its own, instead of handing each one to
the event loop (a wake-up of the loop, a pipe write and a loop iteration per request). The replies
still come back to the `RawRequester`, whose inbox they name.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
import time
from collections.abc import Callable
from urllib.parse import urlsplit

Done = Callable[[bytes, float], None]  # (reply payload, perf_counter when it was read)


OPTIONS = {"verbose": False, "pedantic": False, "headers": True, "no_responders": True, "protocol": 1}
CONNECT = b"CONNECT " + json.dumps(OPTIONS).encode() + b"\r\nPING\r\n"  # answered by PONG


class NatsProtocolError(RuntimeError):
    pass


def _loopback(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 4222
    if not host.startswith("127.") and host != "localhost":
        raise ValueError("the bench driver only talks to loopback")
    return host, port


class RawRequester:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._inbox = f"_INBOX.bench{secrets.token_hex(6)}"
        self._next = 0
        self._waiting: dict[bytes, Done] = {}
        self._reading: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()

    @classmethod
    async def connect(cls, url: str) -> RawRequester:
        reader, writer = await asyncio.open_connection(*_loopback(url))
        info = await reader.readline()
        if not info.startswith(b"INFO "):
            raise NatsProtocolError(f"expected INFO, got {info[:80]!r}")
        writer.write(CONNECT)
        line = await reader.readline()
        if line.strip() != b"PONG":
            raise NatsProtocolError(f"connection refused: {line[:200]!r}")
        requester = cls(reader, writer)
        writer.write(f"SUB {requester._inbox}.* 1\r\n".encode())
        requester._reading = asyncio.create_task(requester._read_loop())
        return requester

    def message(self, subject: str, payload: bytes, headers: bytes, done: Done) -> bytes:
        """The HPUB of one request whose reply this requester awaits, `done` being called with the
        reply (`headers`: from `header_block`). Registered before it is sent; safe from another
        thread: `_next` and `_waiting` change under the GIL, and the read loop only pops."""
        self._next += 1
        token = str(self._next).encode()
        self._waiting[token] = done
        reply = self._inbox.encode() + b"." + token
        head = b"HPUB %s %s %d %d\r\n" % (subject.encode(), reply, len(headers), len(headers) + len(payload))
        return head + headers + payload + b"\r\n"

    @property
    def outstanding(self) -> int:
        return len(self._waiting)

    async def drain(self, timeout: float) -> None:
        """Wait until every request has its reply (or `timeout` passes)."""
        deadline = time.monotonic() + timeout
        while self._waiting and time.monotonic() < deadline:
            self._idle.clear()
            if not self._waiting:  # answered meanwhile
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), max(0.0, deadline - time.monotonic()))

    async def close(self) -> None:
        if self._reading is not None:
            self._reading.cancel()
        self._writer.close()

    async def _read_loop(self) -> None:
        buffer = b""
        reader, writer, waiting = self._reader, self._writer, self._waiting
        while True:
            chunk = await reader.read(1 << 16)
            if not chunk:
                raise NatsProtocolError("connection closed")
            now = time.perf_counter()
            buffer += chunk
            while True:
                end = buffer.find(b"\r\n")
                if end < 0:
                    break
                line = buffer[:end]
                if line.startswith((b"MSG ", b"HMSG ")):
                    fields = line.split()
                    size = int(fields[-1])
                    header_size = int(fields[-2]) if line.startswith(b"HMSG ") else 0
                    body_end = end + 2 + size
                    if len(buffer) < body_end + 2:
                        break  # the rest of this message is still on its way
                    body = buffer[end + 2 + header_size : body_end]
                    buffer = buffer[body_end + 2 :]
                    token = fields[1].rsplit(b".", 1)[-1]
                    done = waiting.pop(token, None)
                    if done is not None:
                        done(body, now)
                        if not waiting:
                            self._idle.set()
                    continue
                buffer = buffer[end + 2 :]
                if line == b"PING":
                    writer.write(b"PONG\r\n")
                elif line.startswith(b"-ERR"):
                    raise NatsProtocolError(line.decode(errors="replace"))


class RawSender:
    """Publishes a `RawRequester`'s requests from a thread, on a blocking socket of its own."""

    def __init__(self, sock: socket.socket, requester: RawRequester) -> None:
        self._sock = sock
        self._requester = requester

    @classmethod
    def connect(cls, url: str, requester: RawRequester, timeout: float = 5.0) -> RawSender:
        """Blocking: CONNECT, then PING until PONG (the server has taken the connection)."""
        sock = socket.create_connection(_loopback(url), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        received = b""
        while b"\r\n" not in received:
            chunk = sock.recv(4096)
            if not chunk:
                raise NatsProtocolError("connection closed before INFO")
            received += chunk
        if not received.startswith(b"INFO "):
            raise NatsProtocolError(f"expected INFO, got {received[:80]!r}")
        sock.sendall(CONNECT)
        received = b""
        while b"PONG\r\n" not in received:
            chunk = sock.recv(4096)
            if not chunk or b"-ERR" in received + chunk:
                raise NatsProtocolError(f"connection refused: {(received + chunk)[:200]!r}")
            received += chunk
        return cls(sock, requester)

    def request(self, subject: str, payload: bytes, headers: bytes, done: Done) -> None:
        """Send now, from the calling thread; `done` is called by the requester's read loop."""
        self._sock.sendall(self._requester.message(subject, payload, headers, done))

    def close(self) -> None:
        self._sock.close()


def header_block(headers: dict[str, str]) -> bytes:
    return b"NATS/1.0\r\n" + b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items()) + b"\r\n"
