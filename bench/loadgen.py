"""Fallback HTTP load generator (asyncio + httpx), for machines where `wrk` cannot be installed.

`python -m bench.loadgen SPEC_FILE`: SPEC_FILE is JSON with `url`, `body`, `headers`, `expect_body`,
`connections`, `warmup_s` and `duration_s`. Keeps `connections` requests in flight (closed loop, like
wrk), discards the warm-up, then prints one line `LOADGEN {...}` with the same fields as the wrk script
of `bench/gateway.py`. It costs far more CPU per request than wrk, which these 2 cores feel: figures
measured with it are lower for the subject and the baseline alike.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    body = spec["body"].encode()
    expected = spec["expect_body"].encode()
    connections = int(spec["connections"])
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    latencies: list[float] = []
    counts = {"requests": 0, "non2xx": 0, "errors": 0, "wrong_body": 0}
    measuring = False

    async with httpx.AsyncClient(limits=limits, timeout=5.0, headers=spec["headers"]) as client:

        async def worker(deadline: float) -> None:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                try:
                    response = await client.post(spec["url"], content=body)
                except httpx.HTTPError:
                    if measuring:
                        counts["errors"] += 1
                    continue
                elapsed = time.perf_counter() - started
                if not measuring:
                    continue
                counts["requests"] += 1
                latencies.append(elapsed)
                if not 200 <= response.status_code < 300:
                    counts["non2xx"] += 1
                elif response.content != expected:
                    counts["wrong_body"] += 1

        warmup_end = time.monotonic() + float(spec["warmup_s"])
        await asyncio.gather(*(worker(warmup_end) for _ in range(connections)))
        measuring = True
        started = time.monotonic()
        await asyncio.gather(*(worker(started + float(spec["duration_s"])) for _ in range(connections)))
        duration = time.monotonic() - started
    latencies.sort()
    return {
        **counts,
        "duration_s": duration,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p95_ms": percentile(latencies, 95) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
    }


def main(argv: list[str]) -> None:
    spec = json.loads(Path(argv[0]).read_text())
    print("LOADGEN " + json.dumps(asyncio.run(run(spec))), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
