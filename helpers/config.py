"""Every switch of the project, read from ``HELPERS_*`` environment variables in one place.

Introduced in notebook 01 (resnet-mnist); every notebook starts with ``config.banner()``.

=====================  ==========================================================================
variable               meaning
=====================  ==========================================================================
``HELPERS_PROFILE``    ``small`` (CPU, minutes) or ``full`` (the lesson's scale, GPU). Unset:
                       ``full`` when CUDA is available, else ``small``.
``HELPERS_DATA``       download cache and extracted datasets (default: ``<repo>/data``)
``HELPERS_MIRROR``     ``http://``, ``https://`` or ``file://`` base that replaces the canonical
                       hosts: ``<mirror>/<name>.tgz``
``HELPERS_RUNS``       where results records go (default: ``<repo>/runs``)
``HELPERS_SEED``       global seed (default 42)
``HELPERS_PROGRESS``   ``auto`` (widgets in Jupyter, text elsewhere), ``text`` or ``none``
``HELPERS_DEVICE``     force a torch device (``cpu``, ``cuda``, ``cuda:1``)
=====================  ==========================================================================
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
PROFILES = ("small", "full")


@dataclass(frozen=True)
class Profile:
    """What a profile changes. Notebooks never branch on it; helpers read it (notebook 01)."""

    name: str
    max_train_items: int | None  # cap on training items per dataset (random, seeded subset)
    max_valid_items: int | None  # cap on validation items
    max_batches_per_epoch: int | None  # cap on training batches per epoch
    needs_pretrained: bool  # full: missing ImageNet weights are an error; small: a warning
    summary: str

    def pick(self, small, full):
        """Return ``small`` or ``full`` depending on the profile (floors, sizes) (notebook 01)."""
        return small if self.name == "small" else full


_PROFILES = {
    "small": Profile(
        "small",
        max_train_items=20_000,
        max_valid_items=None,
        max_batches_per_epoch=None,
        needs_pretrained=False,
        summary="CPU scale: training sets capped at 20,000 items, smaller image sizes; "
        "missing pretrained weights only warn",
    ),
    "full": Profile(
        "full",
        max_train_items=None,
        max_valid_items=None,
        max_batches_per_epoch=None,
        needs_pretrained=True,
        summary="the lesson's scale: full datasets, sizes and schedules; needs ImageNet weights",
    ),
}


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(f"HELPERS_{name}", "").strip()
    return value or default


def profile() -> Profile:
    """The profile in effect (notebook 01)."""
    name = _env("PROFILE")
    if name is None:
        name = "full" if torch.cuda.is_available() else "small"
    if name not in _PROFILES:
        raise ValueError(f"HELPERS_PROFILE={name!r}: expected one of {', '.join(PROFILES)}")
    return _PROFILES[name]


def device() -> torch.device:
    """The torch device everything runs on: ``HELPERS_DEVICE``, else CUDA if present (notebook 01)."""
    forced = _env("DEVICE")
    if forced:
        return torch.device(forced)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def data_dir() -> Path:
    """Download cache and extracted datasets (notebook 01)."""
    return Path(_env("DATA", str(ROOT / "data"))).expanduser().resolve()


def runs_dir() -> Path:
    """Where each notebook writes its results record (notebook 01)."""
    return Path(_env("RUNS", str(ROOT / "runs"))).expanduser().resolve()


def mirror() -> str | None:
    """Base URL replacing canonical download hosts, or None (notebook 01)."""
    base = _env("MIRROR")
    if base and not base.startswith(("http://", "https://", "file://")):
        raise ValueError(f"HELPERS_MIRROR={base!r} must start with http://, https:// or file://")
    return base.rstrip("/") if base else None


def progress_mode() -> str:
    """``auto``, ``text`` or ``none`` (notebook 01)."""
    mode = _env("PROGRESS", "auto")
    if mode not in ("auto", "text", "none"):
        raise ValueError(f"HELPERS_PROGRESS={mode!r}: expected auto, text or none")
    return mode


def pretrained_wanted() -> bool:
    """False when ``HELPERS_PRETRAINED=off``: train encoders from random init on purpose, in any
    profile, without a warning or an error (notebook 02)."""
    value = _env("PRETRAINED", "on")
    if value not in ("on", "off"):
        raise ValueError(f"HELPERS_PRETRAINED={value!r}: expected on or off")
    return value == "on"


def seed() -> int:
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
