"""`python -m bench [name ...]`: run benchmarks, print their tables, write bench/results/<name>.json."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = ("foundation", "gateway", "logbook", "chat", "web")


def main(names: list[str]) -> int:
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        sys.stderr.write(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}\n")
        return 2
    for name in names or BENCHMARKS:
        result = importlib.import_module(f"bench.{name}").main()
        path = result.write()
        sys.stdout.write(result.table() + f"\n  -> {path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
