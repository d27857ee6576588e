"""Forward hooks that keep what some modules output, and that always come off again.

Introduced in notebook 02 (camvid-unet), where the U-Net keeps the encoder's activations for its
cross connections; notebook 05 (superres) builds the feature loss on them. fastai v1 called this
``hook_outputs``.

    with Hooks([model[2], model[5]], detach=False) as hooks:
        model(x)
        a, b = hooks.stored

The hook functions hold only the ``stored`` list, never the ``Hooks`` object, so a module that
outlives its ``Hooks`` (an encoder shared by two U-Nets) does not keep it alive: when the ``Hooks`` is
garbage-collected its hooks are removed.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


def _store_output(stored: list, i: int, detach: bool):
    def hook(_module: nn.Module, _inp, out):
        stored[i] = out.detach() if detach and isinstance(out, torch.Tensor) else out
    return hook


class Hooks:
    """Forward hooks on ``modules`` keeping each one's latest output in ``stored`` (notebook 02).

    ``detach=True`` keeps outputs without their autograd graph (looking at activations);
    ``detach=False`` keeps them attached, so a loss computed from them sends gradients back through the
    model (the U-Net's cross connections, the feature loss). ``clear()`` forgets the outputs;
    ``remove()`` (or leaving the ``with`` block, or deleting the object) takes the hooks off.
    """

    def __init__(self, modules: Sequence[nn.Module], detach: bool = True):
        self.stored: list = [None] * len(modules)
        self._handles = [m.register_forward_hook(_store_output(self.stored, i, detach))
                         for i, m in enumerate(modules)]

    def __len__(self) -> int:
        return len(self.stored)

    def clear(self) -> None:
        """Forget the stored outputs, so no activations stay alive between calls (notebook 02)."""
        self.stored[:] = [None] * len(self.stored)

    def remove(self) -> None:
        """Take the hooks off the modules and forget the outputs; safe to call twice (notebook 02)."""
        for h in self._handles:
            h.remove()
        self._handles = []
        self.clear()

    @property
    def removed(self) -> bool:
        """True once the hooks are off (notebook 02)."""
        return not self._handles

    def __enter__(self) -> "Hooks":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def __del__(self):
        try:
            self.remove()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
