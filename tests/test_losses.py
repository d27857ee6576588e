"""helpers.losses: Gram matrix against einsum, the feature loss against a hand computation on a small
network (sliced directly, no hooks), and its parts as validation columns of the Learner; the adaptive
loss against a manual expand."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers.losses import AdaptiveLoss, FeatureLoss, cross_entropy_flat, gram_matrix


def test_gram_matrix_against_einsum():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 7)
    expected = torch.einsum("nchw,ndhw->ncd", x, x) / (3 * 5 * 7)
    assert torch.allclose(gram_matrix(x), expected, atol=1e-6)
    assert gram_matrix(x).shape == (2, 3, 3)
    assert torch.allclose(gram_matrix(x), gram_matrix(x).transpose(1, 2))


def test_gram_matrix_is_float32_under_autocast():
    x = torch.randn(1, 4, 3, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert gram_matrix(x).dtype == torch.float32


def features_net():
    """A small stand-in for vgg16_bn().features: conv / BN / ReLU blocks and max-pools."""
    torch.manual_seed(1)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(4, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))


def by_hand(m, pred, targ, ids, wgts, gram_weight):
    """The loss written out, each feature taken by slicing the Sequential: m[:i + 1](x)."""
    parts = {"pixel": F.l1_loss(pred, targ)}
    fp = [m[:i + 1](pred) for i in ids]
    ft = [m[:i + 1](targ) for i in ids]
    for k, w in enumerate(wgts):
        parts[f"feat_{k}"] = w * (fp[k] - ft[k]).abs().mean()
    if gram_weight:
        for k, w in enumerate(wgts):
            g = lambda f: torch.einsum("nchw,ndhw->ncd", f, f) / f[0].numel()  # noqa: E731
            parts[f"gram_{k}"] = gram_weight * w**2 * (g(fp[k]) - g(ft[k])).abs().mean()
    return parts


@pytest.mark.parametrize("wgts, gram_weight", [((5, 15, 2), 5e3), ((20, 70, 10), None)])  # lesson, DeOldify
def test_feature_loss_parts_match_a_hand_computation(wgts, gram_weight):
    m = features_net().eval()
    ids = [2, 6, 9]  # the ReLUs before each max-pool, as [22, 32, 42] in vgg16_bn
    loss_func = FeatureLoss(m, ids, wgts, gram_weight=gram_weight)
    torch.manual_seed(2)
    pred, targ = torch.randn(2, 3, 16, 16, requires_grad=True), torch.randn(2, 3, 16, 16)
    loss = loss_func(pred, targ)
    expected = by_hand(m, pred, targ, ids, wgts, gram_weight)
    names = ["pixel", "feat_0", "feat_1", "feat_2"] + (["gram_0", "gram_1", "gram_2"] if gram_weight else [])
    assert loss_func.metric_names == names and list(loss_func.metrics) == names
    for name in names:
        assert loss_func.metrics[name].item() == pytest.approx(expected[name].item(), rel=1e-5), name
        assert loss_func.metrics[name].grad_fn is None
    total = sum(expected.values())
    assert loss.item() == pytest.approx(total.item(), rel=1e-5)
    (grad,) = torch.autograd.grad(loss, pred)
    (grad_expected,) = torch.autograd.grad(total, pred)
    scale = grad_expected.abs().max()
    assert scale > 0 and torch.allclose(grad, grad_expected, rtol=1e-4, atol=1e-6 * scale.item()), \
        "gradients flow through the hooked features"


def test_feature_network_is_frozen_stays_in_eval_and_keeps_nothing():
    m = features_net()
    loss_func = FeatureLoss(m, [2, 6, 9])
    loss_func.train()
    assert not m.training and not any(p.requires_grad for p in m.parameters())
    running = m[1].running_mean.clone()
    loss_func(torch.randn(2, 3, 16, 16), torch.randn(2, 3, 16, 16))
    assert torch.equal(m[1].running_mean, running), "batch-norm statistics of the features network never change"
    assert loss_func.hooks.stored == [None] * 3, "no activations kept between calls"
    loss_func.hooks.remove()
    assert sum(len(x._forward_hooks) for x in m.modules()) == 0


def test_feature_loss_bad_arguments():
    with pytest.raises(ValueError, match="one weight per layer"):
        FeatureLoss(features_net(), [2, 6], [1, 2, 3])
    with pytest.raises(ValueError, match=r"layer_ids \[42\] are outside"):
        FeatureLoss(features_net(), [2, 6, 42])


def test_loss_parts_become_validation_columns(capsys):
    """The Learner shows a loss's ``metric_names`` after the metrics, averaged over the validation set
    weighted by batch size, as the lesson's LossMetrics did."""
    from helpers.learner import Learner

    class Loader(list):
        pass

    torch.manual_seed(3)
    batches = [(torch.randn(n, 3, 8, 8), torch.randn(n, 3, 8, 8)) for n in (3, 1)]

    class Data:
        device = torch.device("cpu")
        train_dl = Loader(batches)
        valid_dl = Loader(batches)

    loss_func = FeatureLoss(features_net(), [2, 6], [1.0, 2.0])
    model = nn.Conv2d(3, 3, 1)
    learn = Learner(Data(), model, loss_func)
    learn.fit(1, 1e-4)
    names = ["pixel", "feat_0", "feat_1", "gram_0", "gram_1"]
    assert learn.recorder.metric_names == names
    header = capsys.readouterr().out.splitlines()[0].split()
    assert header == ["epoch", "train_loss", "valid_loss", *names, "time"]
    vals = learn.validate()
    per_batch = []
    with torch.no_grad():
        for xb, yb in batches:
            loss = loss_func(model(xb), yb)
            per_batch.append([loss.item()] + [loss_func.metrics[k].item() for k in names])
    expected = [(3 * a + 1 * b) / 4 for a, b in zip(*per_batch)]
    assert vals == pytest.approx(expected, rel=1e-5)
    assert vals[0] == pytest.approx(sum(vals[1:]), rel=1e-5)


def test_cross_entropy_flat_matches_torch():
    torch.manual_seed(0)
    pred, targ = torch.randn(4, 5, 7), torch.randint(0, 7, (4, 5))
    assert torch.allclose(cross_entropy_flat(pred, targ), F.cross_entropy(pred.permute(0, 2, 1), targ))


def test_adaptive_loss_expands_one_label_per_image_to_the_patch_map():
    torch.manual_seed(0)
    out = torch.randn(4, 25, requires_grad=True)
    labels = torch.tensor([0, 1, 1, 0])
    manual = F.binary_cross_entropy_with_logits(out, labels[:, None].float().expand(4, 25))
    loss = AdaptiveLoss(nn.BCEWithLogitsLoss())(out, labels)
    assert torch.allclose(loss, manual)
    seen = AdaptiveLoss(lambda o, t: t)(out, labels)  # what the wrapped loss is given
    assert seen.shape == (4, 25) and seen.dtype == torch.float32
    assert (seen == torch.tensor([0.0, 1.0, 1.0, 0.0])[:, None]).all()
    loss.backward()
    assert out.grad is not None and out.grad.shape == out.shape
    maps = torch.randn(4, 1, 5, 5)  # an unflattened map
    assert torch.allclose(AdaptiveLoss(nn.BCEWithLogitsLoss())(maps, labels),
                          F.binary_cross_entropy_with_logits(maps.flatten(1), labels[:, None].float().expand(4, 25)))


@pytest.mark.parametrize("weights, smoke, trains_on", [(True, False, "features"), (False, False, "pixels"),
                                                       (False, True, "features"), (True, True, "features")])
def test_the_training_loss_follows_the_weights_not_the_profile(monkeypatch, weights, smoke, trains_on):
    from helpers.losses import FeatureLoss, training_loss
    monkeypatch.setenv("HELPERS_SMOKE", "1" if smoke else "0")
    for profile in ("small", "full"):
        monkeypatch.setenv("HELPERS_PROFILE", profile)
        m_feat = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU())
        m_feat.imagenet_weights = weights  # as helpers.bodies marks a network it loaded (or not)
        feat = FeatureLoss(m_feat, layer_ids=(1, 3), layer_wgts=(1, 1))
        loss, why = training_loss(feat)
        assert (loss is feat) == (trains_on == "features") and (loss is F.l1_loss) == (trains_on == "pixels")
        assert ("ImageNet" in why) and why.startswith("the feature loss" if trains_on == "features" else "pixels")


def test_a_feature_loss_can_be_copied_and_saved(tmp_path):
    """B4: the feature loss's hooks survive a deep copy and pickling, and the copy computes the same loss."""
    import copy
    torch.manual_seed(0)
    m_feat = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU())
    feat = FeatureLoss(m_feat, layer_ids=(1, 3), layer_wgts=(1, 2), gram_weight=1.0)
    a, b = torch.rand(2, 3, 12, 12), torch.rand(2, 3, 12, 12)
    expected = feat(a, b)
    assert torch.allclose(copy.deepcopy(feat)(a, b), expected)
    torch.save(feat, tmp_path / "feat.pt")
    assert torch.allclose(torch.load(tmp_path / "feat.pt", weights_only=False)(a, b), expected)
