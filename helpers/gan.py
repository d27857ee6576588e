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
  renders a fixed batch of noise to an image grid after every epoch, or every ``grid_every`` epochs and
  the last (``learn.grids``, by epoch).

Wasserstein sign convention (the lesson's): the critic minimises ``real.mean() - fake.mean()``, so it
learns to give real images *low* scores and fakes high ones; the generator minimises the mean
critic score of its fakes, i.e. it pushes them towards the real images' low scores.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.utils import make_grid

from helpers import config
from helpers.learner import (SmoothedLoss, autocast, check_finite, load_state, optimizer_step,
                             run_callbacks, save_state, smoke_epochs)
from helpers.losses import wasserstein_critic_loss, wasserstein_gen_loss
from helpers.progress import EpochTable, progress_bar


# --- switchers ----------------------------------------------------------------------------------

class FixedGANSwitcher:
    """``n_crit`` critic batches, then ``n_gen`` generator batches, and again (notebook 04)."""

    needs_loss = False  # decides by counting: the loop need not wait for the loss's value

    def __init__(self, n_crit: int = 1, n_gen: int = 1):
        self.n_crit, self.n_gen = n_crit, n_gen
        self.count = 0

    def reset(self) -> None:
        self.count = 0

    def __call__(self, gen_mode: bool, loss: float | None) -> bool:
        """Called after each batch with the mode it trained in (and its loss, for switchers whose
        ``needs_loss`` is true); returns the mode of the next batch."""
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

    needs_loss = True  # the loop passes each batch's loss value

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

def image_grid(x: torch.Tensor, nrow: int = 8, pad: int = 2, value_range: tuple[float, float] = (-1, 1)) -> torch.Tensor:
    """A batch (N, C, H, W) with values in ``value_range`` -> one uint8 image (C, rows*(H+pad)+pad,
    nrow*(W+pad)+pad) on the CPU, white gaps between the tiles (notebook 04). Headless: no plotting
    involved."""
    lo, hi = value_range
    x = ((x.detach().float().cpu().clamp(lo, hi) - lo) * (255 / (hi - lo))).round().to(torch.uint8)
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
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
        for ax, losses, name, colour in zip(axes, (self.gen_losses, self.crit_losses), ("generator", "critic"),
                                            ("C0", "C1")):
            if losses:  # few points get markers, so that each batch shows
                ax.plot(range(1, len(losses) + 1), losses, "o-" if len(losses) <= 60 else "-", lw=0.8, ms=3,
                        color=colour)
            else:
                ax.text(0.5, 0.5, f"no {name} batches", ha="center", va="center", transform=ax.transAxes)
            ax.set_title(f"{name} loss ({len(losses)} batches)")
            ax.set_xlabel("batches of this model")
        fig.tight_layout()


def gan_losses(loss_gen: Callable, loss_crit: Callable, weights_gen: tuple[float, float] = (1.0, 1.0)):
    """The losses fastai's ``GANLearner.from_learners`` builds from the two learners' own (notebook 03):

    - generator: ``weights_gen[0] * loss_crit(critic(fake), real label)`` (fool the critic) plus
      ``weights_gen[1] * loss_gen(fake, target)`` (stay close to the target);
    - critic: ``(loss_crit(critic(real), 1) + loss_crit(critic(fake), 0)) / 2``.
    """
    def gen_loss(fake_pred: torch.Tensor, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        ones = fake_pred.new_ones(fake_pred.shape[0])
        return weights_gen[0] * loss_crit(fake_pred, ones) + weights_gen[1] * loss_gen(output, target)

    def crit_loss(real_pred: torch.Tensor, fake_pred: torch.Tensor) -> torch.Tensor:
        ones, zeros = real_pred.new_ones(real_pred.shape[0]), fake_pred.new_zeros(fake_pred.shape[0])
        return (loss_crit(real_pred, ones) + loss_crit(fake_pred, zeros)) / 2

    return gen_loss, crit_loss


class SaveEvery:
    """A GAN callback that saves both models every ``every`` iterations as ``<name>_<iteration>``
    (DeOldify's ``GANSaveCallback``); ``saved`` lists the iterations (notebook 03). ``at_start`` also
    saves the models as they enter the first fit, as iteration 0, so that "no GAN at all" competes
    with the checkpoints, and ``at_end`` the models as the last fit leaves them (notebook 07)."""

    def __init__(self, every: int, name: str, at_start: bool = False, at_end: bool = False):
        self.every, self.name, self.at_start, self.at_end = every, name, at_start, at_end
        self.saved: list[int] = []

    def before_fit(self, learn: "GANLearner") -> None:
        if self.at_start and learn.iteration == 0 and 0 not in self.saved:
            learn.save(f"{self.name}_0")
            self.saved.append(0)

    def after_batch(self, learn: "GANLearner") -> None:
        if learn.iteration % self.every == 0:
            learn.save(f"{self.name}_{learn.iteration}")
            self.saved.append(learn.iteration)

    def after_fit(self, learn: "GANLearner") -> None:
        if self.at_end and learn.iteration not in self.saved:
            learn.save(f"{self.name}_{learn.iteration}")
            self.saved.append(learn.iteration)


class GANLearner:
    """A generator, a critic, their losses and optimizers, and the alternating training loop (notebook 04).

    ``data`` yields ``(x, real)``: the generator's input (noise, or a degraded image) and the real
    image it should imitate. Each model has its own Adam (``betas``, decoupled weight decay ``wd``),
    made at the first ``fit`` and kept, with its state, for the later ones, as fastai's did. The loop shares ``Learner``'s pieces: autocast, the
    optimizer step, loss smoothing, the NaN check and callbacks (events ``before_fit``,
    ``after_batch`` with ``iteration``, ``gen_mode`` and ``loss`` of that batch set, ``after_epoch``,
    ``after_fit``).
    Parameters a model had frozen (``requires_grad`` off) stay frozen whenever it trains.
    """

    def __init__(self, data, generator: nn.Module, critic: nn.Module,
                 gen_loss_func: Callable = wasserstein_gen_loss,
                 crit_loss_func: Callable = wasserstein_critic_loss,
                 switcher=None, clip: float | None = None, critic_lr_mult: float = 1.0,
                 switch_eval: bool = True, betas: tuple[float, float] = (0.9, 0.99), wd: float = 1e-2,
                 n_grid: int = 64, grid_nrow: int = 8, grid_every: int = 1, callbacks=()):
        self.data = data
        self.device = getattr(data, "device", config.device())
        self.generator, self.critic = generator.to(self.device), critic.to(self.device)
        self.gen_loss_func, self.crit_loss_func = gen_loss_func, crit_loss_func
        self.switcher = switcher or FixedGANSwitcher()
        self.clip, self.critic_lr_mult, self.switch_eval = clip, critic_lr_mult, switch_eval
        self.betas, self.wd = betas, wd
        self.callbacks = list(callbacks)
        self.recorder = GANRecorder()
        self.grids: dict[int, torch.Tensor] = {}  # epoch (counted over every fit) -> the fixed inputs' grid
        self.grid_nrow, self.grid_every, self.epochs_done = grid_nrow, grid_every, 0
        self.fixed_input = self._fixed_input(n_grid)
        self.gen_mode = False
        self.iteration = 0  # batches trained, both models, over every fit
        self._frozen: dict[int, list[bool]] = {}  # requires_grad of a model while it sits idle
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

    @classmethod
    def from_learners(cls, learn_gen, learn_crit, switcher=None, weights_gen: tuple[float, float] = (1.0, 1.0),
                      **kwargs) -> "GANLearner":
        """The lesson's ``GANLearner.from_learners``: the pretrained generator and critic, the
        generator's data, and losses made from the two learners' own (``gan_losses``) (notebook 03)."""
        gen_loss, crit_loss = gan_losses(learn_gen.loss_func, learn_crit.loss_func, weights_gen)
        return cls(learn_gen.data, learn_gen.model, learn_crit.model, gen_loss, crit_loss,
                   switcher or FixedGANSwitcher(n_crit=5, n_gen=1), **kwargs)

    def _fixed_input(self, n: int) -> torch.Tensor:
        """The same generator inputs for every epoch's grid: seeded noise, or the first ``n`` inputs of
        the validation set in order (of the training set if there is none)."""
        if hasattr(self.data, "noise"):
            return self.data.noise(n, torch.Generator().manual_seed(config.seed()))
        dl = getattr(self.data, "valid_dl", None)
        if dl is not None and hasattr(dl, "batch"):
            x, _ = dl.batch(torch.arange(min(n, dl.n_items)))
            return x
        x, _ = next(iter(getattr(self.data, "train_dl", self.data)))
        return x[:n]

    # --- modes --------------------------------------------------------------------------------
    def _set_idle(self, model: nn.Module, idle: bool) -> None:
        params = list(model.parameters())
        if idle and id(model) not in self._frozen:
            self._frozen[id(model)] = [p.requires_grad for p in params]
            model.requires_grad_(False)
        elif not idle and id(model) in self._frozen:
            for p, on in zip(params, self._frozen.pop(id(model))):
                p.requires_grad_(on)

    def switch(self, gen_mode: bool | None = None) -> None:
        """Train the generator (``True``) or the critic (``False``); ``None`` flips. The idle model's
        parameters stop needing gradients; the training model's get back exactly what they had, so a
        frozen encoder stays frozen. With ``switch_eval`` the idle model goes to eval mode (notebook 04)."""
        self.gen_mode = (not self.gen_mode) if gen_mode is None else gen_mode
        active, idle = (self.generator, self.critic) if self.gen_mode else (self.critic, self.generator)
        self._set_idle(active, False)
        self._set_idle(idle, True)
        active.train()
        idle.train(not self.switch_eval)

    def clip_critic(self) -> None:
        """Clamp every critic parameter to ``[-clip, clip]`` (WGAN), in one foreach call per bound; the loop
        does it before every batch, as fastai's ``GANTrainer.on_batch_begin`` (notebook 04)."""
        if self.clip:
            with torch.no_grad():
                params = list(self.critic.parameters())
                torch._foreach_clamp_min_(params, -self.clip)
                torch._foreach_clamp_max_(params, self.clip)

    def _set_opts(self, lr: float, wd: float) -> None:
        """Each model's Adam, made at the first fit and kept with its state for the later ones, which only
        set the learning rate (the critic's times ``critic_lr_mult``) and weight decay, as fastai's
        ``GANTrainer.on_train_begin`` did."""
        if self.opt_gen is None:
            self.opt_gen = torch.optim.AdamW(self.generator.parameters(), lr=lr, betas=self.betas, weight_decay=wd)
            self.opt_crit = torch.optim.AdamW(self.critic.parameters(), lr=lr * self.critic_lr_mult,
                                              betas=self.betas, weight_decay=wd)
        for opt, rate in ((self.opt_gen, lr), (self.opt_crit, lr * self.critic_lr_mult)):
            for group in opt.param_groups:
                group["lr"], group["weight_decay"] = rate, wd

    # --- one batch ------------------------------------------------------------------------------
    def critic_step(self, x: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """One critic update on a real batch and the fakes made from ``x`` (notebook 04)."""
        with autocast(self.device):
            with torch.no_grad():
                fake = self.generator(x)
            loss = self.crit_loss_func(self.critic(real), self.critic(fake))
        optimizer_step(loss, self.opt_crit)
        return loss.detach()

    def generator_step(self, x: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """One generator update: the critic scores the fakes, ``gen_loss_func`` turns that into a loss
        (notebook 04)."""
        with autocast(self.device):
            fake = self.generator(x)
            loss = self.gen_loss_func(self.critic(fake), fake, real)
        optimizer_step(loss, self.opt_gen)
        return loss.detach()

    # --- the loop -----------------------------------------------------------------------------
    def fit(self, epochs: int, lr: float = 2e-4, wd: float | None = None) -> None:
        """Train ``epochs`` epochs at a constant ``lr`` (the critic's times ``critic_lr_mult``), starting
        with the critic; print the smoothed losses per epoch and keep a grid of the fixed inputs
        (notebook 04)."""
        epochs = smoke_epochs(epochs)
        self._set_opts(lr, self.wd if wd is None else wd)
        rec = self.recorder
        table = EpochTable(["gen_loss", "disc_loss"])
        smooth = {True: SmoothedLoss(), False: SmoothedLoss()}
        self.switcher.reset()
        self.switch(False)
        run_callbacks(self.callbacks, "before_fit", self)
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            steps: list[tuple[bool, torch.Tensor]] = []
            dl = getattr(self.data, "train_dl", self.data)  # a DataBunch's training loader, or a GAN loader
            for x, real in table.bar(dl, total=len(dl), desc=f"epoch {epoch}/{epochs}"):
                self.clip_critic()
                mode = self.gen_mode
                loss = self.generator_step(x, real) if mode else self.critic_step(x, real)
                steps.append((mode, loss))
                self.iteration, self.loss = self.iteration + 1, loss
                run_callbacks(self.callbacks, "after_batch", self)
                # a switcher that decides by the loss gets its value now (a GPU sync); others do not wait
                nxt = self.switcher(mode, loss.item() if self.switcher.needs_loss else None)
                if nxt != mode:
                    self.switch(nxt)
            for mode, loss in steps:  # one sync per epoch for the bookkeeping
                value = float(loss)
                check_finite(value, f"{'generator' if mode else 'critic'} loss", epoch)
                (rec.gen_losses if mode else rec.crit_losses).append(value)
                smooth[mode].add(value)
            # a model that got no batch this epoch shows "—", not a value carried over from earlier
            gen, crit = (smooth[m].value if any(mode == m for mode, _ in steps) else None for m in (True, False))
            rec.epoch_gen.append(gen)
            rec.epoch_crit.append(crit)
            self.epochs_done += 1
            if self.epochs_done % self.grid_every == 0 or epoch == epochs:
                self.grids[self.epochs_done] = self.render()
            run_callbacks(self.callbacks, "after_epoch", self)
            table.row(epoch, [gen, crit], time.perf_counter() - start)
        rec.train_seconds += table.close()
        self.switch(False)
        self._set_idle(self.generator, False)  # both models as they were given: ready for their own fits
        run_callbacks(self.callbacks, "after_fit", self)

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
        """The fixed inputs through the generator, as a uint8 grid; outputs in the data's normalised
        scale are denormalised first (notebook 04)."""
        out = self.generate(self.fixed_input)
        if getattr(self.data, "stats", None) is not None and hasattr(self.data, "denorm"):
            return image_grid(self.data.denorm(out), nrow=self.grid_nrow, value_range=(0, 1))
        return image_grid(out, nrow=self.grid_nrow)

    def show_grid(self, epoch: int = -1, figsize=(6, 6), title: str | None = None, ax=None) -> None:
        """Draw the grid kept after ``epoch`` (1-based; ``-1`` the last) (notebook 04)."""
        from helpers.show import show_as_jpeg, show_image
        grid = self.grids[sorted(self.grids)[epoch] if epoch < 0 else epoch]
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


def score_checkpoints(learn: "GANLearner", saver: SaveEvery, score: Callable[[], dict[str, float]], key: str,
                      higher_is_better: bool = False) -> tuple[dict[int, dict[str, float]], int]:
    """Load every checkpoint ``saver`` wrote during the fits, call ``score()`` on each (numbers by name, say
    the generator's colour error and colorfulness on half the validation photos), and leave ``learn`` at
    the best one by ``key``; returns ({iteration: scores}, best iteration) (notebook 07). DeOldify's
    author picked the checkpoint by eye; this picks it by a number."""
    if not saver.saved:
        raise ValueError(f"no checkpoints to score: {saver.name!r} saved none (fewer than {saver.every} iterations?)")
    scores = {}
    for it in progress_bar(saver.saved, total=len(saver.saved), desc="scoring checkpoints"):
        learn.load(f"{saver.name}_{it}")
        scores[it] = {k: float(v) for k, v in score().items()}
    pick = max if higher_is_better else min
    best = pick(scores, key=lambda it: scores[it][key])
    learn.load(f"{saver.name}_{best}")
    return scores, best


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
