"""A lean NATS request driver for open-loop benchmarks.

The generator shares the machine's two cores with what it measures; every microsecond it spends per
request is taken from the services under test and delays the replies it times. nats-py costs a task,
a future and a subscription lookup per request; this speaks the client protocol directly (CONNECT,
SUB, HPUB; MSG and HMSG back) over one socket and one inbox subscription, and times each reply in
the read loop. Nothing else: no reconnection, no JetStream, loopback only.

It connects as the platform's processes do (`panicsafe.core.bus.connection`): the server's INFO
comes in clear, then the connection is upgraded to TLS verified against the platform's CA, and
CONNECT proves the identity's nkey by signing the server's nonce; replies come back on the
identity's private inbox prefix, the only one it may read.

An open-loop schedule is best kept by a thread (see `bench.logbook.paced`); `RawSender` lets that
thread publish the requests itself, on a blocking socket of its own, instead of handing each one to
the event loop (a wake-up of the loop, a pipe write and a loop iteration per request). The replies
still come back to the `RawRequester`, whose inbox they name.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import nkeys

from panicsafe.core.bus.connection import NatsCredentials
from panicsafe.core.bus.identity import inbox_prefix

Done = Callable[[bytes, float], None]  # (reply payload, perf_counter when it was read)


OPTIONS = {"verbose": False, "pedantic": False, "headers": True, "no_responders": True, "protocol": 1}


class NatsProtocolError(RuntimeError):
    pass


def server_info(line: bytes) -> dict[str, Any]:
    """The fields of the server's INFO line."""
    if not line.startswith(b"INFO "):
        raise NatsProtocolError(f"expected INFO, got {line[:80]!r}")
    info: dict[str, Any] = json.loads(line[5:])
    return info


def tls_context(credentials: NatsCredentials, info: dict[str, Any]) -> ssl.SSLContext:
    """The TLS the connection must be upgraded to: never plain text, never an unverified server."""
    context = credentials.tls_context()
    if context is None:
        raise NatsProtocolError(f"no CA to verify the server with for {credentials.identity!r}")
    if not (info.get("tls_required") or info.get("tls_available")):
        raise NatsProtocolError("the server does not offer TLS")
    return context


def connect_command(credentials: NatsCredentials, info: dict[str, Any]) -> bytes:
    """CONNECT for `credentials`, then PING (answered by PONG once the server has taken it): the
    identity's public nkey and its signature of the server's nonce (base64url, no padding)."""
    nonce = info.get("nonce")
    if not credentials.seed or not nonce:
        raise NatsProtocolError("an nkey identity and the server's nonce are both needed")
    pair = nkeys.from_seed(credentials.seed.encode())
    try:
        signature = base64.urlsafe_b64encode(pair.sign(str(nonce).encode())).rstrip(b"=").decode()
        public = str(pair.public_key.decode())
    finally:
        pair.wipe()
    options = {**OPTIONS, "tls_required": True, "nkey": public, "sig": signature, "name": "bench-natsload"}
    return b"CONNECT " + json.dumps(options).encode() + b"\r\nPING\r\n"


def _loopback(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 4222
    if not host.startswith("127.") and host != "localhost":
        raise ValueError("the bench driver only talks to loopback")
    return host, port


async def _pong(reader: asyncio.StreamReader, refused: str) -> None:
    """Read up to the PONG that answers our PING; the server may send an INFO update meanwhile."""
    while True:
        line = await reader.readline()
        if line.strip() == b"PONG":
            return
        if not line.startswith(b"INFO "):
            raise NatsProtocolError(f"{refused}: {line[:200]!r}")


class RawRequester:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, identity: str) -> None:
        self._reader = reader
        self._writer = writer
        self.identity = identity  # whose inbox the replies come to
        self._inbox = f"{inbox_prefix(identity)}.bench{secrets.token_hex(6)}"
        self._next = 0
        self._waiting: dict[bytes, Done] = {}
        self._reading: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()

    @classmethod
    async def connect(cls, url: str, credentials: NatsCredentials) -> RawRequester:
        host, port = _loopback(url)
        reader, writer = await asyncio.open_connection(host, port)
        requester = cls(reader, writer, credentials.identity)
        try:
            info = server_info(await reader.readline())
            await writer.start_tls(tls_context(credentials, info), server_hostname=host)
            writer.write(connect_command(credentials, info))
            await _pong(reader, "connection refused")
            # PING after SUB: a PONG says the server took the subscription (a permission violation
            # would come first as -ERR), before the read loop takes over the socket.
            writer.write(f"SUB {requester._inbox}.* 1\r\nPING\r\n".encode())
            await _pong(reader, "inbox subscription refused")
        except BaseException:
            await requester.close()
            raise
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
            with contextlib.suppress(asyncio.CancelledError, NatsProtocolError):
                await self._reading
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()

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

    def __init__(self, sock: ssl.SSLSocket, requester: RawRequester) -> None:
        self._sock = sock
        self._requester = requester

    @classmethod
    def connect(
        cls, url: str, requester: RawRequester, credentials: NatsCredentials, timeout: float = 5.0
    ) -> RawSender:
        """Blocking: INFO, TLS, CONNECT, then PING until PONG (the server has taken the connection).
        `credentials` must be the requester's identity: the replies name its inbox."""
        if credentials.identity != requester.identity:
            raise ValueError("the sender must publish as the requester, whose inbox the replies name")
        host, port = _loopback(url)
        plain = socket.create_connection((host, port), timeout=timeout)
        try:
            plain.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            received = b""
            while b"\r\n" not in received:
                chunk = plain.recv(4096)
                if not chunk:
                    raise NatsProtocolError("connection closed before INFO")
                received += chunk
            info = server_info(received.split(b"\r\n", 1)[0])
            context = tls_context(credentials, info)
        except BaseException:
            plain.close()
            raise
        sock = context.wrap_socket(plain, server_hostname=host)  # takes `plain` over, even if it fails
        try:
            sock.sendall(connect_command(credentials, info))
            received = b""
            while b"PONG\r\n" not in received:
                chunk = sock.recv(4096)
                if not chunk or b"-ERR" in received + chunk:
                    raise NatsProtocolError(f"connection refused: {(received + chunk)[:200]!r}")
                received += chunk
        except BaseException:
            sock.close()
            raise
        return cls(sock, requester)

    def request(self, subject: str, payload: bytes, headers: bytes, done: Done) -> None:
        """Send now, from the calling thread; `done` is called by the requester's read loop."""
        self._sock.sendall(self._requester.message(subject, payload, headers, done))

    def close(self) -> None:
        self._sock.close()


def header_block(headers: dict[str, str]) -> bytes:
    return b"NATS/1.0\r\n" + b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items()) + b"\r\n"
