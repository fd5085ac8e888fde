"""Gateway: the crisis overview over GraphQL, beside a bare FastAPI endpoint answering the same body.

The subject is the real gateway (`python -m panicsafe.gateway`, started by `Platform` on the devstack's
NATS, PostgreSQL and OpenBao, as `Platform.gateway_workers` processes sharing its port). One tenant
administrator enrols with TOTP through the HTTP API (the logic of `gateway/tests/gwclient.py`), declares
a crisis on two establishments and invites a few members into cells; then the crisis overview query is
sent with that Bearer token.

The baseline is `bench/gateway_baseline.py`: FastAPI and uvicorn in their own process, configured like
the gateway's server, answering POST /graphql with the very bytes the gateway answered (captured once):
the cost of the HTTP framework alone, without GraphQL, authentication or database.

Load comes from `wrk` (Debian package) in its own process, on loopback: CONNECTIONS keep-alive
connections in a closed loop, a WARMUP_S run that is discarded, then DURATION_S measured; a Lua script
sends the POST, counts non-2xx answers and answers whose body differs from the captured one (an expired
token still answers 200 with errors), and prints the latency percentiles. Without wrk, the Python
generator `bench/loadgen.py` is used and the table says so. The subject is measured first, then the
baseline, each with its own warm-up.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from bench.common import Figure, Result
from panicsafe.core.db.database import Database
from panicsafe.core.devstack import DevStack
from panicsafe.core.devstack.platform import Platform
from panicsafe.core.devstack.ports import free_port
from panicsafe.core.devstack.servers import http_status
from panicsafe.core.testing import gateway_keys

ROOT = Path(__file__).resolve().parent.parent
CONNECTIONS = int(os.environ.get("PANICSAFE_BENCH_CONNECTIONS", "32"))
WARMUP_S = int(os.environ.get("PANICSAFE_BENCH_WARMUP_S", "3"))
DURATION_S = int(os.environ.get("PANICSAFE_BENCH_DURATION_S", "20"))
WRK_THREADS = 2
ACCESS_TTL_S = 600  # the gateway's access tokens live 10 minutes
TARGET_RPS = 500.0
TARGET_P95_MS = 100.0

QUERY = (
    "query($id: ID!) { crisis(id: $id) { id title status severity t0 myRole cells { id name kind } "
    "members { displayName role } establishments { name type } } }"
)
DECLARE = """
mutation($i: DeclareCrisisInput!) { declareCrisis(input: $i) { id cells { id kind } } }"""
ESTABLISHMENTS = (("Centre hospitalier de Douai", "hospital"), ("Clinique du Parc", "clinic"))
# display name, crisis role, cell kind
MEMBERS = (
    ("Claire Dubois", "COORDINATOR", "DECISION"),
    ("Karim Benali", "MEMBER", "IT_OPERATIONS"),
    ("Sophie Lefèvre", "MEMBER", "MEDICAL_CONTINUITY"),
    ("Marc Petit", "OBSERVER", "COMMUNICATION"),
)
INSTALL_HINT = (
    "wrk not found: install it with `apt-get install -y wrk` (Debian), or run `make bench-gateway`, whose "
    "setup installs it (scripts/setup.sh with PANICSAFE_BENCH=1)."
)


def gwclient_module() -> ModuleType:
    """The gateway tests' HTTP client (enrolment with TOTP, invitations, GraphQL calls)."""
    tests = str(ROOT / "gateway" / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    return importlib.import_module("gwclient")


@dataclass
class Subject:
    crisis_id: str
    body: str  # the POST body of the query
    answer: bytes  # what the gateway answered, byte for byte
    account: Any  # gwclient.Account (its session carries the access token)
    token_at: float  # time.monotonic() when the access token was issued

    def headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json", "Authorization": f"Bearer {self.account.session.access}"}


@dataclass
class Load:
    generator: str
    requests: int
    duration_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    failed: int  # non-2xx answers, socket errors and timeouts
    wrong_body: int  # 2xx answers whose body is not the captured one

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def clean(self) -> bool:
        return self.failed == 0 and self.wrong_body == 0 and self.requests > 0


# -- set-up --------------------------------------------------------------------------------------


async def prepare(platform: Platform) -> Subject:
    gw = gwclient_module()
    app_dsn = (platform.directory / "secrets" / "gateway" / "database_url").read_text()
    db = Database(app_dsn, "gateway")
    await db.open()
    try:
        known = {
            "url": platform.gateway_url,
            "db": db,
            "admin_dsn": platform.stack.postgres.admin_dsn,
            "log": platform.processes["gateway"].log_path,
            "directory": platform.directory,
            "keys": gateway_keys(platform.stack),  # tenants' keys are made by the gateway's identity
        }
        # gwclient evolves with the gateway's tests: give it the fields it declares.
        gateway = gw.GatewayUnderTest(**{f.name: known[f.name] for f in dataclasses.fields(gw.GatewayUnderTest)})
        async with gateway.client() as client:
            admin = await gw.new_tenant_admin(gateway, client, name="GHT Bench", establishments=ESTABLISHMENTS)
            token_at = time.monotonic()
            establishments = await gw.gql(client, admin.session, "{ establishments { id } }")
            declared = await gw.gql(
                client,
                admin.session,
                DECLARE,
                {
                    "i": {
                        "title": "Rançongiciel : SI hors service",
                        "severity": "CRITICAL",
                        "t0": "2026-11-23T05:00:00+00:00",
                        "establishmentIds": [e["id"] for e in establishments["establishments"]],
                    }
                },
            )
            crisis_id = declared["declareCrisis"]["id"]
            cells = {c["kind"]: c["id"] for c in declared["declareCrisis"]["cells"]}
            for name, role, kind in MEMBERS:
                await gw.invite_and_enrol(
                    client, admin, display_name=name, crisis_id=crisis_id, crisis_role=role, cell_ids=[cells[kind]]
                )
            body = json.dumps({"query": QUERY, "variables": {"id": crisis_id}})
            subject = Subject(crisis_id, body, b"", admin, token_at)
            answer = await client.post("/graphql", content=body, headers=subject.headers())
    finally:
        await db.close()
    data = answer.json()
    if answer.status_code != 200 or data.get("errors") or len(data["data"]["crisis"]["members"]) != len(MEMBERS) + 1:
        raise RuntimeError(f"unexpected crisis overview: {answer.status_code} {answer.text}")
    subject.answer = answer.content
    return subject


async def relogin(platform: Platform, subject: Subject) -> None:
    gw = gwclient_module()
    async with gw.httpx.AsyncClient(base_url=platform.gateway_url, timeout=20) as client:
        subject.account.session = await gw.login_with_totp(client, subject.account)
    subject.token_at = time.monotonic()


# -- processes -----------------------------------------------------------------------------------


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """Stop a process started with `start_new_session=True`, and whatever it started."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def _run_bounded(command: list[str], timeout: float) -> str:
    """Run a load generator to completion (never longer than `timeout`), return its stdout."""
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, start_new_session=True
    )
    try:
        out, err = process.communicate(timeout=timeout)
    finally:
        _stop_group(process)
    if process.returncode != 0:
        raise RuntimeError(f"{command[0]} exited with {process.returncode}: {err.decode(errors='replace')}")
    return out.decode(errors="replace")


def start_baseline(folder: Path, answer: bytes) -> tuple[subprocess.Popen[bytes], str]:
    body_file = folder / "baseline-answer.json"
    body_file.write_bytes(answer)
    port = free_port()
    log = open(folder / "baseline.log", "ab")  # noqa: SIM115 (kept open for the process's life)
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.gateway_baseline", str(port), str(body_file)],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    log.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while http_status(f"{url}/healthz") != 200:
        if process.poll() is not None or time.monotonic() > deadline:
            _stop_group(process)
            raise RuntimeError(f"the baseline server did not start: {(folder / 'baseline.log').read_text()}")
        time.sleep(0.1)
    return process, url


# -- load ----------------------------------------------------------------------------------------


def _lua_long_string(text: str) -> str:
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    return f"[{'=' * level}[{text}]{'=' * level}]"


def wrk_script(body: str, headers: dict[str, str], expected: bytes) -> str:
    lines = ['wrk.method = "POST"', f"wrk.body = {_lua_long_string(body)}"]
    lines += [f"wrk.headers[{json.dumps(k)}] = {_lua_long_string(v)}" for k, v in headers.items()]
    lines.append(f"local expected = {_lua_long_string(expected.decode())}")
    lines.append(
        """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) non2xx = 0; wrong = 0 end
function response(status, headers, body)
  if status < 200 or status > 299 then non2xx = non2xx + 1
  elseif body ~= expected then wrong = wrong + 1 end
end
function done(summary, latency, requests)
  local non2xx, wrong = 0, 0
  for _, thread in ipairs(threads) do
    non2xx = non2xx + thread:get("non2xx")
    wrong = wrong + thread:get("wrong")
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, ' ..
    '"non2xx": %d, "wrong": %d, "socket_errors": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), non2xx, wrong, e.connect + e.read + e.write + e.timeout))
end
"""
    )
    return "\n".join(lines)


def _tagged_json(out: str, tag: str) -> dict[str, Any]:
    for line in out.splitlines():
        if line.startswith(tag + " "):
            parsed: dict[str, Any] = json.loads(line.removeprefix(tag + " "))
            return parsed
    raise RuntimeError(f"no {tag} line in the load generator's output:\n{out}")


def run_load(folder: Path, name: str, url: str, subject: Subject) -> Load:
    headers = subject.headers()
    wrk = shutil.which("wrk")
    if wrk is not None:
        script = folder / f"{name}.lua"
        script.write_text(wrk_script(subject.body, headers, subject.answer))
        base = [wrk, f"-t{WRK_THREADS}", f"-c{CONNECTIONS}", "--timeout", "5s", "-s", str(script)]
        _run_bounded([*base, f"-d{WARMUP_S}s", url], timeout=WARMUP_S + 30)
        out = _tagged_json(_run_bounded([*base, f"-d{DURATION_S}s", url], timeout=DURATION_S + 30), "WRKJSON")
        return Load(
            generator="wrk",
            requests=out["requests"],
            duration_s=out["duration_us"] / 1e6,
            p50_ms=out["p50_us"] / 1000,
            p95_ms=out["p95_us"] / 1000,
            p99_ms=out["p99_us"] / 1000,
            failed=out["non2xx"] + out["socket_errors"],
            wrong_body=out["wrong"],
        )
    spec = folder / f"{name}.json"
    spec.write_text(
        json.dumps(
            {
                "url": url,
                "body": subject.body,
                "headers": headers,
                "expect_body": subject.answer.decode(),
                "connections": CONNECTIONS,
                "warmup_s": WARMUP_S,
                "duration_s": DURATION_S,
            }
        )
    )
    out = _tagged_json(
        _run_bounded([sys.executable, "-m", "bench.loadgen", str(spec)], timeout=WARMUP_S + DURATION_S + 60),
        "LOADGEN",
    )
    return Load(
        generator="python (bench/loadgen.py, asyncio + httpx)",
        requests=out["requests"],
        duration_s=out["duration_s"],
        p50_ms=out["p50_ms"],
        p95_ms=out["p95_ms"],
        p99_ms=out["p99_ms"],
        failed=out["non2xx"] + out["errors"],
        wrong_body=out["wrong_body"],
    )


def _say(message: str) -> None:
    print(f"  [gateway] {message} (load {os.getloadavg()[0]:.2f})", flush=True)


def _describe(name: str, load: Load) -> str:
    return (
        f"{name}: {load.rps:.1f} req/s, p50 {load.p50_ms:.1f} ms, p95 {load.p95_ms:.1f} ms, "
        f"p99 {load.p99_ms:.1f} ms, {load.failed} failed, {load.wrong_body} wrong bodies"
    )


# -- figures -------------------------------------------------------------------------------------


def add_figures(result: Result, gateway: Load, baseline: Load) -> None:
    clean = gateway.clean and baseline.clean
    result.add(
        Figure(
            "crisis_overview_rps",
            gateway.rps,
            "1/s",
            target=f">= {TARGET_RPS:.0f}",
            baseline=("bare_fastapi_rps", baseline.rps),
            met=clean and gateway.rps >= TARGET_RPS,
        )
    )
    result.add(
        Figure("crisis_overview_p50_ms", gateway.p50_ms, "ms", baseline=("bare_fastapi_p50_ms", baseline.p50_ms))
    )
    result.add(
        Figure(
            "crisis_overview_p95_ms",
            gateway.p95_ms,
            "ms",
            target=f"< {TARGET_P95_MS:.0f}",
            baseline=("bare_fastapi_p95_ms", baseline.p95_ms),
            met=clean and gateway.p95_ms < TARGET_P95_MS,
        )
    )
    result.add(
        Figure(
            "crisis_overview_non_2xx", gateway.failed + gateway.wrong_body, "count", target="== 0", met=gateway.clean
        )
    )
    result.add(Figure("bare_fastapi_rps", baseline.rps, "1/s"))
    result.add(Figure("bare_fastapi_p50_ms", baseline.p50_ms, "ms"))
    result.add(Figure("bare_fastapi_p95_ms", baseline.p95_ms, "ms"))
    result.add(
        Figure(
            "bare_fastapi_non_2xx", baseline.failed + baseline.wrong_body, "count", target="== 0", met=baseline.clean
        )
    )


def measure(folder: Path, platform: Platform, result: Result) -> None:
    subject = asyncio.run(prepare(platform))
    _say(f"crisis {subject.crisis_id} ready, answer of {len(subject.answer)} bytes")
    if time.monotonic() - subject.token_at + WARMUP_S + DURATION_S + 60 > ACCESS_TTL_S:
        asyncio.run(relogin(platform, subject))
    gateway = run_load(folder, "gateway", f"{platform.gateway_url}/graphql", subject)
    _say(f"{_describe('gateway', gateway)} [{gateway.generator}]")
    server, url = start_baseline(folder, subject.answer)
    try:
        baseline = run_load(folder, "baseline", f"{url}/graphql", subject)
    finally:
        _stop_group(server)
    _say(f"{_describe('bare FastAPI', baseline)} [{baseline.generator}]")
    result.notes.append(
        f"load: {gateway.generator}, {CONNECTIONS} keep-alive connections, {WARMUP_S} s warm-up then "
        f"{DURATION_S} s per server, gateway first; load average after {os.getloadavg()[0]:.2f}"
    )
    result.notes.append(f"gateway: {platform.gateway_workers} processes on one port (GATEWAY_HTTP_WORKERS)")
    if gateway.generator != "wrk":
        result.notes.append(
            "wrk was missing: the Python generator saturates near its own limit (a few hundred requests/s on "
            "2 cores), so these figures are lower bounds and the ratio is not meaningful"
        )
        print(f"  [gateway] load generated by {gateway.generator}, not wrk: {INSTALL_HINT}", flush=True)
    add_figures(result, gateway, baseline)


def main() -> Result:
    result = Result("gateway")
    if shutil.which("wrk") is None:
        print(f"  [gateway] {INSTALL_HINT} Falling back to bench/loadgen.py.", flush=True)
    _say(f"{CONNECTIONS} connections, {WARMUP_S} s warm-up, {DURATION_S} s measured")
    with tempfile.TemporaryDirectory(prefix="panicsafe-bench-") as name:
        folder = Path(name)
        stack = DevStack(folder / "stack", components=("nats", "postgres", "openbao"))
        try:
            stack.start()
            platform = Platform(stack, folder / "platform", services=("gateway",))
            try:
                asyncio.run(platform.start())
                measure(folder, platform, result)
            finally:
                platform.stop()
        finally:
            stack.stop()
    return result
