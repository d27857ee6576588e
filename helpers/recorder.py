"""What a fit recorded, and its plots: ``Recorder`` for ``Learner`` (notebook 01), ``GANRecorder`` for
``GANLearner`` (notebook 04). Each fit starts a fresh one, as fastai's recorder did."""

import math

from helpers.show import pyplot


class Recorder:
    """Per batch: smoothed training loss, learning rate, momentum; per epoch: validation loss, metrics (notebook 01)."""

    def __init__(self, metric_names=()):
        self.lrs, self.moms, self.losses = [], [], []  # per batch (floats)
        self.val_losses, self.metrics, self.batches_per_epoch = [], [], []  # per epoch (metrics: one list each)
        self.metric_names, self.train_seconds = list(metric_names), 0.0

    def plot(self, skip_start: int = 10, skip_end: int = 5) -> None:
        """``lr_find``'s loss against lr (log x), ``skip_start`` / ``skip_end`` dropped, minimum and steepest fall
        marked (notebook 01)."""
        if len(self.lrs) < 100:
            skip_start, skip_end = (round(k * len(self.lrs) / 100) for k in (skip_start, skip_end))
        end = len(self.lrs) - skip_end if len(self.lrs) > skip_start + skip_end else len(self.lrs)
        lrs, losses = self.lrs[skip_start:end], self.losses[skip_start:end]
        _, ax = pyplot().subplots(figsize=(6, 4))
        ax.plot(lrs, losses)
        ax.set(xscale="log", xlabel="learning rate (log scale)", ylabel="smoothed training loss")
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
        _, ax = pyplot().subplots(figsize=(6, 4))
        ax.plot(range(1, len(self.losses) + 1), self.losses, label="train (smoothed)")
        ends = [sum(self.batches_per_epoch[:i + 1]) for i in range(len(self.val_losses))]
        ax.plot(ends, self.val_losses, "o-", label="validation")
        ax.set(xlabel="batches processed", ylabel="loss")
        ax.legend()

    def plot_lr(self) -> None:
        """Learning rate and momentum (Adam's beta1) over the iterations (notebook 01)."""
        _, (a, b) = pyplot().subplots(1, 2, figsize=(9, 3.5))
        for ax, values, title in ((a, self.lrs, "learning rate"), (b, self.moms, "momentum (beta1)")):
            ax.plot(values)
            ax.set(title=title, xlabel="iteration")

    def plot_metrics(self) -> None:
        """Each validation metric per epoch (notebook 01)."""
        n = max(1, len(self.metric_names))
        _, axs = pyplot().subplots(1, n, figsize=(4.5 * n, 3.5), squeeze=False)
        for i, (ax, name) in enumerate(zip(axs[0], self.metric_names)):
            ax.plot(range(1, len(self.metrics) + 1), [m[i] for m in self.metrics], "o-")
            ax.set(title=name, xlabel="epoch")


class GANRecorder:
    """Per batch each model's raw loss; per epoch its smoothed loss, None if it got no batch (notebook 04)."""

    def __init__(self):
        self.gen_losses, self.crit_losses = [], []  # per batch of that model
        self.epoch_gen, self.epoch_crit, self.train_seconds = [], [], 0.0  # per epoch; the fit's seconds

    def plot_losses(self) -> None:
        """Raw generator and critic losses against their own batch counts (notebook 04)."""
        fig, axes = pyplot().subplots(1, 2, figsize=(9, 3.2))
        for ax, losses, name, colour in zip(axes, (self.gen_losses, self.crit_losses), ("generator", "critic"),
                                            ("C0", "C1")):
            if losses:
                ax.plot(range(1, len(losses) + 1), losses, "o-" if len(losses) <= 60 else "-", lw=0.8, ms=3,
                        color=colour)
            else:
                ax.text(0.5, 0.5, f"no {name} batches", ha="center", va="center", transform=ax.transAxes)
            ax.set(title=f"{name} loss ({len(losses)} batches)", xlabel="batches of this model")
        fig.tight_layout()
