"""``Learner``: the training loop the notebooks share, with one-cycle, lr_find, a recorder and summary.

Introduced in notebook 01 (resnet-mnist). Semantics follow fastai v1 as the lesson used it:
AdamW with betas (0.9, 0.99) and decoupled weight decay 1e-2, ``fit_one_cycle`` with cosine
warm-up / annealing of the learning rate and momentum cycling 0.95 -> 0.85 -> 0.95 (torch's
``OneCycleLR``), and ``lr_find``'s exponential sweep that restores the weights afterwards.
A fresh optimizer is created for every ``fit*`` call.
"""
from __future__ import annotations

import copy
import math
import os
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from helpers import config
from helpers.progress import EpochTable, progress_bar


def accuracy(pred: torch.Tensor, targ: torch.Tensor) -> torch.Tensor:
    """Fraction of argmax predictions equal to the target; works on flattened sequences (notebook 01)."""
    return (pred.argmax(-1).reshape(-1) == targ.reshape(-1)).float().mean()


def accuracy_thresh_expand(pred: torch.Tensor, targ: torch.Tensor, thresh: float = 0.5,
                           sigmoid: bool = True) -> torch.Tensor:
    """fastai v1's ``accuracy_thresh_expand``: the fraction of all outputs (e.g. every patch of a critic's
    map) on the side of ``thresh`` that their image's label says, after a sigmoid if ``sigmoid``
    (notebook 03). With the defaults a logit counts as 1 when it is above 0."""
    if sigmoid:
        pred = pred.sigmoid()
    return ((pred > thresh).long() == targ.reshape(-1, *[1] * (pred.dim() - 1)).long()).float().mean()


def lr_range(lr: float | slice, n_groups: int) -> list[float]:
    """Learning rate per layer group, as fastai v1 (notebook 01).

    A number gives every group that rate; ``slice(hi)`` gives ``hi/10`` to all but the last group;
    ``slice(lo, hi)`` spaces the rates geometrically from ``lo`` to ``hi``.
    """
    if not isinstance(lr, slice):
        return [float(lr)] * n_groups
    if lr.start is None:
        return [lr.stop / 10] * (n_groups - 1) + [lr.stop]
    if n_groups == 1:
        return [float(lr.stop)]
    step = (math.log(lr.stop) - math.log(lr.start)) / (n_groups - 1)
    return [math.exp(math.log(lr.start) + i * step) for i in range(n_groups)]


class Recorder:
    """What happened during training: per-batch loss / lr / momentum, per-epoch validation (notebook 01)."""

    def __init__(self):
        self.lrs: list[float] = []
        self.moms: list[float] = []
        self.losses: list[float] = []
        self.val_losses: list[float] = []
        self.metrics: list[list[float]] = []
        self.metric_names: list[str] = []
        self.batches_per_epoch: list[int] = []
        self.train_seconds = 0.0

    def _axes(self, n: int = 1, figsize=(6, 4)):
        import matplotlib.pyplot as plt
        fig, axs = plt.subplots(1, n, figsize=(figsize[0] * n, figsize[1]))
        return fig, axs

    def plot(self, skip_start: int = 10, skip_end: int = 5) -> None:
        """Loss against learning rate from ``lr_find`` (log x axis), without the first ``skip_start``
        and last ``skip_end`` points; a short sweep skips proportionally fewer (notebook 01)."""
        if len(self.lrs) < 100:  # the defaults are fastai's, made for a 100-iteration sweep
            skip_start, skip_end = (round(k * len(self.lrs) / 100) for k in (skip_start, skip_end))
        end = len(self.lrs) - skip_end if len(self.lrs) > skip_start + skip_end else len(self.lrs)
        lrs, losses = self.lrs[skip_start:end], self.losses[skip_start:end]
        fig, ax = self._axes()
        ax.plot(lrs, losses)
        ax.set_xscale("log")
        ax.set_xlabel("learning rate (log scale)")
        ax.set_ylabel("smoothed training loss")
        if len(losses) > 2:
            best = min(range(len(losses)), key=losses.__getitem__)
            # steepest fall: the most negative slope of loss against log(lr), before the minimum
            slopes = [(losses[i + 1] - losses[i]) / math.log(lrs[i + 1] / lrs[i]) for i in range(max(best, 1))]
            steep = min(range(len(slopes)), key=slopes.__getitem__)
            ax.plot(lrs[best], losses[best], "o", color="C3", label=f"lowest loss at lr={lrs[best]:.1e}")
            ax.plot(lrs[steep], losses[steep], "s", color="C2", label=f"steepest fall at lr={lrs[steep]:.1e}")
            ax.legend()
            print(f"lowest smoothed loss {losses[best]:.3f} at lr {lrs[best]:.1e}; "
                  f"steepest fall at lr {lrs[steep]:.1e}")

    def plot_losses(self) -> None:
        """Per-batch training loss and per-epoch validation loss (notebook 01)."""
        fig, ax = self._axes()
        ax.plot(range(1, len(self.losses) + 1), self.losses, label="train (smoothed)")
        ends = [sum(self.batches_per_epoch[:i + 1]) for i in range(len(self.val_losses))]
        ax.plot(ends, self.val_losses, "o-", label="validation")
        ax.set_xlabel("batches processed")
        ax.set_ylabel("loss")
        ax.legend()

    def plot_lr(self) -> None:
        """Learning rate and momentum (Adam's beta1) over the iterations (notebook 01)."""
        fig, (a, b) = self._axes(2, figsize=(4.5, 3.5))
        a.plot(self.lrs)
        a.set_title("learning rate")
        b.plot(self.moms)
        b.set_title("momentum (beta1)")
        for ax in (a, b):
            ax.set_xlabel("iteration")

    def plot_metrics(self) -> None:
        """Each validation metric per epoch (notebook 01)."""
        n = max(1, len(self.metric_names))
        fig, axs = self._axes(n, figsize=(4.5, 3.5))
        axs = axs if n > 1 else [axs]
        for i, (ax, name) in enumerate(zip(axs, self.metric_names)):
            ax.plot(range(1, len(self.metrics) + 1), [m[i] for m in self.metrics], "o-")
            ax.set_title(name)
            ax.set_xlabel("epoch")


# --- pieces of a training loop, shared by Learner and GANLearner (notebook 04) -------------------
def autocast(device: torch.device):
    """bf16 autocast on CUDA; a no-op context (fp32) elsewhere, Apple GPUs (MPS) included, where
    autocast has not been verified here (notebook 01)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def optimizer_step(loss: torch.Tensor, opt: torch.optim.Optimizer, clip: float | None = None,
                   params=None) -> None:
    """One update: zero the gradients, backpropagate ``loss``, clip the gradient norm of ``params`` to
    ``clip`` if given, step (notebook 01)."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if clip:
        nn.utils.clip_grad_norm_(params, clip)
    opt.step()


class SmoothedLoss:
    """fastai's smoothed training loss: an exponential moving average (``beta`` 0.98), debiased for
    its first values (notebook 01)."""

    def __init__(self, beta: float = 0.98):
        self.beta, self.avg, self.n = beta, 0.0, 0

    def add(self, value: float) -> float:
        """Fold in one batch's loss; returns the smoothed value so far."""
        self.n += 1
        self.avg = self.beta * self.avg + (1 - self.beta) * value
        return self.value

    @property
    def value(self) -> float | None:
        return self.avg / (1 - self.beta ** self.n) if self.n else None


def check_finite(value: float, what: str, epoch: int) -> None:
    """Stop training with a clear error when a loss is NaN or infinite (notebook 01)."""
    if not math.isfinite(value):
        raise FloatingPointError(f"{what} became {value} in epoch {epoch}; lower the learning rate")


def run_callbacks(callbacks: Sequence["Callback"], name: str, learn) -> None:
    """Call ``name`` on every callback that has it, with the learner (notebook 01)."""
    for cb in callbacks:
        fn = getattr(cb, name, None)
        if fn is not None:
            fn(learn)


class Callback:
    """Base class for hooks into the loop. Events: before_fit, before_epoch, after_pred, after_loss,
    after_batch, after_epoch, after_fit; each gets the learner, whose ``pred`` / ``loss`` it may
    replace (notebook 01)."""


class Learner:
    """Model + data + loss + optimizer settings, and the loop that trains them (notebook 01)."""

    def __init__(self, data, model: nn.Module, loss_func: Callable, metrics: Sequence[Callable] | Callable = (),
                 wd: float = 1e-2, betas: tuple[float, float] = (0.9, 0.99),
                 layer_groups: Sequence[nn.Module] | None = None, callbacks: Sequence[Callback] = (),
                 clip: float | None = None):
        self.data, self.loss_func = data, loss_func
        self.device = getattr(data, "device", config.device())
        self.model = model.to(self.device)
        self.metrics = [metrics] if callable(metrics) else list(metrics)
        self.wd, self.betas, self.clip = wd, betas, clip
        self.layer_groups = list(layer_groups) if layer_groups else [self.model]
        self.callbacks = list(callbacks)
        self.recorder = Recorder()
        self.pred = self.loss = None

    # --- the loop -------------------------------------------------------------------------
    def _event(self, name: str) -> None:
        run_callbacks(self.callbacks, name, self)

    def autocast(self):
        """``autocast`` for this learner's device (notebook 01)."""
        return autocast(self.device)

    def _reset_model(self) -> None:
        if hasattr(self.model, "reset"):  # stateful RNNs start each pass from a zero state
            self.model.reset()

    def _loss_on(self, xb, yb) -> torch.Tensor:
        with self.autocast():
            self.xb, self.yb = xb, yb
            self.pred = self.model(xb)
            self._event("after_pred")
            self.loss = self.loss_func(self.pred, yb)
            self._event("after_loss")
        return self.loss

    def _make_opt(self, lrs: list[float], wd: float) -> torch.optim.Optimizer:
        seen, groups = set(), []
        for group, lr in zip(self.layer_groups, lrs):
            params = [p for p in group.parameters() if id(p) not in seen]
            seen.update(id(p) for p in params)
            groups.append({"params": params, "lr": lr})
        return torch.optim.AdamW(groups, betas=self.betas, weight_decay=wd)

    def _train_batch(self, xb, yb, opt) -> torch.Tensor:
        loss = self._loss_on(xb, yb)
        optimizer_step(loss, opt, self.clip, self.model.parameters())
        self._event("after_batch")
        return loss.detach()

    def _record_step(self, opt) -> None:
        group = opt.param_groups[-1]
        self.recorder.lrs.append(group["lr"])
        self.recorder.moms.append(group["betas"][0])

    def _run(self, epochs: int, opt, sched=None) -> None:
        names = [getattr(m, "__name__", type(m).__name__) for m in self.metrics] + self._loss_part_names()
        rec = self.recorder = Recorder()  # each fit records afresh, as fastai's Recorder did
        rec.metric_names = names
        table = EpochTable(["train_loss", "valid_loss", *names])
        self._event("before_fit")
        smooth = SmoothedLoss()
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            self.model.train()
            self._reset_model()
            self._event("before_epoch")
            batch_losses = []
            dl = self.data.train_dl
            for xb, yb in table.bar(dl, total=len(dl), desc=f"epoch {epoch}/{epochs}"):
                self._record_step(opt)
                batch_losses.append(self._train_batch(xb, yb, opt))
                if sched is not None:
                    sched.step()
            for loss in torch.stack(batch_losses).float().cpu().tolist():  # one sync per epoch
                rec.losses.append(smooth.add(loss))
            rec.batches_per_epoch.append(len(batch_losses))
            check_finite(rec.losses[-1], "training loss", epoch)
            val = self.validate()
            rec.val_losses.append(val[0])
            rec.metrics.append(val[1:])
            self._event("after_epoch")
            table.row(epoch, [rec.losses[-1], *val], time.perf_counter() - start)
        self._event("after_fit")
        rec.train_seconds = table.close()

    def fit(self, epochs: int, lr: float | slice = 3e-3, wd: float | None = None) -> None:
        """Train ``epochs`` epochs at a constant learning rate (notebook 01)."""
        epochs = smoke_epochs(epochs)
        opt = self._make_opt(lr_range(lr, len(self.layer_groups)), self.wd if wd is None else wd)
        self._run(epochs, opt)

    def fit_one_cycle(self, epochs: int, max_lr: float | slice = slice(3e-3), moms=(0.95, 0.85),
                      div_factor: float = 25.0, pct_start: float = 0.3, final_div: float = 1e4,
                      wd: float | None = None) -> None:
        """One-cycle policy: lr warms up from ``max_lr/div_factor`` to ``max_lr`` over ``pct_start`` of
        the iterations, then anneals to ``max_lr/(div_factor*final_div)``; momentum moves the other
        way (notebook 01)."""
        epochs = smoke_epochs(epochs)
        lrs = lr_range(max_lr, len(self.layer_groups))
        opt = self._make_opt(lrs, self.wd if wd is None else wd)
        total = epochs * len(self.data.train_dl)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=lrs, total_steps=total, pct_start=pct_start, anneal_strategy="cos",
            cycle_momentum=True, base_momentum=moms[1], max_momentum=moms[0],
            div_factor=div_factor, final_div_factor=final_div)
        self._run(epochs, opt, sched)

    def lr_find(self, start_lr: float = 1e-7, end_lr: float = 10, num_it: int = 100, stop_div: bool = True) -> None:
        """LR range test: raise the lr exponentially each batch, record the smoothed loss, stop when it
        diverges, then put the weights back. Plot with ``recorder.plot()`` (notebook 01)."""
        num_it = config.smoke_cap(num_it, config.SMOKE_LR_FIND_ITS)
        state = copy.deepcopy(self.model.state_dict())
        opt = self._make_opt([start_lr] * len(self.layer_groups), self.wd)
        rec = self.recorder = Recorder()
        mult, smooth, best, it = (end_lr / start_lr) ** (1 / num_it), 0.0, math.inf, 0
        self.model.train()
        self._reset_model()
        bar = progress_bar(range(num_it), total=num_it, desc="lr_find")
        batches = iter(())
        try:
            for it in bar:
                try:
                    xb, yb = next(batches)
                except StopIteration:
                    batches = iter(self.data.train_dl)
                    xb, yb = next(batches)
                lr = start_lr * mult ** it
                for g in opt.param_groups:
                    g["lr"] = lr
                loss = self._train_batch(xb, yb, opt).item()
                smooth = 0.98 * smooth + 0.02 * loss
                value = smooth / (1 - 0.98 ** (it + 1))
                rec.lrs.append(lr)
                rec.moms.append(opt.param_groups[-1]["betas"][0])
                rec.losses.append(value)
                best = min(best, value)
                if stop_div and (not math.isfinite(value) or value > 4 * best):
                    break
        finally:
            self.model.load_state_dict(state)
        print(f"lr_find: {len(rec.lrs)} iterations, lr {start_lr:.0e} -> {rec.lrs[-1]:.1e}; "
              "weights restored. Plot with learn.recorder.plot()")

    # --- freezing -------------------------------------------------------------------------
    def freeze_to(self, n: int) -> None:
        """Stop training the first ``n`` layer groups, except their BatchNorm layers, which keep
        training as fastai's ``train_bn=True`` did; the other groups train. A negative ``n`` counts
        from the end, as a slice does: ``freeze_to(-1)`` trains only the last group (notebook 02)."""
        frozen = set(range(len(self.layer_groups))[:n])
        for i, group in enumerate(self.layer_groups):
            for m in group.modules():
                is_bn = isinstance(m, nn.modules.batchnorm._BatchNorm)
                for p in m.parameters(recurse=False):
                    p.requires_grad_(i not in frozen or is_bn)

    def freeze(self) -> None:
        """Train only the last layer group (and every BatchNorm) (notebook 02)."""
        self.freeze_to(len(self.layer_groups) - 1)

    def unfreeze(self) -> None:
        """Train every layer group (notebook 02)."""
        self.freeze_to(0)

    # --- evaluation -------------------------------------------------------------------------
    @torch.no_grad()
    def validate(self, dl=None) -> list[float]:
        """Mean loss, metrics and the loss's parts (if it reports any) over a loader (the validation set by
        default), weighted by batch size (notebook 01)."""
        dl = dl or self.data.valid_dl
        self.model.eval()
        self._reset_model()
        totals, count = None, 0
        for xb, yb in dl:
            loss = self._loss_on(xb, yb)
            parts = [self.loss_func.metrics[k].float() for k in self._loss_part_names()]
            vals = torch.stack([loss.float()] + [m(self.pred, yb).float() for m in self.metrics] + parts)
            n = len(yb)
            totals = vals * n if totals is None else totals + vals * n
            count += n
        return (totals / count).tolist()

    def _loss_part_names(self) -> list[str]:
        """The parts a loss reports about its last call (``loss_func.metric_names``, values in
        ``loss_func.metrics``), shown after the metrics as validation columns, as the lesson's
        ``LossMetrics`` callback did (notebook 05)."""
        return list(getattr(self.loss_func, "metric_names", ()))

    @torch.no_grad()
    def get_preds(self, dl=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Predictions and targets over a loader, on the CPU (notebook 01)."""
        dl = dl or self.data.valid_dl
        self.model.eval()
        self._reset_model()
        preds, targs = [], []
        for xb, yb in dl:
            with self.autocast():
                self.pred = self.model(xb)
                self._event("after_pred")
            preds.append(self.pred.float().cpu())
            targs.append(yb.cpu())
        return torch.cat(preds), torch.cat(targs)

    @torch.no_grad()
    def tta(self, n_aug: int = 8, beta: float = 0.4) -> tuple[torch.Tensor, torch.Tensor]:
        """Test-time augmentation, as fastai v1's ``learn.TTA(beta=0.4)``: validation probabilities mixed as
        ``beta * plain + (1 - beta) * mean(augmented)`` (fastai's ``preds*beta + avg_preds*(1-beta)``),
        where the ``n_aug`` augmented passes use the training transforms (fastai uses 8 fixed
        zoom / corner-crop / flip views). Returns (probabilities, targets) on the CPU (notebook 01)."""
        dl, tfms = self.data.valid_dl, self.data.train_dl.tfms
        self.model.eval()
        probs, targs = [], []
        for start in range(0, dl.n_items, dl.bs):
            raw, y = dl.x[start:start + dl.bs], dl.y[start:start + dl.bs]
            with self.autocast():
                plain = torch.softmax(self.model(dl.process(raw)).float(), -1)
                aug = sum(torch.softmax(self.model(dl.process(raw, tfms)).float(), -1) for _ in range(n_aug))
            probs.append((beta * plain + (1 - beta) * aug / n_aug).cpu())
            targs.append(y.cpu())
        return torch.cat(probs), torch.cat(targs)

    @torch.no_grad()
    def predict(self, item: torch.Tensor):
        """Class name, index and probabilities for one raw item, e.g. an image in [0, 1] (notebook 01)."""
        self.model.eval()
        x = self.data.prepare(item[None]) if hasattr(self.data, "prepare") else item[None].to(self.device)
        probs = torch.softmax(self.model(x).float(), dim=-1)[0].cpu()
        idx = int(probs.argmax())
        classes = getattr(self.data, "classes", None)
        return (classes[idx] if classes else idx), idx, probs

    # --- inspection and persistence ---------------------------------------------------------
    def summary(self, xb: torch.Tensor | None = None) -> None:
        """Print each leaf layer's type, output shape (without the batch dim), parameters and
        whether they train, then the totals (notebook 01)."""
        if xb is None:
            xb = self.data.one_batch(valid=True)[0][:2]
        rows, hooks = [], []

        def hook(module, _inp, out):
            out = out[0] if isinstance(out, (tuple, list)) else out
            params = list(module.parameters())  # a leaf's own, including weight / spectral norm's
            n = sum(p.numel() for p in params)
            trainable = bool(params) and all(p.requires_grad for p in params)
            rows.append((type(module).__name__, str(list(out.shape[1:])), n, trainable))

        for name, m in self.model.named_modules():
            if "parametrizations" in name.split("."):
                continue  # the insides of a weight- or spectral-normed layer belong to that layer
            if not [n for n, _ in m.named_children() if n != "parametrizations"]:
                hooks.append(m.register_forward_hook(hook))
        was_training = self.model.training
        try:
            self.model.eval()
            with torch.no_grad():
                self.model(xb.to(self.device))
        finally:
            for h in hooks:
                h.remove()
            self.model.train(was_training)
        total = sum(p.numel() for p in self.model.parameters())
        trainable = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        line = "=" * 70
        out = [line, f"{'Layer (type)':<24}{'Output Shape':<22}{'Param #':>10}  Trainable", line]
        out += [f"{t:<24}{s:<22}{n:>10,}  {tr}" for t, s, n, tr in rows]
        out += [line, f"Total params: {total:,}", f"Total trainable params: {trainable:,}",
                f"Total non-trainable params: {total - trainable:,}"]
        print("\n".join(out))

    def save(self, name: str, return_path: bool = False) -> Path | None:
        """Write the model's weights to ``<data>/models/<name>.pth`` atomically; the path only when
        asked for, as fastai's ``return_path`` (notebook 01)."""
        path = save_state(self.model.state_dict(), name)
        return path if return_path else None

    def load(self, name: str) -> "Learner":
        """Load weights written by ``save`` (notebook 01)."""
        self.model.load_state_dict(load_state(name, self.device))
        return self


def smoke_epochs(epochs: int) -> int:
    """The epochs a fit call runs: ``epochs``, or ``SMOKE_EPOCHS`` in a smoke run, saying so (notebook 01)."""
    capped = config.smoke_cap(epochs, config.SMOKE_EPOCHS)
    if capped < epochs:
        print(f"smoke run: {capped} of {epochs} epochs")
    return capped


def save_state(state: dict, name: str) -> Path:
    """Write a state dict to ``<data>/models/<name>.pth``: to a temporary file, then renamed (notebook 01)."""
    path = config.data_dir() / "models" / f"{name}.pth"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_state(name: str, device: torch.device | str = "cpu") -> dict:
    """Read what ``save_state`` wrote, with a clear error when it is missing (notebook 01)."""
    path = config.data_dir() / "models" / f"{name}.pth"
    if not path.exists():
        raise FileNotFoundError(f"no saved model {path}; train and learn.save({name!r}) first")
    return torch.load(path, map_location=device, weights_only=True)
