"""Image datasets: item list -> split -> labels -> transforms -> batches, as the lesson's data block API. Introduced in
notebook 01 (resnet-mnist)::

    sd = ImageList.from_folder(path, convert_mode="L").split_by_folder(train="training", valid="testing")
    data = sd.label_from_folder().databunch(bs=128, tfms=([rand_pad(3, 28)], [])).normalize()

A split is decoded once (cached as a uint8 tensor) and batches are cut from it, augmented on the training device.
"""

import copy
import dataclasses
import hashlib
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from helpers import config
from helpers.files import atomic_write
from helpers.photos import ImageDecodeError, PhotoStack, random_squares, read_image  # noqa: F401 (ImageDecodeError: public)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
# per-channel mean and std of ImageNet, for inputs of networks pretrained on it (notebook 02)
IMAGENET_STATS = (torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225]))
Transform = Callable[[torch.Tensor], torch.Tensor]  # one batch (N, C, H, W) in, one out


def normalize(x: torch.Tensor, stats: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
    """``(x - mean) / std`` per channel of a batch (N, C, H, W); ``stats`` None leaves ``x`` (notebook 01)."""
    if stats is None:
        return x
    mean, std = (s.to(x.device).view(1, -1, 1, 1) for s in stats)
    return (x - mean) / std


def spread(n: int, k: int) -> torch.Tensor:
    """``k`` of ``n`` item indices spread evenly, both ends included (notebook 01)."""
    return torch.linspace(0, n - 1, k).round().long()


def cached(root: Path, items: Sequence[Path], tag: str, build: Callable[[], object]) -> object:
    """``build()``'s result, cached under ``<root>/.cache/`` keyed by the items' names and sizes and ``tag``; an
    unreadable cache is rebuilt (notebook 01)."""
    listing = "".join(f"{p.relative_to(root)}{p.stat().st_size}" for p in items)
    path = root / ".cache" / f"decoded-{hashlib.sha1((tag + listing).encode()).hexdigest()[:16]}.pt"
    if path.exists():
        with suppress(Exception):  # an unreadable cache is simply rebuilt
            return torch.load(path, weights_only=True)
    value = build()
    atomic_write(path, lambda tmp: torch.save(value, tmp))
    return value


@dataclass
class ImageList:
    """A list of image files under ``root``; item ``i`` is opened with PIL's ``convert_mode`` as a float tensor
    (C, H, W) in [0, 1] (notebook 01)."""

    items: list[Path]
    root: Path
    convert_mode: str = "RGB"

    @classmethod
    def from_folder(cls, path: Path | str, convert_mode: str = "RGB") -> "ImageList":
        """Every image file below ``path`` (``IMAGE_EXTENSIONS``), in sorted order (notebook 01)."""
        path = Path(path)
        if not path.is_dir():
            raise FileNotFoundError(f"no such folder: {path}")
        items = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and ".cache" not in p.parts)
        if not items:
            raise FileNotFoundError(f"no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}) below {path}")
        return cls(items, path, convert_mode)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.from_numpy(read_image(self.items[i], self.convert_mode)).float() / 255

    def __repr__(self) -> str:
        return f"ImageList ({len(self)} items) from {self.root}: {', '.join(p.name for p in self.items[:3])}, ..."

    def subset(self, idxs: Sequence[int]) -> "ImageList":
        return ImageList([self.items[i] for i in idxs], self.root, self.convert_mode)

    def split_by_folder(self, train: str = "train", valid: str = "valid") -> "SplitData":
        """Split by the first folder below ``root``: ``train/...`` vs ``valid/...`` (notebook 01)."""
        tops = [p.relative_to(self.root).parts[0] for p in self.items]
        parts = {name: [i for i, top in enumerate(tops) if top == name] for name in (train, valid)}
        if missing := [name for name, idxs in parts.items() if not idxs]:
            raise FileNotFoundError(f"no images in {self.root / missing[0]}")
        return SplitData(self.subset(parts[train]), self.subset(parts[valid]))

    def decode(self) -> torch.Tensor:
        """All images (one shared size) as a uint8 tensor (N, C, H, W), decoded in parallel, cached (notebook 01)."""
        def build() -> torch.Tensor:
            stack = PhotoStack.decode(self.items, self.convert_mode)
            if len({tuple(s) for s in stack.sizes.tolist()}) > 1:
                raise ImageDecodeError(f"images below {self.root} differ in size ({stack.sizes.unique(dim=0)[:4].tolist()} "
                                       f"...); resize them first")
            return stack.data.transpose(-1, -2) if bool(stack.transposed.any()) else stack.data
        return cached(self.root, self.items, self.convert_mode, build)


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
    """Indices the profile keeps: all, or a random sorted ``cap``, with a note saying so (notebook 01)."""
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
    """Batches cut from a preloaded uint8 tensor (on the GPU if any), transformed and normalised on ``device``
    (notebook 01). Subclasses hold other stores (notebooks 02, 04, 05)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, bs: int, shuffle: bool = False, tfms: Sequence[Transform] = (),
                 device: torch.device | None = None, drop_last: bool = False, max_batches: int | None = None):
        self.device = device or config.device()
        self.x = x.to(self.device) if self.device.type == "cuda" and isinstance(x, torch.Tensor) else x
        self.y = y.to(self.device) if isinstance(y, torch.Tensor) else y
        self.bs, self.shuffle, self.tfms, self.drop_last = bs, shuffle, list(tfms), drop_last
        self.max_batches, self.stats = max_batches, None  # stats: (mean, std) per channel, set by normalize()

    def __len__(self) -> int:
        n = len(self.x) // self.bs if self.drop_last else -(-len(self.x) // self.bs)
        return config.n_batches(n, self.max_batches)

    def replace(self, **changes) -> "TensorLoader":
        """A copy with ``bs``, ``max_batches`` or (resizing loaders) ``size`` changed, sharing tensors (notebook 02)."""
        unknown = [k for k in changes if k not in vars(self)]
        if unknown:
            raise AttributeError(f"{type(self).__name__} has no setting {unknown}")
        new = copy.copy(self)
        vars(new).update(changes)
        return new

    def full(self) -> "TensorLoader":
        """This loader without its ``max_batches`` cap (notebook 02)."""
        return self.replace(max_batches=None)

    @property
    def n_items(self) -> int:
        return len(self.x)

    def process(self, x: torch.Tensor, tfms: Sequence[Transform] | None = None) -> torch.Tensor:
        """uint8 batch -> float in [0, 1] -> transforms (this loader's, unless given) -> normalised."""
        x = x.to(self.device, non_blocking=True).float().div_(255)
        for tfm in self.tfms if tfms is None else tfms:
            x = tfm(x)
        return normalize(x, self.stats)

    def indices(self) -> torch.Tensor:
        """The items one pass yields: all in order, or for a capped unshuffled pass ``spread`` ones (notebook 01)."""
        n, used = len(self.x), min(len(self.x), len(self) * self.bs)
        return spread(n, used) if used < n else torch.arange(n)

    def __iter__(self):
        order = torch.randperm(len(self.x), device=getattr(self.x, "device", None)) if self.shuffle else self.indices()
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
            mean, std = x.mean([0, 2, 3]), x.std([0, 2, 3])
        else:
            mean, std = (torch.as_tensor(s, dtype=torch.float32) for s in stats)
        self.train_dl.stats = self.valid_dl.stats = (mean.to(self.device), std.to(self.device))
        return self

    def denorm(self, x: torch.Tensor) -> torch.Tensor:
        """Undo ``normalize`` for display (notebook 01)."""
        if self.stats is None:
            return x
        mean, std = (s.to(x.device).view(1, -1, 1, 1) for s in self.stats)
        return x * std + mean

    def resized(self, size, bs: int | None = None, max_batches: int | None = None, tfms=None) -> "DataBunch":
        """The same decoded items at another ``size`` (and ``bs``, ``max_batches``, ``tfms``) (notebooks 02, 05)."""
        train, valid = self.train_dl, self.valid_dl
        extra = {} if tfms is None else {"augment": tfms}
        train = train.replace(size=size, bs=bs or train.bs, max_batches=max_batches or train.max_batches, **extra)
        return dataclasses.replace(self, train_dl=train, valid_dl=valid.replace(size=size, bs=bs or valid.bs))

    def one_batch(self, valid: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """The first batch of the training (or validation) loader (notebook 01)."""
        return next(iter(self.valid_dl if valid else self.train_dl))

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Raw float images in [0, 1] (N, C, H, W) -> normalised model input on the device (notebook 01)."""
        return normalize(x.to(self.device), self.stats)


def gan_images(il: ImageList, size: int) -> PhotoStack:
    """A GAN's real images as a ``PhotoStack``, short side at most ``size`` (JPEGs drafted), cached (notebook 04)."""
    def build() -> dict:  # the stack's fields, saved as a dict of tensors
        return vars(PhotoStack.decode(il.items, il.convert_mode, short_side=size, draft=True))
    return PhotoStack(**cached(il.root, il.items, f"{il.convert_mode}-gan-{size}", build))


class GANLoader(TensorLoader):
    """Shuffled batches ``(noise, real)`` (notebook 04): noise (bs, noise_sz, 1, 1), and a random ``size`` square of
    each image in [-1, 1] (``random_squares``), black-padded if smaller; the last partial batch is dropped."""

    def __init__(self, images: PhotoStack, size: int, bs: int = 64, noise_sz: int = 100,
                 device: torch.device | None = None, max_batches: int | None = None):
        super().__init__(images, None, bs, shuffle=True, device=device, drop_last=True, max_batches=max_batches)
        self.x = images.to(self.device) if self.device.type == "cuda" else images  # the images, a PhotoStack
        self.size, self.noise_sz = size, noise_sz

    def real_batch(self, idx: torch.Tensor) -> torch.Tensor:
        """Images ``idx`` as a float batch in [-1, 1] on the device."""
        return random_squares(self.x, idx, self.size).to(self.device, non_blocking=True).float().div_(127.5).sub_(1)

    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` noise vectors shaped for ``basic_generator``."""
        return torch.randn(n, self.noise_sz, 1, 1, generator=generator).to(self.device)

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(noise, real)`` for items ``idx``: the noise is drawn first."""
        return self.noise(len(idx)), self.real_batch(idx)


def gan_databunch(il: ImageList, size: int, bs: int = 64, noise_sz: int = 100,
                  device: torch.device | None = None, max_batches: int | None = None) -> GANLoader:
    """The lesson's ``GANItemList ... .split_none() ... .databunch(bs)``: noise in, real images in [-1, 1] out, no
    validation set, the profile's cap applied; ``max_batches`` caps the batches per epoch (notebook 04)."""
    il = il.subset(profile_subset(len(il), config.profile().max_train_items))
    return GANLoader(gan_images(il, size), size, bs, noise_sz, device, max_batches)
