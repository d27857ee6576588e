"""CamVid as SegNet published it (notebook 02): 360×480 frames in ``train/``, ``val/``, ``test/`` (367, 101, 233), masks
(0-10 the 11 classes, 11 void) in ``trainannot/``, ``valannot/``, ``testannot/``; joint transforms, loaders."""

from pathlib import Path

import torch
import torch.nn.functional as F

from helpers import config
from helpers.data import IMAGENET_STATS, DataBunch, ImageList, TensorLoader, normalize, profile_subset
from helpers.photos import PhotoStack

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
    y = PhotoStack.decode(masks, "L").data[:, 0]
    if int(y.max()) > VOID:
        raise ValueError(f"mask values up to {int(y.max())}; CamVid masks hold 0..{VOID}")
    return y


def joint_transform(x: torch.Tensor, y: torch.Tensor, size: tuple[int, int], flip: bool,
                    crop: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Resize frames (bilinear, antialiased) and masks (nearest) to ``size`` (notebook 02), after, with ``crop``, one
    random window of side fraction ``U(crop, 1)``; ``flip`` mirrors a random half of the batch."""
    if crop is not None:
        h, w = x.shape[-2:]
        out = []
        for xi, yi in zip(x, y):
            s = crop + (1 - crop) * torch.rand(()).item()
            ch, cw = max(1, round(h * s)), max(1, round(w * s))
            top, left = torch.randint(0, h - ch + 1, ()).item(), torch.randint(0, w - cw + 1, ()).item()
            out.append(_resize(xi[None, :, top:top + ch, left:left + cw], yi[None, top:top + ch, left:left + cw], size))
        x, y = torch.cat([xi for xi, _ in out]), torch.cat([yi for _, yi in out])
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
    """Batches of (ImageNet-normalised frames, long masks) cut from preloaded uint8 tensors; training loaders
    shuffle, drop the last partial batch and transform frame and mask jointly (notebook 02)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, bs: int, size: tuple[int, int], train: bool,
                 device: torch.device | None = None, max_batches: int | None = None, crop: float | None = None):
        super().__init__(x, y, bs, shuffle=train, device=device, drop_last=train, max_batches=max_batches)
        self.size, self.crop, self.stats = tuple(size), crop, IMAGENET_STATS

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Items ``idx`` as one batch, transformed as this loader does (notebook 02)."""
        idx = torch.as_tensor(idx)
        x = self.x[idx.to(self.x.device)].to(self.device, non_blocking=True).float().div_(255)
        y = self.y[idx.to(self.y.device)].long()
        x, y = joint_transform(x, y, self.size, flip=self.shuffle, crop=self.crop if self.shuffle else None)
        return normalize(x, self.stats), y


def camvid_data(path: Path | str, size: tuple[int, int], bs: int, valid: str = "val", max_batches: int | None = None,
                valid_batches: int | None = None, crop: float | None = 0.7) -> DataBunch:
    """Train / ``valid`` loaders at ``size``, ImageNet-normalised, training batches randomly cropped (``crop``) and
    flipped (notebook 02); ``max_batches`` / ``valid_batches`` cap the batches per epoch (validation: spread)."""
    prof = config.profile()
    (tx, tmasks), (vx, vmasks) = pairs(path, "train"), pairs(path, valid)
    keep = profile_subset(len(tx), prof.max_train_items)
    xt, yt = tx.subset(keep).decode(), decode_masks([tmasks[i] for i in keep])
    train = SegLoader(xt, yt, bs, size, True, max_batches=max_batches, crop=crop)
    valid_dl = SegLoader(vx.decode(), decode_masks(vmasks), bs, size, False, max_batches=valid_batches)
    return DataBunch(train, valid_dl, CODES)  # data.resized(...) for progressive resizing
