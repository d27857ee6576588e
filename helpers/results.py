"""Results records: each notebook writes ``runs/<notebook>.json``; ``make run`` aggregates them.

Introduced in notebook 01 (resnet-mnist). One format for every notebook::

    {"notebook": "01_resnet_mnist", "profile": "small", "device": "cpu", "torch": "2.14.1",
     "seconds": 123.4, "metrics": {"resnet_accuracy": 0.9951, "resnet_train_seconds": 70.2}}

Metric names say what and which model; times are in seconds.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from helpers import config


def machine() -> str:
    """A short description of where this ran, e.g. ``cpu: 2 cores x86_64`` or the GPU name (notebook 01)."""
    if config.device().type == "cuda":
        return torch.cuda.get_device_name()
    return f"cpu: {os.cpu_count()} cores {platform.machine()}"


class Results:
    """Collects a notebook's headline numbers, checks floors, writes the record (notebook 01)."""

    def __init__(self, notebook: str):
        self.notebook, self.start = notebook, time.perf_counter()
        self.metrics: dict[str, float] = {}

    def add(self, **metrics: float) -> None:
        self.metrics.update({k: round(float(v), 6) for k, v in metrics.items()})

    def check(self, **floors: float) -> None:
        """Fail loudly when a metric is below its floor (notebook 01)."""
        low = {k: (self.metrics.get(k), f) for k, f in floors.items()
               if self.metrics.get(k) is None or self.metrics[k] < f}
        if low:
            lines = ", ".join(f"{k} = {v} < floor {f}" for k, (v, f) in low.items())
            raise AssertionError(f"quality regression in {self.notebook} ({config.profile().name} profile): {lines}")
        print("checks passed: " + ", ".join(f"{k} {self.metrics[k]:.4f} >= {f}" for k, f in floors.items()))

    def record(self) -> dict:
        return {"notebook": self.notebook, "profile": config.profile().name, "device": config.device().type,
                "machine": machine(), "torch": torch.__version__.split("+")[0],
                "seconds": round(time.perf_counter() - self.start, 1), "metrics": self.metrics}

    def save(self) -> Path:
        """Write ``runs/<notebook>.json`` atomically and print the table (notebook 01)."""
        rec = self.record()
        out = config.runs_dir() / f"{self.notebook}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(rec, indent=2) + "\n")
        os.replace(tmp, out)
        print(format_table([rec]))
        return out


def _fmt(name: str, value) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if name.endswith("seconds") else f"{value:.4f}"
    return str(value)


def format_table(records: list[dict]) -> str:
    """Rows ``notebook | profile | machine | metric | value`` as plain text (notebook 01)."""
    rows = [("notebook", "profile", "machine", "metric", "value")]
    for r in records:
        where = r.get("machine", r["device"])
        for name, value in [*r["metrics"].items(), ("notebook_seconds", r["seconds"])]:
            rows.append((r["notebook"], r["profile"], where, name, _fmt(name, value)))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """``python -m helpers.results``: print every record in ``runs/`` as one table (notebook 01)."""
    files = sorted(config.runs_dir().glob("*.json"))
    if not files:
        print(f"no results records in {config.runs_dir()}; run the notebooks first (make run)")
        return 1
    print(format_table([json.loads(f.read_text()) for f in files]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
