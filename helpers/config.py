"""Every switch of the project, read from ``HELPERS_*`` environment variables (the README's table lists them).
Introduced in notebook 01 (resnet-mnist); every notebook starts with ``config.banner()``."""

import os
import random
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Profile:
    """What a profile (``HELPERS_PROFILE``: ``small``, CPU scale, or ``full``, the lesson's) changes (notebook 01)."""
    name: str
    max_train_items: int | None  # cap on training items per dataset (random, seeded subset)
    needs_pretrained: bool  # full: missing ImageNet weights are an error; small: a warning
    summary: str
    smoke: bool = False  # HELPERS_SMOKE=1: every code path, a couple of batches each (see ``smoke``)

    def pick(self, small, full):
        """``small`` or ``full`` depending on the profile (notebook 01)."""
        return small if self.name == "small" else full

    def pick_size(self, small, full):
        """``pick`` for image sizes; a smoke run takes ``small``: the pixels, not the code paths, cost (notebook 02)."""
        return small if self.smoke else self.pick(small, full)


_PROFILES = {
    "small": Profile("small", max_train_items=20_000, needs_pretrained=False,
                     summary="CPU scale: training sets capped at 20,000 items, smaller image sizes, fewer batches "
                     "per epoch where a notebook says so; missing pretrained weights only warn"),
    "full": Profile("full", max_train_items=None, needs_pretrained=True,
                    summary="the lesson's scale: full datasets, sizes and schedules; needs ImageNet weights"),
}

# A smoke run's caps: batches per loader, epochs per fit, lr_find iterations.
SMOKE_BATCHES, SMOKE_EPOCHS, SMOKE_LR_FIND_ITS, SMOKE_BS = 2, 1, 3, 2


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"HELPERS_{name}", "").strip() or default


def profile() -> Profile:
    """The profile in effect, smoke switch applied; ``HELPERS_PROFILE`` unset: ``full`` with CUDA (notebook 01)."""
    name = _env("PROFILE") or ("full" if torch.cuda.is_available() else "small")
    if name not in _PROFILES:
        raise ValueError(f"HELPERS_PROFILE={name!r}: expected one of {', '.join(_PROFILES)}")
    prof = _PROFILES[name]
    if smoke():
        prof = replace(prof, smoke=True, needs_pretrained=False,
                       summary=f"SMOKE RUN of the {name} profile: {SMOKE_BATCHES} batches per loader, "
                       f"{SMOKE_EPOCHS} epoch per fit, random init allowed, floors not enforced; "
                       "checks that every code path runs, not how well it learns")
    return prof


def smoke() -> bool:
    """True when ``HELPERS_SMOKE`` is ``1`` / ``on`` / ``true``: a dry run of every code path (notebook 01)."""
    value = _env("SMOKE", "0").lower()
    if value not in ("0", "1", "on", "off", "true", "false", "yes", "no"):
        raise ValueError(f"HELPERS_SMOKE={value!r}: expected 1 or 0")
    return value in ("1", "on", "true", "yes")


def smoke_cap(n: int, cap: int) -> int:
    """``min(n, cap)`` in a smoke run, else ``n`` (notebook 01)."""
    return min(n, cap) if smoke() else n


def n_batches(n: int, max_batches: int | None = None) -> int:
    """``n`` batches capped by ``max_batches`` and, in a smoke run, by ``SMOKE_BATCHES`` (notebook 01)."""
    return smoke_cap(min(n, max_batches) if max_batches else n, SMOKE_BATCHES)


def device() -> torch.device:
    """The torch device: ``HELPERS_DEVICE``, else CUDA, else an Apple GPU (MPS), else the CPU (notebook 01)."""
    if forced := _env("DEVICE"):
        return torch.device(forced)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def cpu_count() -> int:
    """CPU cores this process may use: its affinity mask where the OS has one (Linux), else all (notebook 01)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def data_dir() -> Path:
    """Download cache and extracted datasets: ``HELPERS_DATA``, default ``<repo>/data`` (notebook 01)."""
    return Path(_env("DATA", str(ROOT / "data"))).expanduser().resolve()


def runs_dir() -> Path:
    """Where each notebook writes its results record: ``HELPERS_RUNS``, default ``<repo>/runs`` (notebook 01)."""
    return Path(_env("RUNS", str(ROOT / "runs"))).expanduser().resolve()


def mirror() -> str | None:
    """``HELPERS_MIRROR``: an http(s):// or file:// base URL replacing the download hosts, or None (notebook 01)."""
    base = _env("MIRROR")
    if base and not base.startswith(("http://", "https://", "file://")):
        raise ValueError(f"HELPERS_MIRROR={base!r} must start with http://, https:// or file://")
    return base.rstrip("/") if base else None


def _choice(name: str, allowed: tuple[str, ...]) -> str:
    """``HELPERS_<name>``, one of ``allowed`` (default: the first), else a ValueError naming them."""
    value = _env(name, allowed[0])
    if value not in allowed:
        raise ValueError(f"HELPERS_{name}={value!r}: expected {', '.join(allowed[:-1])} or {allowed[-1]}")
    return value


def progress_mode() -> str:
    """``HELPERS_PROGRESS``: ``auto`` (default: widgets in Jupyter, else text), ``text`` or ``none`` (notebook 01)."""
    return _choice("PROGRESS", ("auto", "text", "none"))


def pretrained_wanted() -> bool:
    """False when ``HELPERS_PRETRAINED=off``: encoders start from random weights on purpose (notebook 02)."""
    return _choice("PRETRAINED", ("on", "off")) == "on"


def floors_enforced() -> bool:
    """False when ``HELPERS_FLOORS=report``: results checks report their floors without failing, for weights that are
    not ImageNet's (``make standin``) (notebook 01)."""
    return _choice("FLOORS", ("enforce", "report")) == "enforce"


def tuning(kind: str) -> bool:
    """False when ``HELPERS_<kind>_TUNING=off`` (GPU, CPU): none of its speed settings, to measure them (notebook 01)."""
    return _choice(f"{kind}_TUNING", ("on", "off")) == "on"


def seed() -> int:
    """The global seed: ``HELPERS_SEED``, 42 unless set (notebook 01)."""
    return int(_env("SEED", "42"))


def seed_everything(value: int | None = None) -> int:
    """Seed python, numpy and torch (CPU and CUDA) (notebook 01)."""
    value = seed() if value is None else value
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)
    return value


def banner() -> str:
    """One line: which profile runs, on what, and what it changes (notebook 01)."""
    p, dev = profile(), device()
    line = f"profile: {p.name} on {dev.type} (torch {torch.__version__.split('+')[0]}) — {p.summary}"
    print(line)
    return line
