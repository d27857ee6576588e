"""Forward hooks keeping module outputs (fastai v1's ``hook_outputs``), and the model summary (notebook 02; notebook
05's feature loss)::

    with Hooks([model[2], model[5]], detach=False) as hooks:
        model(x)
        a, b = hooks.stored
"""

from contextlib import suppress
from functools import partial
from typing import Sequence

import torch
from torch import nn


def store_output(stored: list, i: int, detach: bool, _module: nn.Module, _inp, out) -> None:
    """A forward hook once ``Hooks`` binds its first three arguments: the output into ``stored[i]`` (notebook 02)."""
    stored[i] = out.detach() if detach and isinstance(out, torch.Tensor) else out


class Hooks:
    """Forward hooks on ``modules`` keeping each latest output in ``stored`` (notebook 02); ``detach=False`` keeps the
    graph. ``remove()``, leaving a ``with`` block or deletion takes them off."""

    def __init__(self, modules: Sequence[nn.Module], detach: bool = True):
        self.stored: list = [None] * len(modules)
        self._handles = [m.register_forward_hook(partial(store_output, self.stored, i, detach))
                         for i, m in enumerate(modules)]

    def clear(self) -> None:
        """Forget the stored outputs, so no activations stay alive between calls (notebook 02)."""
        self.stored[:] = [None] * len(self.stored)

    def remove(self) -> None:
        """Take the hooks off the modules and forget the outputs; safe to call twice (notebook 02)."""
        for h in self._handles:
            h.remove()
        self._handles = []
        self.clear()

    def __enter__(self) -> "Hooks":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def __del__(self):
        with suppress(Exception):  # interpreter shutdown
            self.remove()


def model_summary(model: nn.Module, xb: torch.Tensor) -> str:
    """fastai's ``learn.summary()``: leaf layers' type, output shape, parameters, from ``xb``; totals (notebook 01)."""
    rows, handles = [], []

    def hook(module, _inp, out):
        out = out[0] if isinstance(out, (tuple, list)) else out
        params = list(module.parameters())  # a leaf's own, including weight / spectral norm's
        rows.append((type(module).__name__, str(list(out.shape[1:])), sum(p.numel() for p in params),
                     bool(params) and all(p.requires_grad for p in params)))

    for name, m in model.named_modules():
        if "parametrizations" in name.split("."):
            continue  # the insides of a weight- or spectral-normed layer belong to that layer
        if not [n for n, _ in m.named_children() if n != "parametrizations"]:
            handles.append(m.register_forward_hook(hook))
    try:
        model(xb)
    finally:
        for h in handles:
            h.remove()
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    line = "=" * 70
    out = [line, f"{'Layer (type)':<24}{'Output Shape':<22}{'Param #':>10}  Trainable", line]
    out += [f"{t:<24}{s:<22}{n:>10,}  {tr}" for t, s, n, tr in rows]
    out += [line, f"Total params: {total:,}", f"Total trainable params: {trainable:,}",
            f"Total non-trainable params: {total - trainable:,}"]
    return "\n".join(out)
