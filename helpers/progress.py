"""Progress bars and the per-epoch table (notebook 01); ``HELPERS_PROGRESS``: ``auto``, ``text`` or ``none``."""

import html
import sys
import time
from typing import Iterable, Iterator, Sequence

from helpers import config

REFRESH = 0.5  # seconds between two redraws of a bar in Jupyter


def format_time(seconds: float) -> str:
    """``mm:ss`` like the lesson's tables (notebook 01)."""
    m, s = divmod(int(round(seconds)), 60)
    return f"{m:02d}:{s:02d}"


def in_kernel() -> bool:
    """True inside a Jupyter kernel (notebook 01)."""
    try:
        from IPython import get_ipython
        return get_ipython() is not None and "IPKernelApp" in get_ipython().config
    except Exception:  # noqa: BLE001
        return False


def _style() -> str:
    """Where bars go: ``html`` (a Jupyter kernel), ``text`` or ``none``."""
    mode = config.progress_mode()
    if mode == "auto":
        return "html" if in_kernel() else "text"
    return mode


def _bar(done: int, total: int | None, desc: str, seconds: float, unit: str) -> tuple[str, str]:
    """(HTML, plain text) of a bar: ``<progress>``, what it counts, time and rate."""
    count = _amount(done, unit) + (f"/{_amount(total, unit)}" if total else "")
    rate = f", {_amount(done / seconds, unit)}/s" if seconds > 0 and done else ""
    text = f"{desc} {count} [{format_time(seconds)}{rate}]"
    bar = f'<progress value="{done}" max="{total}" style="width:40%"></progress> ' if total else ""
    return f"<div>{bar}{html.escape(text)}</div>", text


def _amount(n: float, unit: str) -> str:
    if unit != "B":
        return f"{n:,.0f}" if n >= 10 or n == int(n) else f"{n:.1f}"
    for suffix in ("B", "kB", "MB", "GB"):
        if n < 1024 or suffix == "GB":
            return f"{n:,.0f} {suffix}" if suffix == "B" else f"{n:,.1f} {suffix}"
        n /= 1024


class Progress:
    """A bar over ``total`` steps (bytes: ``unit="B"``), ``update(n)``, ``close()`` or ``with`` (notebook 01)."""

    def __init__(self, total: int | None, desc: str = "", unit: str = "it"):
        self.total, self.desc, self.unit, self.done = total, desc, unit, 0
        self.start = self.last = time.perf_counter()
        self.style = _style()
        self._tqdm = self._handle = None
        if self.style == "text":
            from tqdm.std import tqdm
            self._tqdm = tqdm(total=total, desc=desc, unit=unit, unit_scale=unit == "B", unit_divisor=1024,
                              leave=False, file=sys.stdout, mininterval=5.0, delay=2.0, ncols=90)
        elif self.style == "html":
            from IPython.display import display
            self._handle = display(self._bundle(), raw=True, display_id=True)

    def _bundle(self) -> dict:
        text_html, text = _bar(self.done, self.total, self.desc, time.perf_counter() - self.start, self.unit)
        return {"text/html": text_html, "text/plain": text}

    def update(self, n: int = 1) -> None:
        self.done += n
        if self._tqdm is not None:
            self._tqdm.update(n)
        elif self._handle is not None and time.perf_counter() - self.last >= REFRESH:
            self.last = time.perf_counter()
            self._handle.update(self._bundle(), raw=True)

    def close(self) -> None:
        if self._tqdm is not None:
            self._tqdm.close()
            self._tqdm = None
        elif self._handle is not None:
            line = f"{self.desc}: {_amount(self.done, self.unit)} in {time.perf_counter() - self.start:.1f} s"
            self._handle.update({"text/html": f"<div>{html.escape(line)}</div>", "text/plain": line}, raw=True)
            self._handle = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress_bar(iterable: Iterable, total: int | None = None, desc: str = "") -> Iterator:
    """Iterate over ``iterable`` with a ``Progress`` bar (notebook 01)."""
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)
    with Progress(total, desc) as bar:
        for item in iterable:
            yield item
            bar.update()


class EpochTable:
    """The per-epoch table of a fit: epoch, losses, metrics, time (notebook 01)."""

    def __init__(self, names: Sequence[str]):
        self.names = ["epoch", *names, "time"]
        self.widths = [max(len(n), 9) for n in self.names]
        self.rows, self.start, self._handle = [], time.perf_counter(), None  # rows: each a list of cells
        if _style() == "html":
            from IPython.display import display
            self._handle = display(self._bundle(), raw=True, display_id=True)
        else:
            print(self._line(self.names), flush=True)

    def _line(self, cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, self.widths)).rstrip()

    def _bundle(self, bar: tuple[str, str] = ("", ""), total: str = "") -> dict:
        head = "".join(f"<th>{html.escape(n)}</th>" for n in self.names)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in self.rows)
        table = (f'<table class="helpers-epochs" style="text-align:right"><thead><tr>{head}</tr></thead>'
                 f"<tbody>{body}</tbody></table>")
        lines = [self._line(self.names), *(self._line(r) for r in self.rows), bar[1], total]
        return {"text/html": table + bar[0] + (f"<div>{html.escape(total)}</div>" if total else ""),
                "text/plain": "\n".join(ln for ln in lines if ln)}

    def bar(self, iterable: Iterable, total: int | None = None, desc: str = "") -> Iterator:
        """Iterate over one epoch's batches, with a bar under the table in Jupyter (notebook 01)."""
        if self._handle is None:
            yield from progress_bar(iterable, total, desc)
            return
        start = last = time.perf_counter()
        self._handle.update(self._bundle(_bar(0, total, desc, 0.0, "it")), raw=True)  # drawn from the first batch on
        for i, item in enumerate(iterable, 1):
            yield item
            now = time.perf_counter()
            if now - last >= REFRESH:
                last = now
                self._handle.update(self._bundle(_bar(i, total, desc, now - start, "it")), raw=True)

    def row(self, epoch: int, values: Sequence[float | None], seconds: float) -> None:
        cells = [str(epoch)] + ["—" if v is None else f"{v:.6f}" for v in values] + [format_time(seconds)]
        self.rows.append(cells)
        if self._handle is not None:
            self._handle.update(self._bundle(), raw=True)
        else:
            print(self._line(cells), flush=True)

    def close(self) -> float:
        total = time.perf_counter() - self.start
        line = f"Total time: {format_time(total)} ({total:.1f} s)"
        if self._handle is not None:
            self._handle.update(self._bundle(total=line), raw=True)
        else:
            print(line, flush=True)
        return total
