"""GAN training, as fastai v1's ``GANLearner`` in lesson 7: a generator and a critic with their own optimizers,
pluggable losses (``crit_loss_func(real_pred, fake_pred)``, ``gen_loss_func(fake_pred, output, target)``), a switcher,
optional critic clipping (WGAN) and critic lr multiplier. Introduced in notebook 04 (wgan); 03 and 07 reuse it."""

from typing import Callable

import torch
from torch import nn
from torchvision.utils import make_grid

from helpers import config
from helpers.loop import (BaseLearner, SmoothedLoss, check_finite, grad_scaler, make_optimizer, optimizer_step,
                          smoke_epochs)
from helpers.losses import wasserstein_critic_loss, wasserstein_gen_loss
from helpers.progress import progress_bar
from helpers.recorder import GANRecorder


class FixedGANSwitcher:
    """``n_crit`` critic batches, then ``n_gen`` generator batches, and again (notebook 04)."""

    needs_loss = False  # decides by counting: the loop need not wait for the loss's value

    def __init__(self, n_crit: int = 1, n_gen: int = 1):
        self.n_crit, self.n_gen, self.count = n_crit, n_gen, 0

    def reset(self) -> None:
        self.count = 0

    def __call__(self, gen_mode: bool, loss: float | None) -> bool:
        """After each batch, with its mode (and loss, if ``needs_loss``): the mode of the next batch."""
        self.count += 1
        if self.count < (self.n_gen if gen_mode else self.n_crit):
            return gen_mode
        self.count = 0
        return not gen_mode


class AdaptiveGANSwitcher:
    """Switch to the critic when the generator loss falls below ``gen_thresh``, and to the generator when the critic
    loss falls below ``critic_thresh``; ``None`` means "after every batch" (notebook 04)."""

    needs_loss = True  # the loop passes each batch's loss value

    def __init__(self, gen_thresh: float | None = None, critic_thresh: float | None = None):
        self.gen_thresh, self.critic_thresh = gen_thresh, critic_thresh

    def reset(self) -> None:
        pass

    def __call__(self, gen_mode: bool, loss: float | None) -> bool:
        """``loss``: the current model's latest host-side batch loss, or None: a thresholded model then trains on."""
        thresh = self.gen_thresh if gen_mode else self.critic_thresh
        return (not gen_mode) if thresh is None or (loss is not None and loss < thresh) else gen_mode


class HostLoss:
    """The loss a switcher decides from, without making a GPU wait (notebook 04): on a GPU the previous batch's (one
    batch late). ``push`` returns (mode of that batch, value), or None while none has arrived."""

    def __init__(self, lag: bool):
        self.lag, self.pending = lag, None

    def push(self, gen_mode: bool, loss: torch.Tensor) -> tuple[bool, float] | None:
        if not self.lag:
            return gen_mode, float(loss)
        copy = loss.detach().to("cpu", non_blocking=True)
        done = torch.cuda.Event() if loss.is_cuda else None
        if done is not None:
            done.record()
        arrived, self.pending = self.pending, (gen_mode, copy, done)
        if arrived is None:
            return None
        if arrived[2] is not None:
            arrived[2].synchronize()  # the batch before this one: the GPU is past it, nothing waits
        return arrived[0], float(arrived[1])


def image_grid(x: torch.Tensor, nrow: int = 8, pad: int = 2, value_range: tuple[float, float] = (-1, 1)) -> torch.Tensor:
    """A batch (N, C, H, W) in ``value_range`` -> one uint8 image on the CPU, white ``pad`` gaps (notebook 04)."""
    lo, hi = value_range
    x = ((x.detach().float().cpu().clamp(lo, hi) - lo) * (255 / (hi - lo))).round().to(torch.uint8)
    # make_grid repeats a single channel three times; keep the input's channel count
    return make_grid(x, nrow=min(nrow, len(x)), padding=pad, pad_value=255)[: x.shape[1]]


def gan_losses(loss_gen: Callable, loss_crit: Callable, weights_gen: tuple[float, float] = (1.0, 1.0)):
    """The losses fastai's ``GANLearner.from_learners`` builds (notebook 03): generator ``w0 * loss_crit(critic(fake),
    1) + w1 * loss_gen(fake, target)``; critic ``(loss_crit(critic(real), 1) + loss_crit(critic(fake), 0)) / 2``."""
    def gen_loss(fake_pred: torch.Tensor, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        ones = fake_pred.new_ones(fake_pred.shape[0])
        return weights_gen[0] * loss_crit(fake_pred, ones) + weights_gen[1] * loss_gen(output, target)

    def crit_loss(real_pred: torch.Tensor, fake_pred: torch.Tensor) -> torch.Tensor:
        ones, zeros = real_pred.new_ones(real_pred.shape[0]), fake_pred.new_zeros(fake_pred.shape[0])
        return (loss_crit(real_pred, ones) + loss_crit(fake_pred, zeros)) / 2

    return gen_loss, crit_loss


def checkpoint_every(planned: int, n: int = 6) -> int:
    """Iterations between ``SaveEvery`` checkpoints so that ``planned`` iterations save about ``n`` (notebook 07)."""
    return max(1, planned // n)


class SaveEvery:
    """Saves both models every ``every`` iterations as ``<name>_<iteration>`` (DeOldify's ``GANSaveCallback``), and with
    ``at_start`` / ``at_end`` before the first fit and after the last (notebooks 03, 07); ``saved``: the iterations."""

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


class GANLearner(BaseLearner):
    """A generator, a critic, their losses and optimizers, and the alternating loop (notebook 04). ``data`` yields
    ``(x, real)``; frozen parameters stay frozen."""

    def __init__(self, data, generator: nn.Module, critic: nn.Module, gen_loss_func: Callable = wasserstein_gen_loss,
                 crit_loss_func: Callable = wasserstein_critic_loss, switcher=None, clip: float | None = None,
                 critic_lr_mult: float = 1.0, switch_eval: bool = True, betas: tuple[float, float] = (0.9, 0.99),
                 wd: float = 1e-2, n_grid: int = 64, grid_nrow: int = 8, grid_every: int = 1, callbacks=()):
        super().__init__(data, callbacks)
        self.generator, self.critic = generator.to(self.device), critic.to(self.device)
        self.gen_loss_func, self.crit_loss_func = gen_loss_func, crit_loss_func
        self.switcher = switcher or FixedGANSwitcher()
        self.clip, self.critic_lr_mult, self.switch_eval = clip, critic_lr_mult, switch_eval
        self.betas, self.wd = betas, wd
        self.recorder = GANRecorder()
        self.grids: dict[int, torch.Tensor] = {}  # epoch (counted over every fit) -> the fixed inputs' grid
        self.grid_nrow, self.grid_every, self.epochs_done = grid_nrow, grid_every, 0
        self.fixed_input = self._fixed_input(n_grid)
        self.gen_mode, self.iteration = False, 0
        self._frozen: dict[int, list[bool]] = {}  # requires_grad of a model while it sits idle
        self.opt_gen = self.opt_crit = None
        self.scaler_gen = self.scaler_crit = None  # each optimizer's gradient scaler when training in fp16

    def models(self) -> dict[str, nn.Module]:
        return {"generator": self.generator, "critic": self.critic}

    @classmethod
    def wgan(cls, data, generator: nn.Module, critic: nn.Module, switcher=None, clip: float = 0.01,
             switch_eval: bool = False, betas: tuple[float, float] = (0.0, 0.99), wd: float = 0.0,
             **kwargs) -> "GANLearner":
        """The lesson's ``GANLearner.wgan``: Wasserstein losses, critic clipped to ``±clip``, 5 critic batches per
        generator batch, Adam betas (0, 0.99), no weight decay, both models left in train mode (notebook 04)."""
        return cls(data, generator, critic, wasserstein_gen_loss, wasserstein_critic_loss,
                   switcher or FixedGANSwitcher(n_crit=5, n_gen=1), clip=clip, switch_eval=switch_eval,
                   betas=betas, wd=wd, **kwargs)

    @classmethod
    def from_learners(cls, learn_gen, learn_crit, switcher=None, weights_gen: tuple[float, float] = (1.0, 1.0),
                      **kwargs) -> "GANLearner":
        """The lesson's ``GANLearner.from_learners``: losses from the two learners' (``gan_losses``) (notebook 03)."""
        gen_loss, crit_loss = gan_losses(learn_gen.loss_func, learn_crit.loss_func, weights_gen)
        return cls(learn_gen.data, learn_gen.model, learn_crit.model, gen_loss, crit_loss,
                   switcher or FixedGANSwitcher(n_crit=5, n_gen=1), **kwargs)

    def _fixed_input(self, n: int) -> torch.Tensor:
        """The same generator inputs for every grid: seeded noise, or the first ``n`` validation inputs."""
        if hasattr(self.data, "noise"):
            return self.data.noise(n, torch.Generator().manual_seed(config.seed()))
        return self.data.valid_dl.batch(torch.arange(min(n, self.data.valid_dl.n_items)))[0]

    def _set_idle(self, model: nn.Module, idle: bool) -> None:
        if idle and id(model) not in self._frozen:
            self._frozen[id(model)] = [p.requires_grad for p in model.parameters()]
            model.requires_grad_(False)
        elif not idle and id(model) in self._frozen:
            for p, on in zip(model.parameters(), self._frozen.pop(id(model))):
                p.requires_grad_(on)

    def switch(self, gen_mode: bool | None = None) -> None:
        """Train the generator (``True``) or the critic (``False``); ``None`` flips. The idle model stops needing
        gradients (and with ``switch_eval`` goes to eval mode); frozen parameters stay frozen (notebook 04)."""
        self.gen_mode = (not self.gen_mode) if gen_mode is None else gen_mode
        active, idle = (self.generator, self.critic) if self.gen_mode else (self.critic, self.generator)
        self._set_idle(active, False)
        self._set_idle(idle, True)
        active.train()
        idle.train(not self.switch_eval)

    def critic_step(self, x: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """One critic update on a real batch and the fakes made from ``x`` (notebook 04)."""
        with self.autocast():
            with torch.no_grad():
                fake = self.generator(x)
            self.pred = self.critic(real), self.critic(fake)
            self.event("after_pred")
            self.loss = self.crit_loss_func(*self.pred)
            self.event("after_loss")
        optimizer_step(self.loss, self.opt_crit, self.scaler_crit)
        return self.loss.detach()

    def generator_step(self, x: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """One generator update: the critic scores the fakes, ``gen_loss_func`` turns that into a loss (notebook 04)."""
        with self.autocast():
            self.pred = fake = self.generator(x)
            self.event("after_pred")
            self.loss = self.gen_loss_func(self.critic(fake), fake, real)
            self.event("after_loss")
        optimizer_step(self.loss, self.opt_gen, self.scaler_gen)
        return self.loss.detach()

    def create_opts(self, lr: float, wd: float) -> None:
        """Each model's AdamW at ``lr`` and weight decay ``wd``, and its gradient scaler (None unless fp16),
        ``opt_gen``, ``scaler_gen`` and ``opt_crit``, ``scaler_crit``; ``fit`` sets each one's rate (notebook 04)."""
        self.opt_gen, self.opt_crit = (make_optimizer([{"params": list(m.parameters()), "lr": lr}], self.betas, wd,
                                                      self.device) for m in (self.generator, self.critic))
        self.scaler_gen, self.scaler_crit = grad_scaler(self.device), grad_scaler(self.device)

    def fit(self, epochs: int, lr: float = 2e-4, wd: float | None = None) -> None:
        """Train ``epochs`` epochs at a constant ``lr`` (critic's ``* critic_lr_mult``), critic first; a row of smoothed
        losses per epoch ("—": no batch), a grid of fixed inputs every ``grid_every`` epochs and last (notebook 04)."""
        epochs, wd = smoke_epochs(epochs), self.wd if wd is None else wd
        if self.opt_gen is None:  # Adams and scalers made at the first fit and kept; later fits set lr and wd
            self.create_opts(lr, wd)
        for opt, rate in ((self.opt_gen, lr), (self.opt_crit, lr * self.critic_lr_mult)):
            for group in opt.param_groups:
                group["lr"], group["weight_decay"] = rate, wd
        rec = self.recorder = GANRecorder()
        smooth, steps, host = {True: SmoothedLoss(), False: SmoothedLoss()}, [], HostLoss(lag=self.device.type != "cpu")
        self.switcher.reset()
        self.switch(False)
        nxt = [False]  # the mode the switcher chose for the next batch

        def train_batch(batch) -> None:
            if nxt[0] != self.gen_mode:
                self.switch(nxt[0])
            if self.clip:  # WGAN: every critic parameter clamped to [-clip, clip], before every batch
                with torch.no_grad():
                    params = list(self.critic.parameters())
                    torch._foreach_clamp_min_(params, -self.clip)
                    torch._foreach_clamp_max_(params, self.clip)
            loss = self.generator_step(*batch) if (mode := self.gen_mode) else self.critic_step(*batch)
            steps.append((mode, loss))
            self.iteration, self.loss = self.iteration + 1, loss
            known = host.push(mode, loss) if self.switcher.needs_loss else None
            value = known[1] if known is not None and known[0] == mode else None  # this model's latest loss
            nxt[0] = self.switcher(mode, value)

        def end_epoch(epoch: int) -> list:
            for mode, loss in steps:  # one sync per epoch for the bookkeeping
                value = float(loss)
                check_finite(value, f"{'generator' if mode else 'critic'} loss", epoch)
                (rec.gen_losses if mode else rec.crit_losses).append(value)
                smooth[mode].add(value)
            gen, crit = (smooth[m].value if any(mode == m for mode, _ in steps) else None for m in (True, False))
            steps.clear()
            rec.epoch_gen.append(gen)
            rec.epoch_crit.append(crit)
            self.epochs_done += 1
            if self.epochs_done % self.grid_every == 0 or epoch == epochs:
                self.grids[self.epochs_done] = self.render()
            return [gen, crit]

        def finish() -> None:  # both models as they were given, ready for their own fits
            self.switch(False)
            self._set_idle(self.generator, False)

        rec.train_seconds = self._fit(epochs, ["gen_loss", "disc_loss"], train_batch, end_epoch,
                                      getattr(self.data, "train_dl", self.data), finish=finish)

    def generate(self, x: torch.Tensor | int) -> torch.Tensor:
        """Generator output for inputs ``x`` (or ``x`` fresh noise vectors), on the CPU (notebook 04)."""
        return self.predict_batch(self.data.noise(x) if isinstance(x, int) else x, self.generator).cpu()

    def render(self) -> torch.Tensor:
        """The fixed inputs through the generator, as a denormalised uint8 grid (notebook 04)."""
        out = self.generate(self.fixed_input)
        if getattr(self.data, "stats", None) is not None:
            return image_grid(self.data.denorm(out), nrow=self.grid_nrow, value_range=(0, 1))
        return image_grid(out, nrow=self.grid_nrow)

    def show_grid(self, epoch: int = -1, figsize=(6, 6), title: str | None = None, ax=None) -> None:
        """Draw the grid kept after ``epoch`` (1-based; ``-1`` the last) (notebook 04)."""
        from helpers.show import show_as_jpeg, show_image
        grid = self.grids[sorted(self.grids)[epoch] if epoch < 0 else epoch]
        show_image(grid.float() / 255, ax=ax, figsize=figsize, title=title, cmap="gray", vmin=0, vmax=1)
        if ax is None:  # a figure of its own: shown as a JPEG, a fraction of the PNG's bytes
            show_as_jpeg()


def score_checkpoints(learn: "GANLearner", saver: SaveEvery, score: Callable[[], dict[str, float]], key: str,
                      higher_is_better: bool = False) -> tuple[dict[int, dict[str, float]], int]:
    """Load each checkpoint ``saver`` wrote, ``score()`` it ({name: value}), and leave ``learn`` at the best by ``key``;
    returns ({iteration: scores}, best) (notebook 07)."""
    if not saver.saved:
        raise ValueError(f"no checkpoints to score: {saver.name!r} saved none (fewer than {saver.every} iterations?)")
    scores = {}
    for it in progress_bar(saver.saved, total=len(saver.saved), desc="scoring checkpoints"):
        learn.load(f"{saver.name}_{it}")
        scores[it] = {k: float(v) for k, v in score().items()}
    best = (max if higher_is_better else min)(scores, key=lambda it: scores[it][key])
    learn.load(f"{saver.name}_{best}")
    return scores, best
