"""Image-to-image data: resized copies of a photo folder, (input, target) pairs, joint transforms.

Introduced in notebook 05 (superres); notebooks 03 (superres-gan) and 07 (deoldify) reuse it. The
steps follow the lesson::

    resize_folder(path_hr, path_lr, 96)                       # the lesson's resize_one, in parallel
    data = image_pair_data(path_lr, path_hr, size=128, bs=32)  # x: low-res file, y: same name in path_hr

Photos vary in size, so each is decoded once at its working size (inputs as they are, targets with
their shorter side at most ``hr_size``) and kept in memory as its own uint8 tensor. A batch picks one
square window per photo, in coordinates relative to the photo, and cuts it from input and target
alike: ``torchvision.ops.roi_align`` resamples both to ``size`` x ``size`` (bilinear when enlarging,
averaging the pixels when shrinking), so the input (96 px on its short side) is upsampled and the
target downsampled from the same place. Training windows are random (position, zoom up to
``max_zoom``, horizontal flip); validation windows are the centred square. Input and target are both
normalised with ImageNet statistics (the lesson's ``normalize(imagenet_stats, do_y=True)``);
``data.denorm`` undoes it for display.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from itertools import repeat
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torchvision.ops import roi_align

from helpers import config
from helpers.data import (IMAGENET_STATS, DataBunch, ImageList, TensorLoader, profile_subset, raise_failures,
                          read_all, read_short_side)
from helpers.progress import progress_bar

MARKER = ".resize_folder.json"  # derive_folder writes it last into a resized copy: no marker, no reuse


# --- derived folders: resized copies (the lesson's resize_one), crappified copies --------------------
def short_side_size(w: int, h: int, size: int) -> tuple[int, int]:
    """(width, height) with the shorter side ``size`` and the aspect kept, the longer side rounded: the
    lesson's ``resize_to(img, size, use_min=True)`` (notebook 05)."""
    scale = size / min(w, h)
    return (size, round(h * scale)) if w <= h else (round(w * scale), size)


def resize_one(src: Path | str, dest: Path | str, size: int, quality: int = 60) -> None:
    """Save ``src`` as ``dest`` with its shorter side ``size`` px (aspect kept, enlarged if smaller),
    bilinear, RGB; JPEG files at ``quality`` (notebook 05)."""
    with Image.open(src) as img:
        img.convert("RGB").resize(short_side_size(*img.size, size), Image.BILINEAR).save(dest, quality=quality)


def _make_or_error(make_one: Callable[[Path, Path], object], src: Path, dest: Path) -> str | None:
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        make_one(src, dest)
        return None
    except Exception as exc:  # noqa: BLE001 - every failure is reported by path
        return f"{src}: {type(exc).__name__}: {exc}"


def derive_folder(src: Path | str, dest: Path | str, make_one: Callable[[Path, Path], object], params: dict,
                  maker: str, desc: str, what: str, workers: int | None = None) -> Path:
    """``make_one(src_file, dest_file)`` for every image below ``src``, under the same relative paths in
    ``dest``; returns ``dest``. The machinery of ``resize_folder`` (notebook 05) and ``crappify_folder``
    (notebook 03).

    Built in parallel threads with a progress bar (``desc``), in a temporary folder beside ``dest`` that
    is renamed into place only when every image is done, with a marker file ``.<maker>.json`` holding
    ``params``, the source folder and the list of source files. ``dest`` is reused when its marker
    matches; built by ``maker`` with other parameters, it is rebuilt; any other existing folder is an
    error. An interrupted build leaves no ``dest`` behind, so it is never reused. Images that fail are
    all reported by path (``ImageDecodeError``: "could not be ``what``").
    """
    src, dest = Path(src), Path(dest)
    items = ImageList.from_folder(src).items
    names = hashlib.sha1()
    for p in items:
        names.update(f"{p.relative_to(src)}:{p.stat().st_size}\n".encode())
    params = {"source": os.path.relpath(src, dest.parent), **params, "files": len(items),
              "files_sha1": names.hexdigest()}
    marker = f".{maker}.json"
    if dest.exists():
        if not (dest / marker).is_file():
            raise FileExistsError(f"{dest} exists but was not made by {maker} (no {marker}); "
                                  f"remove it or choose another folder")
        if json.loads((dest / marker).read_text()) == params:
            return dest
        print(f"{dest.name}: made with other parameters or from other files; rebuilding")
    with building(dest) as new:
        pool = ThreadPoolExecutor(workers or config.cpu_count())  # PIL decodes, resizes and encodes outside the GIL
        try:
            jobs = pool.map(_make_or_error, repeat(make_one), items, [new / p.relative_to(src) for p in items])
            results = list(progress_bar(jobs, total=len(items), desc=desc))
        finally:
            pool.shutdown(cancel_futures=True)  # interrupted: the photos not yet started are dropped
        raise_failures([r for r in results if r is not None], len(items), what)
        (new / marker).write_text(json.dumps(params, indent=1) + "\n")
    return dest


@contextmanager
def building(dest: Path | str):
    """Yields a fresh temporary folder beside ``dest``; when the block ends without an error the folder
    replaces ``dest`` (an older ``dest`` goes), otherwise it is removed and ``dest`` stays as it was
    (notebook 05). Nothing half-written is ever found at ``dest``."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".tmp-{dest.name}-", dir=dest.parent))
    try:
        new = work / dest.name
        new.mkdir()
        yield new
        if dest.exists():  # the old copy leaves with the temporary folder
            os.replace(dest, work / "old")
        os.replace(new, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def resize_folder(src: Path | str, dest: Path | str, size: int, quality: int = 60,
                  workers: int | None = None) -> Path:
    """A copy of every image below ``src`` with its shorter side ``size`` px (``resize_one``), under the
    same relative paths in ``dest``; returns ``dest`` (notebook 05).

    Built by ``derive_folder``: in parallel, atomically, with a marker file holding the parameters
    (source, size, quality, the list of source files); reused when the marker matches, rebuilt when this
    function made it with other parameters; images that fail are all reported by path
    (``ImageDecodeError``).
    """
    return derive_folder(src, dest, lambda s, d: resize_one(s, d, size, quality),
                         {"size": size, "quality": quality, "resample": "bilinear"}, "resize_folder",
                         f"resizing to {size} px", "resized", workers)


# --- pairs and split -----------------------------------------------------------------------------
def image_pairs(path_x: Path | str, path_y: Path | str) -> tuple[list[Path], list[Path]]:
    """Every image below ``path_x`` and, for each, the file with the same relative path below
    ``path_y``: the lesson's ``label_from_func(lambda x: path_hr/x.name)`` (notebook 05). A missing
    target is an error that names the files."""
    path_x, path_y = Path(path_x), Path(path_y)
    xs = ImageList.from_folder(path_x).items
    ys = [path_y / p.relative_to(path_x) for p in xs]
    missing = [str(p.relative_to(path_x)) for p, q in zip(xs, ys) if not q.is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} of {len(xs)} image(s) in {path_x} have no file of the same name in "
                                f"{path_y}: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    return xs, ys


def split_by_rand_pct(n: int, valid_pct: float = 0.1, seed: int = 42) -> tuple[list[int], list[int]]:
    """(train, valid) indices: a random ``int(valid_pct * n)`` items for validation, drawn as fastai's
    ``split_by_rand_pct(valid_pct, seed)`` draws them (numpy's permutation after ``seed``); both sorted
    (notebook 05)."""
    cut = int(valid_pct * n)
    valid = sorted(np.random.RandomState(seed).permutation(n)[:cut].tolist())
    chosen = set(valid)
    return [i for i in range(n) if i not in chosen], valid


# --- joint transforms ----------------------------------------------------------------------------
Box = tuple[float, float, float, float]  # (left, top, right, bottom) as fractions of the width / height


def center_square(h: int, w: int) -> tuple[int, int, int]:
    """(top, left, side) of the centred square of an ``h`` x ``w`` image, on whole pixels (notebook 05)."""
    s = min(h, w)
    return (h - s) // 2, (w - s) // 2, s


def center_box(h: int, w: int) -> Box:
    """``center_square`` as fractions of the image (notebook 05)."""
    top, left, s = center_square(h, w)
    return left / w, top / h, (left + s) / w, (top + s) / h


def random_box(h: int, w: int, max_zoom: float = 2.0, p_zoom: float = 0.75,
               generator: torch.Generator | None = None) -> Box:
    """A random square of an ``h`` x ``w`` image, as fractions: side ``min(h, w) / zoom`` with ``zoom``
    uniform in [1, ``max_zoom``] (with probability ``p_zoom``, else 1), at a uniform position
    (notebook 05)."""
    u = torch.rand(4, generator=generator).tolist()
    zoom = 1 + (max_zoom - 1) * u[0] if u[1] < p_zoom else 1.0
    s = min(h, w) / zoom
    top, left = (h - s) * u[2], (w - s) * u[3]
    return left / w, top / h, (left + s) / w, (top + s) / h


def crop_resize(img: torch.Tensor, box: Box, size: int, flip: bool = False) -> torch.Tensor:
    """The window ``box`` of an image (C, H, W) resampled to (C, size, size), float, same scale as the
    input (notebook 05). ``roi_align`` with pixel-centre alignment: bilinear when enlarging, the mean
    of a grid of bilinear samples per output pixel when shrinking (no aliasing); ``flip`` mirrors it."""
    h, w = img.shape[-2:]
    left, top, right, bottom = box
    rois = torch.tensor([[0, left * w, top * h, right * w, bottom * h]], dtype=torch.float32, device=img.device)
    out = roi_align(img[None].float(), rois, output_size=(size, size), sampling_ratio=-1, aligned=True)[0]
    return out.flip(-1) if flip else out


def pair_transform(x: torch.Tensor, y: torch.Tensor, size: int, train: bool, max_zoom: float = 2.0,
                   p_zoom: float = 0.75) -> tuple[torch.Tensor, torch.Tensor]:
    """Input and target (each (C, H, W), any resolutions of the same picture) cut at the same window
    and flipped alike, both resampled to ``size`` x ``size`` (notebook 05). The window is chosen on
    the input's grid: random in training (``random_box``, flip with probability 1/2), centred otherwise."""
    box, flip = choose_window(*x.shape[-2:], train, max_zoom, p_zoom)
    return crop_resize(x, box, size, flip), crop_resize(y, box, size, flip)


def choose_window(h: int, w: int, train: bool, max_zoom: float = 2.0, p_zoom: float = 0.75) -> tuple[Box, bool]:
    """(window, flip) for an ``h`` x ``w`` image: random (``random_box``, flip with probability 1/2) in
    training, the centred square without flip otherwise (notebook 05)."""
    if not train:
        return center_box(h, w), False
    return random_box(h, w, max_zoom, p_zoom), bool(torch.rand(()) < 0.5)


# --- loaders -----------------------------------------------------------------------------------
class ImagePairLoader(TensorLoader):
    """Batches of (input, target) images, both normalised, cut from per-photo uint8 tensors of any
    size; training loaders shuffle, drop the last partial batch and transform randomly (notebook 05)."""

    def __init__(self, x: list[torch.Tensor], y: list[torch.Tensor], bs: int, size: int, train: bool,
                 stats: tuple[torch.Tensor, torch.Tensor] = IMAGENET_STATS, device: torch.device | None = None,
                 max_batches: int | None = None, max_zoom: float = 2.0, p_zoom: float = 0.75,
                 names: list[str] | None = None):
        if len(x) != len(y):
            raise ValueError(f"{len(x)} inputs but {len(y)} targets")
        super().__init__(x, y, bs, shuffle=train, device=device, drop_last=train, max_batches=max_batches)
        self.size, self.max_zoom, self.p_zoom = size, max_zoom, p_zoom
        self.names = names  # each item's file name relative to its folder, where known (save_preds)
        self.stats = tuple(s.view(1, -1, 1, 1).to(self.device) for s in stats)

    def pair(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Item ``i``'s input and target on the device, before a window is cut (notebook 05)."""
        return self.x[i].to(self.device, non_blocking=True), self.y[i].to(self.device, non_blocking=True)

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Items ``idx`` as one batch, transformed as this loader does (notebook 05)."""
        xs, ys = [], []
        for i in torch.as_tensor(idx).tolist():
            x, y = pair_transform(*self.pair(i), self.size, self.shuffle, self.max_zoom, self.p_zoom)
            xs.append(x)
            ys.append(y)
        mean, std = self.stats
        return (torch.stack(xs) / 255 - mean) / std, (torch.stack(ys) / 255 - mean) / std

    def in_order(self):
        """``(idx, (x, y))`` for each batch of the items in their order, the last one partial, without
        augmentation unless this is a training loader (a smoke run caps the batches like any loader's)
        (notebook 05)."""
        n = -(-self.n_items // self.bs)
        for b in range(config.n_batches(n, self.max_batches)):
            idx = torch.arange(b * self.bs, min((b + 1) * self.bs, self.n_items))
            yield idx, self.batch(idx)

    def inputs(self, idx: torch.Tensor) -> list[torch.Tensor]:
        """The validation windows of items ``idx`` at the inputs' own resolution, float in [0, 1]: what
        a baseline such as bicubic upsampling starts from (notebook 05)."""
        out = []
        for i in torch.as_tensor(idx).tolist():
            top, left, s = center_square(*self.x[i].shape[-2:])
            out.append(self.x[i][:, top:top + s, left:left + s].float() / 255)
        return out


class ImagePairData(DataBunch):
    """Loaders of (input, target) image pairs; ``resized`` (``DataBunch``'s) serves the same photos at another
    size (notebook 05)."""

    def __repr__(self) -> str:
        t, v = self.train_dl, self.valid_dl
        return (f"ImagePairData: train {t.n_items:,} pairs / {len(t)} batches of {t.bs}; valid {v.n_items:,} "
                f"pairs; {t.size}x{t.size} px")



def decode_at(paths: Sequence[Path], short_side: int | None = None) -> list[torch.Tensor]:
    """RGB photos as uint8 tensors (3, H, W), each shrunk so its shorter side is at most ``short_side``
    (``None``: as they are), in parallel; undecodable files are reported by path (notebook 05)."""
    arrays = read_all(read_short_side, [(Path(p), "RGB", short_side) for p in paths])
    return [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]


def image_pair_data(path_x: Path | str, path_y: Path | str, size: int, bs: int, valid_pct: float = 0.1,
                    seed: int = 42, hr_size: int | None = None, max_zoom: float = 2.0, p_zoom: float = 0.75,
                    max_batches: int | None = None, valid_batches: int | None = None,
                    device: torch.device | None = None) -> ImagePairData:
    """The lesson's ``ImageImageList.from_folder(path_x).split_by_rand_pct(valid_pct, seed)
    .label_from_func(lambda x: path_y/x.name)`` with ``get_transforms(max_zoom=2.)``, ``size``,
    ``tfm_y=True`` and ``normalize(imagenet_stats, do_y=True)`` (notebook 05).

    Inputs are kept at their own size, targets with their shorter side at most ``hr_size`` (default
    ``max_zoom * size``, so a zoomed window keeps its detail). The profile may cap the training items;
    ``max_batches`` caps the training batches per epoch and ``valid_batches`` the validation batches
    scored after each epoch (spread over the set).
    """
    xs, ys = image_pairs(path_x, path_y)
    train_idx, valid_idx = split_by_rand_pct(len(xs), valid_pct, seed)
    train_idx = [train_idx[i] for i in profile_subset(len(train_idx), config.profile().max_train_items)]
    hr = hr_size or round(max_zoom * size)

    def loader(idx: list[int], train: bool) -> ImagePairLoader:
        x, y = decode_at([xs[i] for i in idx]), decode_at([ys[i] for i in idx], hr)
        return ImagePairLoader(x, y, bs, size, train, IMAGENET_STATS, device, max_batches if train else valid_batches,
                               max_zoom, p_zoom, names=[str(xs[i].relative_to(path_x)) for i in idx])

    return ImagePairData(loader(train_idx, True), loader(valid_idx, False))


@torch.no_grad()
def predict_images(learn, x: torch.Tensor) -> torch.Tensor:
    """An image-to-image model's output for a normalised batch ``x``, in eval mode under the learner's
    autocast, denormalised (``learn.data.denorm``) and clamped to [0, 1] (notebook 05)."""
    learn.model.eval()
    with learn.autocast():
        out = learn.model(x)
    return learn.data.denorm(out.float()).clamp(0, 1)


@torch.no_grad()
def upscale(learn, img: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """A whole photo (3, H, W) in [0, 1], enlarged ``scale`` times by bilinear interpolation and then
    passed through an image-to-image model, as the lesson's medium-resolution test did with a bigger
    data ``size`` and ``learn.predict`` (notebook 05). Returns (bilinear input, model output), both
    (3, scale*H, scale*W) in [0, 1] on the CPU. The U-Net works at any size that is a multiple of 32."""
    h, w = (max(1, int(scale * s / 32 + 0.5)) * 32 for s in img.shape[-2:])  # nearest multiple of 32
    x = torch.nn.functional.interpolate(img[None].float(), (h, w), mode="bilinear", align_corners=False,
                                        antialias=False).clamp(0, 1)
    return x[0], predict_images(learn, learn.data.prepare(x))[0].cpu()


# --- the generator's pictures and the critic's data (notebook 03) ---------------------------------------
@torch.no_grad()
def save_preds(learn, dest: Path | str, dl: ImagePairLoader | None = None, quality: int = 95) -> Path:
    """The generator's output for every item of ``dl`` (the training pairs by default), each the centred
    square window at the loader's size, saved under the item's own name in ``dest`` (JPEG at
    ``quality`` for .jpg names); built in a temporary folder and renamed into place when all are
    written (the lesson's ``save_preds`` into ``image_gen``) (notebook 03)."""
    dl = (dl or learn.data.train_dl).replace(shuffle=False, drop_last=False, max_batches=None)
    if dl.names is None:
        raise ValueError("save_preds needs a loader that knows its file names (image_pair_data makes them)")
    with building(dest) as new:
        for idx, (x, _) in progress_bar(dl.in_order(), total=len(dl), desc="saving predictions"):
            for i, img in zip(idx.tolist(), predict_images(learn, x)):
                path = new / dl.names[i]
                path.parent.mkdir(parents=True, exist_ok=True)
                arr = (img * 255).round().byte().permute(1, 2, 0).cpu().numpy()
                Image.fromarray(arr).save(path, quality=quality)
    return Path(dest)


class CriticLoader(ImagePairLoader):
    """Batches of (pictures, labels) for a critic: for each photo its generated version (label 0) and
    its real one (label 1), cut at the same window of the real photo's centred square, the square the
    generated picture was made from (``save_preds``), so within a pair only the maker differs. A batch
    holds the ``bs`` photos' generated pictures, then their real ones (notebook 03)."""

    def pair(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        fake, real = super().pair(i)
        top, left, s = center_square(*real.shape[-2:])
        return fake, real[:, top:top + s, left:left + s]

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fakes, reals = super().batch(idx)
        y = torch.cat([torch.zeros(len(fakes)), torch.ones(len(reals))]).to(fakes.device)
        return torch.cat([fakes, reals]), y


def critic_data(path_gen: Path | str, path_real: Path | str, size: int, bs: int, valid_pct: float = 0.1,
                seed: int = 42, max_zoom: float = 2.0, max_batches: int | None = None,
                valid_batches: int | None = None, device: torch.device | None = None) -> ImagePairData:
    """The critic's data, the lesson's ``get_crit_data([name_gen, 'images'], bs, size)`` split by photo:
    every picture of ``path_gen`` (the generator's, label 0) with the photo of the same name in
    ``path_real`` (label 1), ``valid_pct`` of the *photos* held out (``seed``), batches of ``bs``
    pictures, half generated and half real from the same photos at the same windows (``CriticLoader``).

    The lesson split the files at random, so a photo's real version could train the critic while its
    generated version validated it, and a batch mixed unrelated photos; pairing makes content useless
    as a clue, and the critic leaves chance sooner (README, "03 · superres-gan") (notebook 03)."""
    if bs < 2 or bs % 2:
        raise ValueError(f"bs must be even (half generated, half real), got {bs}")
    fakes, reals = image_pairs(path_gen, path_real)
    train_idx, valid_idx = split_by_rand_pct(len(fakes), valid_pct, seed)
    hr = round(max(2.0, max_zoom) * size)

    def loader(idx: list[int], train: bool) -> CriticLoader:
        x, y = decode_at([fakes[i] for i in idx]), decode_at([reals[i] for i in idx], hr)
        return CriticLoader(x, y, bs // 2, size, train, IMAGENET_STATS, device, max_batches if train else valid_batches,
                            max_zoom, 0.75, names=[str(fakes[i].relative_to(path_gen)) for i in idx])

    data = ImagePairData(loader(train_idx, True), loader(valid_idx, False))
    data.classes = [Path(path_gen).name, Path(path_real).name]
    return data
