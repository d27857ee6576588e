"""``Learner``: model + data + loss, as fastai v1 (notebook 01): AdamW, ``fit_one_cycle`` (torch's ``OneCycleLR``),
``lr_find``, freezing, validation, prediction; a fresh optimizer for every ``fit*``; the loop is ``helpers.loop``'s."""

import copy
import math
import warnings
from typing import Callable, Sequence

import torch
from torch import nn

from helpers import config
from helpers.hooks import model_summary
from helpers.loop import (BaseLearner, SmoothedLoss, check_finite, grad_scaler, lr_range, make_optimizer,
                          optimizer_step, smoke_epochs, to_device_layout)
from helpers.memory import is_out_of_memory
from helpers.progress import progress_bar
from helpers.recorder import Recorder


class Learner(BaseLearner):
    """Model + data + loss + optimizer settings, and the loop that trains them (notebook 01). ``metrics``: functions
    ``(pred, target) -> tensor``; a loss's ``metric_names`` / ``metrics`` add validation columns (``LossMetrics``)."""

    def __init__(self, data, model: nn.Module, loss_func: Callable, metrics: Sequence[Callable] | Callable = (),
                 wd: float = 1e-2, betas: tuple[float, float] = (0.9, 0.99),
                 layer_groups: Sequence[nn.Module] | None = None, callbacks: Sequence = ()):
        super().__init__(data, callbacks)
        self.model, self.loss_func = to_device_layout(model.to(self.device), self.device), loss_func
        self.metrics = [metrics] if callable(metrics) else list(metrics)
        self.wd, self.betas = wd, betas
        self.layer_groups = list(layer_groups) if layer_groups else [self.model]
        self.recorder = Recorder()
        self.pred = self.loss = None

    def models(self) -> dict[str, nn.Module]:
        return {"model": self.model}

    def start_epoch(self) -> None:
        self.model.train()
        self._reset_model()

    def _reset_model(self) -> None:
        if hasattr(self.model, "reset"):  # stateful RNNs start each pass from a zero state
            self.model.reset()

    def _loss_on(self, xb, yb) -> torch.Tensor:
        with self.autocast():
            self.xb, self.yb = to_device_layout(xb, self.device), yb
            self.pred = self.model(self.xb)
            self.event("after_pred")
            self.loss = self.loss_func(self.pred, yb)
            self.event("after_loss")
        return self.loss

    def create_opt(self, lr: float | slice, wd: float | None = None) -> torch.optim.Optimizer:
        """A fresh optimizer over the layer groups, each at its rate from ``lr`` (``lr_range``) (notebook 01)."""
        lrs, wd = lr_range(lr, len(self.layer_groups)), self.wd if wd is None else wd
        seen, groups = set(), []
        for group, lr in zip(self.layer_groups, lrs):
            params = [p for p in group.parameters() if id(p) not in seen]
            seen.update(id(p) for p in params)
            groups.append({"params": params, "lr": lr})
        return make_optimizer(groups, self.betas, wd, self.device)

    def _loss_part_names(self) -> list[str]:
        return list(getattr(self.loss_func, "metric_names", ()))

    def _run(self, epochs: int, opt, sched=None) -> None:
        names = [getattr(m, "__name__", type(m).__name__) for m in self.metrics] + self._loss_part_names()
        rec = self.recorder = Recorder(names)
        smooth, batch_losses, scaler = SmoothedLoss(), [], grad_scaler(self.device)  # opt's scaler (fp16), or None

        def train_batch(batch) -> None:
            group = opt.param_groups[-1]
            rec.lrs.append(group["lr"])
            rec.moms.append(group["betas"][0])
            loss = self._loss_on(*batch)
            optimizer_step(loss, opt, scaler)
            batch_losses.append(loss.detach())
            if sched is not None:
                sched.step()

        def end_epoch(epoch: int) -> list:
            for loss in torch.stack(batch_losses).float().cpu().tolist():  # one sync per epoch
                rec.losses.append(smooth.add(loss))
            rec.batches_per_epoch.append(len(batch_losses))
            batch_losses.clear()
            check_finite(rec.losses[-1], "training loss", epoch)
            val = self.validate()
            rec.val_losses.append(val[0])
            rec.metrics.append(val[1:])
            return [rec.losses[-1], *val]

        with warnings.catch_warnings():
            if scaler is not None:  # fp16: a step the scaler skipped (its gradients overflowed) still counts in the
                # schedule, so torch's "lr_scheduler.step() before optimizer.step()" is not a mistake here
                warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)`")
            rec.train_seconds = self._fit(epochs, ["train_loss", "valid_loss", *names], train_batch, end_epoch,
                                          self.data.train_dl)

    def fit(self, epochs: int, lr: float | slice = 3e-3, wd: float | None = None) -> None:
        """Train ``epochs`` epochs at a constant learning rate (notebook 01)."""
        self._run(smoke_epochs(epochs), self.create_opt(lr, wd))

    def fit_one_cycle(self, epochs: int, max_lr: float | slice = slice(3e-3), moms=(0.95, 0.85),
                      div_factor: float = 25.0, pct_start: float = 0.3, final_div: float = 1e4,
                      wd: float | None = None) -> None:
        """One-cycle: lr from ``max_lr/div_factor`` up to ``max_lr`` over ``pct_start`` of the iterations,
        then down to ``max_lr/(div_factor*final_div)``; momentum the other way (notebook 01)."""
        epochs, opt = smoke_epochs(epochs), self.create_opt(max_lr, wd)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=lr_range(max_lr, len(self.layer_groups)), total_steps=epochs * len(self.data.train_dl),
            pct_start=pct_start, anneal_strategy="cos", cycle_momentum=True, base_momentum=moms[1],
            max_momentum=moms[0], div_factor=div_factor, final_div_factor=final_div)
        self._run(epochs, opt, sched)

    def lr_find(self, start_lr: float = 1e-7, end_lr: float = 10, num_it: int = 100, stop_div: bool = True) -> None:
        """LR range test (exponential lr, stops on divergence, weights restored); ``recorder.plot()`` (notebook 01)."""
        num_it = config.smoke_cap(num_it, config.SMOKE_LR_FIND_ITS)
        state = copy.deepcopy(self.model.state_dict())
        opt, scaler = self.create_opt(start_lr), grad_scaler(self.device)
        rec = self.recorder = Recorder()
        smooth, best, mult = SmoothedLoss(), math.inf, (end_lr / start_lr) ** (1 / num_it)
        self.tell_precision()
        self.start_epoch()
        batches, oom = iter(()), None
        try:
            for it in progress_bar(range(num_it), total=num_it, desc="lr_find"):
                try:
                    xb, yb = next(batches)
                except StopIteration:
                    batches = iter(self.data.train_dl)
                    xb, yb = next(batches)
                lr = start_lr * mult ** it
                for g in opt.param_groups:
                    g["lr"] = lr
                loss = self._loss_on(xb, yb)
                optimizer_step(loss, opt, scaler)
                value = smooth.add(loss.item())
                rec.lrs.append(lr)
                rec.moms.append(opt.param_groups[-1]["betas"][0])
                rec.losses.append(value)
                best = min(best, value)
                if stop_div and (not math.isfinite(value) or value > 4 * best):
                    break
        except RuntimeError as err:
            if not is_out_of_memory(err):
                raise
            oom = f"lr_find, iteration {len(rec.lrs) + 1} of {num_it}"
        finally:
            self.model.load_state_dict(state)
        if oom is not None:
            raise self._out_of_memory(oom, self.data.train_dl, "the weights are as before lr_find") from None
        print(f"lr_find: {len(rec.lrs)} iterations, lr {start_lr:.0e} -> {rec.lrs[-1]:.1e}; "
              "weights restored. Plot with learn.recorder.plot()")

    def freeze_to(self, n: int) -> None:
        """Stop training the first ``n`` layer groups, except their BatchNorm layers (fastai's
        ``train_bn=True``); a negative ``n`` counts from the end, as a slice does (notebook 02)."""
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

    def validate(self, dl=None) -> list[float]:
        """Mean loss, metrics and loss parts over ``dl`` (the validation set), by batch size (notebook 01)."""
        dl = self.data.valid_dl if dl is None else dl
        totals, count = None, 0
        with self.eval_mode():
            self._reset_model()
            for xb, yb in self._bar(dl, total=len(dl), desc="validation"):
                loss = self._loss_on(xb, yb)
                parts = [self.loss_func.metrics[k].float() for k in self._loss_part_names()]
                vals = torch.stack([loss.float()] + [m(self.pred, yb).float() for m in self.metrics] + parts)
                totals = vals * len(yb) if totals is None else totals + vals * len(yb)
                count += len(yb)
        if not count:
            raise ValueError("validate: the loader yields no batches")
        return (totals / count).tolist()

    def get_preds(self, dl=None) -> tuple[torch.Tensor, torch.Tensor]:
        """CPU predictions and targets over ``dl`` (default: validation), in ``dl.indices()`` order (notebook 01)."""
        dl = self.data.valid_dl if dl is None else dl
        preds, targs = [], []
        self._reset_model()
        for xb, yb in dl:
            preds.append(self.predict_batch(xb).cpu())
            targs.append(yb.cpu())
        if not preds:
            raise ValueError("get_preds: the loader yields no batches")
        return torch.cat(preds), torch.cat(targs)

    def tta(self, n_aug: int = 8, beta: float = 0.4) -> tuple[torch.Tensor, torch.Tensor]:
        """fastai v1's ``learn.TTA(beta=0.4)``: ``beta * plain + (1 - beta) * mean(augmented)`` probabilities
        over ``n_aug`` passes with the training transforms; (probabilities, targets) on the CPU (notebook 01)."""
        dl, tfms = self.data.valid_dl, self.data.train_dl.tfms
        probs, targs, idx = [], [], dl.indices()  # the items get_preds covers, in its order
        for start in self._bar(range(0, len(idx), dl.bs), desc="TTA"):
            rows = idx[start:start + dl.bs]
            raw, y = dl.x[rows], dl.y[rows]
            plain = torch.softmax(self.predict_batch(dl.process(raw)), -1)
            aug = sum(torch.softmax(self.predict_batch(dl.process(raw, tfms)), -1) for _ in range(n_aug))
            probs.append((beta * plain + (1 - beta) * aug / n_aug).cpu())
            targs.append(y.cpu())
        return torch.cat(probs), torch.cat(targs)

    def predict(self, item: torch.Tensor):
        """Class name, index and probabilities for one raw item, e.g. an image in [0, 1] (notebook 01)."""
        x = self.data.prepare(item[None]) if hasattr(self.data, "prepare") else item[None]
        probs = torch.softmax(self.predict_batch(x), dim=-1)[0].cpu()
        idx = int(probs.argmax())
        classes = getattr(self.data, "classes", None)
        return (classes[idx] if classes else idx), idx, probs

    def summary(self, xb: torch.Tensor | None = None) -> None:
        """Print ``model_summary`` for a validation batch (notebook 01)."""
        xb = self.data.one_batch(valid=True)[0][:2] if xb is None else xb
        with self.eval_mode():
            print(model_summary(self.model, xb.to(self.device)))
