"""`python -m panicsafe.core.devstack run|status|servers`: the platform on one machine.

- run: start the real servers and every service in `.run/`, print what runs where, stop all on Ctrl-C;
  the data stays: the next run (after Ctrl-C, a kill or a reboot) resumes the same platform;
- reset: delete `.run/` (every crisis, message and main courante entry), after confirmation;
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
from panicsafe.core.bus.connection import NatsCredentials
from panicsafe.core.bus.identity import LAUNCHER, inbox_prefix
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
from panicsafe.core.devstack.servers import _signal_group, _wait_group_gone, remove_postgres_data
from panicsafe.core.devstack.stack import DevStack

RUN_DIR = Path(".run")
STATE_FILE = "platform.json"
NATS_CONNECT_TIMEOUT_S = 3.0
NOTHING_RUNS = "Nothing runs here: start it with `make run`."


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _catch_stop() -> threading.Event:
    """Ctrl-C or SIGTERM from now on sets the event (a stop asked during the start is kept for after it)."""
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    return done


def servers_table(stack: DevStack) -> str:
    pg = stack.postgres
    rows = [
        f"  nats      {stack.nats.url}  (TLS, one nkey per service; monitor http://127.0.0.1:{stack.nats.monitor_port})",
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
    stop_asked = _catch_stop()
    reaped = reap_leftovers(run_dir)
    if reaped:
        _out(f"Stopped what a previous run left running: {', '.join(reaped)}.")
    stack = DevStack(run_dir / "stack", persistent=True)
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
            demo = asyncio.run(bootstrap_demo(stack.nats, read_demo_tenant(run_dir)))
            write_demo_tenant(run_dir, demo.tenant_id)
            kept = "" if demo.created else " (kept from the previous run)"
            _out(f"\nDemo tenant « {demo.tenant_name} » with three establishments{kept}.")
            if demo.enrolment_link:
                _out(
                    f"Enrol its administrator ({demo.admin_login}) with this one-time link (72 h):\n"
                    f"  {demo.enrolment_link}"
                )
            else:
                _out(f"Its administrator ({demo.admin_login}) has enrolled: sign in at {platform.public_url}")
        _out(f"Logs: {run_dir.resolve()}/logs/   Status: make status   Stop: Ctrl-C")
        stop_asked.wait()
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
        credentials = NatsCredentials(
            identity=LAUNCHER,
            seed=Path(state["nats_launcher_seed_file"]).read_text().strip(),
            ca_file=state["nats_ca_file"],
        )
        connecting = nats.connect(
            state["nats_url"],
            name="panicsafe-status",
            nkeys_seed_str=credentials.seed,
            tls=credentials.tls_context(),
            inbox_prefix=inbox_prefix(LAUNCHER),
            allow_reconnect=False,
            max_reconnect_attempts=1,
            reconnect_time_wait=0.2,
            connect_timeout=NATS_CONNECT_TIMEOUT_S,
            error_cb=_quiet,
        )
        nc = await asyncio.wait_for(connecting, timeout=3 * NATS_CONNECT_TIMEOUT_S)
    except (OSError, KeyError, TimeoutError, NatsError) as exc:
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


DEMO_FILE = "demo.json"
SERVER_BINARIES = frozenset({"nats-server", "postgres", "weed", "bao", "turnserver"})


def read_demo_tenant(run_dir: Path) -> str | None:
    try:
        return str(json.loads((run_dir / DEMO_FILE).read_text())["tenant_id"])
    except (OSError, ValueError, KeyError):
        return None


def write_demo_tenant(run_dir: Path, tenant_id: str) -> None:
    path = run_dir / DEMO_FILE
    path.write_text(json.dumps({"tenant_id": tenant_id}))
    path.chmod(0o600)


def _command(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return []


def reap_leftovers(run_dir: Path) -> list[str]:
    """Stop the processes a launcher killed hard left behind (its services and servers, recorded in
    the state files): the next run needs their ports and their data. Only a recorded pid still
    running the recorded program is touched."""
    doomed: dict[str, int] = {}
    try:
        platform_state = json.loads((run_dir / STATE_FILE).read_text())
        doomed |= living_services(platform_state)
    except (OSError, ValueError):
        pass
    try:
        stack_state = json.loads((run_dir / "stack" / "state.json").read_text())
        for name, pid in dict(stack_state.get("pids") or {}).items():
            command = _command(int(pid))
            if command and Path(command[0].decode(errors="replace")).name in SERVER_BINARIES:
                doomed[str(name)] = int(pid)
    except (OSError, ValueError, TypeError):
        pass
    for pid in doomed.values():
        _signal_group(pid, signal.SIGTERM)
    for pid in doomed.values():
        _wait_group_gone(pid, 15.0)
        _signal_group(pid, signal.SIGKILL)
        _wait_group_gone(pid, 5.0)
    return sorted(doomed)


def cmd_reset(run_dir: Path, *, yes: bool) -> int:
    """Delete the platform's data, once the person has confirmed (or passed --yes)."""
    if living_services(_read_json(run_dir / STATE_FILE)):
        _out("The platform is running: stop it (Ctrl-C in its terminal) before `make reset`.")
        return 1
    if not run_dir.exists():
        _out(f"Nothing to reset: {run_dir.resolve()} does not exist.")
        return 0
    if not yes:
        _out(
            f"This deletes {run_dir.resolve()}: every tenant, account, crisis, message, document and main "
            "courante entry of this local platform, and its keys. It cannot be undone."
        )
        try:
            answer = input("Type 'reset' to confirm: ")
        except EOFError:
            answer = ""
        if answer.strip() != "reset":
            _out("Nothing deleted.")
            return 1
    reap_leftovers(run_dir)
    remove_postgres_data(run_dir / "stack" / "postgres")
    clean_run_dir(run_dir)
    _out(f"Deleted {run_dir.resolve()}: the next `make run` starts a new platform.")
    return 0


def _read_json(path: Path) -> dict[str, Any]:
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def cmd_servers(run_dir: Path) -> int:
    stop_asked = _catch_stop()
    reap_leftovers(run_dir)
    stack = DevStack(run_dir / "stack", persistent=True)
    try:
        stack.start()
        _out("Real servers up (state in " + str(stack.directory / "state.json") + "):\n" + servers_table(stack))
        stop_asked.wait()
        return 0
    finally:
        stack.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m panicsafe.core.devstack")
    parser.add_argument("command", choices=["run", "status", "servers", "reset"])
    parser.add_argument("--yes", action="store_true", help="reset without asking")
    parser.add_argument("--dir", type=Path, default=RUN_DIR)
    parser.add_argument("--services", default=",".join(SERVICES))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "run":
        return cmd_run(args.dir, tuple(s for s in args.services.split(",") if s))
    if args.command == "reset":
        return cmd_reset(args.dir, yes=args.yes)
    if args.command == "status":
        return asyncio.run(_status(args.dir))
    return cmd_servers(args.dir)


if __name__ == "__main__":
    sys.exit(main())
