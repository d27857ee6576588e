"""Progress bars and the per-epoch table: widgets in Jupyter, plain text headless.

Introduced in notebook 01 (resnet-mnist). ``HELPERS_PROGRESS`` picks ``auto`` / ``text`` / ``none``.
"""
from __future__ import annotations

import sys
import time
from typing import Iterable, Sequence

from helpers import config


def progress_bar(iterable: Iterable, total: int | None = None, desc: str = "", leave: bool = False):
    """Wrap ``iterable`` in a progress bar suited to where the code runs (notebook 01)."""
    mode = config.progress_mode()
    if mode == "none":
        return iterable
    if mode == "auto":
        from tqdm.auto import tqdm
        return tqdm(iterable, total=total, desc=desc, leave=leave)
    from tqdm.std import tqdm
    # headless: appear only for passes longer than 2 s, refresh at most every 5 s
    return tqdm(iterable, total=total, desc=desc, leave=leave, file=sys.stdout, mininterval=5.0, delay=2.0, ncols=90)


def format_time(seconds: float) -> str:
    """``mm:ss`` like the lesson's tables (notebook 01)."""
    m, s = divmod(int(round(seconds)), 60)
    return f"{m:02d}:{s:02d}"


class EpochTable:
    """Prints one aligned row per epoch: epoch, losses, metrics, time (notebook 01)."""

    def __init__(self, names: Sequence[str]):
        self.names = ["epoch", *names, "time"]
        self.widths = [max(len(n), 9) for n in self.names]
        self.start = time.perf_counter()
        print("  ".join(n.ljust(w) for n, w in zip(self.names, self.widths)), flush=True)

    def row(self, epoch: int, values: Sequence[float | None], seconds: float) -> None:
        cells = [str(epoch)] + ["—" if v is None else f"{v:.6f}" for v in values] + [format_time(seconds)]
        print("  ".join(c.ljust(w) for c, w in zip(cells, self.widths)), flush=True)

    def close(self) -> float:
        total = time.perf_counter() - self.start
        print(f"Total time: {format_time(total)} ({total:.1f} s)", flush=True)
        return total
