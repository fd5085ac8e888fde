"""The supervisor of several gateway processes (`GATEWAY_HTTP_WORKERS` > 1), with stand-in workers.

The gateway processes themselves are exercised by every other test: the session's gateway runs two.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

# A stand-in worker: records its pid and environment in the folder, and stops cleanly on SIGTERM.
# With `one_fails`, the first worker to start exits by itself with status 3 (a crash).
WORKER = """
import json, os, signal, sys, time
folder, mode = sys.argv[1], sys.argv[2]
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
with open(os.path.join(folder, str(os.getpid())), "w") as f:
    json.dump({k: v for k, v in os.environ.items() if k.startswith("GATEWAY_HTTP_")}, f)
if mode == "one_fails":
    try:
        os.close(os.open(folder + ".failed", os.O_CREAT | os.O_EXCL))  # beside the folder
    except FileExistsError:
        pass
    else:
        time.sleep(0.5)
        sys.exit(3)
time.sleep(60)
"""


def start_supervisor(folder: Path, workers: int, mode: str) -> subprocess.Popen[bytes]:
    code = (
        "import sys; from panicsafe.gateway.workers import supervise; "
        f"sys.exit(supervise({workers}, [sys.executable, '-c', {WORKER!r}, {str(folder)!r}, {mode!r}]))"
    )
    return subprocess.Popen([sys.executable, "-c", code])


def wait_for_workers(folder: Path, count: int) -> list[dict[str, str]]:
    deadline = time.monotonic() + 20
    while len(list(folder.iterdir())) < count:
        assert time.monotonic() < deadline, "the workers did not start"
        time.sleep(0.05)
    time.sleep(0.1)  # let the last one finish writing
    return [json.loads(path.read_text()) for path in folder.iterdir()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_workers_share_the_port_and_stop_on_sigterm(tmp_path: Path) -> None:
    supervisor = start_supervisor(tmp_path, 2, "stay")
    environments = wait_for_workers(tmp_path, 2)
    assert environments == [{"GATEWAY_HTTP_WORKERS": "1", "GATEWAY_HTTP_REUSE_PORT": "true"}] * 2
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(20) == 0
    assert not any(alive(int(path.name)) for path in tmp_path.iterdir())


def test_a_worker_exiting_stops_them_all(tmp_path: Path) -> None:
    folder = tmp_path / "workers"
    folder.mkdir()
    supervisor = start_supervisor(folder, 3, "one_fails")
    assert supervisor.wait(20) == 1
    assert len(list(folder.iterdir())) == 3
    assert not any(alive(int(path.name)) for path in folder.iterdir())
