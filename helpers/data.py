"""Image datasets for the notebooks: item list -> split -> labels -> transforms -> batches.

Introduced in notebook 01 (resnet-mnist). The steps mirror the lesson's data block API:

    il = ImageList.from_folder(path, convert_mode="L")      # item list
    sd = il.split_by_folder(train="training", valid="testing")
    ll = sd.label_from_folder()
    data = ll.databunch(bs=128, tfms=([rand_pad(3, 28)], [])).normalize()

Decoding tens of thousands of small PNGs every epoch costs more than training on them, so a split
is decoded once (in parallel, cached next to the data as a uint8 tensor) and batches are cut from
that tensor; augmentation runs on whole batches on the training device.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from helpers import config
from helpers.progress import progress_bar

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
# per-channel mean and std of ImageNet, for inputs of networks pretrained on it (notebook 02)
IMAGENET_STATS = (torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225]))


class ImageDecodeError(RuntimeError):
    """Raised when one or more image files cannot be decoded; names every bad path (notebook 01)."""


def open_image(path: Path | str, convert_mode: str = "RGB") -> torch.Tensor:
    """Read one image file as a float tensor (C, H, W) in [0, 1] (notebook 01)."""
    return torch.from_numpy(_read_uint8(Path(path), convert_mode)).float() / 255


def _read_uint8(path: Path, convert_mode: str) -> np.ndarray:
    with Image.open(path) as img:
        arr = np.array(img.convert(convert_mode), dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def _read_or_error(args: tuple[Path, str]) -> np.ndarray | str:
    path, mode = args
    try:
        return _read_uint8(path, mode)
    except Exception as exc:  # noqa: BLE001 - every decode failure is reported by path
        return f"{path}: {type(exc).__name__}: {exc}"


def read_all(reader: Callable[[tuple], np.ndarray | str], jobs: list[tuple], workers: int | None = None) -> list[np.ndarray]:
    """Run ``reader`` over ``jobs`` (in processes when there are many); a reader returns an array, or a
    string naming the path and the failure. If any fails, ``ImageDecodeError`` lists them all (notebook 01)."""
    workers = workers or min(config.cpu_count(), 8)
    desc = f"decoding {len(jobs):,} images"
    if workers > 1 and len(jobs) > 2000:
        with ProcessPoolExecutor(workers) as pool:
            results = list(progress_bar(pool.map(reader, jobs, chunksize=512), total=len(jobs), desc=desc))
    else:
        results = [reader(j) for j in progress_bar(jobs, total=len(jobs), desc=desc)]
    raise_failures([r for r in results if isinstance(r, str)], len(jobs), "decoded")
    return results


def raise_failures(bad: list[str], total: int, what: str) -> None:
    """Raise ``ImageDecodeError`` listing every failure (``"<path>: <error>"``, the first 20 shown) out of
    ``total`` images that could not be ``what`` (decoded, resized); nothing when ``bad`` is empty
    (notebook 01)."""
    if bad:
        shown = "\n  ".join(bad[:20]) + (f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else "")
        raise ImageDecodeError(f"{len(bad)} of {total} image(s) could not be {what}; remove or replace them:\n  {shown}")


def decode_images(paths: Sequence[Path], convert_mode: str = "RGB", workers: int | None = None) -> torch.Tensor:
    """Decode same-sized images into one uint8 tensor (N, C, H, W), in parallel (notebook 01).

    Every file is tried; if any fails, ``ImageDecodeError`` lists all the failures by path.
    """
    results = read_all(_read_or_error, [(Path(p), convert_mode) for p in paths], workers)
    shapes = {r.shape for r in results}
    if len(shapes) > 1:
        raise ImageDecodeError(f"images differ in size ({sorted(shapes)[:4]} ...); resize them first")
    return torch.from_numpy(np.stack(results)) if results else torch.empty(0, dtype=torch.uint8)


def _cache_file(root: Path, items: Sequence[Path], convert_mode: str) -> Path:
    key = hashlib.sha1(convert_mode.encode())
    for p in items:
        key.update(str(p.relative_to(root)).encode())
        key.update(str(p.stat().st_size).encode())
    return root / ".cache" / f"decoded-{key.hexdigest()[:16]}.pt"


@dataclass
class ImageList:
    """A list of image files under ``root``, opened with PIL's ``convert_mode`` (notebook 01)."""

    items: list[Path]
    root: Path
    convert_mode: str = "RGB"

    @classmethod
    def from_folder(cls, path: Path | str, convert_mode: str = "RGB",
                    extensions: Sequence[str] = IMAGE_EXTENSIONS) -> "ImageList":
        """Every image file below ``path``, in sorted order (notebook 01)."""
        path = Path(path)
        if not path.is_dir():
            raise FileNotFoundError(f"no such folder: {path}")
        exts = {e.lower() for e in extensions}
        items = sorted(p for p in path.rglob("*") if p.suffix.lower() in exts and ".cache" not in p.parts)
        if not items:
            raise FileNotFoundError(f"no image files ({', '.join(sorted(exts))}) below {path}")
        return cls(items, path, convert_mode)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> torch.Tensor:
        return open_image(self.items[i], self.convert_mode)

    def __repr__(self) -> str:
        return f"ImageList ({len(self)} items) from {self.root}: {', '.join(p.name for p in self.items[:3])}, ..."

    def subset(self, idxs: Sequence[int]) -> "ImageList":
        return ImageList([self.items[i] for i in idxs], self.root, self.convert_mode)

    def split_by_folder(self, train: str = "train", valid: str = "valid") -> "SplitData":
        """Split by the first folder below ``root``: ``train/...`` vs ``valid/...`` (notebook 01)."""
        parts = {train: [], valid: []}
        for i, p in enumerate(self.items):
            top = p.relative_to(self.root).parts[0]
            if top in parts:
                parts[top].append(i)
        for name, idxs in parts.items():
            if not idxs:
                raise FileNotFoundError(f"no images in {self.root / name}")
        return SplitData(self.subset(parts[train]), self.subset(parts[valid]))

    def decode(self) -> torch.Tensor:
        """All images as one uint8 tensor (N, C, H, W), cached on disk after the first call (notebook 01)."""
        cache = _cache_file(self.root, self.items, self.convert_mode)
        if cache.exists():
            try:
                x = torch.load(cache, weights_only=True)
                if len(x) == len(self):
                    return x
            except Exception:  # noqa: BLE001 - an unreadable cache is simply rebuilt
                pass
        x = decode_images(self.items, self.convert_mode)
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".tmp{os.getpid()}")
        torch.save(x, tmp)
        os.replace(tmp, cache)
        return x


@dataclass
class SplitData:
    """Training and validation ``ImageList``s (notebook 01)."""

    train: ImageList
    valid: ImageList

    def label_from_folder(self) -> "LabelLists":
        """Label each image with the name of the folder it sits in (notebook 01)."""
        classes = sorted({p.parent.name for p in self.train.items})
        index = {c: i for i, c in enumerate(classes)}

        def labels(il: ImageList) -> torch.Tensor:
            unknown = {p.parent.name for p in il.items} - index.keys()
            if unknown:
                raise ValueError(f"validation labels not seen in training: {sorted(unknown)}")
            return torch.tensor([index[p.parent.name] for p in il.items])

        return LabelLists(self.train, labels(self.train), self.valid, labels(self.valid), classes)


Transform = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class LabelLists:
    """Images with their class labels, for both splits (notebook 01)."""

    train_x: ImageList
    train_y: torch.Tensor
    valid_x: ImageList
    valid_y: torch.Tensor
    classes: list[str]

    def __repr__(self) -> str:
        return (f"LabelLists: {len(self.train_x)} train / {len(self.valid_x)} valid images, "
                f"{len(self.classes)} classes {self.classes}")

    def databunch(self, bs: int = 64, tfms: tuple[Sequence[Transform], Sequence[Transform]] = ((), ()),
                  device: torch.device | None = None) -> "DataBunch":
        """Decode both splits and wrap them in loaders; the profile may cap the item counts (notebook 01)."""
        prof, device = config.profile(), device or config.device()
        gen = torch.Generator().manual_seed(config.seed())
        t_idx = profile_subset(len(self.train_x), prof.max_train_items, gen)
        tx, ty = self.train_x.subset(t_idx), self.train_y[t_idx]
        train = TensorLoader(tx.decode(), ty, bs, shuffle=True, tfms=tfms[0], device=device, drop_last=True)
        valid = TensorLoader(self.valid_x.decode(), self.valid_y, bs * 2, shuffle=False, tfms=tfms[1], device=device)
        return DataBunch(train, valid, self.classes)


def profile_subset(n: int, cap: int | None, gen: torch.Generator | None = None) -> list[int]:
    """Indices of the items a profile keeps: all of them, or a random sorted ``cap`` of them, with a
    note saying so (notebook 01)."""
    if cap is None or n <= cap:
        return list(range(n))
    gen = gen or torch.Generator().manual_seed(config.seed())
    print(f"{config.profile().name} profile: using {cap:,} of {n:,} images")
    return torch.randperm(n, generator=gen)[:cap].sort().values.tolist()


def rand_pad(padding: int, size: int, mode: str = "constant") -> Transform:
    """Zero-pad each image by ``padding`` then take a random ``size`` x ``size`` crop, per image (notebook 01)."""

    def transform(x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x, (padding,) * 4, mode=mode)
        n = len(x)
        top = torch.randint(0, padded.shape[-2] - size + 1, (n, 1, 1), device=x.device)
        left = torch.randint(0, padded.shape[-1] - size + 1, (n, 1, 1), device=x.device)
        span = torch.arange(size, device=x.device)
        rows, cols = top + span[None, :, None], left + span[None, None, :]
        batch = torch.arange(n, device=x.device)[:, None, None]
        return padded[batch, :, rows, cols].permute(0, 3, 1, 2)  # (n, size, size, C) -> (n, C, size, size)

    transform.__name__ = f"rand_pad(padding={padding}, size={size})"
    return transform


class TensorLoader:
    """Batches cut from a preloaded uint8 tensor; transforms and normalisation act on whole batches (notebook 01).

    Yields ``(x, y)`` on ``device`` with ``x`` float. The images live on the device when it is a GPU,
    otherwise in (pinned when CUDA exists) host memory. A subclass may hold lists of per-item tensors
    instead (images of different sizes, notebook 05); its ``batch`` then makes them one batch.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, bs: int, shuffle: bool = False,
                 tfms: Sequence[Transform] = (), device: torch.device | None = None,
                 drop_last: bool = False, max_batches: int | None = None):
        self.device = device or config.device()
        on_device = self.device.type == "cuda" and isinstance(x, torch.Tensor)
        self.x = x.to(self.device) if on_device else x
        self.y = y.to(self.device) if isinstance(y, torch.Tensor) else y
        self.bs, self.shuffle, self.tfms, self.drop_last = bs, shuffle, list(tfms), drop_last
        self.max_batches = max_batches
        self.stats: tuple[torch.Tensor, torch.Tensor] | None = None

    def __len__(self) -> int:
        n = len(self.x) // self.bs if self.drop_last else -(-len(self.x) // self.bs)
        return config.n_batches(n, self.max_batches)

    def replace(self, **changes) -> "TensorLoader":
        """A copy of this loader with some settings changed (``bs``, ``max_batches``, a resizing loader's
        ``size``), sharing its decoded tensors: nothing is decoded again (notebook 02)."""
        unknown = [k for k in changes if k not in vars(self)]
        if unknown:
            raise AttributeError(f"{type(self).__name__} has no setting {unknown}")
        new = copy.copy(self)
        vars(new).update(changes)
        return new

    def full(self) -> "TensorLoader":
        """This loader without its own ``max_batches`` cap, e.g. to score every validation item
        after training on a capped loader (notebook 02)."""
        return self.replace(max_batches=None)

    @property
    def n_items(self) -> int:
        return len(self.x)

    def process(self, x: torch.Tensor, tfms: Sequence[Transform] | None = None) -> torch.Tensor:
        """uint8 batch -> float in [0, 1] -> transforms (this loader's, unless given) -> normalised."""
        x = x.to(self.device, non_blocking=True).float().div_(255)
        for tfm in self.tfms if tfms is None else tfms:
            x = tfm(x)
        if self.stats is not None:
            mean, std = self.stats
            x = (x - mean) / std
        return x

    def __iter__(self):
        n, used = len(self.x), len(self) * self.bs
        if self.shuffle:
            order = torch.randperm(n, device=getattr(self.x, "device", None))
        elif used < n:  # a capped validation pass: items spread evenly over the set, not just the first
            order = torch.linspace(0, n - 1, used).round().long()
        else:
            order = torch.arange(n)
        for b in range(len(self)):
            yield self.batch(order[b * self.bs:(b + 1) * self.bs])

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Items ``idx`` as one processed batch ``(x, y)`` (notebook 01)."""
        return self.process(self.x[idx]), self.y[idx.to(self.y.device)]


@dataclass
class DataBunch:
    """A training and a validation loader plus the class names (notebook 01)."""

    train_dl: TensorLoader
    valid_dl: TensorLoader
    classes: list[str] = field(default_factory=list)

    @property
    def c(self) -> int:
        return len(self.classes)

    @property
    def device(self) -> torch.device:
        return self.train_dl.device

    @property
    def stats(self):
        return self.train_dl.stats

    def __repr__(self) -> str:
        return (f"DataBunch: train {self.train_dl.n_items:,} items / {len(self.train_dl)} batches of "
                f"{self.train_dl.bs}; valid {self.valid_dl.n_items:,} items; classes {self.classes}")

    def normalize(self, stats: tuple[Sequence[float], Sequence[float]] | None = None) -> "DataBunch":
        """Normalise inputs per channel; without ``stats``, use one random training batch's (notebook 01)."""
        if stats is None:
            self.train_dl.stats = None
            x, _ = self.one_batch()
            dims = [0, 2, 3]
            mean, std = x.mean(dims), x.std(dims)
        else:
            mean, std = (torch.as_tensor(s, dtype=torch.float32) for s in stats)
        shaped = (mean.view(1, -1, 1, 1).to(self.device), std.view(1, -1, 1, 1).to(self.device))
        self.train_dl.stats = self.valid_dl.stats = shaped
        return self

    def denorm(self, x: torch.Tensor) -> torch.Tensor:
        """Undo ``normalize`` for display (notebook 01)."""
        if self.stats is None:
            return x
        mean, std = self.stats
        return x * std.to(x.device) + mean.to(x.device)

    def resized(self, size, bs: int | None = None, max_batches: int | None = None, tfms=None) -> "DataBunch":
        """The same decoded items served at another ``size`` (and batch size, training batches per epoch,
        and an image-pair loader's training transforms ``tfms``), for progressive resizing, when the
        loaders resize as they batch (CamVid's frames and masks, notebook 02; photo pairs, notebook 05).
        Nothing is decoded again (notebook 02)."""
        train, valid = self.train_dl, self.valid_dl
        extra = {} if tfms is None else {"augment": tfms}
        return dataclasses.replace(
            self, train_dl=train.replace(size=size, bs=bs or train.bs, max_batches=max_batches or train.max_batches,
                                         **extra),
            valid_dl=valid.replace(size=size, bs=bs or valid.bs))

    def one_batch(self, valid: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """The first batch of the training (or validation) loader (notebook 01)."""
        return next(iter(self.valid_dl if valid else self.train_dl))

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Raw float images in [0, 1] (N, C, H, W) -> normalised model input on the device (notebook 01)."""
        x = x.to(self.device)
        if self.stats is not None:
            mean, std = self.stats
            x = (x - mean) / std
        return x


# --- GAN data: noise in, real images out (notebook 04, wgan) ----------------------------------

def read_short_side(args: tuple[Path, str, int | None]) -> np.ndarray | str:
    """``(path, convert_mode, size)`` -> uint8 array (C, H, W), shrunk so the short side is ``size``
    (never enlarged; ``None`` keeps the size), or a string naming the path and the failure: a reader
    for ``read_all`` (notebook 04)."""
    path, mode, size = args
    try:
        with Image.open(path) as img:
            img = img.convert(mode)
            w, h = img.size
            if size is not None and min(w, h) > size:  # shrink so the short side is ``size``; never enlarge
                scale = size / min(w, h)
                img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
            arr = np.array(img, dtype=np.uint8)
    except Exception as exc:  # noqa: BLE001 - every decode failure is reported by path
        return f"{path}: {type(exc).__name__}: {exc}"
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def gan_images(il: ImageList, size: int) -> list[torch.Tensor] | torch.Tensor:
    """Images for a GAN, as uint8 (C, H, W), short side at most ``size`` (notebook 04).

    When the first image is already no larger than ``size`` on its short side (MNIST's 28 px for a
    32-px GAN) the list is decoded as one cached tensor, as ``ImageList.decode`` does. Otherwise
    (photos of any size) each image is shrunk so its short side is ``size`` and kept as its own
    tensor; ``GANLoader`` takes a random ``size`` x ``size`` crop of it in every batch.
    """
    with Image.open(il.items[0]) as first:
        small = min(first.size) <= size
    if small:
        return il.decode()
    results = read_all(read_short_side, [(p, il.convert_mode, size) for p in il.items])
    return [torch.from_numpy(np.ascontiguousarray(r)) for r in results]


class GANLoader:
    """Batches ``(noise, real)`` for a GAN without validation set (notebook 04).

    ``noise`` is ``(bs, noise_sz, 1, 1)`` standard normal; ``real`` is ``(bs, C, size, size)`` in
    [-1, 1]: a random ``size`` x ``size`` crop of each image, zero-padded (black) when an image is
    smaller than ``size`` (MNIST's 28 px become 32 with a 2-px black border).
    """

    def __init__(self, images: list[torch.Tensor] | torch.Tensor, size: int, bs: int = 64, noise_sz: int = 100,
                 device: torch.device | None = None, max_batches: int | None = None):
        self.images, self.size, self.bs, self.noise_sz = images, size, bs, noise_sz
        self.device = device or config.device()
        self.max_batches = max_batches
        self.uniform = isinstance(images, torch.Tensor)

    def __len__(self) -> int:
        return config.n_batches(len(self.images) // self.bs, self.max_batches)

    @property
    def n_items(self) -> int:
        return len(self.images)

    def _crop(self, img: torch.Tensor) -> torch.Tensor:
        s = self.size
        h, w = img.shape[-2:]
        if h < s or w < s:
            ph, pw = max(0, s - h), max(0, s - w)
            img = F.pad(img, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
            h, w = img.shape[-2:]
        top, left = int(torch.randint(0, h - s + 1, ())), int(torch.randint(0, w - s + 1, ()))
        return img[..., top:top + s, left:left + s]

    def real_batch(self, idx: torch.Tensor) -> torch.Tensor:
        """Images ``idx`` as a float batch in [-1, 1] on the device."""
        if self.uniform and tuple(self.images.shape[-2:]) == (self.size, self.size):
            x = self.images[idx]
        else:
            x = torch.stack([self._crop(self.images[int(i)]) for i in idx])
        return x.to(self.device, non_blocking=True).float().div_(127.5).sub_(1)

    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` noise vectors shaped for ``basic_generator``."""
        z = torch.randn(n, self.noise_sz, 1, 1, generator=generator)
        return z.to(self.device)

    def __iter__(self):
        order = torch.randperm(len(self.images))
        for b in range(len(self)):
            idx = order[b * self.bs:(b + 1) * self.bs]
            yield self.noise(len(idx)), self.real_batch(idx)


def gan_databunch(il: ImageList, size: int, bs: int = 64, noise_sz: int = 100,
                  device: torch.device | None = None, max_batches: int | None = None) -> GANLoader:
    """The lesson's ``GANItemList ... .split_none() ... .databunch(bs)`` for any folder of images:
    noise as input, real images in [-1, 1] as target, no validation set (notebook 04). The profile's
    cap on training items applies; ``max_batches`` caps the batches per epoch."""
    il = il.subset(profile_subset(len(il), config.profile().max_train_items))
    return GANLoader(gan_images(il, size), size, bs, noise_sz, device, max_batches)
