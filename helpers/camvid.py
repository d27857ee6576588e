"""CamVid as published with SegNet: paired frames and masks, joint transforms, segmentation metrics.

Introduced in notebook 02 (camvid-unet). 360×480 frames; masks hold 0-10 for the 11 classes and 11
for void (unlabelled). 367 train, 101 val and 233 test images, in ``train/``, ``trainannot/``,
``val/``, ``valannot/``, ``test/``, ``testannot/``.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from helpers import config
from helpers.data import IMAGENET_STATS, DataBunch, ImageList, TensorLoader, decode_images, profile_subset

CODES = ["Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car", "Pedestrian",
         "Bicyclist", "Void"]
VOID = CODES.index("Void")
# the colours SegNet's tutorial uses for these classes (RGB), void black
PALETTE = torch.tensor([[128, 128, 128], [128, 0, 0], [192, 192, 128], [128, 64, 128], [60, 40, 222], [128, 128, 0],
                        [192, 128, 128], [64, 64, 128], [64, 0, 128], [64, 64, 0], [0, 128, 192], [0, 0, 0]]) / 255

def pairs(path: Path | str, split: str) -> tuple[ImageList, list[Path]]:
    """The frames of ``split`` and, for each, its mask in ``<split>annot/`` (same file name) (notebook 02)."""
    path = Path(path)
    images = ImageList.from_folder(path / split, convert_mode="RGB")
    masks = [path / f"{split}annot" / p.name for p in images.items]
    missing = [str(m) for m in masks if not m.is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} frame(s) in {path / split} have no mask: {', '.join(missing[:5])}")
    return images, masks


def decode_masks(masks: list[Path]) -> torch.Tensor:
    """Masks as one uint8 tensor (N, H, W) of class indices (notebook 02)."""
    y = decode_images(masks, convert_mode="L")[:, 0]
    if int(y.max()) > VOID:
        raise ValueError(f"mask values up to {int(y.max())}; CamVid masks hold 0..{VOID}")
    return y


def joint_transform(x: torch.Tensor, y: torch.Tensor, size: tuple[int, int], flip: bool,
                    crop: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Resize frames (bilinear, antialiased) and masks (nearest neighbour only) to ``size`` (notebook 02).

    With ``crop`` (the smallest side fraction, e.g. 0.7), each item is first cut to a random window
    of side fraction ``U(crop, 1)`` at a random position, the same window for frame and mask; with
    ``flip``, a random half of the batch is mirrored, frame and mask together.
    """
    if crop is not None:
        h, w = x.shape[-2:]
        xs, ys = [], []
        for xi, yi in zip(x, y):
            s = crop + (1 - crop) * torch.rand(()).item()
            ch, cw = max(1, round(h * s)), max(1, round(w * s))
            top, left = torch.randint(0, h - ch + 1, ()).item(), torch.randint(0, w - cw + 1, ()).item()
            xi, yi = _resize(xi[None, :, top:top + ch, left:left + cw], yi[None, top:top + ch, left:left + cw], size)
            xs.append(xi)
            ys.append(yi)
        x, y = torch.cat(xs), torch.cat(ys)
    else:
        x, y = _resize(x, y, size)
    if flip:
        which = torch.rand(len(x), device=x.device) < 0.5
        x = torch.where(which[:, None, None, None], x.flip(-1), x)
        y = torch.where(which[:, None, None], y.flip(-1), y)
    return x, y


def _resize(x: torch.Tensor, y: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    if tuple(x.shape[-2:]) == tuple(size):
        return x, y.long()
    x = F.interpolate(x, size, mode="bilinear", antialias=True, align_corners=False)
    y = F.interpolate(y[:, None].float(), size, mode="nearest")[:, 0].long()
    return x, y


class SegLoader(TensorLoader):
    """Batches of (normalised frames, long masks) cut from preloaded uint8 tensors; training loaders
    shuffle, drop the last partial batch and transform frame and mask jointly (notebook 02)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, bs: int, size: tuple[int, int], train: bool,
                 stats: tuple[torch.Tensor, torch.Tensor], device: torch.device | None = None,
                 max_batches: int | None = None, crop: float | None = None):
        super().__init__(x, y, bs, shuffle=train, device=device, drop_last=train, max_batches=max_batches)
        self.size, self.crop = tuple(size), crop
        self.stats = tuple(s.view(1, -1, 1, 1).to(self.device) for s in stats)

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Items ``idx`` as one batch, transformed as this loader does (notebook 02)."""
        idx = torch.as_tensor(idx)
        x = self.x[idx.to(self.x.device)].to(self.device, non_blocking=True).float().div_(255)
        y = self.y[idx.to(self.y.device)].long()
        x, y = joint_transform(x, y, self.size, flip=self.shuffle, crop=self.crop if self.shuffle else None)
        mean, std = self.stats
        return (x - mean) / std, y


def accuracy_no_void(pred: torch.Tensor, targ: torch.Tensor) -> torch.Tensor:
    """Pixel accuracy over the pixels that are not void, the lesson's ``acc_camvid`` (notebook 02).
    Void is left out by the target only: a pixel predicted void is a wrong prediction."""
    keep = targ != VOID
    return (pred.argmax(1)[keep] == targ[keep]).float().mean()


def confusion_matrix(pred: torch.Tensor, targ: torch.Tensor, n_classes: int = VOID) -> torch.Tensor:
    """``cm[t, p]`` = pixels of true class t predicted as p, over the pixels whose target is not void;
    shape ``(n_classes, n_classes + 1)`` (notebook 02).

    The last column counts the pixels predicted void (or any index >= ``n_classes``): they are wrong,
    as in ``accuracy_no_void``, and never credited to a class. So row ``t`` sums to the pixels of class
    ``t``, ``cm.diag().sum() / cm.sum()`` is ``accuracy_no_void``, and ``cm[:, :n_classes]`` is the
    square class-by-class part."""
    keep = targ != VOID
    t, p = targ[keep].long(), pred.argmax(1)[keep].long().clamp(max=n_classes)
    return torch.bincount(t * (n_classes + 1) + p, minlength=n_classes * (n_classes + 1)).view(n_classes, n_classes + 1)


@torch.no_grad()
def evaluate(learn, dl=None) -> torch.Tensor:
    """Confusion matrix (see ``confusion_matrix``) of ``learn.model`` over a loader (the validation set by
    default), accumulated batch by batch so no full-size predictions are kept (notebook 02). By
    default every validation frame counts, even when the loader caps its batches per epoch."""
    dl = dl or learn.data.valid_dl.full()
    learn.model.eval()
    cm = torch.zeros(VOID, VOID + 1, dtype=torch.long)
    for xb, yb in dl:
        with learn.autocast():
            pred = learn.model(xb)
        cm += confusion_matrix(pred.float(), yb).cpu()
    return cm


def iou_per_class(cm: torch.Tensor) -> torch.Tensor:
    """Intersection over union per class from a confusion matrix (square, or with the extra "predicted
    void" column of ``confusion_matrix``); NaN where a class never occurs (notebook 02). A pixel of
    class t predicted void counts against t's IoU (a miss) and towards no other class."""
    cm = cm.double()
    n = cm.shape[0]
    inter = cm.diag()
    union = cm[:, :n].sum(0) + cm.sum(1) - inter
    return torch.where(union > 0, inter / union.clamp(min=1), torch.full_like(inter, float("nan")))


def camvid_data(path: Path | str, size: tuple[int, int], bs: int, valid: str = "val",
                max_batches: int | None = None, valid_batches: int | None = None,
                crop: float | None = 0.7) -> DataBunch:
    """Train / ``valid`` loaders at ``size``, ImageNet-normalised (notebook 02).

    Training batches get a random crop (side fraction ``crop``..1) and flip, applied to frame and mask
    together. The profile may cap the training items; ``max_batches`` caps the training batches per
    epoch and ``valid_batches`` the validation batches scored after each epoch (spread over the set);
    ``evaluate`` always scores every validation frame.
    """
    prof = config.profile()
    tx, tmasks = pairs(path, "train")
    vx, vmasks = pairs(path, valid)
    keep = profile_subset(len(tx), prof.max_train_items)
    xt, yt = tx.subset(keep).decode(), decode_masks([tmasks[i] for i in keep])
    train = SegLoader(xt, yt, bs, size, True, IMAGENET_STATS, max_batches=max_batches, crop=crop)
    valid_dl = SegLoader(vx.decode(), decode_masks(vmasks), bs, size, False, IMAGENET_STATS,
                         max_batches=valid_batches)
    return DataBunch(train, valid_dl, CODES)  # data.resized(...) for progressive resizing
