"""Mixed precision by what the device can do (helpers.loop.choose_precision): bf16 on CUDA from capability 8.0, fp16
with one gradient scaler per optimizer below it (CUDA faked by monkeypatching torch's checks), fp32 on the CPU and
MPS; both learners stepping through their scalers in fp16 (autocast on the CPU, where torch has it); and the batch
sizes the notebooks' tables give on a 16 GB T4."""
import ast
import json
import math
import re
import warnings
from contextlib import nullcontext
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from helpers import learner as learner_module
from helpers import loop, memory
from helpers.learner import Learner
from helpers.loop import Precision, choose_precision, grad_scaler

INIT_SCALE = 2.0 ** 16  # torch.amp.GradScaler's default init_scale: the scale of a scaler no step has used


@pytest.fixture
def fake_cuda(monkeypatch):
    """fake_cuda(major, minor): torch reports CUDA, a GPU of that compute capability, and emulated bf16 support."""
    def fake(major: int, minor: int) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (major, minor))
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    return fake


def cpu_learner() -> Learner:
    """A learner without data on the CPU; a test then sets its ``device`` to the one it fakes."""
    return Learner(SimpleNamespace(device=torch.device("cpu")), nn.Linear(2, 2), nn.MSELoss())


@pytest.mark.parametrize("capability, gpu", [((7, 5), "T4"), ((7, 0), "V100"), ((6, 0), "P100")])
def test_cuda_below_capability_8_trains_in_fp16_with_a_gradient_scaler(fake_cuda, capability, gpu):
    learn = cpu_learner()
    fake_cuda(*capability)
    learn.device = cuda = torch.device("cuda")
    precision = choose_precision(cuda)
    assert (precision.name, precision.dtype, precision.scaled) == ("fp16", torch.float16, True), \
        f"a {gpu} only emulates bf16, whatever is_bf16_supported says"
    scaler = grad_scaler(cuda)
    assert isinstance(scaler, torch.amp.GradScaler) and scaler.is_enabled()
    assert grad_scaler(cuda) is not scaler, "a scaler of its own for every optimizer"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch may warn when it builds a CUDA autocast without a real GPU
        ctx = learn.autocast()
    assert isinstance(ctx, torch.autocast) and ctx.device == "cuda" and ctx.fast_dtype == torch.float16


@pytest.mark.parametrize("capability", [(8, 0), (8, 6), (9, 0), (12, 0)])
def test_cuda_from_capability_8_trains_in_bf16_without_a_scaler(fake_cuda, capability):
    learn = cpu_learner()
    fake_cuda(*capability)
    learn.device = cuda = torch.device("cuda")
    precision = choose_precision(cuda)
    assert (precision.name, precision.dtype, precision.scaled) == ("bf16", torch.bfloat16, False)
    assert grad_scaler(cuda) is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ctx = learn.autocast()
    assert isinstance(ctx, torch.autocast) and ctx.device == "cuda" and ctx.fast_dtype == torch.bfloat16


@pytest.mark.parametrize("device", ["cpu", "mps"])
def test_the_cpu_and_apple_gpus_train_in_fp32(fake_cuda, device):
    learn = cpu_learner()
    fake_cuda(8, 0)  # a GPU in the machine changes nothing for a learner on another device
    learn.device = torch.device(device)
    assert choose_precision(learn.device) == Precision("fp32", None, f"no autocast on {device}")
    assert grad_scaler(learn.device) is None and isinstance(learn.autocast(), nullcontext)


def test_the_choice_is_printed_once_per_learner_on_cuda_only(fake_cuda, tiny_learner, capsys):
    learn = tiny_learner()
    learn.lr_find(num_it=3)
    learn.fit(1, 1e-3)
    assert "precision" not in capsys.readouterr().out, "a CPU run prints what it printed before"
    learn = cpu_learner()
    fake_cuda(7, 5)
    learn.device = torch.device("cuda")
    learn.tell_precision()
    learn.tell_precision()  # a second fit
    assert capsys.readouterr().out == "mixed precision: fp16 with a gradient scaler (CUDA capability 7.5 has no " \
                                      "native bf16)\n"
    fake_cuda(8, 0)
    other = cpu_learner()
    other.device = torch.device("cuda")
    other.tell_precision()
    assert capsys.readouterr().out == "mixed precision: bf16 (CUDA capability 8.0 has native bf16)\n"


@pytest.fixture
def fp16_on_cpu(monkeypatch):
    """Every learner trains as on a T4, fp16 autocast and a gradient scaler per optimizer, but on the CPU; skipped
    where this torch has no fp16 autocast or gradient scaler for the CPU."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an autocast torch cannot do warns and does nothing
            with torch.autocast("cpu", dtype=torch.float16):
                out = nn.functional.linear(torch.ones(2, 3), torch.ones(4, 3))
        why = None if out.dtype == torch.float16 else f"autocast on the CPU gave {out.dtype}"
        if why is None and not torch.amp.GradScaler("cpu").is_enabled():
            why = "its GradScaler is disabled on the CPU"
    except (RuntimeError, ValueError) as err:
        why = str(err)
    if why is not None:
        pytest.skip(f"torch {torch.__version__} cannot train in fp16 on the CPU: {why}")
    monkeypatch.setattr(loop, "choose_precision", lambda device: Precision("fp16", torch.float16, "faked on the CPU"))


def scaler_was_used(scaler: torch.amp.GradScaler) -> bool:
    """A step went through ``scaler``: its scale grew a step towards doubling, or halved on an overflow."""
    state = scaler.state_dict()
    return (state["scale"], state["_growth_tracker"]) != (INIT_SCALE, 0)


def test_a_gan_steps_each_model_through_its_own_scaler_in_fp16(tiny_gan, fp16_on_cpu):
    learn = tiny_gan()
    learn.create_opts(lr=1e-3, wd=0.0)
    assert isinstance(learn.scaler_gen, torch.amp.GradScaler) and isinstance(learn.scaler_crit, torch.amp.GradScaler)
    assert learn.scaler_gen is not learn.scaler_crit
    x, real = next(iter(learn.data))
    gen0, crit0 = ([p.detach().clone() for p in m.parameters()] for m in (learn.generator, learn.critic))

    def moved(model, before) -> bool:
        return any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))

    learn.switch(False)
    losses = [learn.critic_step(x, real) for _ in range(3)]  # the first may overflow at 2**16 and be skipped
    assert all(p.dtype == torch.float16 for p in learn.pred), "the critic ran under fp16 autocast"
    assert scaler_was_used(learn.scaler_crit) and not scaler_was_used(learn.scaler_gen)
    assert moved(learn.critic, crit0) and not moved(learn.generator, gen0)
    learn.switch(True)
    losses += [learn.generator_step(x, real) for _ in range(3)]
    assert learn.pred.dtype == torch.float16, "the generator ran under fp16 autocast"
    assert scaler_was_used(learn.scaler_gen) and moved(learn.generator, gen0)
    assert all(torch.isfinite(loss).item() for loss in losses)
    assert all(torch.isfinite(p).all() for m in learn.models().values() for p in m.parameters())


def test_a_gan_fit_makes_the_scalers_with_the_optimizers_and_keeps_them(tiny_gan, fp16_on_cpu):
    from helpers.gan import FixedGANSwitcher
    learn = tiny_gan(switcher=FixedGANSwitcher(n_crit=1, n_gen=1))
    learn.fit(1, 1e-3)
    scalers = learn.scaler_gen, learn.scaler_crit
    assert all(scaler_was_used(s) for s in scalers)
    learn.fit(1, 1e-3)
    assert (learn.scaler_gen, learn.scaler_crit) == scalers, "kept with their optimizers, as the Adam state is"
    assert all(math.isfinite(v) for v in learn.recorder.gen_losses + learn.recorder.crit_losses)


def test_fit_and_lr_find_step_through_a_fresh_scaler_in_fp16_and_none_in_fp32(tiny_learner, monkeypatch, request):
    calls = []

    def spy(loss, opt, scaler=None):
        calls.append((opt, scaler))
        loop.optimizer_step(loss, opt, scaler)

    monkeypatch.setattr(learner_module, "optimizer_step", spy)
    learn = tiny_learner()
    learn.lr_find(num_it=3)
    learn.fit(1, 1e-3)
    assert len(calls) == 3 + 4 and all(scaler is None for _, scaler in calls), "fp32 on the CPU: no scaler"
    calls.clear()
    request.getfixturevalue("fp16_on_cpu")
    learn.lr_find(num_it=3)
    learn.fit_one_cycle(1, 1e-3)
    assert len(calls) == 3 + 4
    scalers = {opt: scaler for opt, scaler in calls}
    assert len(scalers) == 2 and len(set(map(id, scalers.values()))) == 2, "one scaler with each fresh optimizer"
    assert all(isinstance(s, torch.amp.GradScaler) and scaler_was_used(s) for s in scalers.values())
    assert all(scalers[opt] is scaler for opt, scaler in calls), "an optimizer keeps its scaler for all its steps"
    assert all(math.isfinite(v) for v in learn.recorder.losses)


# A T4 16 GB: torch reports 15,095 MiB in all; free is less (the CUDA context, then the notebook's own tensors).
T4_TOTAL_MB = 15_095
# What each batch_size_for table in the notebooks gives on a T4. The 16 GB tables take their smaller batch; 02's is
# the lesson's own rule (``bs = 8 if free > 8200 else 4``), which gives 8 on a T4 as it did on the lesson's GPUs.
ON_A_T4 = {"{16000: 32, 0: 16}": 16, "{16000: 16, 0: 8}": 8, "{16000: 12, 0: 6}": 6, "{16000: 9, 0: 5}": 5,
           "{8200: 8, 0: 4}": 8}


def notebook_tables() -> dict[str, list[str]]:
    """Every table passed to ``batch_size_for`` in the notebooks' code: {table as written: [notebooks]}."""
    found: dict[str, list[str]] = {}
    for path in sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code":
                for table in re.findall(r"batch_size_for\((\{[^}]*\})", "".join(cell["source"])):
                    found.setdefault(table, []).append(path.stem)
    return found


@pytest.mark.parametrize("free_mb", [T4_TOTAL_MB, 14_800, 12_000, 8_200])
def test_every_notebook_table_gives_a_t4_its_batch_size(monkeypatch, capsys, free_mb):
    tables = notebook_tables()
    assert set(tables) == set(ON_A_T4), "a table this test has not checked for a T4: add it to ON_A_T4"
    monkeypatch.delenv("HELPERS_SMOKE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(memory, "gpu_mem_free", lambda: free_mb)
    for table, expected in ON_A_T4.items():
        sizes = ast.literal_eval(table)
        assert memory.batch_size_for(sizes, default=8) == expected, f"{table} in {', '.join(tables[table])}"
        if max(sizes) >= 16_000:
            assert expected == min(sizes.values()), "a 16 GB table gives a T4 its smaller batch"
    assert f"have {free_mb:,} MB of GPU memory free" in capsys.readouterr().out


def test_fit_one_cycle_in_fp16_says_nothing_when_the_scaler_skips_the_first_step(tiny_learner, fp16_on_cpu):
    """The scaler's first scale (2**16) overflows a large fp16 loss, so it skips the optimizer's first step; the
    one-cycle schedule still steps, and torch's warning about the order must not reach a learner's notebook."""
    learn = tiny_learner()
    learn.loss_func = lambda pred, y: nn.functional.cross_entropy(pred, y) * 1e3  # overflows at the first scale
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        learn.fit_one_cycle(1, 1e-3)
    assert len(learn.recorder.lrs) == 4
