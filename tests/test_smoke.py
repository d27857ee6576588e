"""The smoke switch (HELPERS_SMOKE=1): every loader yields at most 2 batches, every fit runs 1 epoch,
lr_find 3 iterations; the profile stays the one asked for and allows random init."""
import pytest
import torch
from torch import nn

from helpers import config
from helpers.data import TensorLoader
from helpers.learner import Learner
from helpers.metrics import accuracy


@pytest.fixture
def smoke(monkeypatch):
    monkeypatch.setenv("HELPERS_PROFILE", "full")
    monkeypatch.setenv("HELPERS_SMOKE", "1")


def loaders(n=1000, bs=50):
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (n,), generator=g)
    x = (torch.rand(n, 1, 4, 4, generator=g) * 100 + y[:, None, None, None] * 100).to(torch.uint8)
    return (TensorLoader(x, y, bs, shuffle=True, device=torch.device("cpu")),
            TensorLoader(x, y, bs, device=torch.device("cpu")))


class Data:
    def __init__(self):
        self.train_dl, self.valid_dl = loaders()
        self.device = torch.device("cpu")


def learner():
    torch.manual_seed(0)
    return Learner(Data(), nn.Sequential(nn.Flatten(), nn.Linear(16, 2)), nn.CrossEntropyLoss(), accuracy)


def test_profile_in_a_smoke_run(smoke):
    prof = config.profile()
    assert prof.name == "full" and prof.smoke and not prof.needs_pretrained
    assert "SMOKE" in prof.summary


def test_not_a_smoke_run_by_default(monkeypatch):
    monkeypatch.delenv("HELPERS_SMOKE", raising=False)
    monkeypatch.setenv("HELPERS_PROFILE", "full")
    assert not config.profile().smoke and config.profile().needs_pretrained
    train, _ = loaders()
    assert len(train) == 20 and len(list(train)) == 20


def test_bad_smoke_value(monkeypatch):
    monkeypatch.setenv("HELPERS_SMOKE", "maybe")
    with pytest.raises(ValueError, match="HELPERS_SMOKE"):
        config.smoke()


def test_loaders_are_capped(smoke):
    train, valid = loaders()
    assert len(train) == config.SMOKE_BATCHES and len(list(train)) == config.SMOKE_BATCHES
    assert len(valid.full()) == config.SMOKE_BATCHES  # full() drops the loader's own cap, not the smoke cap


def test_fit_runs_one_epoch_of_two_batches(smoke, capsys):
    learn = learner()
    learn.fit_one_cycle(10, 0.1)
    assert len(learn.recorder.val_losses) == config.SMOKE_EPOCHS
    assert learn.recorder.batches_per_epoch == [config.SMOKE_BATCHES]
    assert "smoke run: 1 of 10 epochs" in capsys.readouterr().out
    learn.fit(3, 0.1)
    assert len(learn.recorder.val_losses) == 1


def test_lr_find_is_short(smoke):
    learn = learner()
    learn.lr_find(num_it=100)
    assert len(learn.recorder.lrs) == config.SMOKE_LR_FIND_ITS


def test_capped_validation_spreads_over_the_set(monkeypatch):
    monkeypatch.delenv("HELPERS_SMOKE", raising=False)
    x = torch.arange(100, dtype=torch.uint8).view(100, 1, 1, 1)
    dl = TensorLoader(x, torch.arange(100), 10, device=torch.device("cpu"), max_batches=2)
    seen = torch.cat([yb for _, yb in dl])
    assert len(seen) == 20 and seen.min() == 0 and seen.max() == 99  # not just the first 20
    assert len(torch.cat([yb for _, yb in dl.full()])) == 100


def notebook_times():
    import importlib.util
    from pathlib import Path
    spec = importlib.util.spec_from_file_location(
        "notebook_times", Path(__file__).resolve().parents[1] / "benchmarks" / "notebook_times.py")
    times = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(times)
    return times


def test_timing_command_names_a_missing_notebook_before_starting_a_kernel(tmp_path, capsys, monkeypatch):
    """`make smoke`'s timing command (benchmarks/notebook_times.py) refuses a notebook path that does not exist
    with one line, not a traceback from nbformat after other notebooks ran."""
    times = notebook_times()
    monkeypatch.setattr(times, "run", lambda *a: pytest.fail("a kernel was started"))
    code = times.main([str(tmp_path / "07-deoldify.ipynb"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("no such notebook: ") and "07-deoldify.ipynb" in err


def test_timing_command_starts_no_cell_after_its_budget(tmp_path, capsys, monkeypatch):
    """--budget (a borrowed GPU's time limit, tools/device_run.sh): the running cell finishes, no later cell starts,
    the notebook's record says where it stopped, later notebooks are listed as not run, and the exit code is 124."""
    import json
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import time; time.sleep(1.5)"),
                                         nbformat.v4.new_code_cell("print('late')")])
    first, second = tmp_path / "first.ipynb", tmp_path / "second.ipynb"
    nbformat.write(nb, first)
    nbformat.write(nb, second)
    monkeypatch.setenv("HELPERS_RUNS", str(tmp_path))  # main() points it at --out; restored after the test
    code = notebook_times().main([str(first), str(second), "--budget", "0.5", "--out", str(tmp_path / "out")])
    record = json.loads((tmp_path / "out" / "first.times.json").read_text())
    ran = [c["cell"] for c in record["cells"]]  # cell 0 if the kernel was up within 0.5 s, then it ran to its end
    assert code == 124 and ran in ([], [0]) and record["stopped"] == f"time budget spent before cell {len(ran)}"
    assert all(c["seconds"] >= 1.5 for c in record["cells"])
    assert not (tmp_path / "out" / "second.times.json").exists()
    assert "not run: second.ipynb" in capsys.readouterr().err
