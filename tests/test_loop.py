"""helpers.loop: the pieces both learners share: one eval-mode context that restores, one prediction
path, the same events in the same order, the NaN stop, the smoothed loss, the GPU settings (CUDA faked)."""
import math

import pytest
import torch
from torch import nn

from helpers import loop
from helpers.data import DataBunch, TensorLoader
from helpers.gan import AdaptiveGANSwitcher, GANLearner, HostLoss
from helpers.learner import Learner
from helpers.loop import SmoothedLoss, check_finite, make_optimizer, to_device_layout
from helpers.photos import PhotoStack

CPU = torch.device("cpu")


def test_smoothed_loss_is_fastais_debiased_moving_average():
    s = SmoothedLoss()
    assert s.value is None
    assert s.add(2.0) == pytest.approx(2.0)  # debiased: the first value as it is
    assert s.add(4.0) == pytest.approx((0.98 * 0.02 * 2 + 0.02 * 4) / (1 - 0.98 ** 2))


def test_a_nan_loss_stops_training_with_a_clear_error(tiny_learner):
    with pytest.raises(FloatingPointError, match="training loss became nan in epoch 3; lower the learning rate"):
        check_finite(math.nan, "training loss", 3)
    learn = tiny_learner()
    with pytest.raises(FloatingPointError, match="training loss became"):
        learn.fit(1, 1e30)  # Adam at this rate blows the weights up: the epoch ends with a NaN loss


def test_the_gan_stops_on_a_nan_loss_too():
    stack = PhotoStack.from_list(list(torch.randint(0, 256, (16, 1, 8, 8), dtype=torch.uint8)))
    from helpers.data import GANLoader
    from helpers.layers import basic_critic, basic_generator

    class NaNLoss:
        def __call__(self, real, fake):
            return (real.mean() - fake.mean()) * float("nan")

    learn = GANLearner(GANLoader(stack, 8, bs=4, device=CPU), basic_generator(8, 1, n_features=4),
                       basic_critic(8, 1, n_features=4), crit_loss_func=NaNLoss(), n_grid=2)
    with pytest.raises(FloatingPointError, match="critic loss became nan in epoch 1"):
        learn.fit(1, 1e-3)


def test_eval_mode_restores_each_models_mode_and_turns_off_gradients(tiny_learner):
    learn = tiny_learner()
    other = nn.Dropout()
    learn.model.train()
    other.eval()
    with learn.eval_mode(learn.model, other):
        assert not learn.model.training and not other.training and not torch.is_grad_enabled()
    assert learn.model.training and not other.training and torch.is_grad_enabled()
    with pytest.raises(RuntimeError), learn.eval_mode():
        raise RuntimeError("inside")
    assert learn.model.training, "restored even when the block fails"


def test_every_prediction_goes_through_predict_batch(tiny_learner, monkeypatch):
    learn = tiny_learner()
    calls = []
    real = loop.BaseLearner.predict_batch
    monkeypatch.setattr(loop.BaseLearner, "predict_batch", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    preds, _ = learn.get_preds()
    assert len(calls) == 4 and preds.shape == (32, 2)
    learn.predict(torch.rand(1, 4, 4))
    learn.tta(n_aug=2)
    assert len(calls) == 4 + 1 + 4 * 3
    assert learn.model.training, "the model is back in train mode"


def test_both_learners_fire_the_same_events_in_the_same_order(tiny_learner):
    class Log:
        def __init__(self):
            self.events = []

        def __getattr__(self, name):
            if name.startswith(("before_", "after_")):
                return lambda learn: self.events.append(name)
            raise AttributeError(name)

    log = Log()
    learn = tiny_learner()
    learn.callbacks = [log]
    learn.fit(1, 1e-3)
    stack = PhotoStack.from_list(list(torch.randint(0, 256, (8, 1, 8, 8), dtype=torch.uint8)))
    from helpers.data import GANLoader
    from helpers.layers import basic_critic, basic_generator
    gan_log = Log()
    gan = GANLearner.wgan(GANLoader(stack, 8, bs=4, device=CPU), basic_generator(8, 1, n_features=4),
                          basic_critic(8, 1, n_features=4), n_grid=2, callbacks=[gan_log])
    gan.fit(1, 1e-3)
    assert log.events[:5] == gan_log.events[:5] == ["before_fit", "before_epoch", "after_pred", "after_loss",
                                                    "after_batch"]
    assert log.events[-2:] == gan_log.events[-2:] == ["after_epoch", "after_fit"]
    assert set(log.events) == set(gan_log.events)


def test_a_loss_on_the_host_is_used_at_once_and_one_on_a_gpu_one_batch_late():
    now = HostLoss(lag=False)
    assert now.push(False, torch.tensor(0.5)) == (False, 0.5)
    late = HostLoss(lag=True)  # as on CUDA: the copy is not waited for
    assert late.push(False, torch.tensor(0.9)) is None
    assert late.push(False, torch.tensor(0.5)) == (False, pytest.approx(0.9))
    assert late.push(True, torch.tensor(2.0)) == (False, pytest.approx(0.5))
    switcher = AdaptiveGANSwitcher(critic_thresh=0.65)
    assert switcher(False, None) is False, "no critic loss has arrived yet: the critic keeps training"
    assert switcher(False, 0.5) is True


def test_gpu_settings_apply_on_cuda_only_and_can_be_switched_off(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    precision = torch.get_float32_matmul_precision()
    cuda, cpu = torch.device("cuda"), CPU
    conv = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 8, 3))
    try:
        assert not loop.gpu_tuned(cpu) and to_device_layout(conv, cpu) is conv
        assert loop.gpu_tuned(cuda)  # CUDA "present": the device type is all the choice looks at
        assert torch.backends.cudnn.benchmark and torch.get_float32_matmul_precision() == "high"
        tuned = to_device_layout(conv, cuda)
        assert tuned[0].weight.is_contiguous(memory_format=torch.channels_last)
        assert to_device_layout(torch.zeros(2, 3, 4, 5), cuda).is_contiguous(memory_format=torch.channels_last)
        assert to_device_layout(torch.zeros(2, 3), cuda).shape == (2, 3)  # not an image batch: left alone
        opt = make_optimizer([{"params": list(conv.parameters()), "lr": 1e-3}], (0.9, 0.99), 0.01, cuda)
        assert opt.defaults["fused"] is True
        assert make_optimizer([{"params": list(conv.parameters()), "lr": 1e-3}], (0.9, 0.99), 0.01, cpu).defaults["fused"] is None
        monkeypatch.setenv("HELPERS_GPU_TUNING", "off")
        assert not loop.gpu_tuned(cuda)
        monkeypatch.setenv("HELPERS_GPU_TUNING", "maybe")
        with pytest.raises(ValueError, match="HELPERS_GPU_TUNING"):
            loop.gpu_tuned(cuda)
    finally:
        torch.set_float32_matmul_precision(precision)


def test_cpu_learners_flush_denormals_unless_switched_off(monkeypatch):
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))

    def flushed() -> bool:  # 1e-39 is a denormal float32
        return (torch.tensor([1e-39]) * 1).item() == 0.0

    data = DataBunch(TensorLoader(x, y, 8, device=CPU), TensorLoader(x, y, 8, device=CPU))
    try:
        torch.set_flush_denormal(False)
        Learner(data, nn.Linear(4, 2), loss_func=nn.CrossEntropyLoss())
        assert flushed(), "a CPU learner flushes denormals to zero"
        monkeypatch.setenv("HELPERS_CPU_TUNING", "off")
        Learner(data, nn.Linear(4, 2), loss_func=nn.CrossEntropyLoss())
        assert not flushed()
        monkeypatch.setenv("HELPERS_CPU_TUNING", "maybe")
        with pytest.raises(ValueError, match="HELPERS_CPU_TUNING"):
            Learner(data, nn.Linear(4, 2), loss_func=nn.CrossEntropyLoss())
    finally:
        torch.set_flush_denormal(False)


def test_checkpoints_follow_the_planned_iterations():
    from helpers.gan import checkpoint_every
    assert checkpoint_every(60) == 10 and checkpoint_every(739) == 123 and checkpoint_every(3) == 1
    for planned in (30, 739, 12_450):
        assert 5 <= planned // checkpoint_every(planned) <= 7
