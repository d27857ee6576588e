"""Results records: each notebook writes ``runs/<notebook>.json`` (see ``Results.save``; times in seconds) and
``python -m helpers.results`` prints them all. Introduced in notebook 01 (resnet-mnist)."""

import json
import math
import platform
import sys
import time
from pathlib import Path

import torch

from helpers import config
from helpers.files import atomic_write


def machine() -> str:
    """A short description of where this ran, e.g. ``cpu: 2 cores x86_64`` or the GPU name (notebook 01)."""
    kind = config.device().type
    if kind == "cuda":
        return torch.cuda.get_device_name()
    if kind == "mps":
        return f"mps: Apple GPU {platform.machine()}"
    return f"cpu: {config.cpu_count()} cores {platform.machine()}"


class Results:
    """Collects a notebook's headline numbers, checks floors, writes the record (notebook 01)."""

    def __init__(self, notebook: str):
        self.notebook, self.start = notebook, time.perf_counter()
        self.metrics: dict[str, float] = {}
        self.checks: dict | None = None  # the outcome of check(), written by save()

    def add(self, **metrics: float) -> None:
        self.metrics.update({k: round(float(v), 6) for k, v in metrics.items()})

    def check(self, **floors: float) -> None:
        """Record ``checks``; a metric below its floor, missing or not finite saves the record failed and raises
        AssertionError; a smoke run, or ``HELPERS_FLOORS=report``, records the floors unchecked (notebook 01)."""
        floors = {k: float(f) for k, f in floors.items()}
        if config.smoke() or not config.floors_enforced():
            why = "smoke run" if config.smoke() else "HELPERS_FLOORS=report"
            self.checks = {"passed": None, "why": why, "floors": {**(self.checks or {}).get("floors", {}), **floors}}
            shown = ", ".join(f"{k} {_show(self.metrics.get(k))} (floor {f})" for k, f in floors.items())
            print(f"{why}: floors not enforced: {shown}")
            return
        failed = {}
        for k, f in floors.items():
            v = self.metrics.get(k)
            if v is None or not math.isfinite(v) or v < f:
                why = "missing" if v is None else "not finite" if not math.isfinite(v) else "below floor"
                failed[k] = {"value": v, "floor": f, "why": why}
        before = self.checks or {"passed": True, "floors": {}}  # several check() calls add up
        self.checks = {"passed": bool(before["passed"]) and not failed, "floors": {**before["floors"], **floors}}
        if failed or before.get("failed"):
            self.checks["failed"] = {**before.get("failed", {}), **failed}
        if failed:
            self.save()
            lines = ", ".join(f"{k} = {_show(d['value'])} < floor {d['floor']}" if d["why"] == "below floor"
                              else f"{k} is {_show(d['value'])} ({d['why']}; floor {d['floor']})"
                              for k, d in failed.items())
            raise AssertionError(f"quality regression in {self.notebook} ({config.profile().name} profile): {lines}. "
                                 f"The record, marked failed, is in {self.path()}")
        print("checks passed: " + ", ".join(f"{k} {self.metrics[k]:.4f} >= {f}" for k, f in floors.items()))

    def path(self) -> Path:
        """``runs/<notebook>.json`` (notebook 01)."""
        return config.runs_dir() / f"{self.notebook}.json"

    def save(self) -> None:
        """Write ``runs/<notebook>.json`` (see ``path``) atomically and print the table (notebook 01)."""
        rec = {"notebook": self.notebook, "profile": config.profile().name, "smoke": config.smoke(),
               "device": config.device().type, "machine": machine(), "torch": torch.__version__.split("+")[0],
               "seconds": round(time.perf_counter() - self.start, 1), "metrics": self.metrics}
        if self.checks is not None:
            rec["checks"] = self.checks
        atomic_write(self.path(), lambda tmp: tmp.write_text(json.dumps(rec, indent=2) + "\n"))
        print(format_table([rec]))


def _show(value) -> str:
    return "missing" if value is None else f"{value:.4f}"


def check_status(record: dict) -> str:
    """``passed``, ``FAILED: <metrics>``, ``not enforced (<why>)`` or ``not checked`` (notebook 01)."""
    checks = record.get("checks")
    if not checks:
        return "not checked"
    if checks.get("passed") is None:
        return f"not enforced ({checks.get('why', 'smoke run')})"
    return "passed" if checks["passed"] else "FAILED: " + ", ".join(checks.get("failed", {}))


def format_table(records: list[dict]) -> str:
    """Records as a text table ``notebook | profile | machine | metric | value``, with ``checks`` rows (notebook 01)."""
    rows = [("notebook", "profile", "machine", "metric", "value")]
    for r in records:
        where = r.get("machine", r["device"])
        prof = r["profile"] + (" smoke" if r.get("smoke") else "")
        for name, value in [*r["metrics"].items(), ("notebook_seconds", r["seconds"]), ("checks", check_status(r))]:
            if isinstance(value, float):
                value = f"{value:,.1f}" if name.endswith("seconds") else f"{value:.4f}"
            rows.append((r["notebook"], prof, where, name, str(value)))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """``python -m helpers.results``: print all records; exit 1 if there is none or a check failed (notebook 01)."""
    files = sorted(p for p in config.runs_dir().glob("*.json") if not p.name.endswith(".times.json"))  # not cell times
    if not files:
        print(f"no results records in {config.runs_dir()}; run the notebooks first (make run)")
        return 1
    records = [json.loads(f.read_text()) for f in files]
    print(format_table(records))
    failed = [r["notebook"] for r in records if (r.get("checks") or {}).get("passed") is False]
    if failed:
        print(f"quality checks FAILED in: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
