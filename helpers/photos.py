"""Photos decoded once, in parallel, into one padded uint8 tensor (``PhotoStack``), and ``read_image``, the one image
reader (notebook 05; notebook 04 cuts ``random_squares``)."""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from helpers import config
from helpers.progress import progress_bar


class ImageDecodeError(RuntimeError):
    """Raised when one or more image files cannot be decoded; names every bad path (notebook 01)."""


def short_side_size(w: int, h: int, size: int) -> tuple[int, int]:
    """(width, height), shorter side ``size``: the lesson's ``resize_to(img, size, use_min=True)`` (notebook 05)."""
    scale = size / min(w, h)
    return (size, round(h * scale)) if w <= h else (round(w * scale), size)


def shrunk_size(w: int, h: int, short_side: int | None) -> tuple[int, int]:
    """``short_side_size`` if the shorter side exceeds ``short_side``, else (w, h): never enlarged (notebook 05)."""
    return (w, h) if short_side is None or min(w, h) <= short_side else short_side_size(w, h, short_side)


def convert_image(img: Image.Image, mode: str = "RGB") -> Image.Image:
    """``img`` in PIL's ``mode`` (``RGB`` or ``L``) whatever it was stored as: 16-bit or float gray scaled to 8 bits
    (not clipped at 255), a palette with transparency through RGBA, CMYK converted, alpha dropped (notebook 05)."""
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        values = np.asarray(img, dtype=np.float64)
        top = 65535.0 if values.max(initial=0) > 255 else 255.0 if values.max(initial=0) > 1 else 1.0
        img = Image.fromarray(np.clip(values * (255.0 / top), 0, 255).round().astype(np.uint8))
    elif img.mode == "P" and "transparency" in img.info:  # PIL warns unless it goes through RGBA
        img = img.convert("RGBA")
    return img if img.mode == mode else img.convert(mode)


def read_image(path: Path | str, mode: str = "RGB", size: tuple[int, int] | None = None,
               draft: bool = False) -> np.ndarray:
    """One image file as uint8 (C, H, W) in PIL's ``mode`` (``convert_image``), resized (bilinear) to ``size`` (width,
    height) if given; ``draft`` lets a JPEG decode at reduced scale (notebook 04) (notebook 01)."""
    with Image.open(path) as img:
        if draft and size is not None:
            img.draft(mode, size)
        img = convert_image(img, mode)
        if size is not None and img.size != tuple(size):
            img = img.resize(tuple(size), Image.BILINEAR)
        arr = np.array(img, dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def raise_failures(bad: list[str], total: int, what: str) -> None:
    """Raise ``ImageDecodeError`` listing ``bad`` (``"<path>: <error>"``) of ``total``; none if empty (notebook 01)."""
    if bad:
        shown = "\n  ".join(bad[:20]) + (f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else "")
        raise ImageDecodeError(f"{len(bad)} of {total} image(s) could not be {what}; "
                               f"remove or replace them:\n  {shown}")


def _mirror(i: torch.Tensor, length: int) -> torch.Tensor:
    """Indices ``i`` reflected into [0, length), the edge pixel repeated (..., 1, 0, 0, 1, ...)."""
    i = torch.remainder(i, 2 * length)
    return torch.where(i >= length, 2 * length - 1 - i, i)


@dataclass
class PhotoStack:
    """N photos (C, h_i, w_i) in one padded uint8 ``data`` (N, C, S, L), portraits transposed; host ``sizes`` (N, 2)
    (h, w) and ``transposed`` (N,) (notebook 05)."""

    data: torch.Tensor
    sizes: torch.Tensor
    transposed: torch.Tensor

    @classmethod
    def decode(cls, paths: Sequence[Path | str], mode: str = "RGB", short_side: int | None = None,
               draft: bool = False, device: torch.device | None = None, workers: int | None = None) -> "PhotoStack":
        """Decode ``paths`` into one stack on ``device``; failures raise ``ImageDecodeError`` (notebook 05)."""
        paths = [Path(p) for p in paths]
        sizes, bad = [], []
        for p in paths:  # headers only: the sizes, before any pixel is decoded
            try:
                with Image.open(p) as img:
                    sizes.append(shrunk_size(*img.size, short_side)[::-1])
            except Exception as exc:  # noqa: BLE001 - every failure is reported by path
                bad.append(f"{p}: {type(exc).__name__}: {exc}")
        raise_failures(bad, len(paths), "decoded")
        stack = cls.empty(torch.tensor(sizes, dtype=torch.long).view(-1, 2), 1 if mode == "L" else 3, device)

        def fill(i: int) -> str | None:
            try:
                h, w = stack.sizes[i].tolist()
                stack.put(i, torch.from_numpy(read_image(paths[i], mode, (w, h), draft)))
                return None
            except Exception as exc:  # noqa: BLE001 - every failure is reported by path
                return f"{paths[i]}: {type(exc).__name__}: {exc}"

        with ThreadPoolExecutor(workers or config.cpu_count()) as pool:
            results = list(progress_bar(pool.map(fill, range(len(paths))), total=len(paths),
                                        desc=f"decoding {len(paths):,} images"))
        raise_failures([r for r in results if r], len(paths), "decoded")
        return stack.to(device) if device is not None and device.type != "cpu" else stack

    @classmethod
    def from_list(cls, photos: list[torch.Tensor], device: torch.device | None = None) -> "PhotoStack":
        """Stack photos (C, h, w) uint8 that are already decoded (notebook 05)."""
        if not photos:
            raise ValueError("no photos to stack")
        stack = cls.empty(torch.tensor([p.shape[-2:] for p in photos], dtype=torch.long), photos[0].shape[0], device)
        for i, p in enumerate(photos):
            stack.put(i, p)
        return stack.to(device) if device is not None and device.type != "cpu" else stack

    @classmethod
    def empty(cls, sizes: torch.Tensor, channels: int, device: torch.device | None = None) -> "PhotoStack":
        """An unfilled stack for photos of ``sizes`` (N, 2) = (h, w), on the host (notebook 05)."""
        if not len(sizes):
            raise ValueError("no photos to decode: the list of paths is empty")
        transposed = sizes[:, 0] > sizes[:, 1]
        s, l = int(sizes.min(1).values.max()), int(sizes.max(1).values.max())
        pin = torch.cuda.is_available() and (device is None or device.type == "cpu")
        return cls(torch.empty(len(sizes), channels, s, l, dtype=torch.uint8, pin_memory=pin), sizes, transposed)

    def put(self, i: int, photo: torch.Tensor) -> None:
        """Store photo ``i`` (C, h, w), mirrored into the padding (notebook 05)."""
        p = photo.transpose(-1, -2) if bool(self.transposed[i]) else photo
        s, l = self.data.shape[-2:]
        if p.shape[-2:] != (s, l):
            rows, cols = _mirror(torch.arange(s), p.shape[-2]), _mirror(torch.arange(l), p.shape[-1])
            p = p[:, rows[:, None], cols[None, :]]
        self.data[i] = p

    def to(self, device: torch.device) -> "PhotoStack":
        """The pixels on ``device``; the sizes stay on the host, where the windows are planned (notebook 05)."""
        return PhotoStack(self.data.to(device), self.sizes, self.transposed)

    def take(self, idx: torch.Tensor) -> "PhotoStack":
        """Photos ``idx`` as a stack of their own (notebook 07)."""
        idx = torch.as_tensor(idx).long().cpu()
        return PhotoStack(self.data[idx.to(self.data.device)], self.sizes[idx], self.transposed[idx])

    def __len__(self) -> int:
        return len(self.data)

    def item(self, i: int) -> torch.Tensor:
        """Photo ``i`` as it was given: (C, h, w) uint8 (notebook 05)."""
        h, w = self.sizes[i].tolist()
        if bool(self.transposed[i]):
            return self.data[i, :, :w, :h].transpose(-1, -2)
        return self.data[i, :, :h, :w]


def random_squares(stack: PhotoStack, idx: torch.Tensor, size: int, generator: torch.Generator | None = None):
    """A ``size`` square of each photo ``idx`` at random, zero-padded (centred) if smaller: uint8 (n, C, size, size),
    portraits upright (notebook 04)."""
    idx = torch.as_tensor(idx).long().cpu()
    dev = stack.data.device
    sizes, tr = stack.sizes[idx], stack.transposed[idx]
    short, long = sizes.min(1).values, sizes.max(1).values
    off_s = (torch.rand(len(idx), generator=generator) * (short - size + 1).clamp(min=1)).long()
    off_l = (torch.rand(len(idx), generator=generator) * (long - size + 1).clamp(min=1)).long()
    if dev.type == "cpu" and bool((short >= size).all()):  # no padding: on a CPU, copying views beats a gather
        at = zip(idx.tolist(), off_s.tolist(), off_l.tolist())
        views = [stack.data[i, :, r:r + size, c:c + size] for i, r, c in at]
        return torch.stack([v.transpose(-1, -2) if t else v for v, t in zip(views, tr.tolist())])
    span = torch.arange(size)
    rows = off_s[:, None] + span[None] - ((size - short).clamp(min=0) // 2)[:, None]  # centred when smaller
    cols = off_l[:, None] + span[None] - ((size - long).clamp(min=0) // 2)[:, None]
    inside = ((rows >= 0) & (rows < short[:, None]))[:, :, None] & ((cols >= 0) & (cols < long[:, None]))[:, None, :]
    s, l = stack.data.shape[-2:]
    out = stack.data[idx.to(dev)[:, None, None, None],
                     torch.arange(stack.data.shape[1], device=dev)[None, :, None, None],
                     rows.clamp(0, s - 1).to(dev)[:, None, :, None], cols.clamp(0, l - 1).to(dev)[:, None, None, :]]
    out = out * inside.to(dev)[:, None]
    return torch.where(tr.to(dev)[:, None, None, None], out.transpose(-1, -2), out)
