"""Free loopback ports, never the standard ones of a machine's own services."""

from __future__ import annotations

import random
import socket

LOOPBACK = "127.0.0.1"
# Ports the machine's own services may hold: never hand them out.
RESERVED = frozenset({4222, 5432, 6222, 8200, 8201, 8222, 8333, 8888, 9333, 3478, 3479, 5349})


def _bindable(port: int, kind: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def listen_port_is_free(port: int) -> bool:
    """Can a server listen on `port` as HTTP servers do (SO_REUSEADDR: connections of a previous run
    still in TIME_WAIT do not hold the port)?"""
    if port in RESERVED:
        return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def port_is_free(port: int) -> bool:
    return port not in RESERVED and _bindable(port, socket.SOCK_STREAM) and _bindable(port, socket.SOCK_DGRAM)


def free_port() -> int:
    """A TCP and UDP port free on 127.0.0.1 now (the OS picks it, away from the standard ones)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((LOOPBACK, 0))
            port = int(sock.getsockname()[1])
        if port_is_free(port):
            return port


def free_port_run(count: int, *, low: int = 20000, high: int = 32000) -> int:
    """The first of `count` consecutive free ports (servers that take `port + 1` implicitly)."""
    for _ in range(500):
        base = random.randrange(low, high - count)  # noqa: S311 (not a secret)
        if all(port_is_free(base + i) for i in range(count)):
            return base
    raise RuntimeError(f"no run of {count} free loopback ports")


def wait_tcp(port: int, *, host: str = LOOPBACK, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
