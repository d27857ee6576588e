"""Run notebooks headless and time every cell: seconds per cell, the longest silence inside it, and the
notebook's peak GPU memory.

    .venv/bin/python benchmarks/notebook_times.py notebooks/03_superres_gan.ipynb --profile small
    .venv/bin/python benchmarks/notebook_times.py notebooks/*.ipynb --profile full --smoke   # what make smoke runs

Each notebook runs in a fresh kernel (nbclient), one after another, from the ``notebooks/`` folder, in
the profile asked for (``HELPERS_PROFILE``; ``--smoke`` adds ``HELPERS_SMOKE=1``). For each it writes
``<out>/<notebook>.ipynb`` (the executed copy) and ``<out>/<notebook>.times.json`` (per cell: seconds,
the longest gap between two of its outputs, progress redraws included, the output that gap followed, and
its first line; the total; the peak GPU memory in MiB, or null without CUDA), then prints a table of the
slowest cells and of the longest silences. The results records the notebooks write go to ``<out>`` too.
It exits non-zero when a notebook fails, after writing what ran. ``--budget SECONDS`` starts no cell after
that many seconds (a running cell is not cut): the notebook in flight is recorded up to there, the rest are
listed as not run, and it exits with 124, so a borrowed machine's time limit still returns every finished
cell's time. It needs Jupyter's own packages (nbformat, nbclient, ipykernel) and says which are missing
when they are not installed.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

NEEDS = ("nbformat", "nbclient", "ipykernel")
PEAK = ("import json, torch; print('PEAK_GPU_MB', json.dumps(torch.cuda.max_memory_allocated() / 2**20 "
        "if torch.cuda.is_available() else None))")


def missing_packages() -> list[str]:
    return [name for name in NEEDS if importlib.util.find_spec(name) is None]


def label(msg: dict) -> str:
    """The last line of an output's text (what was on screen when a silence began), at most 80 characters."""
    content = msg.get("content", {})
    text = content.get("text") or content.get("data", {}).get("text/plain") or content.get("ename") or msg["msg_type"]
    lines = [ln for ln in str(text).splitlines() if ln.strip()]
    return (lines[-1] if lines else msg["msg_type"]).strip()[:80]


def run(path: Path, out: Path, deadline: float | None = None) -> tuple[dict, bool]:
    """Execute one notebook; returns (its timing record, whether every cell ran)."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PEAK))
    stamps: dict[int, list[float]] = {}
    skipped: list[int] = []  # cells not started: the --budget was spent

    class Client(NotebookClient):
        def process_message(self, msg, cell, cell_index):  # every output, progress redraws included
            if msg.get("msg_type") in ("stream", "display_data", "update_display_data", "execute_result", "error",
                                       "execute_input"):
                stamps.setdefault(cell_index, []).append((time.perf_counter(), label(msg)))
            return super().process_message(msg, cell, cell_index)

        async def async_execute_cell(self, cell, cell_index, *args, **kwargs):
            start = time.perf_counter()
            if deadline is not None and start > deadline and cell_index < len(nb.cells) - 1:  # the peak-memory cell still runs
                skipped.append(cell_index)
                return cell
            try:
                return await super().async_execute_cell(cell, cell_index, *args, **kwargs)
            finally:
                stamps.setdefault(cell_index, []).insert(0, (start, "cell start"))
                stamps[cell_index].append((time.perf_counter(), "cell end"))

    client = Client(nb, timeout=None, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    ok, stopped, start = True, None, time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as err:
        ok = False
        print(f"{path.name} failed: {str(err).splitlines()[-1] if str(err) else err}", file=sys.stderr)
    if skipped:
        ok, stopped = False, f"time budget spent before cell {skipped[0]}"
    total = time.perf_counter() - start
    peak = None
    for o in nb.cells[-1].get("outputs", []):
        text = o.get("text", "")
        if "PEAK_GPU_MB" in text:
            peak = json.loads(text.split("PEAK_GPU_MB", 1)[1])
    nb.cells.pop()
    nbformat.write(nb, out / path.name)
    cells = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or i not in stamps:
            continue
        t = sorted(stamps[i])
        first = next((ln for ln in cell.source.splitlines() if ln.strip() and not ln.startswith("#")), "")
        gap, after = max(((b[0] - a[0], a[1]) for a, b in zip(t, t[1:])), default=(0.0, ""))
        cells.append({"cell": i, "seconds": round(t[-1][0] - t[0][0], 2), "longest_silence": round(gap, 2),
                      "silent_after": after, "first_line": first[:60]})
    record = {"notebook": path.stem, "profile": os.environ.get("HELPERS_PROFILE", "default"),
              "smoke": os.environ.get("HELPERS_SMOKE", "0") == "1", "ok": ok, "stopped": stopped,
              "seconds": round(total, 1),
              "peak_gpu_mb": None if peak is None else round(peak), "cells": cells}
    (out / f"{path.stem}.times.json").write_text(json.dumps(record, indent=1) + "\n")
    return record, ok


def table(record: dict, top: int) -> str:
    peak = "n/a (no CUDA)" if record["peak_gpu_mb"] is None else f"{record['peak_gpu_mb']:,} MiB"
    lines = [f"{record['notebook']} ({record['profile']}{' smoke' if record['smoke'] else ''}): "
             f"{record['seconds']:.1f} s, peak GPU memory {peak}"
             f"{'' if record['ok'] else ', ' + (record.get('stopped') or 'FAILED')}",
             f"  {'cell':>4}  {'seconds':>8}  {'silence':>8}  first line"]
    for c in sorted(record["cells"], key=lambda c: -c["seconds"])[:top]:
        lines.append(f"  {c['cell']:>4}  {c['seconds']:>8.1f}  {c['longest_silence']:>8.1f}  {c['first_line']}")
    lines.append("  longest silences (cell, seconds, the output before them):")
    for c in sorted(record["cells"], key=lambda c: -c["longest_silence"])[:3]:
        lines.append(f"  {c['cell']:>4}  {c['longest_silence']:>8.1f}  {c['silent_after']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="+", type=Path)
    ap.add_argument("--profile", choices=("small", "full"), help="HELPERS_PROFILE (default: as set, else by device)")
    ap.add_argument("--smoke", action="store_true", help="HELPERS_SMOKE=1: every code path, two batches each")
    ap.add_argument("--out", type=Path, default=Path("runs/timings"), help="where the copies and times go")
    ap.add_argument("--top", type=int, default=8, help="slowest cells to print per notebook")
    ap.add_argument("--budget", type=float, help="seconds after which no cell starts (exit 124)")
    args = ap.parse_args(argv)
    missing = missing_packages()
    if missing:
        print(f"notebook_times needs Jupyter's own packages; missing: {', '.join(missing)}. "
              f"Install them with: pip install {' '.join(missing)}", file=sys.stderr)
        return 2
    absent = [str(p) for p in args.notebooks if not p.is_file()]
    if absent:  # before any kernel starts, so a typo costs nothing
        print(f"no such notebook: {', '.join(absent)}", file=sys.stderr)
        return 2
    if args.profile:
        os.environ["HELPERS_PROFILE"] = args.profile
    if args.smoke:
        os.environ["HELPERS_SMOKE"] = "1"
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ["HELPERS_RUNS"] = str(args.out.resolve())
    deadline = time.perf_counter() + args.budget if args.budget else None  # no cell starts after it
    failed = []
    for n, path in enumerate(args.notebooks):
        record, ok = run(path.resolve(), args.out, deadline)
        print(table(record, args.top), flush=True)
        if record["stopped"]:
            rest = [p.name for p in args.notebooks[n + 1:]]
            print(f"stopped at the time budget ({args.budget:g} s) in {path.name}"
                  + (f"; not run: {', '.join(rest)}" if rest else ""), file=sys.stderr)
            return 124
        if not ok:
            failed.append(path.name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
