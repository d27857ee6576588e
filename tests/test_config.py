"""helpers.config: device choice (CUDA, then Apple MPS, then CPU), the default profile, cpu_count, with the
accelerators faked by monkeypatching torch's availability checks (the autocast each device gets: test_precision)."""
import os

import pytest
import torch

from helpers import config


@pytest.fixture
def machine(monkeypatch):
    """Fake which accelerators torch reports: machine(cuda=..., mps=...)."""
    for var in ("HELPERS_DEVICE", "HELPERS_PROFILE", "HELPERS_SMOKE"):
        monkeypatch.delenv(var, raising=False)

    def fake(cuda: bool, mps: bool) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    return fake


@pytest.mark.parametrize("cuda, mps, device, profile", [
    (True, False, "cuda", "full"),
    (True, True, "cuda", "full"),
    (False, True, "mps", "small"),  # an Apple laptop: its GPU, at the small profile's scale
    (False, False, "cpu", "small"),
])
def test_device_and_default_profile(machine, cuda, mps, device, profile):
    machine(cuda=cuda, mps=mps)
    assert config.device() == torch.device(device)
    assert config.profile().name == profile


def test_helpers_device_and_profile_override_the_defaults(machine, monkeypatch):
    machine(cuda=True, mps=True)
    monkeypatch.setenv("HELPERS_DEVICE", "cpu")
    monkeypatch.setenv("HELPERS_PROFILE", "small")
    assert config.device() == torch.device("cpu") and config.profile().name == "small"
    machine(cuda=False, mps=True)
    monkeypatch.setenv("HELPERS_PROFILE", "full")
    monkeypatch.setenv("HELPERS_DEVICE", "mps")
    assert config.device() == torch.device("mps") and config.profile().name == "full"


@pytest.mark.parametrize("profile, smoke, value, size", [
    ("small", "0", "s", "s"), ("full", "0", "f", "f"), ("small", "1", "s", "s"), ("full", "1", "f", "s"),
])
def test_a_smoke_run_keeps_the_profile_but_takes_the_small_sizes(machine, monkeypatch, profile, smoke, value, size):
    machine(cuda=False, mps=False)
    monkeypatch.setenv("HELPERS_PROFILE", profile)
    monkeypatch.setenv("HELPERS_SMOKE", smoke)
    prof = config.profile()
    assert (prof.pick(small="s", full="f"), prof.pick_size(small="s", full="f")) == (value, size)


def test_cpu_count_uses_the_affinity_mask_where_there_is_one(monkeypatch):
    if hasattr(os, "sched_getaffinity"):
        assert config.cpu_count() == len(os.sched_getaffinity(0))
        monkeypatch.delattr(os, "sched_getaffinity")  # macOS and Windows have none
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert config.cpu_count() == 6
    monkeypatch.setattr(os, "cpu_count", lambda: None)  # "undeterminable"
    assert config.cpu_count() == 1


def test_batch_size_from_free_gpu_memory(monkeypatch, capsys):
    from helpers import memory
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert memory.batch_size_for({16000: 32, 0: 16}, default=8) == 8 and "no GPU" in capsys.readouterr().out
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for free, expected in ((20000, 32), (16000, 32), (9000, 16)):
        monkeypatch.setattr(memory, "gpu_mem_free", lambda free=free: free)
        assert memory.batch_size_for({16000: 32, 0: 16}, default=8) == expected
        assert f"{free:,} MB of GPU memory free" in capsys.readouterr().out
    monkeypatch.setattr(memory, "gpu_mem_free", lambda: 100)
    assert memory.batch_size_for({16000: 32, 4000: 16}, default=8) == 16  # none fits: the smallest
    monkeypatch.setenv("HELPERS_SMOKE", "1")
    assert memory.batch_size_for({16000: 32, 4000: 16}, default=8) == config.SMOKE_BS
    assert "smoke run" in capsys.readouterr().out
