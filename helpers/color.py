"""Colour for colorization: gray copies made as DeOldify makes them, the chroma merge, ``render_factor``.
Introduced in notebook 07 (deoldify); the colour metrics are in ``helpers.metrics``."""

from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from helpers.folders import derive_folder
from helpers.memory import is_out_of_memory, reclaim
from helpers.photos import convert_image


class RenderOutOfMemoryError(RuntimeError):
    """Colorizing at this ``render_factor`` ran out of memory; a smaller factor needs less (notebook 07)."""


def grayscale(src: Path | str, dest: Path | str, quality: int = 75) -> None:
    """Save a photo gray as DeOldify's training input, ``convert('LA')``, JPEG ``quality`` (notebook 07)."""
    with Image.open(src) as img:
        convert_image(img, "RGB").convert("LA").convert("RGB").save(dest, quality=quality)


def grayscale_folder(src: Path | str, dest: Path | str, quality: int = 75, workers: int | None = None) -> Path:
    """Gray copies (``grayscale``) of the images below ``src``, same names, in ``dest``; returns it (notebook 07)."""
    return derive_folder(src, dest, lambda s, d: grayscale(s, d, quality), {"quality": quality},
                         maker="grayscale_folder", desc="gray copies", what="converted to gray", workers=workers)


def merge_chroma(color: torch.Tensor, gray: torch.Tensor) -> torch.Tensor:
    """The luminance (Y, BT.601) of ``gray`` with the chroma of ``color``, as DeOldify's post-processing (notebook
    07). Both (3, H, W) or (N, 3, H, W) in [0, 1], ``color`` resized to ``gray``'s size; the result is in [0, 1]."""
    import kornia.color
    batched = gray.dim() == 4
    color, gray = (color, gray) if batched else (color[None], gray[None])
    if color.shape[-2:] != gray.shape[-2:]:
        color = F.interpolate(color.float(), gray.shape[-2:], mode="bilinear", align_corners=False, antialias=True)
    yuv = torch.cat([kornia.color.rgb_to_yuv(gray.float())[:, :1], kornia.color.rgb_to_yuv(color.float())[:, 1:]], 1)
    out = kornia.color.yuv_to_rgb(yuv).clamp(0, 1)
    return out if batched else out[0]


def render_size(render_factor: int) -> int:
    """The side of the square a photo is colorized at: ``render_factor * 16`` px (notebook 07)."""
    if render_factor < 1:
        raise ValueError(f"render_factor must be a positive integer, got {render_factor}")
    return render_factor * 16


@torch.no_grad()
def colorize(learn, photo: torch.Tensor, render_factor: int = 35) -> torch.Tensor:
    """A photo (3, H, W) in [0, 1] colorized as DeOldify does at ``render_factor``; (3, H, W) in [0, 1] on the CPU
    (notebook 07). Out of memory raises ``RenderOutOfMemoryError`` naming a smaller factor."""
    import kornia.color
    side = render_size(render_factor)
    luma = kornia.color.rgb_to_grayscale(photo.float()) if photo.shape[0] == 3 else photo.float()  # BT.601, as PIL's "L"
    gray = luma.expand(3, -1, -1)
    x = F.interpolate(gray[None], (side, side), mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)
    try:
        pred = learn.predict_batch(learn.data.prepare(x), denorm=True)
    except RuntimeError as e:
        if not is_out_of_memory(e):
            raise
        reclaim(verbose=False)
        smaller = max(1, render_factor * 3 // 4)
        raise RenderOutOfMemoryError(
            f"colorizing at render_factor={render_factor} ({side}x{side} px) ran out of memory on "
            f"{learn.data.device}; try a smaller render_factor, e.g. {smaller} ({render_size(smaller)}x"
            f"{render_size(smaller)} px), or free memory (restart the kernel, close other notebooks)") from e
    return merge_chroma(pred[0].cpu(), gray.cpu())  # the photo's own luminance
