"""The training loop ``Learner`` and ``GANLearner`` share (notebook 01; notebook 04 builds on it). Events:
``before_fit``, per epoch ``before_epoch``, per batch ``after_pred``, ``after_loss``, ``after_batch``, then
``after_epoch``; ``after_fit``. A callback is any object with methods of those names, each given the learner."""

import math
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Callable, Iterable, NamedTuple, Sequence

import torch
from torch import nn

from helpers import config
from helpers.files import atomic_write
from helpers.memory import is_out_of_memory, reclaim
from helpers.progress import EpochTable, progress_bar


def gpu_tuned(device: torch.device) -> bool:
    """Whether the CUDA speed settings apply (CUDA and ``HELPERS_GPU_TUNING`` not off) (notebook 01)."""
    if device.type != "cuda" or not config.tuning("GPU"):
        return False
    torch.backends.cudnn.benchmark = True
    torch.set_float32_matmul_precision("high")
    return True


def to_device_layout(t, device: torch.device):
    """A model or a 4-d batch in channels-last memory when ``gpu_tuned(device)``, else as it is (notebook 01)."""
    if not gpu_tuned(device) or (isinstance(t, torch.Tensor) and t.dim() != 4):
        return t
    return t.to(memory_format=torch.channels_last)


def make_optimizer(groups: Sequence[dict], betas: tuple[float, float], wd: float, device: torch.device):
    """AdamW over parameter ``groups``, decoupled weight decay ``wd``, fused if ``gpu_tuned(device)`` (notebook 01)."""
    return torch.optim.AdamW(groups, betas=betas, weight_decay=wd, **({"fused": True} if gpu_tuned(device) else {}))


class Precision(NamedTuple):
    """The arithmetic a device trains in, as ``choose_precision`` picks it: ``name`` ("bf16", "fp16" or "fp32"), the
    autocast ``dtype`` (None: no autocast) and ``why``, in words (notebook 01)."""
    name: str
    dtype: torch.dtype | None
    why: str

    @property
    def scaled(self) -> bool:
        """Whether backward needs a gradient scaler: fp16's narrow range lets small gradients underflow to zero."""
        return self.name == "fp16"

    def __str__(self) -> str:
        kind = "mixed precision" if self.dtype is not None else "precision"
        return f"{kind}: {self.name}{' with a gradient scaler' if self.scaled else ''} ({self.why})"


def choose_precision(device: torch.device) -> Precision:
    """bf16 autocast on CUDA from compute capability 8.0 (A100, RTX 30xx and later); below it (T4, P100, V100), fp16
    autocast with a gradient scaler: those GPUs only emulate bf16, even where ``torch.cuda.is_bf16_supported()`` says
    yes. fp32 on the CPU and on Apple GPUs (MPS) (notebook 01)."""
    if device.type != "cuda":
        return Precision("fp32", None, f"no autocast on {device.type}")
    major, minor = torch.cuda.get_device_capability(device)
    if major >= 8:
        return Precision("bf16", torch.bfloat16, f"CUDA capability {major}.{minor} has native bf16")
    return Precision("fp16", torch.float16, f"CUDA capability {major}.{minor} has no native bf16")


def grad_scaler(device: torch.device) -> torch.amp.GradScaler | None:
    """A gradient scaler for one optimizer when ``choose_precision(device)`` is fp16, else None (notebook 01)."""
    return torch.amp.GradScaler(device.type) if choose_precision(device).scaled else None


def optimizer_step(loss: torch.Tensor, opt: torch.optim.Optimizer,
                   scaler: torch.amp.GradScaler | None = None) -> None:
    """Zero grads, backpropagate ``loss``, step; through ``scaler`` (fp16) when given: the loss scaled up before
    backward, the gradients scaled back before the step, which is skipped if they overflowed (notebook 01)."""
    opt.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        opt.step()
        return
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()


def lr_range(lr: float | slice, n_groups: int) -> list[float]:
    """Learning rate per layer group, as fastai v1: a number for every group; ``slice(hi)`` gives ``hi/10``
    to all but the last; ``slice(lo, hi)`` spaces them geometrically from ``lo`` to ``hi`` (notebook 01)."""
    if not isinstance(lr, slice):
        return [float(lr)] * n_groups
    if lr.start is None:
        return [lr.stop / 10] * (n_groups - 1) + [lr.stop]
    if n_groups == 1:
        return [float(lr.stop)]
    step = (math.log(lr.stop) - math.log(lr.start)) / (n_groups - 1)
    return [math.exp(math.log(lr.start) + i * step) for i in range(n_groups)]


class SmoothedLoss:
    """fastai's smoothed loss: an exponential moving average (``beta`` 0.98), debiased (notebook 01)."""

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


class TrainingOutOfMemoryError(RuntimeError):
    """A fit ran out of device memory; the message says where, and what to make smaller (notebook 01)."""


def smoke_epochs(epochs: int) -> int:
    """The epochs a fit runs: ``epochs``, or ``SMOKE_EPOCHS`` in a smoke run, saying so (notebook 01)."""
    capped = config.smoke_cap(epochs, config.SMOKE_EPOCHS)
    if capped < epochs:
        print(f"smoke run: {capped} of {epochs} epochs")
    return capped


class BaseLearner:
    """What both learners share (notebook 01): data, device, callbacks, eval mode, prediction, epoch loop, saving;
    a subclass names its models in ``models()`` ({name: module})."""

    def __init__(self, data, callbacks: Sequence = ()):
        self.data, self.callbacks = data, list(callbacks)
        self.device = getattr(data, "device", config.device())
        if self.device.type == "cpu":  # process-wide; same results, no gain measured on 01 (benchmarks/cpu_tuning.py)
            torch.set_flush_denormal(config.tuning("CPU"))  # denormals flushed to zero unless HELPERS_CPU_TUNING=off
        self._bar = progress_bar  # during a fit, its table's bar: a validation pass shows under the epoch table
        self._precision_told = False

    def event(self, name: str) -> None:
        """Call ``name`` on every callback that has it, with this learner (notebook 01)."""
        for cb in self.callbacks:
            fn = getattr(cb, name, None)
            if fn is not None:
                fn(self)

    def autocast(self):
        """Autocast to the dtype ``choose_precision`` picks for the device (bf16 or fp16 on CUDA); a no-op context
        (fp32) on the CPU and on Apple GPUs (MPS) (notebook 01)."""
        dtype = choose_precision(self.device).dtype
        return nullcontext() if dtype is None else torch.autocast(self.device.type, dtype=dtype)

    def tell_precision(self) -> None:
        """Print the precision this learner trains in, once, at its first fit or ``lr_find``; on CUDA only, where
        it depends on the GPU (notebook 01)."""
        if self.device.type == "cuda" and not self._precision_told:
            print(choose_precision(self.device))
            self._precision_told = True

    @contextmanager
    def eval_mode(self, *models: nn.Module):
        """``models`` (default: this learner's) in eval mode without gradients, modes restored after (notebook 01)."""
        models = models or tuple(self.models().values())
        was = [m.training for m in models]
        try:
            for m in models:
                m.eval()
            with torch.no_grad():
                yield
        finally:
            for m, on in zip(models, was):
                m.train(on)

    def predict_batch(self, x: torch.Tensor, model: nn.Module | None = None, denorm: bool = False) -> torch.Tensor:
        """``model``'s output (the learner's first by default) for ``x``, in eval mode under autocast, as float, after
        the ``after_pred`` event; with ``denorm``, an image in [0, 1] (notebook 01)."""
        model = next(iter(self.models().values())) if model is None else model
        with self.eval_mode(model), self.autocast():
            self.pred = model(to_device_layout(x.to(self.device), self.device))
            self.event("after_pred")
            out = self.pred.float()
        return self.data.denorm(out).clamp(0, 1) if denorm else out

    def _fit(self, epochs: int, names: Sequence[str], train_batch: Callable, end_epoch: Callable[[int], list],
             loader: Iterable, finish: Callable[[], None] | None = None) -> float:
        """The epoch loop: events, a table row per epoch (``end_epoch(epoch)``), ``train_batch(batch)`` over ``loader``,
        ``finish()`` before ``after_fit``; returns the seconds taken."""
        self.tell_precision()
        table = EpochTable(names)
        self._bar, at = table.bar, None  # (epoch, training batch or None for validation): where a failure struck
        try:
            self.event("before_fit")
            for epoch in range(1, epochs + 1):
                start, self.epoch = time.perf_counter(), epoch
                self.start_epoch()
                self.event("before_epoch")
                for i, batch in enumerate(table.bar(loader, total=len(loader), desc=f"epoch {epoch}/{epochs}"), 1):
                    at = (epoch, i)
                    train_batch(batch)
                    self.event("after_batch")
                at = (epoch, None)
                values = end_epoch(epoch)
                self.event("after_epoch")
                table.row(epoch, values, time.perf_counter() - start)
            seconds = table.close()
        except RuntimeError as err:
            if not is_out_of_memory(err):
                raise
            batch = None  # its tensors go with the failed step's frames
            oom = ("before the first batch" if at is None else f"epoch {at[0]}/{epochs}, " + (
                f"training batch {at[1]} of {len(loader)}" if at[1] else "after its training batches (validation)"))
        else:
            oom = None
        finally:
            self._bar = progress_bar
        if oom is not None:  # out here, where the failed step's frames (and their activations) are gone
            raise self._out_of_memory(oom, loader, "the weights are those after the last step that finished (the "
                                                   "rows above are the epochs that did); learn.load(name) goes back "
                                                   "to a saved stage") from None
        if finish is not None:
            finish()
        self.event("after_fit")
        return seconds

    def start_epoch(self) -> None:
        """What happens before each epoch's first batch (a subclass's models to train mode)."""

    def _out_of_memory(self, where: str, loader, weights: str) -> TrainingOutOfMemoryError:
        """Drop what the failed step left (inputs, output, loss, gradients), give the memory back, and say what
        to do: the error to raise, outside the ``except`` so that the step's frames are gone."""
        for name in ("xb", "yb", "pred", "loss"):
            if hasattr(self, name):
                setattr(self, name, None)
        for m in self.models().values():
            m.zero_grad(set_to_none=True)
        reclaim(verbose=False)
        return TrainingOutOfMemoryError(
            f"training ran out of memory on {self.device} in {where}, with batches of {getattr(loader, 'bs', '?')}; "
            f"{weights}. Make the batches or the images smaller (the notebook's batch_size_for table, or "
            f"data.resized(size, bs=...)) and run the cell again: the memory the step held has been given back.")

    def save(self, name: str, return_path: bool = False) -> Path | None:
        """The models' weights to ``<data>/models/<name>.pth`` atomically; the path if ``return_path`` (notebook 01)."""
        state = {k: m.state_dict() for k, m in self.models().items()}
        state = next(iter(state.values())) if len(state) == 1 else state  # one model: its state dict alone
        path = atomic_write(config.data_dir() / "models" / f"{name}.pth", lambda tmp: torch.save(state, tmp))
        return path if return_path else None

    def load(self, name: str):
        """Load weights written by ``save``, with a clear error when they are missing (notebook 01)."""
        path = config.data_dir() / "models" / f"{name}.pth"
        if not path.exists():
            raise FileNotFoundError(f"no saved model {path}; train and learn.save({name!r}) first")
        state, models = torch.load(path, map_location=self.device, weights_only=True), self.models()
        for k, m in models.items():
            m.load_state_dict(state if len(models) == 1 else state[k])
        return self
