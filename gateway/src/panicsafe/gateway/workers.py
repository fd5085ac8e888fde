"""Several gateway processes on one port (`GATEWAY_HTTP_WORKERS` above 1).

One Python process serves one core at most; the gateway's requests are independent, so it scales by
processes. The process started as `python -m panicsafe.gateway` then only supervises: it starts the
workers, each a complete gateway (`GATEWAY_HTTP_WORKERS=1`: its own NATS connection, database pool,
outbox relay and event hub) listening on the same port with SO_REUSEPORT
(`GATEWAY_HTTP_REUSE_PORT=true`), so that the kernel spreads connections across them.

They share nothing but PostgreSQL and NATS, as replicas do: every access decision reads the database,
and each event hub has its own JetStream consumer feeding its own WebSocket subscribers.

SIGTERM and SIGINT are passed on to the workers, which drain and stop. Should a worker exit on its
own, the supervisor stops the others and exits with an error: whatever restarts the gateway restarts
all of it.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

log = logging.getLogger(__name__)

WORKER_ENV = {"GATEWAY_HTTP_WORKERS": "1", "GATEWAY_HTTP_REUSE_PORT": "true"}
WORKER_COMMAND = (sys.executable, "-m", "panicsafe.gateway")
STOP_TIMEOUT_S = 30.0
POLL_S = 0.2


def supervise(workers: int, command: Sequence[str] = WORKER_COMMAND) -> int:
    """Run `workers` processes of `command` (the gateway) until a signal or a worker's exit; the exit
    status: 0 when every worker stopped cleanly on a signal."""
    children: list[subprocess.Popen[bytes]] = []
    stop_requested: list[float] = []  # when SIGTERM was passed on (empty: not yet)

    def stop(signum: int, frame: FrameType | None) -> None:
        if not stop_requested:
            stop_requested.append(time.monotonic())
        _signal(children, signal.SIGTERM)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    env = {**os.environ, **WORKER_ENV}
    for _ in range(workers):
        if not stop_requested:
            children.append(subprocess.Popen(list(command), env=env))
    failed = False
    while any(child.poll() is None for child in children):
        if not stop_requested and any(child.poll() is not None for child in children):
            exited = [child.returncode for child in children if child.returncode is not None]
            log.error("a gateway process exited (status %s): stopping the others", exited)
            failed = True
            stop(signal.SIGTERM, None)
        if stop_requested and time.monotonic() - stop_requested[0] > STOP_TIMEOUT_S:
            _signal(children, signal.SIGKILL)
        time.sleep(POLL_S)
    return 1 if failed or any(child.returncode for child in children) else 0


def _signal(children: list[subprocess.Popen[bytes]], sig: signal.Signals) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(sig)
