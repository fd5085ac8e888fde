"""`python -m panicsafe.core.devstack run|status|servers`: the platform on one machine.

- run: start the real servers and every service in `.run/`, print what runs where, stop all on Ctrl-C;
- status: ask every service for its health over NATS and print it (exit 1 unless all are ok); when no
  process of the recorded platform is alive, say that nothing runs and remove the stale state;
- servers: start only the real servers (for working on one service by hand).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import nats
from nats.errors import Error as NatsError

from panicsafe.contracts.health import DependencyStatus
from panicsafe.core.bus.rpc import RpcClient
from panicsafe.core.devstack.platform import (
    SERVICES,
    Platform,
    bootstrap_demo,
    clean_run_dir,
    gateway_port_for_run,
    health_of,
    health_table,
    write_run_state,
)
from panicsafe.core.devstack.stack import DevStack

RUN_DIR = Path(".run")
STATE_FILE = "platform.json"
NATS_CONNECT_TIMEOUT_S = 3.0
NOTHING_RUNS = "Nothing runs here: start it with `make run`."


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _wait_for_signal() -> None:
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait()


def servers_table(stack: DevStack) -> str:
    pg = stack.postgres
    rows = [
        f"  nats      {stack.nats.url}  (monitor http://127.0.0.1:{stack.nats.monitor_port})",
        f"  postgres  postgresql://{pg.host}:{pg.port}/{pg.database}  (scram-sha-256; superuser password in"
        f" {stack.directory}/postgres/superuser.password)",
        f"  s3        http://{stack.s3.endpoint}  (SeaweedFS)",
        f"  openbao   {stack.openbao.address}  (TLS, CA {stack.openbao.ca_file}; sealed storage, unseal key"
        f" in {stack.openbao.init_file}; one AppRole per service, root token revoked)",
        f"  coturn    turn:{stack.turn.host}:{stack.turn.port}",
    ]
    startup = ", ".join(f"{k} {v:.2f} s" for k, v in stack.startup_s.items())
    return "\n".join(rows) + f"\n  started in: {startup}"


def cmd_run(run_dir: Path, services: tuple[str, ...]) -> int:
    clean_run_dir(run_dir)
    stack = DevStack(run_dir / "stack")
    platform = None
    try:
        stack.start()
        _out("PanicSAFE bunker: real servers up\n" + servers_table(stack))
        platform = Platform(stack, run_dir, services, gateway_port=gateway_port_for_run(), public_host="localhost")
        replies = asyncio.run(platform.start())
        write_run_state(run_dir, platform)
        _out("\nServices (rpc.<name>.health):\n" + health_table(services, replies))
        _out(f"\nWeb client: {platform.public_url}  (readiness: {platform.gateway_url}/readyz)")
        if "gateway" in services:
            demo = asyncio.run(bootstrap_demo(stack.nats.url))
            _out(f"\nDemo tenant « {demo.tenant_name} » with three establishments.")
            _out(
                f"Enrol its administrator ({demo.admin_login}) with this one-time link (72 h):\n  {demo.enrolment_link}"
            )
        _out(f"Logs: {run_dir.resolve()}/logs/   Status: make status   Stop: Ctrl-C")
        _wait_for_signal()
        _out("\nStopping...")
        return 0
    finally:
        if platform is not None:
            platform.stop()
        stack.stop()
        (run_dir / STATE_FILE).unlink(missing_ok=True)  # `make status` must not find a platform that stopped
        _out("Everything stopped.")


def living_services(state: dict[str, Any]) -> dict[str, int]:
    """The recorded service processes that still run (a pid since reused by another program does not count)."""
    alive: dict[str, int] = {}
    for name, pid in dict(state.get("pids") or {}).items():
        try:
            command = Path(f"/proc/{int(pid)}/cmdline").read_bytes()  # empty for a zombie
        except (OSError, ValueError):
            continue
        if f"panicsafe.{name}".encode() in command.split(b"\0"):
            alive[str(name)] = int(pid)
    return alive


async def _quiet(_: Exception) -> None:
    """Connection errors are reported once, by `_status`, not logged at each attempt."""


async def _status(run_dir: Path) -> int:
    state_path = run_dir / STATE_FILE
    try:
        state = json.loads(state_path.read_text())
    except FileNotFoundError:
        _out(NOTHING_RUNS)
        return 1
    except (OSError, ValueError) as exc:
        _out(f"{state_path} is unreadable ({exc}): remove it, or start again with `make run`.")
        return 1
    alive = living_services(state)
    if not alive:
        state_path.unlink(missing_ok=True)
        _out(f"{NOTHING_RUNS}\n(no process of the platform recorded in {state_path} is alive: state file removed)")
        return 1
    services = tuple(state["services"])
    try:
        # One try (nats-py counts attempts per server and gives up after `max_reconnect_attempts`
        # more): not the endless reconnecting of `connect_nats`, which services need and this does not.
        connecting = nats.connect(
            state["nats_url"],
            name="panicsafe-status",
            allow_reconnect=False,
            max_reconnect_attempts=1,
            reconnect_time_wait=0.2,
            connect_timeout=NATS_CONNECT_TIMEOUT_S,
            error_cb=_quiet,
        )
        nc = await asyncio.wait_for(connecting, timeout=3 * NATS_CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, NatsError) as exc:
        running = ", ".join(f"{name} (pid {pid})" for name, pid in sorted(alive.items()))
        _out(f"NATS at {state['nats_url']} does not answer ({exc or type(exc).__name__}); still running: {running}.")
        return 1
    try:
        replies = await health_of(RpcClient(nc), services)
    finally:
        await nc.close()
    _out(health_table(services, replies))
    _out(f"Gateway: {state['gateway_url']}")
    ok = len(replies) == len(services) and all(r.status == DependencyStatus.OK for r in replies.values())
    return 0 if ok else 1


def cmd_servers(run_dir: Path) -> int:
    clean_run_dir(run_dir)
    stack = DevStack(run_dir / "stack")
    try:
        stack.start()
        _out("Real servers up (state in " + str(stack.directory / "state.json") + "):\n" + servers_table(stack))
        _wait_for_signal()
        return 0
    finally:
        stack.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m panicsafe.core.devstack")
    parser.add_argument("command", choices=["run", "status", "servers"])
    parser.add_argument("--dir", type=Path, default=RUN_DIR)
    parser.add_argument("--services", default=",".join(SERVICES))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "run":
        return cmd_run(args.dir, tuple(s for s in args.services.split(",") if s))
    if args.command == "status":
        return asyncio.run(_status(args.dir))
    return cmd_servers(args.dir)


if __name__ == "__main__":
    sys.exit(main())
