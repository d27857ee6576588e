"""Image quality scores beyond the lesson: PSNR and SSIM per image (torchmetrics), and the baseline
anyone gets without a network, bicubic upsampling; sharpness (notebook 03); colorfulness and the
colour error ΔE (notebook 07).

Introduced in notebook 05 (superres). Convention: RGB images in [0, 1] (predictions clamped), the whole
image compared (no border crop), ``data_range=1``; SSIM with the usual Gaussian window (11 px,
sigma 1.5), the images reflect-padded by 5 px so that border pixels count too (torchmetrics' way),
averaged over pixels and the three channels.
"""
from __future__ import annotations

import kornia.color
import torch
import torch.nn.functional as F
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from helpers.color import merge_chroma
from helpers.imagedata import predict_images
from helpers.learner import autocast
from helpers.progress import progress_bar


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio of each image (N, C, H, W) in [0, 1], in dB:
    ``10 log10(1 / mean((pred - target)^2))`` (torchmetrics' ``PeakSignalNoiseRatio(data_range=1.0)``
    per image) (notebook 05)."""
    return peak_signal_noise_ratio(pred.float(), target.float(), data_range=1.0, reduction="none", dim=(1, 2, 3))


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Structural similarity of each image (N, C, H, W) in [0, 1] (torchmetrics'
    ``StructuralSimilarityIndexMeasure(data_range=1.0, gaussian_kernel=True, sigma=1.5, kernel_size=11)``
    per image): 1 for identical images (notebook 05)."""
    return structural_similarity_index_measure(pred.float(), target.float(), data_range=1.0, gaussian_kernel=True,
                                               sigma=1.5, kernel_size=11, reduction="none")


def bicubic_upsample(x: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Images (N, C, h, w) in [0, 1] resized to ``size`` with bicubic interpolation, clamped to [0, 1]:
    the baseline a super-resolution network has to beat (notebook 05). The kernel is PIL's (and
    MATLAB's ``imresize``), antialiased should the target be smaller than the input."""
    return F.interpolate(x.float(), size, mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)


def masked_psnr(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """PSNR of each image (N, C, H, W) in [0, 1] over the pixels where ``mask`` (N, H, W) is True, in dB;
    NaN for an image without such pixels (notebook 03)."""
    err = ((pred.float() - target.float()) ** 2).mean(1) * mask
    n = mask.flatten(1).sum(1)
    mse = err.flatten(1).sum(1) / n.clamp(min=1)
    return torch.where(n > 0, 10 * torch.log10(1 / mse.clamp(min=1e-12)), torch.full_like(mse, float("nan")))


def critic_right(critic: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Per pair of pictures (N,): the share of a critic's patch logits on the right side of 0 for the real
    picture (label 1) and for its generated counterpart (label 0), averaged over the two, as
    ``accuracy_thresh_expand`` counts them (notebook 03)."""
    return ((critic(real).float() > 0).float().flatten(1).mean(1) + (critic(fake).float() <= 0).float().flatten(1).mean(1)) / 2


@torch.no_grad()
def critic_accuracy(critic: torch.nn.Module, generator: torch.nn.Module, dl) -> float:
    """How often the critic tells real from generated on held-out pairs (notebook 03): ``critic_right`` over
    every item of ``dl`` (a validation loader of (input, real) pairs, all of it), both models in eval
    mode (put back as they were after)."""
    was = critic.training, generator.training
    critic.eval()
    generator.eval()
    right = []
    try:
        dl = dl.full() if hasattr(dl, "full") else dl
        for x, real in progress_bar(dl, total=len(dl), desc="critic accuracy"):
            with autocast(real.device):
                right.append(critic_right(critic, real, generator(x)).cpu())
    finally:
        critic.train(was[0])
        generator.train(was[1])
    return torch.cat(right).mean().item()


@torch.no_grad()
def image_scores(learn, dl=None, with_sharpness: bool = False, with_color: bool = False,
                 keep_luminance: bool = False, regions: dict | None = None,
                 critic: torch.nn.Module | None = None) -> dict[str, torch.Tensor]:
    """PSNR and SSIM of the model's output and of bicubic upsampling, each against the target, for
    every item of a loader of image pairs (the whole validation split by default) (notebook 05).

    Returns per-image tensors ``psnr_model``, ``psnr_bicubic``, ``ssim_model``, ``ssim_bicubic``; with
    ``with_sharpness`` also ``sharpness_model``, ``sharpness_bicubic``, ``sharpness_target`` (notebook
    03); with ``with_color`` also ``deltae_model``, ``deltae_bicubic`` and ``colorfulness_model``,
    ``colorfulness_bicubic``, ``colorfulness_target`` (notebook 07, where the "bicubic" baseline is the
    gray input itself). The model's output and the target are denormalised (``learn.data.denorm``) and
    clamped to [0, 1]; the bicubic baseline starts from the same window of the input (``dl.inputs``).
    ``keep_luminance`` scores what DeOldify shows a user: the output's chroma on the input's own
    luminance (``helpers.color.merge_chroma``; input and target the same size) (notebook 07). With
    ``regions`` ({item name: (left, top, right, bottom)} in input pixels, e.g. where ``crappify`` stamped
    its number) also ``psnr_region_model`` and ``psnr_region_bicubic``, PSNR inside each item's region
    (``masked_psnr``; NaN where the region lies outside the window) (notebook 03). With a ``critic``,
    also ``critic_right`` per item (``critic_right``: the model's output as the generated picture, the
    target as the real one), from the same predictions (notebook 03).
    """
    dl = dl or learn.data.valid_dl.full()
    if dl.shuffle:
        raise ValueError("image_scores needs a validation loader: a training loader cuts random windows")
    against = {"psnr": psnr, "ssim": ssim}  # scores of a picture against its target
    alone = {}  # scores of a picture by itself, the target's too
    if with_sharpness:
        alone["sharpness"] = sharpness
    if with_color:
        against["deltae"] = delta_e
        alone["colorfulness"] = colorfulness
    scores: dict[str, list[torch.Tensor]] = {}
    was = critic.training if critic is not None else None
    if critic is not None:
        critic.eval()
    for idx, (x, y) in progress_bar(dl.in_order(), total=dl.n_ordered, desc=f"scoring {dl.n_items} photos"):
        raw = predict_images(learn, x, raw=True)
        pred, target = learn.data.denorm(raw).clamp(0, 1), learn.data.denorm(y).clamp(0, 1)
        if critic is not None:
            with learn.autocast():
                scores.setdefault("critic_right", []).append(critic_right(critic, y, raw).cpu())
        if keep_luminance:
            pred = merge_chroma(pred, learn.data.denorm(x).clamp(0, 1))
        base = torch.cat([bicubic_upsample(lr[None].to(target.device), target.shape[-2:]) for lr in dl.inputs(idx)])
        for name, out in (("model", pred), ("bicubic", base)):
            for score, f in against.items():
                scores.setdefault(f"{score}_{name}", []).append(f(out, target).cpu())
            for score, f in alone.items():
                scores.setdefault(f"{score}_{name}", []).append(f(out).cpu())
        for score, f in alone.items():
            scores.setdefault(f"{score}_target", []).append(f(target).cpu())
        if regions is not None:
            mask = dl.region_masks(idx, regions).to(target.device)
            for name, out in (("model", pred), ("bicubic", base)):
                scores.setdefault(f"psnr_region_{name}", []).append(masked_psnr(out, target, mask).cpu())
    if critic is not None:
        critic.train(was)
    return {k: torch.cat(v) for k, v in scores.items()}


def sharpness(images: torch.Tensor) -> torch.Tensor:
    """Variance of the Laplacian of each image's luminance (N, 3, H, W) in [0, 1] -> (N,): how much fine
    detail (edges, texture) a picture has, which PSNR does not reward; a blurred photo scores lower
    than the original (notebook 03). Luminance with ITU-R BT.601 weights; the 3x3 Laplacian over the
    interior (no padding)."""
    gray = kornia.color.rgb_to_grayscale(images.float())  # BT.601: 0.299 R + 0.587 G + 0.114 B
    lap = torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]], device=images.device).view(1, 1, 3, 3)
    return F.conv2d(gray, lap).flatten(1).var(1)


def colorfulness(images: torch.Tensor) -> torch.Tensor:
    """Hasler and Süsstrunk's colorfulness of each image (N, 3, H, W) in [0, 1] -> (N,), on the 0-255
    scale of their paper ("Measuring colourfulness in natural images", 2003): with rg = R - G and
    yb = (R + G) / 2 - B, ``sqrt(std_rg² + std_yb²) + 0.3 * sqrt(mean_rg² + mean_yb²)``. A gray
    picture scores 0; they call about 33 "moderately" and 59 "quite" colourful (notebook 07)."""
    r, g, b = (images.float() * 255).unbind(1)
    rg, yb = (r - g).flatten(1), (0.5 * (r + g) - b).flatten(1)
    std = (rg.var(1, unbiased=False) + yb.var(1, unbiased=False)).sqrt()
    mean = (rg.mean(1) ** 2 + yb.mean(1) ** 2).sqrt()
    return std + 0.3 * mean


def delta_e(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean colour difference per image (N, 3, H, W) in [0, 1] -> (N,): CIE76 ΔE, the Euclidean distance
    in CIE Lab (D65, kornia's conversion) averaged over the pixels; about 2.3 is a just-noticeable
    difference (notebook 07)."""
    return (kornia.color.rgb_to_lab(pred.float()) - kornia.color.rgb_to_lab(target.float())).norm(dim=1).flatten(1).mean(1)
