"""`make run` keeps its data: after Ctrl-C (SIGTERM) or a crash (SIGKILL of every process, as a
power cut), the next run resumes the same platform: the same tenant and accounts, messages
readable, the main courante verifying; the demo tenant is seeded once, and its enrolment link is
printed again (a new one: only its hash was kept) while unused."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from gwclient import Account, declare, enrol_with_totp, gql, login_with_totp

from panicsafe.core.devstack.ports import free_port

READY_S = 240.0
LINK = re.compile(r"https?://\S+/#/invitation/(\S+)")
CHANNELS = """query($c: ID!) { chatChannels(crisisId: $c) { id kind } }"""
SEND = """mutation($i: SendMessageInput!) { sendMessage(input: $i) { message { id text } } }"""
HISTORY = """query($ch: ID!) { chatHistory(channelId: $ch, first: 50) { messages { text } } }"""
ADD = """mutation($c: ID!, $e: LogbookEntryInput!) { addLogbookEntry(crisisId: $c, entry: $e) { seq } }"""
PAGE = """query($c: ID!) { logbook(crisisId: $c, first: 200) { entries { summary } } }"""
EXPORT = """mutation($c: ID!) { exportLogbook(crisisId: $c, format: JSON) { downloadPath treeSize } }"""


class Launcher:
    """`python -m panicsafe.core.devstack run` in its own session, its output kept."""

    def __init__(self, run_dir: Path, port: int) -> None:
        env = {**os.environ, "PANICSAFE_PORT": str(port)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "panicsafe.core.devstack", "run", "--dir", str(run_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
            start_new_session=True,
        )
        self.output: list[str] = []

    async def ready(self) -> str:
        """Everything it printed up to the line naming the logs (printed once all is up)."""
        stream: IO[str] | None = self.process.stdout
        assert stream is not None

        async def read() -> str:
            while True:
                line = await asyncio.to_thread(stream.readline)
                if not line:
                    raise AssertionError("the launcher stopped:\n" + "".join(self.output))
                self.output.append(line)
                if line.startswith("Logs:"):
                    return "".join(self.output)

        return await asyncio.wait_for(read(), READY_S)

    def tree(self) -> list[int]:
        """The launcher and every process it started (servers and services run in their own sessions)."""
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                children.setdefault(ppid, []).append(int(entry.name))
        found, todo = [], [self.process.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo += children.get(pid, [])
        return found

    def stop(self) -> int:
        started = self.tree()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(120)
        self._drain()
        deadline = time.monotonic() + 30
        while any(alive(pid) for pid in started) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = [(pid, Path(f"/proc/{pid}/cmdline").read_bytes()[:80]) for pid in started if alive(pid)]
        assert not left, f"left running after a clean stop: {left}\n" + "".join(self.output)
        return code

    def crash(self) -> list[int]:
        """SIGKILL every process at once: what a power cut does."""
        pids = self.tree()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(30)
        self._drain()
        return pids

    def _drain(self) -> None:
        if self.process.stdout is not None:
            self.output.append(self.process.stdout.read())
            self.process.stdout.close()


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


async def all_gone(pids: list[int]) -> None:
    while any(alive(pid) for pid in pids):
        await asyncio.sleep(0.05)


def invitation_token(output: str) -> str:
    found = LINK.search(output)
    assert found, output
    return found.group(1)


async def crisis_channel(client: httpx.AsyncClient, account: Account, crisis_id: str) -> str:
    """The crisis-wide channel, once chat has opened it from the crisis' event."""
    while True:
        data = await gql(client, account.session, CHANNELS, {"c": crisis_id})
        found = [c["id"] for c in data["chatChannels"] if c["kind"] == "CRISIS"]
        if found:
            return str(found[0])
        await asyncio.sleep(0.1)


async def check_everything_back(client: httpx.AsyncClient, admin: Account, state: dict[str, Any], bundle: Path) -> None:
    admin.session = await login_with_totp(client, admin)  # same account, same password, same second factor
    history = await gql(client, admin.session, HISTORY, {"ch": state["channel"]})
    assert state["message"] in [m["text"] for m in history["chatHistory"]["messages"]]  # still decrypts
    entries = await gql(client, admin.session, PAGE, {"c": state["crisis"]})
    assert state["decision"] in [e["summary"] for e in entries["logbook"]["entries"]]
    export = (await gql(client, admin.session, EXPORT, {"c": state["crisis"]}))["exportLogbook"]
    response = await client.get(export["downloadPath"], headers=admin.session.auth)
    assert response.status_code == 200, response.text
    bundle.write_bytes(response.content)
    verified = subprocess.run(
        [sys.executable, "-m", "panicsafe.logbook.verify", str(bundle)], capture_output=True, text=True, check=False
    )
    assert verified.returncode == 0 and verified.stdout.startswith("OK"), verified.stdout + verified.stderr


@pytest.mark.slow
async def test_make_run_resumes_the_same_platform_after_sigterm_and_sigkill(tmp_path: Path) -> None:
    run_dir, port = tmp_path / "run", free_port()
    base = f"http://127.0.0.1:{port}"
    launcher = Launcher(run_dir, port)
    try:
        first = await launcher.ready()
        assert "Demo tenant « GHT Démo »" in first and "kept from the previous run" not in first
        unused_token = invitation_token(first)
        assert launcher.stop() == 0  # Ctrl-C before anyone enrolled

        launcher = Launcher(run_dir, port)
        second = await launcher.ready()
        assert "kept from the previous run" in second
        token = invitation_token(second)  # printed again while unused: a new link...
        assert token != unused_token
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            stale = await client.post("/auth/enrol/password", json={"token": unused_token, "password": "x" * 16})
            assert stale.status_code >= 400  # ...and the previous one no longer opens anything
            admin = await enrol_with_totp(client, token)
            crisis = await declare(client, admin, "Rançongiciel : reprise après redémarrage")
            channel = await crisis_channel(client, admin, crisis["id"])
            message = "Bascule des urgences en mode dégradé confirmée"
            await gql(
                client,
                admin.session,
                SEND,
                {"i": {"channelId": channel, "text": message, "clientId": "restart-test-1"}},
            )
            decision = "Décision : maintien des admissions programmées jusqu'à 14 h"
            await gql(client, admin.session, ADD, {"c": crisis["id"], "e": {"kind": "DECISION", "summary": decision}})
            state = {"crisis": crisis["id"], "channel": channel, "message": message, "decision": decision}
        assert launcher.stop() == 0  # Ctrl-C

        launcher = Launcher(run_dir, port)
        third = await launcher.ready()
        assert "has enrolled" in third and LINK.search(third) is None  # no link once used
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            await check_everything_back(client, admin, state, tmp_path / "after-sigterm.json")
        killed = launcher.crash()  # a power cut: every process at once, no shutdown at all
        await asyncio.wait_for(all_gone(killed), 30)  # SIGKILL is delivered asynchronously

        launcher = Launcher(run_dir, port)
        fourth = await launcher.ready()
        assert "has enrolled" in fourth
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            await check_everything_back(client, admin, state, tmp_path / "after-sigkill.json")
    finally:
        if launcher.process.poll() is None:
            launcher.stop()
        subprocess.run(
            [sys.executable, "-m", "panicsafe.core.devstack", "reset", "--yes", "--dir", str(run_dir)],
            capture_output=True,
            check=False,
        )
