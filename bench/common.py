"""Result files and tables in the format of ../shared/BENCHMARKS.md."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    target: str | None = None
    baseline: tuple[str, float] | None = None
    met: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "value": round(self.value, 3), "unit": self.unit}
        if self.target is not None:
            out["target"] = self.target
        if self.baseline is not None:
            out["baseline"] = {"name": self.baseline[0], "value": round(self.baseline[1], 3)}
            out["ratio"] = round(self.value / self.baseline[1], 3) if self.baseline[1] else None
        if self.met is not None:
            out["met"] = self.met
        return out


@dataclass
class Result:
    benchmark: str
    load_before: float = field(default_factory=lambda: os.getloadavg()[0])
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # how it was measured, caveats (written when present)

    def add(self, figure: Figure) -> None:
        self.figures.append(figure)

    def write(self) -> Path:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{self.benchmark}.json"
        body = {
            "benchmark": self.benchmark,
            "when": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "machine": {"cpus": os.cpu_count(), "load_before": round(self.load_before, 2)},
            "figures": [f.as_dict() for f in self.figures],
        }
        if self.notes:
            body["notes"] = self.notes
        path.write_text(json.dumps(body, indent=2) + "\n")
        return path

    def table(self) -> str:
        rows = [f"== {self.benchmark} (cpus {os.cpu_count()}, load before {self.load_before:.2f})"]
        for f in self.figures:
            d = f.as_dict()
            line = f"  {f.name:<32} {d['value']:>12} {f.unit:<6}"
            if "baseline" in d:
                line += f" baseline {d['baseline']['name']} {d['baseline']['value']} ratio {d['ratio']}"
            if f.target is not None:
                line += f"  target {f.target} {'met' if f.met else 'NOT met'}"
            rows.append(line)
        rows += [f"  note: {note}" for note in self.notes]
        return "\n".join(rows)
