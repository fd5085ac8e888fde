"""`make status` (`python -m panicsafe.core.devstack status`): a platform that stopped, or whose NATS is
gone, gets a clear answer and a non-zero exit within seconds, never an endless reconnect loop."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from panicsafe.core.devstack import DevStack
from panicsafe.core.devstack.ports import free_port

QUICK_S = 15.0  # generous on a busy machine; the loop it replaces never ended


def status(run_dir: Path) -> tuple[int, str, float]:
    """Run the command as `make status` does: exit code, output, seconds taken."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "panicsafe.core.devstack", "status", "--dir", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


def write_state(run_dir: Path, *, nats_url: str, pids: dict[str, int], stack: DevStack | None = None) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "platform.json"
    state: dict[str, object] = {
        "gateway_url": "http://127.0.0.1:1",
        "nats_url": nats_url,
        "services": sorted(pids),
        "pids": pids,
        "nats_ca_file": str(run_dir / "no-ca.pem"),
        "nats_launcher_seed_file": str(run_dir / "no-seed"),
    }
    if stack is not None:  # the launcher's identity: `make status` may ask each service's health, nothing more
        state["nats_ca_file"] = stack.nats.ca_file
        state["nats_launcher_seed_file"] = str(stack.nats.seed_file("launcher"))
    path.write_text(json.dumps(state))
    return path


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait(30)
    return process.pid


@pytest.fixture
def posing_as_chat() -> Iterator[int]:
    """A live process whose command line is that of the chat service."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "-m", "panicsafe.chat"])
    try:
        yield process.pid
    finally:
        process.kill()
        process.wait(30)


def test_no_state_file_says_nothing_runs(tmp_path: Path) -> None:
    code, output, took = status(tmp_path)
    assert code == 1
    assert "Nothing runs here" in output
    assert took < QUICK_S


def test_a_stopped_platform_says_nothing_runs_and_its_state_goes(tmp_path: Path) -> None:
    unused = free_port()  # nothing listens there: what NATS's port is once the platform stopped
    path = write_state(tmp_path, nats_url=f"nats://127.0.0.1:{unused}", pids={"chat": dead_pid(), "sara": dead_pid()})
    code, output, took = status(tmp_path)
    assert code == 1
    assert "Nothing runs here" in output
    assert "Connect call failed" not in output
    assert took < QUICK_S
    assert not path.exists()


def test_a_recorded_pid_reused_by_another_program_does_not_count(tmp_path: Path) -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        path = write_state(tmp_path, nats_url=f"nats://127.0.0.1:{free_port()}", pids={"chat": other.pid})
        code, output, took = status(tmp_path)
    finally:
        other.kill()
        other.wait(30)
    assert code == 1
    assert "Nothing runs here" in output
    assert took < QUICK_S
    assert not path.exists()


def test_services_alive_but_nats_gone_is_said_and_the_state_kept(tmp_path: Path, posing_as_chat: int) -> None:
    unused = free_port()
    path = write_state(tmp_path, nats_url=f"nats://127.0.0.1:{unused}", pids={"chat": posing_as_chat})
    code, output, took = status(tmp_path)
    assert code == 1
    assert f"NATS at nats://127.0.0.1:{unused} does not answer" in output
    assert f"chat (pid {posing_as_chat})" in output
    assert output.count("Connect call failed") <= 1  # said once, not in a loop
    assert took < QUICK_S
    assert path.exists()


def test_services_that_do_not_answer_are_shown_down(tmp_path: Path, stack: DevStack, posing_as_chat: int) -> None:
    write_state(tmp_path, nats_url=stack.nats.url, pids={"chat": posing_as_chat}, stack=stack)
    code, output, took = status(tmp_path)
    assert code == 1
    assert "chat      DOWN" in output
    assert took < QUICK_S
