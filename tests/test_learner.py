"""helpers.learner: lr ranges, the one-cycle schedule, lr_find, the loop, summary, save/load, predict."""
import math

import pytest
import torch
from torch import nn

from helpers.learner import Learner
from helpers.loop import lr_range
from helpers.metrics import accuracy


class ToyData:
    """Two well separated Gaussian blobs in 2-D: a unit-test stand-in for a DataBunch."""

    def __init__(self, n=512, bs=64):
        g = torch.Generator().manual_seed(0)
        y = torch.randint(0, 2, (n,), generator=g)
        x = torch.randn(n, 2, generator=g) * 0.5 + (y[:, None] * 2 - 1) * 2.0
        self.device = torch.device("cpu")
        self.classes = ["a", "b"]
        self.train_dl = [(x[i:i + bs], y[i:i + bs]) for i in range(0, n - 128, bs)]
        self.valid_dl = [(x[n - 128:], y[n - 128:])]

    def one_batch(self, valid=False):
        return (self.valid_dl if valid else self.train_dl)[0]


def toy_learner(**kw):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))
    return Learner(ToyData(), model, nn.CrossEntropyLoss(), accuracy, **kw)


def test_accuracy_by_hand():
    pred = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    assert accuracy(pred, torch.tensor([1, 0, 0, 0])).item() == pytest.approx(0.75)
    seq = torch.zeros(2, 3, 4)
    seq[..., 2] = 1
    assert accuracy(seq, torch.tensor([[2, 2, 1], [2, 0, 2]])).item() == pytest.approx(4 / 6)


def test_lr_range_semantics():
    assert lr_range(0.1, 3) == [0.1, 0.1, 0.1]
    assert lr_range(slice(3e-3), 3) == pytest.approx([3e-4, 3e-4, 3e-3])
    assert lr_range(slice(1e-6, 1e-4), 3) == pytest.approx([1e-6, 1e-5, 1e-4])
    assert lr_range(slice(1e-6, 1e-4), 1) == pytest.approx([1e-4])


def test_fit_one_cycle_schedule_and_learning():
    learn = toy_learner()
    before = learn.validate()
    learn.fit_one_cycle(4, max_lr=0.05, pct_start=0.25)
    rec = learn.recorder
    n = len(rec.lrs)
    assert n == 4 * len(learn.data.train_dl)
    assert rec.lrs[0] == pytest.approx(0.05 / 25)
    assert max(rec.lrs) == pytest.approx(0.05, rel=0.05)
    peak = rec.lrs.index(max(rec.lrs))
    assert abs(peak - 0.25 * n) <= 1
    assert rec.lrs[-1] < 0.05 / 25 / 1e3 * 10
    assert rec.moms[0] == pytest.approx(0.95) and min(rec.moms) == pytest.approx(0.85, abs=1e-3)
    assert rec.moms[peak] == pytest.approx(0.85, abs=1e-3)
    assert len(rec.val_losses) == 4 and len(rec.metrics) == 4 and rec.metric_names == ["accuracy"]
    after = learn.validate()
    assert after[0] < before[0] and after[1] > 0.95


def test_lr_find_restores_weights_and_stops_on_divergence():
    learn = toy_learner()
    before = {k: v.clone() for k, v in learn.model.state_dict().items()}
    learn.lr_find(end_lr=1e4, num_it=200)
    for k, v in learn.model.state_dict().items():
        assert torch.equal(v, before[k]), k
    rec = learn.recorder
    assert 10 < len(rec.lrs) < 200, "a sweep to lr=1e4 must diverge and stop early"
    assert all(b > a for a, b in zip(rec.lrs, rec.lrs[1:]))
    assert rec.lrs[0] == pytest.approx(1e-7)


def test_each_fit_records_afresh():
    learn = toy_learner()
    learn.lr_find(num_it=20)
    learn.fit(1, 1e-3)
    assert len(learn.recorder.lrs) == len(learn.data.train_dl), "lr_find's sweep must not leak into the fit"
    assert set(learn.recorder.lrs) == {1e-3}


def test_callbacks_can_replace_the_loss():
    class Double:
        def after_loss(self, learn):
            learn.loss = learn.loss * 0 + 123.0

    learn = toy_learner(callbacks=[Double()])
    assert learn.validate()[0] == pytest.approx(123.0)


def test_model_reset_is_called_each_pass():
    calls = []

    class Stateful(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)

        def reset(self):
            calls.append(self.training)

        def forward(self, x):
            return self.lin(x)

    learn = Learner(ToyData(), Stateful(), nn.CrossEntropyLoss(), accuracy)
    learn.fit(1, 1e-3)
    assert calls == [True, False]


def test_nan_loss_stops_with_a_clear_error():
    learn = toy_learner()
    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        learn.fit(1, 1e12)


def test_summary_counts(capsys):
    learn = toy_learner()
    learn.summary()
    out = capsys.readouterr().out
    assert "Linear" in out and "[16]" in out and "[2]" in out
    assert "Total params: 82" in out  # 2*16+16 + 16*2+2


def test_save_load_predict(tmp_path, monkeypatch):
    monkeypatch.setenv("HELPERS_DATA", str(tmp_path))
    learn = toy_learner()
    learn.fit(2, 1e-2)
    path = learn.save("toy", return_path=True)
    assert path == tmp_path / "models" / "toy.pth" and path.exists()
    other = toy_learner()
    other.model[0].weight.data.zero_()
    other.load("toy")
    for a, b in zip(learn.model.parameters(), other.model.parameters()):
        assert torch.equal(a, b)
    label, idx, probs = other.predict(torch.tensor([3.0, 3.0]))
    assert (label, idx) == ("b", 1) and math.isclose(float(probs.sum()), 1, rel_tol=1e-5)
    with pytest.raises(FileNotFoundError, match="learn.save"):
        other.load("missing")


def tiny_images(n, side):
    """``n`` random 1-channel uint8 images of ``side`` px, 3 random labels, and a seeded linear model."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 1, side, side), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 3, (n,), generator=g)
    torch.manual_seed(0)
    return x, y, torch.device("cpu"), nn.Sequential(nn.Flatten(), nn.Linear(side * side, 3))


def test_tta_mixes_plain_and_augmented_probabilities():
    from helpers.data import DataBunch, TensorLoader, rand_pad

    x, y, cpu, model = tiny_images(40, 8)
    plain_data = DataBunch(TensorLoader(x, y, 16, device=cpu), TensorLoader(x, y, 16, device=cpu), ["a", "b", "c"])
    learn = Learner(plain_data, model, nn.CrossEntropyLoss(), accuracy)
    probs, targs = learn.tta(n_aug=3, beta=0.4)
    expected = torch.softmax(model(x.float() / 255), -1)
    assert torch.allclose(probs, expected, atol=1e-6), "with no training transforms TTA equals the plain prediction"
    assert torch.equal(targs, y)
    shifted = DataBunch(TensorLoader(x, y, 16, tfms=[rand_pad(2, 8)], device=cpu),
                        TensorLoader(x, y, 16, device=cpu), ["a", "b", "c"])
    probs2, _ = Learner(shifted, model, nn.CrossEntropyLoss(), accuracy).tta(n_aug=3, beta=0.4)
    assert probs2.shape == (40, 3) and torch.allclose(probs2.sum(-1), torch.ones(40))
    assert not torch.allclose(probs2, expected), "augmented passes must change the mix"


def test_summary_lists_a_weight_normed_conv_as_one_layer(capsys):
    model = nn.Sequential(nn.utils.parametrizations.weight_norm(nn.Linear(2, 4)), nn.ReLU(), nn.Linear(4, 2))
    learn = Learner(ToyData(), model, nn.CrossEntropyLoss(), accuracy)
    learn.summary()
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("Linear", "ReLU", "Param"))]
    assert [r.split()[0] for r in rows] == ["ParametrizedLinear", "ReLU", "Linear"]
    assert rows[0].split()[2] == "16"  # g (4) + v (4x2) + bias (4)


def test_tta_is_fastais_mix_of_plain_and_augmented():
    """fastai v1's TTA: ``preds*beta + avg_preds*(1-beta)``, where ``preds`` is the plain prediction."""
    from helpers.data import DataBunch, TensorLoader

    x, y, cpu, model = tiny_images(10, 4)
    flip = lambda b: b.flip(-1)  # noqa: E731 - a deterministic "augmentation": every pass sees the mirror image
    data = DataBunch(TensorLoader(x, y, 4, tfms=[flip], device=cpu), TensorLoader(x, y, 4, device=cpu), ["a", "b", "c"])
    probs, targs = Learner(data, model, nn.CrossEntropyLoss(), accuracy).tta(n_aug=3, beta=0.4)
    with torch.no_grad():
        plain = torch.softmax(model(x.float() / 255), -1)
        augmented = torch.softmax(model(x.float().flip(-1) / 255), -1)
    assert not torch.allclose(plain, augmented, atol=1e-3), "the test needs plain and augmented to differ"
    assert torch.allclose(probs, 0.4 * plain + 0.6 * augmented, atol=1e-6)
    assert torch.equal(targs, y)


def test_show_results_pairs_each_picture_with_its_own_prediction():
    """B1: with a capped validation loader, get_preds scores items spread over the set; the pictures must be
    those items, not the first ones."""
    from helpers.data import DataBunch, TensorLoader
    from helpers.show import pyplot, show_results
    x = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1).expand(10, 1, 2, 2).contiguous() * 20
    y = torch.arange(10)
    cpu = torch.device("cpu")
    data = DataBunch(TensorLoader(x, y, 2, device=cpu), TensorLoader(x, y, 4, device=cpu, max_batches=1),
                     [str(i) for i in range(10)])

    class Oracle(nn.Module):  # reads the item from its pixel value and gets only item 9 wrong (says 0)
        def forward(self, xb):
            item = (xb[:, 0, 0, 0] * 255 / 20).round().long()
            return torch.nn.functional.one_hot(torch.where(item == 9, 0, item), 10).float()

    learn = Learner(data, Oracle(), nn.CrossEntropyLoss())
    show_results(learn, rows=2)  # the mistake first: item 9 (the capped loader scores items 0, 3, 6 and 9)
    ax = pyplot().gcf().axes[0]
    shown = int(round(ax.images[0].get_array().max() * 255 / 20))
    pyplot().close("all")
    assert (shown, ax.get_title()) == (9, "0 / 9"), "the title belongs to the picture under it"


def test_an_empty_loader_is_used_not_replaced_by_the_default():
    """B2: a loader with no batches is falsy; validate / get_preds must use it, not fall back."""
    from helpers.data import TensorLoader
    learn = toy_learner()
    empty = TensorLoader(torch.zeros(0, 1, 4, 4, dtype=torch.uint8), torch.zeros(0, dtype=torch.long), 8,
                         device=torch.device("cpu"))
    assert len(empty) == 0 and not empty
    with pytest.raises(ValueError, match="no batches"):
        learn.get_preds(empty)
    with pytest.raises(ValueError, match="no batches"):
        learn.validate(empty)


def test_recorder_plot_marks_the_lowest_loss_and_the_steepest_fall(capsys):
    from helpers.recorder import Recorder
    from helpers.show import pyplot
    rec = Recorder()
    rec.lrs = [10 ** (-7 + 8 * i / 99) for i in range(100)]
    rec.losses = [2.0 - min(i, 60) / 60 + max(0, i - 80) / 10 for i in range(100)]  # falls, flattens, rises
    rec.plot()
    ax = pyplot().gcf().axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0].startswith("lowest loss at lr=") and labels[1].startswith("steepest fall at lr=")
    assert ax.get_xscale() == "log" and len(ax.lines[0].get_xdata()) == 85  # 10 skipped at the start, 5 at the end
    assert "steepest fall" in capsys.readouterr().out
    pyplot().close("all")


def test_tta_covers_the_items_get_preds_covers():
    """A capped validation loader (a smoke run's 2 batches) caps TTA too, in get_preds' order: the two line up."""
    from helpers.data import DataBunch, TensorLoader

    x, y, cpu, model = tiny_images(40, 4)
    data = DataBunch(TensorLoader(x, y, 8, device=cpu), TensorLoader(x, y, 8, device=cpu, max_batches=2), ["a", "b", "c"])
    learn = Learner(data, model, nn.CrossEntropyLoss(), accuracy)
    preds, targs = learn.get_preds()
    probs, tta_targs = learn.tta(n_aug=1, beta=1.0)  # beta 1: the plain prediction alone
    assert len(targs) == 16 and torch.equal(tta_targs, targs)
    assert torch.allclose(probs, torch.softmax(preds, -1), atol=1e-6)


class RunsOutOfMemory(nn.Module):
    """A linear model whose ``fail_at``-th forward call raises ``error`` as the allocator would, or (``error`` None)
    really asks the allocator for 32 TiB."""

    def __init__(self, fail_at, error):
        super().__init__()
        self.lin, self.calls, self.fail_at, self.error = nn.Linear(2, 2), 0, fail_at, error

    def forward(self, x):
        self.calls += 1
        if self.calls == self.fail_at:
            if self.error is None:
                x = x.new_empty(2**43)  # 32 TiB of float32: refused by any allocator
            raise self.error
        return self.lin(x)


def test_out_of_memory_in_a_fit_says_where_and_gives_the_memory_back(capsys):
    """Out of memory in epoch 2, batch 3 (a CUDA OutOfMemoryError, faked): one error that says where, with which
    batch size, and what to make smaller; nothing of the failed step is kept, so the cell can simply be re-run."""
    from helpers.loop import TrainingOutOfMemoryError
    data = ToyData()
    n = len(data.train_dl)  # 6 batches, and 1 validation forward per epoch
    model = RunsOutOfMemory(fail_at=n + 1 + 3, error=torch.OutOfMemoryError("CUDA out of memory. Tried to allocate"))
    data.train_dl = type("Batches", (list,), {"bs": 64})(data.train_dl)
    learn = Learner(data, model, nn.CrossEntropyLoss())
    with pytest.raises(TrainingOutOfMemoryError) as info:
        learn.fit(3, 1e-2)
    msg = str(info.value)
    assert f"epoch 2/3, training batch 3 of {n}" in msg and "batches of 64" in msg and "batch_size_for" in msg
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no frames of the failed step kept
    assert learn.pred is None and learn.loss is None and all(p.grad is None for p in model.parameters())
    assert capsys.readouterr().out.count("\n1 ") == 1  # epoch 1's row was printed before it failed


def test_out_of_memory_in_lr_find_restores_the_weights_and_says_so():
    from helpers.loop import TrainingOutOfMemoryError
    model = RunsOutOfMemory(fail_at=4, error=RuntimeError("MPS backend out of memory (MPS allocated: 1 GB)"))
    learn = Learner(ToyData(), model, nn.CrossEntropyLoss())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(TrainingOutOfMemoryError, match="lr_find, iteration 4 of 20.*as before lr_find"):
        learn.lr_find(num_it=20)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_other_runtime_errors_pass_through_unchanged():
    model = RunsOutOfMemory(fail_at=2, error=RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied") as info:
        Learner(ToyData(), model, nn.CrossEntropyLoss()).fit(1, 1e-2)
    assert type(info.value) is RuntimeError


def test_a_real_allocator_refusal_is_reported_the_same_way():
    """Not faked: on the CPU, asking for 32 TiB makes torch's own allocator refuse ("can't allocate memory")."""
    from helpers.loop import TrainingOutOfMemoryError
    try:
        torch.empty(2**43)  # with vm.overcommit_memory=1 a kernel may grant it, untouched
        pytest.skip("this machine's allocator grants 32 TiB of untouched memory")
    except RuntimeError:
        pass
    learn = Learner(ToyData(), RunsOutOfMemory(fail_at=2, error=None), nn.CrossEntropyLoss())
    with pytest.raises(TrainingOutOfMemoryError, match="epoch 1/1, training batch 2 of 6"):
        learn.fit(1, 1e-2)
