"""Pictures: single images, grids of a batch, predictions next to labels.

Introduced in notebook 01 (resnet-mnist). matplotlib is imported inside the functions, so importing
``helpers`` stays headless-safe; notebooks render inline, scripts fall back to the Agg backend.
"""
from __future__ import annotations

import os
from typing import Callable

import torch


def _plt():
    import matplotlib
    if not _in_notebook() and not os.environ.get("DISPLAY"):
        matplotlib.use("Agg")  # headless script: draw to memory instead of a window
    import matplotlib.pyplot as plt
    return plt


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
        return get_ipython() is not None and "IPKernelApp" in get_ipython().config
    except Exception:  # noqa: BLE001
        return False


def show_image(img: torch.Tensor, ax=None, figsize=(3, 3), title: str | None = None, cmap: str | None = "binary",
               **kwargs) -> None:
    """Draw one image tensor (C, H, W) or (H, W) in [0, 1]; 1-channel images use ``cmap`` (notebook 01)."""
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    img = img.detach().float().cpu()
    if img.dim() == 3 and img.shape[0] == 1:
        img = img[0]
    if img.dim() == 3:
        img, cmap = img.permute(1, 2, 0).clamp(0, 1), None
    ax.imshow(img.numpy(), cmap=cmap, **kwargs)
    ax.set_axis_off()
    if title is not None:
        ax.set_title(title)


def plot_multi(func: Callable[[int, int, object], None], rows: int, cols: int, figsize=(8, 8)) -> None:
    """Call ``func(i, j, ax)`` on each cell of a rows x cols grid of axes (notebook 01)."""
    plt = _plt()
    fig, axs = plt.subplots(rows, cols, figsize=figsize, squeeze=False)
    for i in range(rows):
        for j in range(cols):
            func(i, j, axs[i, j])
    fig.tight_layout()


def show_batch(data, rows: int = 3, figsize=(5, 5), valid: bool = False, cmap: str = "binary") -> None:
    """A rows x rows grid of one (augmented) batch with its labels (notebook 01)."""
    x, y = data.one_batch(valid=valid)
    x = data.denorm(x)

    def cell(i, j, ax):
        k = i * rows + j
        show_image(x[k], ax=ax, title=data.classes[int(y[k])], cmap=cmap)

    plot_multi(cell, rows, rows, figsize=figsize)


def show_results(learn, rows: int = 3, figsize=(6, 6), cmap: str = "binary") -> None:
    """Validation images titled ``prediction / truth``, wrong ones in red, most confident mistakes first
    (notebook 01)."""
    preds, targs = learn.get_preds()
    x = learn.data.valid_dl.x[: len(preds)]
    probs = torch.softmax(preds, -1)
    pred = probs.argmax(-1)
    wrong = (pred != targs).nonzero().flatten()
    wrong = wrong[probs[wrong, pred[wrong]].argsort(descending=True)]
    right = (pred == targs).nonzero().flatten()
    right = right[torch.randperm(len(right), generator=torch.Generator().manual_seed(0))]
    order = torch.cat([wrong[: rows * rows // 2], right])[: rows * rows]
    classes = learn.data.classes

    def cell(i, j, ax):
        k = int(order[i * rows + j])
        img = x[k].float() / 255
        ok = pred[k] == targs[k]
        show_image(img, ax=ax, cmap=cmap)
        ax.set_title(f"{classes[pred[k]]} / {classes[targs[k]]}", color="black" if ok else "red")

    plot_multi(cell, rows, rows, figsize=figsize)
    _plt().gcf().suptitle("prediction / truth (red: wrong)", y=1.02)
