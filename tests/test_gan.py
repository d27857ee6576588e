"""helpers.gan and the GAN builders in helpers.layers: shapes from the lesson, clipping, switching,
loss signs and the Fréchet distance against hand-computed values; the super-resolution critic's patch
map and layers, and its metric against a hand computation."""
import pytest
import torch
from torch import nn

from helpers.data import GANLoader
from helpers.photos import PhotoStack
from helpers.gan import AdaptiveGANSwitcher, FixedGANSwitcher, GANLearner, image_grid
from helpers.metrics import frechet_distance
from helpers.layers import SelfAttention, basic_critic, basic_generator, gan_critic
from helpers.metrics import accuracy_thresh_expand
from helpers.losses import wasserstein_critic_loss, wasserstein_gen_loss


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("extra", [0, 1])
def test_generator_and_critic_shapes(size, channels, extra):
    gen = basic_generator(size, channels, n_extra_layers=extra)
    crit = basic_critic(size, channels, n_extra_layers=extra)
    z = torch.randn(5, 100, 1, 1)
    img = gen(z)
    assert img.shape == (5, channels, size, size)
    assert img.min() >= -1 and img.max() <= 1  # tanh
    assert crit(img).shape == (5,)  # one score per image


def _layers(model) -> str:
    """Each conv as "in>out kernel/stride/padding", "+b" when it has a bias."""
    return ", ".join(f"{m.in_channels}>{m.out_channels} {m.kernel_size[0]}/{m.stride[0]}/{m.padding[0]}"
                     f"{'+b' if m.bias is not None else ''}"
                     for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)))


def test_64px_3ch_one_extra_layer_matches_the_lesson():
    gen = basic_generator(in_size=64, n_channels=3, n_extra_layers=1)
    assert _layers(gen) == "100>512 4/1/0, 512>256 4/2/1, 256>128 4/2/1, 128>64 4/2/1, 64>64 3/1/1, 64>3 4/2/1"
    kinds = [type(m).__name__ for m in gen.modules() if not list(m.children())]
    assert kinds == ["ConvTranspose2d", "ReLU", "BatchNorm2d"] * 5 + ["ConvTranspose2d", "Tanh"]
    crit = basic_critic(in_size=64, n_channels=3, n_extra_layers=1)
    assert _layers(crit) == "3>64 4/2/1+b, 64>64 3/1/1, 64>128 4/2/1, 128>256 4/2/1, 256>512 4/2/1, 512>1 4/1/0"
    kinds = [type(m).__name__ for m in crit.modules() if not list(m.children())]
    assert kinds == (["Conv2d", "LeakyReLU"] + ["Conv2d", "LeakyReLU", "BatchNorm2d"] * 4 + ["Conv2d", "Flatten"])
    assert all(m.negative_slope == 0.2 for m in crit.modules() if isinstance(m, nn.LeakyReLU))
    # the spatial sizes: 4 -> 8 -> 16 -> 32 -> 32 -> 64 and 32 -> 32 -> 16 -> 8 -> 4 -> 1
    sizes, x = [], torch.randn(2, 100, 1, 1)
    for block in gen:
        x = block(x)
        sizes.append(x.shape[-1])
    assert sizes == [4, 8, 16, 32, 32, 64, 64]


def test_32px_is_one_stage_shorter():
    gen, crit = basic_generator(32, 1), basic_critic(32, 1)
    assert [c.split()[0] for c in _layers(gen).split(", ")] == ["100>256", "256>128", "128>64", "64>1"]
    assert [c.split()[0] for c in _layers(crit).split(", ")] == ["1>64", "64>128", "128>256", "256>1"]


def test_wasserstein_loss_signs():
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([-2.0, 0.0])
    assert wasserstein_critic_loss(real, fake).item() == pytest.approx(2.0 - (-1.0))
    assert wasserstein_gen_loss(fake).item() == pytest.approx(-1.0)
    # minimising the critic loss lowers real scores and raises fake ones
    r, f = real.clone().requires_grad_(), fake.clone().requires_grad_()
    wasserstein_critic_loss(r, f).backward()
    assert (r.grad > 0).all() and (f.grad < 0).all()


def test_fixed_switcher_alternates():
    sw, mode, modes = FixedGANSwitcher(n_crit=5, n_gen=1), False, []
    for _ in range(12):
        modes.append(mode)
        mode = sw(mode, 0.0)
    assert modes == [False] * 5 + [True] + [False] * 5 + [True]
    sw, mode, modes = FixedGANSwitcher(n_crit=1, n_gen=2), False, []
    for _ in range(6):
        modes.append(mode)
        mode = sw(mode, 0.0)
    assert modes == [False, True, True, False, True, True]


def test_adaptive_switcher_uses_thresholds():
    sw = AdaptiveGANSwitcher(critic_thresh=0.65)
    assert sw(False, 0.9) is False   # critic loss still high: keep training the critic
    assert sw(False, 0.5) is True    # below the threshold: the generator's turn
    assert sw(True, 123.0) is False  # no generator threshold: back after one batch
    sw = AdaptiveGANSwitcher(gen_thresh=1.0)
    assert sw(True, 2.0) is True and sw(True, 0.5) is False


def test_loader_pads_to_size_and_scales_to_minus_one_one():
    images = PhotoStack.from_list([torch.full((1, 28, 28), 255, dtype=torch.uint8)] * 4)
    dl = GANLoader(images, size=32, bs=2, device=torch.device("cpu"))
    z, real = next(iter(dl))
    assert z.shape == (2, 100, 1, 1) and real.shape == (2, 1, 32, 32)
    assert real[:, :, 2:30, 2:30].eq(1).all() and real[:, :, :2].eq(-1).all() and real[:, :, 30:].eq(-1).all()


def test_random_squares_cut_each_photo_where_it_is():
    """Landscape and portrait photos of several sizes: every square is a window of its own photo, at
    a place that varies, and a portrait comes back upright."""
    from helpers.photos import random_squares
    photos = [torch.arange(h * w, dtype=torch.float32).view(1, h, w) for h, w in ((40, 53), (60, 40), (40, 40))]
    stack = PhotoStack.from_list([(p % 251).to(torch.uint8) for p in photos])
    torch.manual_seed(0)
    places = set()
    for _ in range(20):
        out = random_squares(stack, torch.arange(3), 40)
        assert out.shape == (3, 1, 40, 40)
        for i, p in enumerate(photos):
            windows = p.unfold(1, 40, 1).unfold(2, 40, 1)  # every 40 x 40 window of photo i
            hits = ((windows % 251).to(torch.uint8) == out[i][:, None, None]).flatten(3).all(-1).nonzero()
            assert len(hits) == 1, f"photo {i}: not one of its windows"
            places.add((i, *hits[0, 1:].tolist()))
    assert len({pl for pl in places if pl[0] == 0}) > 3 and len({pl for pl in places if pl[0] == 1}) > 3


def test_clipping_comes_before_every_batch_as_fastai_did(tiny_gan):
    """fastai clamps the critic's weights in on_batch_begin: whatever the critic's last step did, every
    batch (critic or generator) sees a critic inside the box."""
    learn = tiny_gan(clip=0.01)
    with torch.no_grad():  # start far outside the box
        for p in learn.critic.parameters():
            p.mul_(100).add_(0.5)
    seen = []
    learn.critic.register_forward_pre_hook(lambda m, _: seen.append(max(p.abs().max().item() for p in m.parameters())))
    learn.fit(2, 0.5)  # a large rate: each critic step leaves the box
    assert len(seen) >= 8 and max(seen) <= 0.01 + 1e-8
    assert max(p.abs().max().item() for p in learn.critic.parameters()) > 0.01, "the last step is clipped at the next batch"
    assert any(p.abs().max().item() > 0.01 for p in learn.generator.parameters())  # the generator is not clipped


def test_switch_freezes_and_evals_the_idle_model(tiny_gan):
    learn = tiny_gan(switch_eval=True)
    learn.switch(True)
    assert learn.generator.training and all(p.requires_grad for p in learn.generator.parameters())
    assert not learn.critic.training and not any(p.requires_grad for p in learn.critic.parameters())
    learn.switch(False)
    assert learn.critic.training and not learn.generator.training
    wgan = tiny_gan()  # the lesson's WGAN leaves both in train mode
    wgan.switch(True)
    assert wgan.critic.training


def test_fit_trains_both_with_the_fixed_schedule_and_records_grids(tiny_gan, capsys):
    learn = tiny_gan(critic_lr_mult=5.0)
    g0 = [p.detach().clone() for p in learn.generator.parameters()]
    learn.fit(2, 1e-3)  # 4 batches per epoch, 8 in all: C C C C C G C C
    assert len(learn.recorder.crit_losses) == 7 and len(learn.recorder.gen_losses) == 1
    assert learn.opt_crit.param_groups[0]["lr"] == pytest.approx(5e-3)
    assert learn.opt_gen.param_groups[0]["lr"] == pytest.approx(1e-3)
    assert any(not torch.equal(a, b) for a, b in zip(g0, learn.generator.parameters()))
    assert sorted(learn.grids) == [1, 2] and learn.grids[1].dtype == torch.uint8
    assert learn.grids[1].shape == (1, 2 + 1 * 34, 2 + 4 * 34)  # 4 tiles, 8 per row -> one row
    learn.grid_every = 2
    learn.fit(3, 1e-3)  # epochs 3, 4, 5: a grid after the 4th (every 2nd) and the 5th (the fit's last)
    assert sorted(learn.grids) == [1, 2, 4, 5]
    out = capsys.readouterr().out
    assert "gen_loss" in out and "disc_loss" in out
    assert learn.recorder.epoch_gen[0] is None, "epoch 1 had no generator batch: no value, not a stale one"


def test_image_grid_layout():
    x = torch.stack([torch.full((1, 2, 2), v) for v in (-1.0, 1.0, 0.0)])
    grid = image_grid(x, nrow=2, pad=1)
    assert grid.shape == (1, 7, 7)
    assert grid[0, 1, 1] == 0 and grid[0, 1, 4] == 255 and grid[0, 4, 1] == 128 and grid[0, 0, 0] == 255


def test_frechet_distance_hand_computed():
    torch.manual_seed(0)
    a = torch.randn(2000, 4) @ torch.randn(4, 4)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    shift = torch.tensor([1.0, -2.0, 0.5, 3.0])
    # same covariance, means shifted: the distance is |shift|^2
    assert frechet_distance(a, a + shift) == pytest.approx(float(shift.pow(2).sum()), rel=1e-6)
    # 1-D Gaussians: (mu1 - mu2)^2 + (sigma1 - sigma2)^2
    x = torch.randn(5000, 1, dtype=torch.float64)
    x = (x - x.mean()) / x.std()
    assert frechet_distance(x, 3 * x + 2) == pytest.approx(4 + (3 - 1) ** 2, rel=1e-6)
    # diagonal covariances: sum of (sqrt(v1) - sqrt(v2))^2
    d = torch.randn(4000, 3, dtype=torch.float64)
    d = (d - d.mean(0)) / d.std(0)
    d = d - d.mean(0)
    scale = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    expected = float(((scale - 1) ** 2).sum())
    # (whitened but correlated samples are not exactly diagonal; compare with the exact formula)
    cov = torch.cov(d.T)
    vals, vecs = torch.linalg.eigh(cov)
    white = d @ vecs @ torch.diag(vals.rsqrt()) @ vecs.T
    assert frechet_distance(white, white * scale) == pytest.approx(expected, rel=1e-6)


def test_thumbnails_average_each_cell():
    from helpers.metrics import thumbnails
    x = torch.arange(2 * 3 * 16 * 16, dtype=torch.float32).view(2, 3, 16, 16)
    t = thumbnails(x, grid=8)
    assert t.shape == (2, 3 * 64)
    # cell (0, 0) of channel 0 of image 0 averages pixels (0,0), (0,1), (1,0), (1,1)
    assert t[0, 0].item() == pytest.approx((0 + 1 + 16 + 17) / 4)
    # identical sets are at distance 0; a copy brightened by 1 is at |shift|^2 = one per feature
    imgs = torch.rand(50, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    a = thumbnails(imgs, grid=2)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(a, thumbnails(imgs + 1, grid=2)) == pytest.approx(3 * 4, rel=1e-5)


# --- the super-resolution critic (notebook 03) ------------------------------------------------------
@pytest.mark.parametrize("size, patches", [(128, 25), (192, 81), (256, 169)])
def test_gan_critic_gives_a_patch_map_of_logits(size, patches):
    assert patches == (size // 16 - 3) ** 2
    torch.manual_seed(0)
    crit = gan_critic(nf=8).eval()  # the map's size does not depend on the width
    out = crit(torch.randn(2, 3, size, size))
    assert out.shape == (2, patches)
    assert (out < 0).any() and (out > 0).any(), "raw logits: no activation at the end"


def test_gan_critic_has_fastais_layers_all_spectral_normed_without_batch_norm():
    crit = gan_critic()
    convs = [(m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0], m.padding[0], m.bias is not None)
             for m in crit.modules() if isinstance(m, nn.Conv2d)]
    assert convs == [(3, 128, 4, 2, 1, True), (128, 128, 3, 1, 1, True), (128, 128, 3, 1, 1, True),  # + dense res block
                     (256, 512, 4, 2, 1, True), (512, 1024, 4, 2, 1, True), (1024, 2048, 4, 2, 1, True),
                     (2048, 1, 4, 1, 0, False)]
    assert [m.p for m in crit.modules() if isinstance(m, nn.Dropout2d)] == [0.075, 0.15, 0.15, 0.15]
    attention = [m for m in crit.modules() if isinstance(m, SelfAttention)]
    assert len(attention) == 1 and attention[0].value.in_channels == 512, "after the first downsampling block"
    assert list(crit[4])[-1] is attention[0]
    weighted = [m for m in crit.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d))]
    assert len(weighted) == 7 + 3
    assert all(type(m.parametrizations.weight[0]).__name__ == "_SpectralNorm" for m in weighted)
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.ReLU)) for m in crit.modules())
    slopes = [m.negative_slope for m in crit.modules() if isinstance(m, nn.LeakyReLU)]
    assert slopes == [0.2] * 6, "every conv but the last"


def test_accuracy_thresh_expand_against_a_hand_computation():
    logits = torch.tensor([[2.0, -1.0, 0.5], [-3.0, 0.1, 0.0]])
    labels = torch.tensor([1, 0])
    # sigmoid > 0.5, i.e. logit > 0: row 1 right on 2.0, 0.5; row 2 right on -3.0 and 0.0 (not above 0.5)
    assert accuracy_thresh_expand(logits, labels).item() == pytest.approx(4 / 6)
    # no sigmoid, threshold 0.3: row 1 right on 2.0, 0.5; row 2 right on all three
    assert accuracy_thresh_expand(logits, labels, thresh=0.3, sigmoid=False).item() == pytest.approx(5 / 6)
    maps = logits.view(2, 1, 1, 3)  # unflattened patch maps expand the same way
    assert accuracy_thresh_expand(maps, labels.float()).item() == pytest.approx(4 / 6)


# --- GANLearner.from_learners: the super-resolution GAN's set-up (notebook 03) ---------------------------
def _pair_learners(n_grid=4):
    import torch.nn.functional as F
    from helpers.photos import PhotoStack
    from helpers.imagedata import ImagePairData, ImagePairLoader
    from helpers.learner import Learner
    from helpers.losses import AdaptiveLoss
    torch.manual_seed(0)
    xs = [torch.randint(0, 256, (3, 24, 24), dtype=torch.uint8) for _ in range(12)]
    ys = [torch.randint(0, 256, (3, 24, 24), dtype=torch.uint8) for _ in range(12)]
    cpu = torch.device("cpu")

    def stack(items):
        return PhotoStack.from_list(items)

    data = ImagePairData(ImagePairLoader(stack(xs[:8]), stack(ys[:8]), bs=2, size=16, train=True, device=cpu),
                         ImagePairLoader(stack(xs[8:]), stack(ys[8:]), bs=2, size=16, train=False, device=cpu))
    gen = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 3, 3, padding=1))
    crit = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.LeakyReLU(0.2), nn.Conv2d(4, 1, 3), nn.Flatten())
    learn_gen = Learner(data, gen, F.mse_loss, layer_groups=[gen[0], gen[1]])
    learn_crit = Learner(data, crit, AdaptiveLoss(nn.BCEWithLogitsLoss()))
    return learn_gen, learn_crit


def test_gan_losses_from_the_learners_losses():
    from helpers.gan import gan_losses
    import torch.nn.functional as F
    bce = nn.BCEWithLogitsLoss()
    gen_loss, crit_loss = gan_losses(F.l1_loss, bce, (1.0, 50.0))
    fake_pred, real_pred = torch.randn(4), torch.randn(4)
    out, target = torch.rand(4, 3, 8, 8), torch.rand(4, 3, 8, 8)
    assert gen_loss(fake_pred, out, target).item() == pytest.approx(
        (bce(fake_pred, torch.ones(4)) + 50 * (out - target).abs().mean()).item(), rel=1e-6)
    assert crit_loss(real_pred, fake_pred).item() == pytest.approx(
        ((bce(real_pred, torch.ones(4)) + bce(fake_pred, torch.zeros(4))) / 2).item(), rel=1e-6)


def test_adaptive_switcher_inside_fit_alternates_as_the_losses_dictate():
    learn_gen, learn_crit = _pair_learners()
    seen = []

    class Record:
        def after_batch(self, learn):
            seen.append((learn.gen_mode, learn.loss.item()))

    learn = GANLearner.from_learners(learn_gen, learn_crit, switcher=AdaptiveGANSwitcher(critic_thresh=0.65),
                                     weights_gen=(1.0, 50.0), callbacks=[Record()])
    learn.fit(3, 1e-2)
    assert len(seen) == 12 and seen[0][0] is False  # 4 batches per epoch; the critic starts
    for (mode, loss), (nxt, _) in zip(seen, seen[1:]):
        expected = (not mode) if (mode or loss < 0.65) else mode  # the generator hands back after 1 batch
        assert nxt == expected
    assert {m for m, _ in seen} == {True, False}  # both trained
    assert learn.iteration == 12


def test_a_frozen_part_stays_frozen_through_switches_and_fits():
    learn_gen, learn_crit = _pair_learners()
    learn_gen.freeze_to(-1)  # only the last layer group trains
    first = [p.detach().clone() for p in learn_gen.model[0].parameters()]
    last = [p.detach().clone() for p in learn_gen.model[1].parameters()]
    learn = GANLearner.from_learners(learn_gen, learn_crit, switcher=FixedGANSwitcher(1, 1))
    for mode in (True, False, True):
        learn.switch(mode)
    assert not any(p.requires_grad for p in learn_gen.model[0].parameters())
    assert all(p.requires_grad for p in learn_gen.model[1].parameters())
    opt_before = learn.opt_gen
    learn.fit(1, 1e-2)
    assert all(torch.equal(a, b) for a, b in zip(first, learn_gen.model[0].parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(last, learn_gen.model[1].parameters()))
    # after fit both models are as they were given: the generator's own freezing, the critic trainable
    assert [p.requires_grad for p in learn_gen.model.parameters()] == [False, False, True, True]
    assert all(p.requires_grad for p in learn_crit.model.parameters())
    opt_first, state = learn.opt_gen, {k: v["exp_avg"].clone() for k, v in learn.opt_gen.state.items()}
    learn.fit(1, 5e-3)
    assert opt_before is None and learn.opt_gen is opt_first, "made at the first fit, kept for the next"
    assert state and all(not torch.equal(learn.opt_gen.state[k]["exp_avg"], v) for k, v in state.items())
    assert learn.opt_gen.param_groups[0]["lr"] == 5e-3 and learn.opt_crit.param_groups[0]["lr"] == 5e-3


def test_grids_use_the_validation_inputs_in_order_denormalised():
    learn_gen, learn_crit = _pair_learners()
    learn = GANLearner.from_learners(learn_gen, learn_crit, n_grid=3)
    x, _ = learn_gen.data.valid_dl.batch(torch.arange(3))
    assert torch.equal(learn.fixed_input, x)
    learn_gen.model = learn.generator = nn.Identity()  # the grid then shows the inputs themselves
    grid = learn.render()
    tile = learn_gen.data.denorm(x)[0].clamp(0, 1)
    assert torch.equal(grid[:, 2:18, 2:18], (tile * 255).round().to(torch.uint8))


def test_gan_save_load_round_trip_and_checkpoints_every_n_iterations(tmp_path, monkeypatch):
    from helpers.gan import SaveEvery
    monkeypatch.setenv("HELPERS_DATA", str(tmp_path))
    learn_gen, learn_crit = _pair_learners()
    saver = SaveEvery(3, "ckpt")
    learn = GANLearner.from_learners(learn_gen, learn_crit, callbacks=[saver])
    learn.fit(2, 1e-3)  # 8 iterations
    assert saver.saved == [3, 6]
    state = {k: v.clone() for k, v in learn.generator.state_dict().items()}
    learn.save("gan")
    with torch.no_grad():
        for p in list(learn.generator.parameters()) + list(learn.critic.parameters()):
            p.add_(1.0)
    learn.load("gan")
    assert all(torch.equal(state[k], v) for k, v in learn.generator.state_dict().items())
    learn.load("ckpt_3")
    assert not all(torch.equal(state[k], v) for k, v in learn.generator.state_dict().items())


def test_score_checkpoints_scores_each_and_keeps_the_best(tmp_path, monkeypatch):
    from helpers.gan import SaveEvery, score_checkpoints
    monkeypatch.setenv("HELPERS_DATA", str(tmp_path))
    learn_gen, learn_crit = _pair_learners()
    saver = SaveEvery(5, "ckpt", at_start=True, at_end=True)
    learn = GANLearner.from_learners(learn_gen, learn_crit, callbacks=[saver])
    start = next(learn.generator.parameters()).sum().item()
    learn.fit(2, 1e-2)  # 8 iterations: saved at 5 and, at the end, 8
    learn.fit(1, 1e-2)  # 4 more: no second iteration 0; 10, then 12 at the end
    first = lambda: next(learn.generator.parameters()).sum().item()
    by_hand = {}
    for it in saver.saved:
        learn.load(f"ckpt_{it}")
        by_hand[it] = first()

    def score():
        return {"sum": first(), "other": 0.0}

    scores, best = score_checkpoints(learn, saver, score, key="sum")
    assert {k: v["sum"] for k, v in scores.items()} == by_hand and list(scores) == [0, 5, 8, 10, 12]
    assert scores[0]["sum"] == start  # the models as they entered the first fit
    assert best == min(by_hand, key=by_hand.get) and first() == by_hand[best]  # left at the best one
    scores, best = score_checkpoints(learn, saver, score, key="sum", higher_is_better=True)
    assert best == max(by_hand, key=by_hand.get) and first() == by_hand[best]
    with pytest.raises(ValueError, match="saved none"):
        score_checkpoints(learn, SaveEvery(100, "none"), score, key="sum")


def test_critic_accuracy_counts_real_and_generated_patches():
    from helpers.metrics import critic_accuracy

    class Mean(nn.Module):
        def __init__(self, sign):
            super().__init__()
            self.sign = sign

        def forward(self, x):  # one logit per 2x2 patch: the patch's mean, signed
            return self.sign * nn.functional.avg_pool2d(x, 2).mean(1).flatten(1)

    x = torch.zeros(3, 3, 4, 4)
    real = torch.ones(3, 3, 4, 4)
    real[0, :, :2, :2] = -1  # one of real image 0's four patches looks fake
    dl = [(x, real)]

    class MinusOne(nn.Module):
        def forward(self, x):  # every generated pixel is -1
            return torch.full_like(x, -1.0)

    from helpers.data import DataBunch, TensorLoader
    from helpers.learner import Learner
    loader = TensorLoader(x, real, bs=3, device=torch.device("cpu"))
    loader.batch = lambda idx: (x[idx], real[idx])  # the pairs as they are
    learn = Learner(DataBunch(loader, loader), MinusOne(), nn.MSELoss())
    assert critic_accuracy(learn, Mean(1.0)) == pytest.approx((11 / 12 + 1) / 2)
    assert critic_accuracy(learn, Mean(-1.0)) == pytest.approx((1 / 12 + 0) / 2)
