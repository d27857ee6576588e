"""Every score of the project, grouped by notebook. Images: RGB in [0, 1] (predictions clamped), compared whole,
``data_range=1``; SSIM with an 11-px Gaussian window (sigma 1.5), reflect-padded as torchmetrics does."""

import torch
import torch.nn.functional as F
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from helpers.progress import progress_bar


def accuracy(pred: torch.Tensor, targ: torch.Tensor) -> torch.Tensor:
    """Fraction of argmax predictions equal to the target; works on flattened sequences (notebook 01)."""
    return (pred.argmax(-1).reshape(-1) == targ.reshape(-1)).float().mean()


def accuracy_thresh_expand(pred: torch.Tensor, targ: torch.Tensor, thresh: float = 0.5,
                           sigmoid: bool = True) -> torch.Tensor:
    """fastai v1's ``accuracy_thresh_expand``: the share of all outputs (every patch) on the side of ``thresh`` their
    image's label says, after a sigmoid if ``sigmoid`` (notebook 03)."""
    if sigmoid:
        pred = pred.sigmoid()
    return ((pred > thresh).long() == targ.reshape(-1, *[1] * (pred.dim() - 1)).long()).float().mean()


def accuracy_no_void(pred: torch.Tensor, targ: torch.Tensor, void: int = 11) -> torch.Tensor:
    """The lesson's ``acc_camvid``: pixel accuracy over non-``void`` targets, void predictions wrong (notebook 02)."""
    keep = targ != void
    return (pred.argmax(1)[keep] == targ[keep]).float().mean()


def confusion_matrix(pred: torch.Tensor, targ: torch.Tensor, n_classes: int = 11) -> torch.Tensor:
    """``cm[t, p]``: pixels of true class t predicted p, void targets left out; shape ``(n_classes, n_classes + 1)``,
    the last column counting pixels predicted void (notebook 02)."""
    keep = targ != n_classes
    t, p = targ[keep].long(), pred.argmax(1)[keep].long().clamp(max=n_classes)
    return torch.bincount(t * (n_classes + 1) + p, minlength=n_classes * (n_classes + 1)).view(n_classes, n_classes + 1)


def iou_per_class(cm: torch.Tensor) -> torch.Tensor:
    """IoU per class of a confusion matrix (square or with the "predicted void" column); NaN if absent (notebook 02)."""
    cm = cm.double()
    inter = cm.diag()
    union = cm[:, :len(cm)].sum(0) + cm.sum(1) - inter  # column sums without the "predicted void" column
    return torch.where(union > 0, inter / union.clamp(min=1), torch.full_like(inter, float("nan")))


def evaluate(learn, dl=None, n_classes: int = 11) -> torch.Tensor:
    """``confusion_matrix`` of ``learn``'s model over ``dl`` (all validation frames by default) (notebook 02)."""
    dl = learn.data.valid_dl.full() if dl is None else dl
    cm = torch.zeros(n_classes, n_classes + 1, dtype=torch.long)
    for xb, yb in dl:
        cm += confusion_matrix(learn.predict_batch(xb), yb, n_classes).cpu()
    return cm


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PSNR in dB, ``10 log10(1 / mse)``, of each image (N, C, H, W) in [0, 1], as torchmetrics' (notebook 05)."""
    return peak_signal_noise_ratio(pred.float(), target.float(), data_range=1.0, reduction="none", dim=(1, 2, 3))


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """SSIM of each image (N, C, H, W) in [0, 1], 1 when identical, as torchmetrics' (notebook 05)."""
    return structural_similarity_index_measure(pred.float(), target.float(), data_range=1.0, gaussian_kernel=True,
                                               sigma=1.5, kernel_size=11, reduction="none")


def bicubic_upsample(x: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Images (N, C, h, w) in [0, 1] resized to ``size``, bicubic (PIL's, antialiased), clamped (notebook 05)."""
    return F.interpolate(x.float(), size, mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)


def masked_psnr(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of each image (N, C, H, W) in [0, 1] where ``mask`` (N, H, W) is True; NaN if none (notebook 03)."""
    err = ((pred.float() - target.float()) ** 2).mean(1) * mask
    n = mask.flatten(1).sum(1)
    mse = err.flatten(1).sum(1) / n.clamp(min=1)
    return torch.where(n > 0, 10 * torch.log10(1 / mse.clamp(min=1e-12)), torch.full_like(mse, float("nan")))


def critic_right(critic: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Per pair (N,): the share of the critic's patch logits on the right side of 0 for the real (1) and the generated
    (0) picture, averaged (notebook 03)."""
    return ((critic(real).float() > 0).float().flatten(1).mean(1)
            + (critic(fake).float() <= 0).float().flatten(1).mean(1)) / 2


def critic_accuracy(learn, critic: torch.nn.Module, dl=None) -> float:
    """Mean ``critic_right`` over ``dl``'s (input, real) pairs (default: validation), fakes from ``learn``'s model, both
    models in eval mode (notebook 03)."""
    dl = (learn.data.valid_dl if dl is None else dl).full()
    right = []
    with learn.eval_mode(learn.model, critic), learn.autocast():
        for x, real in progress_bar(dl, total=len(dl), desc="critic accuracy"):
            right.append(critic_right(critic, real, learn.model(x)).cpu())
    return torch.cat(right).mean().item()


@torch.no_grad()
def image_scores(learn, dl=None, with_sharpness: bool = False, with_color: bool = False, keep_luminance: bool = False,
                 regions: dict | None = None, critic: torch.nn.Module | None = None) -> dict[str, torch.Tensor]:
    """Per-image scores of the model's output (denormalised, clamped) and of bicubic upsampling of its input, each
    against the target, over a loader of pairs (default: validation; a shuffling one raises ``ValueError``) (notebook
    05): ``psnr_*``, ``ssim_*`` (``_model``, ``_bicubic``); ``with_sharpness``: ``sharpness_*`` of model, bicubic and
    target (notebook 03); ``with_color``: ``deltae_*``, ``colorfulness_*`` (notebook 07, "bicubic" the gray input);
    ``keep_luminance``: the output's chroma on the input's luminance (notebook 07); ``regions`` ({name: (left, top,
    right, bottom)} input pixels): ``psnr_region_*``; ``critic``: ``critic_right`` (notebook 03)."""
    dl = learn.data.valid_dl.full() if dl is None else dl
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
    for idx, (x, y) in progress_bar(dl.in_order(), total=dl.n_ordered, desc=f"scoring {dl.n_items} photos"):
        raw = learn.predict_batch(x)
        pred, target = learn.data.denorm(raw).clamp(0, 1), learn.data.denorm(y).clamp(0, 1)
        if critic is not None:
            with learn.eval_mode(critic), learn.autocast():
                scores.setdefault("critic_right", []).append(critic_right(critic, y, raw).cpu())
        if keep_luminance:
            from helpers.color import merge_chroma
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
    return {k: torch.cat(v) for k, v in scores.items()}


def sharpness(images: torch.Tensor) -> torch.Tensor:
    """Variance of the unpadded 3x3 Laplacian of each image's luminance (N, 3, H, W) in [0, 1] -> (N,) (notebook 03)."""
    import kornia.color
    gray = kornia.color.rgb_to_grayscale(images.float())  # BT.601: 0.299 R + 0.587 G + 0.114 B
    lap = torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]], device=images.device).view(1, 1, 3, 3)
    return F.conv2d(gray, lap).flatten(1).var(1)


def colorfulness(images: torch.Tensor) -> torch.Tensor:
    """Hasler and Süsstrunk's colorfulness of each image (N, 3, H, W) in [0, 1] -> (N,), 0-255 scale; gray scores 0,
    about 33 is "moderately", 59 "quite" colourful (notebook 07)."""
    r, g, b = (images.float() * 255).unbind(1)
    rg, yb = (r - g).flatten(1), (0.5 * (r + g) - b).flatten(1)
    std = (rg.var(1, unbiased=False) + yb.var(1, unbiased=False)).sqrt()
    mean = (rg.mean(1) ** 2 + yb.mean(1) ** 2).sqrt()
    return std + 0.3 * mean


def delta_e(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean CIE76 ΔE (Lab, D65) per image (N, 3, H, W) in [0, 1] -> (N,); about 2.3 is just noticeable (notebook 07)."""
    import kornia.color
    return (kornia.color.rgb_to_lab(pred.float())
            - kornia.color.rgb_to_lab(target.float())).norm(dim=1).flatten(1).mean(1)


def _sqrtm_psd(m: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh((m + m.T) / 2)
    return (vecs * vals.clamp(min=0).sqrt()) @ vecs.T


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fréchet distance (FID's formula) between Gaussians fitted to two sets of embeddings (N, D) (notebook 04)."""
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.atleast_2d(torch.cov(a.T)), torch.atleast_2d(torch.cov(b.T))
    root_a = _sqrtm_psd(cov_a)
    cross = _sqrtm_psd(root_a @ cov_b @ root_a)
    value = (mu_a - mu_b).pow(2).sum() + torch.trace(cov_a) + torch.trace(cov_b) - 2 * torch.trace(cross)
    return float(value.clamp(min=0))


def thumbnails(images: torch.Tensor, grid: int = 8) -> torch.Tensor:
    """Images (N, C, H, W) -> (N, C * grid * grid) thumbnails, fixed features for ``frechet_distance`` (notebook 04)."""
    return F.adaptive_avg_pool2d(images.float(), grid).flatten(1).cpu()
