"""Pictures: single images, grids of a batch, predictions next to labels (notebook 01). matplotlib is imported inside
the functions, so importing ``helpers`` stays headless-safe."""

import io
import os
from typing import Callable

import torch

from helpers.data import spread
from helpers.progress import in_kernel


def pyplot():
    """``matplotlib.pyplot``, with the Agg backend in a headless script (notebook 01)."""
    import matplotlib
    if not in_kernel() and not os.environ.get("DISPLAY"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def show_image(img: torch.Tensor, ax=None, figsize=(3, 3), title: str | None = None, cmap: str | None = "binary",
               **kwargs) -> None:
    """Draw one image tensor (C, H, W) or (H, W) in [0, 1]; 1-channel images use ``cmap`` (notebook 01)."""
    plt = pyplot()
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


def plot_multi(func: Callable[[int, int, object], None], rows: int, cols: int, figsize=(8, 8), dpi: int = 72,
               photo: bool = False) -> None:
    """Call ``func(i, j, ax)`` on each cell of a rows x cols grid; ``photo=True`` shows it as a JPEG (notebook 01)."""
    fig, axs = pyplot().subplots(rows, cols, figsize=figsize, squeeze=False, dpi=dpi)
    for i in range(rows):
        for j in range(cols):
            func(i, j, axs[i, j])
    fig.tight_layout()
    if photo:
        show_as_jpeg(fig)


def show_as_jpeg(fig=None, quality: int = 85) -> None:
    """In a notebook, show a figure as a JPEG (a fifth of a PNG's bytes) and close it (notebook 02)."""
    if not in_kernel():
        return
    from IPython.display import Image, display
    plt = pyplot()
    fig = fig or plt.gcf()
    buf = io.BytesIO()
    fig.savefig(buf, format="jpeg", dpi=fig.dpi, bbox_inches="tight", pil_kwargs={"quality": quality})
    plt.close(fig)
    display(Image(buf.getvalue(), format="jpeg"))


def show_batch(data, rows: int = 3, figsize=(5, 5), valid: bool = False, cmap: str = "binary") -> None:
    """A rows x rows grid of one (augmented) batch with its labels (notebook 01)."""
    x, y = data.one_batch(valid=valid)
    x = data.denorm(x)
    plot_multi(lambda i, j, ax: show_image(x[i * rows + j], ax=ax, title=data.classes[int(y[i * rows + j])], cmap=cmap),
               rows, rows, figsize=figsize)


def show_results(learn, rows: int = 3, figsize=(6, 6), cmap: str = "binary") -> None:
    """Validation images titled ``prediction / truth``, wrong in red, most confident mistakes first (notebook 01)."""
    preds, targs = learn.get_preds()
    dl = learn.data.valid_dl
    x = dl.x[dl.indices().to(dl.x.device)]
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
        show_image(x[k].float() / 255, ax=ax, cmap=cmap)
        ax.set_title(f"{classes[pred[k]]} / {classes[targs[k]]}", color="black" if pred[k] == targs[k] else "red")

    plot_multi(cell, rows, rows, figsize=figsize)
    pyplot().gcf().suptitle("prediction / truth (red: wrong)", y=1.02)


def overlay(img: torch.Tensor, mask: torch.Tensor, palette: torch.Tensor, alpha: float = 0.6) -> torch.Tensor:
    """Blend a class mask (H, W), coloured by ``palette`` (n_classes, 3) in [0, 1], over an image
    (3, H, W) in [0, 1]; ``alpha=1`` shows the colours alone (notebook 02)."""
    colours = palette.to(mask.device)[mask.long()].permute(2, 0, 1)
    return (1 - alpha) * img.float().clamp(0, 1) + alpha * colours


def _show_with_legend(classes: list[str], palette: torch.Tensor) -> None:
    from matplotlib.patches import Patch
    handles = [Patch(color=palette[i].tolist(), label=c) for i, c in enumerate(classes)]
    pyplot().gcf().legend(handles=handles, loc="lower center", ncol=min(6, len(classes)), fontsize=8,
                          bbox_to_anchor=(0.5, -0.02 - 0.03 * (len(classes) > 6)), frameon=False)
    show_as_jpeg()


def show_seg_batch(data, palette: torch.Tensor, rows: int = 2, cols: int = 3, figsize=(10, 5.5),
                   valid: bool = False) -> None:
    """Frames of one (augmented) batch with their masks coloured over them, and a legend (notebook 02)."""
    x, y = data.one_batch(valid=valid)
    x = data.denorm(x)
    cols = min(cols, len(x))  # a smoke run's batches hold 2 frames
    rows = min(rows, len(x) // cols)
    plot_multi(lambda i, j, ax: show_image(overlay(x[i * cols + j], y[i * cols + j], palette), ax=ax),
               rows, cols, figsize=figsize)
    _show_with_legend(data.classes, palette)


def show_seg_results(learn, palette: torch.Tensor, rows: int = 3, figsize=(10, 8)) -> None:
    """Image, true and predicted mask (titled with non-void accuracy) of validation frames spread out (notebook 02)."""
    import math
    dl = learn.data.valid_dl
    x, y = dl.batch(spread(dl.n_items, rows))
    pred = learn.predict_batch(x).argmax(1)
    img = learn.data.denorm(x)
    void = len(learn.data.classes) - 1

    def cell(i, j, ax):
        if j == 0:
            show_image(img[i], ax=ax, title="image" if i == 0 else None)
        elif j == 1:
            show_image(overlay(img[i], y[i], palette, alpha=1.0), ax=ax, title="truth" if i == 0 else None)
        else:
            keep = y[i] != void
            acc = (pred[i][keep] == y[i][keep]).float().mean().item() if keep.any() else math.nan
            show_image(overlay(img[i], pred[i], palette, alpha=1.0), ax=ax, title=f"prediction ({acc:.1%})")

    plot_multi(cell, rows, 3, figsize=figsize)
    _show_with_legend(learn.data.classes, palette)


def plot_confusion(cm: torch.Tensor, classes: list[str], figsize=(7, 6)) -> None:
    """A confusion matrix pictured, rows as shares of each true class; extra column "void (predicted)" (notebook 02)."""
    share = cm.double() / cm.sum(1, keepdim=True).clamp(min=1)
    cols = list(classes) + ["void (predicted)"] * (cm.shape[1] - len(classes))
    fig, ax = pyplot().subplots(figsize=figsize)
    ax.imshow(share.numpy(), cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(cols)), cols, rotation=60, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set(xlabel="predicted", ylabel="true")
    for i in range(share.shape[0]):
        for j in range(share.shape[1]):
            if share[i, j] >= 0.005:
                ax.text(j, i, f"{share[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if share[i, j] > 0.5 else "black")
    ax.set_title("share of each true class's pixels (validation set)")
    fig.tight_layout()


def show_image_batch(data, rows: int = 3, imgsize: float = 3, valid: bool = False,
                     titles: tuple[str, str] = ("input", "target")) -> None:
    """Input next to target of one denormalised batch: the lesson's ``show_batch`` for image pairs (notebook 05)."""
    x, y = data.one_batch(valid=valid)
    x, y = data.denorm(x), data.denorm(y)
    rows = min(rows, len(x))
    plot_multi(lambda i, j, ax: show_image((x, y)[j][i], ax=ax, title=titles[j] if i == 0 else None),
               rows, 2, figsize=(2 * imgsize, rows * imgsize), photo=True)


def show_critic_batch(data, rows: int = 3, imgsize: float = 2.2) -> None:
    """The lesson's ``data_crit.show_batch``: ``critic_data``, generated next to real (notebook 03)."""
    x, y = data.one_batch()
    x, n = data.denorm(x).clamp(0, 1), len(x) // 2
    rows = min(rows, n)
    plot_multi(lambda i, j, ax: show_image(x[i + j * n], ax=ax, title=f"{data.classes[int(y[i + j * n])]} "
                                           f"(label {int(y[i + j * n])})"),
               rows, 2, figsize=(2 * imgsize, rows * imgsize), photo=True)


def show_image_results(learn, rows: int = 3, imgsize: float = 4, dl=None, idx=None, row_titles: list[str] | None = None,
                       keep_luminance: bool = False, crop: float | None = None, zoom: int = 2) -> None:
    """The lesson's ``learn.show_results``: input / prediction / target of validation items (or ``idx``) (notebook 05);
    ``row_titles`` label predictions; ``keep_luminance`` as DeOldify (notebook 07); ``crop`` shows the centre ``crop``
    of each side unsmoothed, a pixel ``zoom`` screen pixels wide (notebooks 03, 05)."""
    dl = learn.data.valid_dl if dl is None else dl
    idx = spread(dl.n_items, min(rows, dl.n_items)) if idx is None else torch.as_tensor(idx)
    rows = len(idx)
    x, y = dl.batch(idx)
    inputs = learn.data.denorm(x).clamp(0, 1)
    pred = learn.predict_batch(x, denorm=True)
    if keep_luminance:
        from helpers.color import merge_chroma
        pred = merge_chroma(pred, inputs)
    images = [inputs, pred, learn.data.denorm(y).clamp(0, 1)]

    def title(i: int, j: int) -> str | None:
        if row_titles and j == 1:
            return row_titles[i]
        return ("Input", "Prediction", "Target")[j] if i == 0 else None

    figsize, dpi, pixels = (3 * imgsize, rows * imgsize), 72, {}
    if crop is not None:
        side = images[0].shape[-1]
        c = max(1, round(side * crop))
        lo = (side - c) // 2
        images = [im[..., lo:lo + c, lo:lo + c] for im in images]
        inches = c * zoom / 100 + 0.15  # 100 dpi: zoom screen pixels per image pixel, and a margin
        figsize, dpi, pixels = (3 * inches, rows * (inches + 0.25)), 100, {"interpolation": "nearest"}
    plot_multi(lambda i, j, ax: show_image(images[j][i], ax=ax, title=title(i, j), **pixels),
               rows, 3, figsize=figsize, dpi=dpi, photo=crop is None)
