"""Image-to-image data: (input, target) pairs of photos, batched with joint transforms; the critic's data. Introduced in
notebook 05 (superres); notebooks 03 (superres-gan) and 07 (deoldify) reuse it::

    data = image_pair_data(path_lr, path_hr, size=128, bs=32, tfms=get_transforms(max_zoom=2.))
"""

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from helpers import config
from helpers.augment import NO_AUGMENT, Augment, Params, center_boxes, cut, lighting
from helpers.data import IMAGENET_STATS, DataBunch, ImageList, TensorLoader, normalize, profile_subset
from helpers.files import building
from helpers.photos import PhotoStack
from helpers.progress import progress_bar


def get_transforms(max_zoom: float = 1.1, max_rotate: float = 10.0, max_warp: float = 0.2,
                   max_lighting: float = 0.2, p_affine: float = 0.75, p_lighting: float = 0.75,
                   do_flip: bool = True, min_zoom: float = 1.0) -> Augment:
    """fastai v1's ``get_transforms`` defaults as an ``helpers.augment.Augment`` (notebook 05); ``min_zoom`` above 1
    zooms every window in at least that much (notebook 03)."""
    return Augment(max_zoom=max_zoom, p_zoom=p_affine, min_zoom=min_zoom, do_flip=do_flip, max_rotate=max_rotate,
                   max_warp=max_warp, max_lighting=max_lighting, p_affine=p_affine, p_lighting=p_lighting)


def image_pairs(path_x: Path | str, path_y: Path | str) -> tuple[list[Path], list[Path]]:
    """Every image below ``path_x`` and the same relative path below ``path_y`` (notebook 05); a missing one raises."""
    path_x, path_y = Path(path_x), Path(path_y)
    xs = ImageList.from_folder(path_x).items
    ys = [path_y / p.relative_to(path_x) for p in xs]
    missing = [str(p.relative_to(path_x)) for p, q in zip(xs, ys) if not q.is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} of {len(xs)} image(s) in {path_x} have no file of the same name in "
                                f"{path_y}: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    return xs, ys


def split_by_rand_pct(n: int, valid_pct: float = 0.1, seed: int = 42) -> tuple[list[int], list[int]]:
    """(train, valid) sorted indices, drawn as fastai's ``split_by_rand_pct(valid_pct, seed)``; at least one valid item
    when ``n > 1`` (a smoke run's handful of photos) (notebook 05)."""
    cut = max(int(valid_pct * n), int(valid_pct > 0 and n > 1))
    valid = sorted(np.random.RandomState(seed).permutation(n)[:cut].tolist())
    return sorted(set(range(n)) - set(valid)), valid


class ImagePairLoader(TensorLoader):
    """Batches of normalised (input, target) cut from two ``PhotoStack``s of the same photos; training loaders shuffle,
    drop the last partial batch and apply ``tfms``, validation loaders cut the centred square (notebook 05)."""

    def __init__(self, x: PhotoStack, y: PhotoStack, bs: int, size: int, train: bool,
                 stats: tuple[torch.Tensor, torch.Tensor] = IMAGENET_STATS, device: torch.device | None = None,
                 max_batches: int | None = None, tfms: Augment = NO_AUGMENT, names: list[str] | None = None):
        if len(x) != len(y):
            raise ValueError(f"{len(x)} inputs but {len(y)} targets")
        super().__init__(x, y, bs, shuffle=train, device=device, drop_last=train, max_batches=max_batches)
        self.size, self.augment, self.stats = size, tfms, stats
        self.names = names  # each item's file name relative to its folder, where known (save_preds)

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Items ``idx`` as one batch: random windows and transforms in training, else centred squares (notebook 05)."""
        sizes = self.x.sizes[torch.as_tensor(idx).cpu()]
        params = self.augment.sample(sizes) if self.shuffle else Params.plain(center_boxes(sizes))
        x, y = (lighting(cut(s, idx, params, self.size).to(self.device) / 255, params) for s in (self.x, self.y))
        return normalize(x, self.stats), normalize(y, self.stats)

    @property
    def n_ordered(self) -> int:
        """How many batches ``in_order`` yields (notebook 05)."""
        return config.n_batches(-(-self.n_items // self.bs), self.max_batches)

    def in_order(self):
        """``(idx, (x, y))`` per batch in item order, the last partial, augmented only if training (notebook 05)."""
        for b in range(self.n_ordered):
            idx = torch.arange(b * self.bs, min((b + 1) * self.bs, self.n_items))
            yield idx, self.batch(idx)

    def subset(self, idx: torch.Tensor) -> "ImagePairLoader":
        """This loader with items ``idx`` only, e.g. one half of the validation photos (notebook 07)."""
        idx = torch.as_tensor(idx).long()
        names = None if self.names is None else [self.names[i] for i in idx.tolist()]
        return self.replace(x=self.x.take(idx), y=self.y.take(idx), names=names)

    def region_masks(self, idx: torch.Tensor, regions: dict[str, tuple[int, int, int, int]]) -> torch.Tensor:
        """(n, size, size) bool: validation-window pixels inside each item's region (left, top, right, bottom, input
        pixels) from ``regions`` by name (e.g. ``helpers.crappify.stamp_boxes``); all False without (notebook 03)."""
        t = (torch.arange(self.size) + 0.5) / self.size
        masks = []
        for i in torch.as_tensor(idx).tolist():
            h, w = self.x.sizes[i].tolist()
            s = min(h, w)
            left, top, right, bottom = regions.get(self.names[i], (0, 0, 0, 0))
            cols, rows = (w - s) // 2 + t * s, (h - s) // 2 + t * s
            masks.append(((rows >= top) & (rows < bottom))[:, None] & ((cols >= left) & (cols < right))[None, :])
        return torch.stack(masks)

    def inputs(self, idx: torch.Tensor) -> list[torch.Tensor]:
        """The validation windows of items ``idx`` at the inputs' resolution, float in [0, 1] (notebook 05)."""
        return [center_square(self.x.item(i)).float() / 255 for i in torch.as_tensor(idx).tolist()]


def center_square(img: torch.Tensor) -> torch.Tensor:
    """The centred square of an image (C, H, W), on whole pixels (notebook 05)."""
    s = min(img.shape[-2:])
    top, left = (img.shape[-2] - s) // 2, (img.shape[-1] - s) // 2
    return img[:, top:top + s, left:left + s]


class ImagePairData(DataBunch):
    """Loaders of (input, target) image pairs; ``resized`` serves them at another size (notebook 05)."""

    def __repr__(self) -> str:
        t, v = self.train_dl, self.valid_dl
        return (f"ImagePairData: train {t.n_items:,} pairs / {len(t)} batches of {t.bs}; valid {v.n_items:,} "
                f"pairs; {t.size}x{t.size} px")


def decode_at(paths: Sequence[Path], short_side: int | None = None) -> list[torch.Tensor]:
    """RGB uint8 photos (3, H, W), shorter side at most ``short_side`` (None: as is); failures named (notebook 05)."""
    stack = PhotoStack.decode(paths, "RGB", short_side)
    return [stack.item(i).clone() for i in range(len(stack))]


def image_pair_data(path_x: Path | str, path_y: Path | str, size: int, bs: int, valid_pct: float = 0.1,
                    seed: int = 42, hr_size: int | None = None, x_size: int | None = None, tfms: Augment | None = None,
                    max_batches: int | None = None, valid_batches: int | None = None,
                    device: torch.device | None = None) -> ImagePairData:
    """The lesson's ``ImageImageList...split_by_rand_pct(valid_pct, seed).label_from_func(...)`` with ``transform(tfms,
    size, tfm_y=True)`` (default ``get_transforms(max_zoom=2.)``), ImageNet-normalised (notebook 05). Targets decoded at
    short side <= ``hr_size`` (default ``max_zoom * size``), inputs <= ``x_size``."""
    tfms = tfms or get_transforms(max_zoom=2.0)
    device = device or config.device()
    xs, ys = image_pairs(path_x, path_y)
    train_idx, valid_idx = split_by_rand_pct(len(xs), valid_pct, seed)
    train_idx = [train_idx[i] for i in profile_subset(len(train_idx), config.profile().max_train_items)]
    hr = hr_size or round(max(1.0, tfms.max_zoom) * size)

    def loader(idx: list[int], train: bool) -> ImagePairLoader:
        x = PhotoStack.decode([xs[i] for i in idx], "RGB", x_size, device=device)
        y = PhotoStack.decode([ys[i] for i in idx], "RGB", hr, device=device)
        return ImagePairLoader(x, y, bs, size, train, IMAGENET_STATS, device, max_batches if train else valid_batches,
                               tfms, names=[str(xs[i].relative_to(path_x)) for i in idx])

    return ImagePairData(loader(train_idx, True), loader(valid_idx, False))


@torch.no_grad()
def upscale(learn, img: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """A photo (3, H, W) in [0, 1] enlarged ``scale`` times (bilinear, to a multiple of 32) and through the model;
    (bilinear input, output) on the CPU (notebook 05)."""
    h, w = (max(1, int(scale * s / 32 + 0.5)) * 32 for s in img.shape[-2:])  # nearest multiple of 32
    x = torch.nn.functional.interpolate(img[None].float(), (h, w), mode="bilinear", align_corners=False).clamp(0, 1)
    return x[0], learn.predict_batch(learn.data.prepare(x), denorm=True)[0].cpu()


@torch.no_grad()
def save_preds(learn, dest: Path | str, dl: ImagePairLoader | None = None, quality: int = 95,
               max_batches: int | None = None) -> Path:
    """The lesson's ``save_preds``: the generator's output for ``dl``'s items (its first ``max_batches``), centred
    squares, saved by name in ``dest`` (JPEG ``quality``) via a temporary folder (notebook 03)."""
    dl = (learn.data.train_dl if dl is None else dl).replace(shuffle=False, drop_last=False, max_batches=max_batches)
    if dl.names is None:
        raise ValueError("save_preds needs a loader that knows its file names (image_pair_data makes them)")
    with building(dest) as new:
        for idx, (x, _) in progress_bar(dl.in_order(), total=dl.n_ordered, desc="saving predictions"):
            for i, img in zip(idx.tolist(), learn.predict_batch(x, denorm=True)):
                path = new / dl.names[i]
                path.parent.mkdir(parents=True, exist_ok=True)
                arr = (img * 255).round().byte().permute(1, 2, 0).cpu().numpy()
                Image.fromarray(arr).save(path, quality=quality)
    return Path(dest)


class CriticLoader(ImagePairLoader):
    """Batches of (pictures, labels): ``bs`` photos' generated pictures (0), then their real ones (1) (notebook 03)."""

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fakes, reals = super().batch(idx)
        y = torch.cat([torch.zeros(len(fakes)), torch.ones(len(reals))]).to(fakes.device)
        return torch.cat([fakes, reals]), y


def critic_data(path_gen: Path | str, path_real: Path | str, size: int, bs: int, valid_pct: float = 0.1,
                seed: int = 42, tfms: Augment | None = None, max_batches: int | None = None,
                valid_batches: int | None = None, device: torch.device | None = None) -> ImagePairData:
    """The lesson's ``get_crit_data([name_gen, 'images'], bs, size)`` split by photo (notebook 03): pictures of
    ``path_gen`` (label 0) with the same-named photos of ``path_real`` (label 1), batched by ``CriticLoader``."""
    if bs < 2 or bs % 2:
        raise ValueError(f"bs must be even (half generated, half real), got {bs}")
    tfms = tfms or get_transforms(max_zoom=2.0)
    device = device or config.device()
    fakes, reals = image_pairs(path_gen, path_real)
    train_idx, valid_idx = split_by_rand_pct(len(fakes), valid_pct, seed)
    hr = round(max(2.0, tfms.max_zoom) * size)

    def loader(idx: list[int], train: bool) -> CriticLoader:
        squares = [center_square(p) for p in decode_at([reals[i] for i in idx], hr)]
        x, y = PhotoStack.decode([fakes[i] for i in idx], device=device), PhotoStack.from_list(squares, device)
        return CriticLoader(x, y, bs // 2, size, train, IMAGENET_STATS, device, max_batches if train else valid_batches,
                            tfms, names=[str(fakes[i].relative_to(path_gen)) for i in idx])

    return ImagePairData(loader(train_idx, True), loader(valid_idx, False), [Path(path_gen).name, Path(path_real).name])
