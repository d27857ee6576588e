"""GAN training: a generator and a critic, each with its own optimizer, and a switcher that says who
trains next.

Introduced in notebook 04 (wgan) and shared by the super-resolution GAN and the colorizer. The
pieces follow fastai v1's ``GANLearner`` as lesson 7 used it:

- losses are pluggable: ``crit_loss_func(real_pred, fake_pred)`` and
  ``gen_loss_func(fake_pred, output, target)`` (the generator loss may also compare its output with
  the real target, e.g. pixel loss + critic score in super-resolution);
- a switcher decides after every batch whether the generator or the critic trains next:
  ``FixedGANSwitcher(n_crit, n_gen)`` or ``AdaptiveGANSwitcher(gen_thresh, critic_thresh)``;
- optional weight clipping of the critic (WGAN), an optional critic learning-rate multiplier
  (fastai's ``GANDiscriminativeLR``), and ``switch_eval`` to put the model that is not training in
  eval mode;
- ``fit(epochs, lr)`` prints one row per epoch with the smoothed generator and critic losses, and
  renders a fixed batch of noise to an image grid after every epoch (``learn.grids``).

Wasserstein sign convention (the lesson's): the critic minimises ``real.mean() - fake.mean()``, so it
learns to give real images *low* scores and fakes high ones; the generator minimises the mean
critic score of its fakes, i.e. it pushes them towards the real images' low scores.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.utils import make_grid

from helpers import config
from helpers.learner import load_state, save_state, smoke_epochs
from helpers.losses import wasserstein_critic_loss, wasserstein_gen_loss
from helpers.progress import EpochTable, progress_bar


# --- switchers ----------------------------------------------------------------------------------

class FixedGANSwitcher:
    """``n_crit`` critic batches, then ``n_gen`` generator batches, and again (notebook 04)."""

    def __init__(self, n_crit: int = 1, n_gen: int = 1):
        self.n_crit, self.n_gen = n_crit, n_gen
        self.count = 0

    def reset(self) -> None:
        self.count = 0

    def __call__(self, gen_mode: bool, loss: float) -> bool:
        """Called after each batch with the mode it trained in; returns the mode of the next batch."""
        self.count += 1
        limit = self.n_gen if gen_mode else self.n_crit
        if self.count >= limit:
            self.count = 0
            return not gen_mode
        return gen_mode


class AdaptiveGANSwitcher:
    """Switch to the critic when the generator loss falls below ``gen_thresh``, and to the generator
    when the critic loss falls below ``critic_thresh``; ``None`` means "after every batch"
    (notebook 04)."""

    def __init__(self, gen_thresh: float | None = None, critic_thresh: float | None = None):
        self.gen_thresh, self.critic_thresh = gen_thresh, critic_thresh

    def reset(self) -> None:
        pass

    def __call__(self, gen_mode: bool, loss: float) -> bool:
        thresh = self.gen_thresh if gen_mode else self.critic_thresh
        if thresh is None or loss < thresh:
            return not gen_mode
        return gen_mode


# --- images -----------------------------------------------------------------------------------

def image_grid(x: torch.Tensor, nrow: int = 8, pad: int = 2) -> torch.Tensor:
    """A batch (N, C, H, W) in [-1, 1] -> one uint8 image (C, rows*(H+pad)+pad, nrow*(W+pad)+pad)
    on the CPU, white gaps between the tiles (notebook 04). Headless: no plotting involved."""
    x = ((x.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    # make_grid repeats a single channel three times; keep the input's channel count
    return make_grid(x, nrow=min(nrow, len(x)), padding=pad, pad_value=255)[: x.shape[1]]


# --- the learner ------------------------------------------------------------------------------

class GANRecorder:
    """Per-batch raw losses and per-epoch smoothed losses of both models (notebook 04)."""

    def __init__(self):
        self.gen_losses: list[float] = []   # raw, one per generator batch
        self.crit_losses: list[float] = []  # raw, one per critic batch
        self.epoch_gen: list[float] = []    # smoothed (beta 0.98), at the end of each epoch
        self.epoch_crit: list[float] = []
        self.train_seconds = 0.0

    def plot_losses(self) -> None:
        """Raw generator and critic losses against their own batch counts (notebook 04)."""
        from helpers.show import _plt
        plt = _plt()
        fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
        a.plot(self.gen_losses, lw=0.8)
        a.set_title("generator loss")
        b.plot(self.crit_losses, lw=0.8, color="C1")
        b.set_title("critic loss")
        for ax in (a, b):
            ax.set_xlabel("batches of this model")
        fig.tight_layout()


class GANLearner:
    """A generator, a critic, their losses and optimizers, and the alternating training loop (notebook 04).

    ``data`` yields ``(x, real)``: the generator's input (noise, or a degraded image) and the real
    image it should imitate. Each model gets its own Adam (``betas``, decoupled weight decay ``wd``).
    """

    def __init__(self, data, generator: nn.Module, critic: nn.Module,
                 gen_loss_func: Callable = wasserstein_gen_loss,
                 crit_loss_func: Callable = wasserstein_critic_loss,
                 switcher=None, clip: float | None = None, critic_lr_mult: float = 1.0,
                 switch_eval: bool = True, betas: tuple[float, float] = (0.9, 0.99), wd: float = 1e-2,
                 n_grid: int = 64, grid_nrow: int = 8):
        self.data = data
        self.device = getattr(data, "device", config.device())
        self.generator, self.critic = generator.to(self.device), critic.to(self.device)
        self.gen_loss_func, self.crit_loss_func = gen_loss_func, crit_loss_func
        self.switcher = switcher or FixedGANSwitcher()
        self.clip, self.critic_lr_mult, self.switch_eval = clip, critic_lr_mult, switch_eval
        self.betas, self.wd = betas, wd
        self.recorder = GANRecorder()
        self.grids: list[torch.Tensor] = []
        self.grid_nrow = grid_nrow
        self.fixed_input = self._fixed_input(n_grid)
        self.gen_mode = False
        self.opt_gen = self.opt_crit = None

    @classmethod
    def wgan(cls, data, generator: nn.Module, critic: nn.Module, switcher=None, clip: float = 0.01,
             switch_eval: bool = False, betas: tuple[float, float] = (0.0, 0.99), wd: float = 0.0,
             **kwargs) -> "GANLearner":
        """The lesson's ``GANLearner.wgan``: Wasserstein losses, critic weights clipped to ``±clip``,
        5 critic batches per generator batch, Adam with betas (0, 0.99), no weight decay, and both
        models left in train mode (notebook 04)."""
        return cls(data, generator, critic, wasserstein_gen_loss, wasserstein_critic_loss,
                   switcher or FixedGANSwitcher(n_crit=5, n_gen=1), clip=clip, switch_eval=switch_eval,
                   betas=betas, wd=wd, **kwargs)

    def _fixed_input(self, n: int) -> torch.Tensor:
        """The same generator inputs for every epoch's grid: seeded noise, or a slice of real inputs."""
        if hasattr(self.data, "noise"):
            return self.data.noise(n, torch.Generator().manual_seed(config.seed()))
        x, _ = next(iter(self.data))
        return x[:n]

    # --- modes --------------------------------------------------------------------------------
    def switch(self, gen_mode: bool | None = None) -> None:
        """Train the generator (``True``) or the critic (``False``); ``None`` flips. Only the training
        model needs gradients; with ``switch_eval`` the other one goes to eval mode (notebook 04)."""
        self.gen_mode = (not self.gen_mode) if gen_mode is None else gen_mode
        active, idle = (self.generator, self.critic) if self.gen_mode else (self.critic, self.generator)
        active.requires_grad_(True)
        idle.requires_grad_(False)
        active.train()
        idle.train(not self.switch_eval)

    def clip_critic(self) -> None:
        """Clamp every critic parameter to ``[-clip, clip]`` (WGAN) (notebook 04)."""
        if self.clip:
            with torch.no_grad():
                for p in self.critic.parameters():
                    p.clamp_(-self.clip, self.clip)

    def _make_opts(self, lr: float, wd: float) -> None:
        self.opt_gen = torch.optim.AdamW(self.generator.parameters(), lr=lr, betas=self.betas, weight_decay=wd)
        self.opt_crit = torch.optim.AdamW(self.critic.parameters(), lr=lr * self.critic_lr_mult,
                                          betas=self.betas, weight_decay=wd)

    # --- one batch ------------------------------------------------------------------------------
    def critic_step(self, x: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """One critic update on a real batch and the fakes made from ``x``; clips afterwards (notebook 04)."""
        with torch.no_grad():
            fake = self.generator(x)
        loss = self.crit_loss_func(self.critic(real), self.critic(fake))
        self.opt_crit.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_crit.step()
        self.clip_critic()
        return loss.detach()

    def generator_step(self, x: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """One generator update: the critic scores the fakes, ``gen_loss_func`` turns that into a loss
        (notebook 04)."""
        fake = self.generator(x)
        loss = self.gen_loss_func(self.critic(fake), fake, real)
        self.opt_gen.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_gen.step()
        return loss.detach()

    # --- the loop -----------------------------------------------------------------------------
    def fit(self, epochs: int, lr: float = 2e-4, wd: float | None = None) -> None:
        """Train ``epochs`` epochs at a constant ``lr`` (the critic's times ``critic_lr_mult``), starting
        with the critic; print the smoothed losses per epoch and keep a grid of the fixed noise
        (notebook 04)."""
        epochs = smoke_epochs(epochs)
        if self.opt_gen is None or wd is not None:
            self._make_opts(lr, self.wd if wd is None else wd)
        for g in self.opt_gen.param_groups:
            g["lr"] = lr
        for g in self.opt_crit.param_groups:
            g["lr"] = lr * self.critic_lr_mult
        rec = self.recorder
        table = EpochTable(["gen_loss", "disc_loss"])
        beta = 0.98
        smooth = {True: 0.0, False: 0.0}
        count = {True: 0, False: 0}
        self.switcher.reset()
        self.switch(False)
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            steps: list[tuple[bool, torch.Tensor]] = []
            for x, real in progress_bar(self.data, total=len(self.data), desc=f"epoch {epoch}/{epochs}"):
                mode = self.gen_mode
                loss = self.generator_step(x, real) if mode else self.critic_step(x, real)
                steps.append((mode, loss))
                # adaptive switchers need the value now; fixed ones ignore it (no GPU sync then)
                value = loss.item() if isinstance(self.switcher, AdaptiveGANSwitcher) else 0.0
                nxt = self.switcher(mode, value)
                if nxt != mode:
                    self.switch(nxt)
            for mode, loss in steps:  # one sync per epoch for the bookkeeping
                value = float(loss)
                if not math.isfinite(value):
                    raise FloatingPointError(f"{'generator' if mode else 'critic'} loss became {value} "
                                             f"in epoch {epoch}; lower the learning rate")
                (rec.gen_losses if mode else rec.crit_losses).append(value)
                count[mode] += 1
                smooth[mode] = beta * smooth[mode] + (1 - beta) * value
            gen = smooth[True] / (1 - beta ** count[True]) if count[True] else None
            crit = smooth[False] / (1 - beta ** count[False]) if count[False] else None
            rec.epoch_gen.append(gen)
            rec.epoch_crit.append(crit)
            self.grids.append(self.render())
            table.row(epoch, [gen, crit], time.perf_counter() - start)
        rec.train_seconds += table.close()
        self.switch(False)

    # --- using the generator ----------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, x: torch.Tensor | int) -> torch.Tensor:
        """Generator output for inputs ``x`` (or ``x`` fresh noise vectors), in eval mode, on the
        CPU (notebook 04)."""
        if isinstance(x, int):
            x = self.data.noise(x)
        was = self.generator.training
        self.generator.eval()
        try:
            return self.generator(x.to(self.device)).float().cpu()
        finally:
            self.generator.train(was)

    def render(self) -> torch.Tensor:
        """The fixed inputs through the generator, as a uint8 grid (notebook 04)."""
        return image_grid(self.generate(self.fixed_input), nrow=self.grid_nrow)

    def show_grid(self, epoch: int = -1, figsize=(6, 6), title: str | None = None, ax=None) -> None:
        """Draw the grid kept after ``epoch`` (1-based; ``-1`` the last) (notebook 04)."""
        from helpers.show import show_as_jpeg, show_image
        grid = self.grids[epoch if epoch < 0 else epoch - 1]
        show_image(grid.float() / 255, ax=ax, figsize=figsize, title=title, cmap="gray", vmin=0, vmax=1)
        if ax is None:  # a figure of its own: shown as a JPEG, a fraction of the PNG's bytes
            show_as_jpeg()

    # --- persistence ------------------------------------------------------------------------------
    def save(self, name: str, return_path: bool = False) -> Path | None:
        """Both models' weights to ``<data>/models/<name>.pth`` atomically; the path only when asked
        for (notebook 04)."""
        path = save_state({"generator": self.generator.state_dict(), "critic": self.critic.state_dict()}, name)
        return path if return_path else None

    def load(self, name: str) -> "GANLearner":
        """Load weights written by ``save`` (notebook 04)."""
        state = load_state(name, self.device)
        self.generator.load_state_dict(state["generator"])
        self.critic.load_state_dict(state["critic"])
        return self


# --- a quality score: Fréchet distance between embeddings -------------------------------------------

def _sqrtm_psd(m: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh((m + m.T) / 2)
    return (vecs * vals.clamp(min=0).sqrt()) @ vecs.T


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two sets of embeddings (N, D) (notebook 04):

    ``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2)``.

    ``tr((S_a S_b)^1/2)`` equals the trace of the square root of the symmetric positive
    semi-definite ``S_a^1/2 S_b S_a^1/2``, so two symmetric eigen-decompositions suffice (no scipy).
    This is FID's formula; with a digit classifier instead of Inception as the embedding.
    """
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.atleast_2d(torch.cov(a.T)), torch.atleast_2d(torch.cov(b.T))
    root_a = _sqrtm_psd(cov_a)
    cross = _sqrtm_psd(root_a @ cov_b @ root_a)
    value = (mu_a - mu_b).pow(2).sum() + torch.trace(cov_a) + torch.trace(cov_b) - 2 * torch.trace(cross)
    return float(value.clamp(min=0))


def thumbnails(images: torch.Tensor, grid: int = 8) -> torch.Tensor:
    """Images (N, C, H, W) -> (N, C * grid * grid): each image averaged down to a ``grid`` x ``grid``
    thumbnail. A fixed feature space for ``frechet_distance`` that needs no trained network, so the
    score means the same on any machine and for any images (notebook 04)."""
    return F.adaptive_avg_pool2d(images.float(), grid).flatten(1).cpu()
