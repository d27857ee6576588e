"""Losses beyond torch's: flattened cross-entropy (notebook 06), Wasserstein (notebook 04), adaptive (notebook 03),
feature loss (notebook 05); ``metric_names`` / ``metrics`` become validation columns."""

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from helpers import config
from helpers.hooks import Hooks


def cross_entropy_flat(pred: torch.Tensor, targ: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over every position of a sequence: ``(bs, seq, n_vocab)`` vs ``(bs, seq)`` (notebook 06)."""
    return F.cross_entropy(pred.reshape(-1, pred.shape[-1]).float(), targ.reshape(-1))


def wasserstein_critic_loss(real_pred: torch.Tensor, fake_pred: torch.Tensor) -> torch.Tensor:
    """The lesson's ``WassersteinLoss``: ``real_pred.mean() - fake_pred.mean()`` (notebook 04)."""
    return real_pred.mean() - fake_pred.mean()


def wasserstein_gen_loss(fake_pred: torch.Tensor, output: torch.Tensor | None = None,
                         target: torch.Tensor | None = None) -> torch.Tensor:
    """The lesson's ``NoopLoss`` for the WGAN generator: the mean critic score of the fakes (notebook 04)."""
    return fake_pred.mean()


class AdaptiveLoss(nn.Module):
    """fastai v1's ``AdaptiveLoss``: ``crit`` with each image's label expanded to its output's shape (notebook 03)."""

    def __init__(self, crit: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]):
        super().__init__()
        self.crit = crit

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.crit(output, target.reshape(-1, *[1] * (output.dim() - 1)).expand_as(output).float())


def gram_matrix(x: torch.Tensor) -> torch.Tensor:
    """``(n, c, h, w)`` activations -> ``(n, c, c)`` Gram matrices ``f @ f.T / (c*h*w)``, ``f`` one image's
    ``(c, h*w)`` activations, as the lesson's ``gram_matrix`` (notebook 05); float32 even under autocast."""
    n, c = x.shape[:2]
    f = x.reshape(n, c, -1).float()
    with torch.autocast(x.device.type, enabled=False):
        return f @ f.transpose(1, 2) / f[0].numel()


class FeatureLoss(nn.Module):
    """Perceptual loss of the lesson (notebook 05) and DeOldify (notebook 07): pixel ``base_loss`` plus weighted
    ``base_loss`` of frozen ``m_feat`` layers ``layer_ids`` (and their Gram matrices, ``gram_weight``), inputs
    ImageNet-normalised; ``metrics`` holds each part. ValueError on bad ``layer_ids`` / ``layer_wgts``."""

    def __init__(self, m_feat: nn.Sequential, layer_ids: Sequence[int] = (22, 32, 42),
                 layer_wgts: Sequence[float] = (5, 15, 2), gram_weight: float | None = 5e3,
                 base_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.l1_loss):
        super().__init__()
        if len(layer_ids) != len(layer_wgts):
            raise ValueError(f"one weight per layer: {len(layer_ids)} layer_ids but {len(layer_wgts)} layer_wgts")
        bad = [i for i in layer_ids if not -len(m_feat) <= i < len(m_feat)]
        if bad:
            raise ValueError(f"layer_ids {bad} are outside the features network's {len(m_feat)} layers")
        self.m_feat = m_feat.eval().requires_grad_(False)
        self.layer_ids, self.layer_wgts = list(layer_ids), [float(w) for w in layer_wgts]
        self.gram_weight, self.base_loss = gram_weight, base_loss
        self.hooks = Hooks([m_feat[i] for i in layer_ids], detach=False)
        self.metrics: dict[str, torch.Tensor] = {}
        self._device: torch.device | None = None

    @property
    def metric_names(self) -> list[str]:
        """Names of the parts in ``metrics``, in the order of the epoch table's columns (notebook 05)."""
        n = len(self.layer_ids)
        grams = [f"gram_{i}" for i in range(n)] if self.gram_weight else []
        return ["pixel", *[f"feat_{i}" for i in range(n)], *grams]

    def train(self, mode: bool = True) -> "FeatureLoss":
        """Like any module's, except that the features network stays in eval mode (notebook 05)."""
        super().train(mode)
        self.m_feat.eval()
        return self

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The hooked layers' outputs for ``x`` (notebook 05)."""
        if self._device != x.device:
            self.m_feat.to(x.device)
            self._device = x.device
        try:
            self.m_feat(x)
            return list(self.hooks.stored)
        finally:
            self.hooks.clear()

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            targ_feats = self.features(target)
        pred_feats = self.features(pred)
        parts = {"pixel": self.base_loss(pred, target)}
        for i, (fp, ft, w) in enumerate(zip(pred_feats, targ_feats, self.layer_wgts)):
            parts[f"feat_{i}"] = w * self.base_loss(fp, ft)
        if self.gram_weight:
            for i, (fp, ft, w) in enumerate(zip(pred_feats, targ_feats, self.layer_wgts)):
                parts[f"gram_{i}"] = self.gram_weight * w**2 * self.base_loss(gram_matrix(fp), gram_matrix(ft))
        self.metrics = {k: v.detach() for k, v in parts.items()}
        return sum(parts.values())

    def extra_repr(self) -> str:
        return f"layer_ids={self.layer_ids}, layer_wgts={self.layer_wgts}, gram_weight={self.gram_weight}"


def training_loss(feat_loss: FeatureLoss) -> tuple[Callable, str]:
    """``(loss, why)``: ``feat_loss`` when its network holds ImageNet weights (or in a smoke run), as the lesson
    does, else its pixel term ``base_loss`` (README, "05 · superres") (notebooks 05 and 07)."""
    if getattr(feat_loss.m_feat, "imagenet_weights", False):
        return feat_loss, "the feature loss: VGG16 has ImageNet weights"
    if config.smoke():
        return feat_loss, "the feature loss: a smoke run follows the path the ImageNet weights would take"
    return feat_loss.base_loss, "pixels (the feature loss's L1 term): VGG16 has no ImageNet weights here"
