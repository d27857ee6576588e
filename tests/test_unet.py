"""helpers.unet against the lesson's U-Net summary and hand-made references."""
import gc

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision import models

from helpers.layers import SelfAttention, conv_layer
from helpers.unet import DynamicUnet, PixelShuffle_ICNR, skip_indices, start_as_identity_


def body(arch=models.resnet34):
    """torchvision ResNet without its pooling and classifier head: conv1 ... layer4."""
    return nn.Sequential(*list(arch(weights=None).children())[:-2])


def n_params(m, trainable=None):
    return sum(p.numel() for p in m.parameters() if trainable is None or p.requires_grad == trainable)


def test_lesson_camvid_unet_has_exactly_the_lessons_parameter_count():
    unet = DynamicUnet(body(), n_out=12, bottle=True, self_attention=False, last_cross=True)
    assert unet.skip_idxs == [2, 4, 5, 6]  # relu, layer1, layer2, layer3
    assert n_params(unet) == 41_133_018
    assert n_params(unet.encoder) == 21_284_672


def test_frozen_lesson_unet_trains_exactly_what_the_lesson_trained():
    from helpers.learner import Learner

    class Data:
        device = torch.device("cpu")

    unet = DynamicUnet(body(), n_out=12, bottle=True)
    learn = Learner(Data(), unet, nn.CrossEntropyLoss(), layer_groups=unet.layer_groups())
    learn.freeze()
    assert n_params(unet, trainable=True) == 19_865_370
    assert n_params(unet, trainable=False) == 21_267_648


def test_decoder_widths_match_the_lesson_summary():
    unet = DynamicUnet(body(), n_out=12, bottle=True)
    widths = [(b.conv1[0].in_channels, b.conv2[0].out_channels) for b in unet.blocks]
    assert widths == [(512, 512), (384, 384), (256, 256), (192, 96)]
    assert unet.middle[2][0].out_channels == 1024
    assert unet.res.convs[0][0].out_channels == 49 and unet.final[0].in_channels == 99


def test_deoldify_artistic_decoder_is_1_5_times_wider():
    # DeOldify's DynamicUnetDeep on resnet34 (nf_factor 1.5, spectral norm + BatchNorm, self-attention):
    # (512, skip 256) -> 768; (768, 128) -> 768 + attention; (768, 64) -> 672; (672, 64) -> 300; +3 -> 303
    unet = DynamicUnet(body(), n_out=3, self_attention=True, y_range=(-3.0, 3.0),
                       norm="spectral+batch", nf_factor=1.5)
    widths = [(b.conv1[0].in_channels, b.conv2[0].out_channels) for b in unet.blocks]
    assert widths == [(512, 768), (512, 768), (448, 672), (400, 300)]
    assert [isinstance(b.attn, SelfAttention) for b in unet.blocks] == [False, True, False, False]
    assert unet.res.convs[0][0].in_channels == 303 and unet.final[0].in_channels == 303
    assert isinstance(unet.blocks[0].conv1[-1], nn.BatchNorm2d)  # spectral-normed conv -> ReLU -> BN
    plain = DynamicUnet(body(), n_out=3)
    assert [b.conv2[0].out_channels for b in plain.blocks] == [512, 384, 256, 96]
    with torch.no_grad():
        assert unet.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 3, 64, 64)


@pytest.mark.parametrize("size", [(360, 480), (100, 130), (64, 64)])
def test_output_has_the_input_size(size):
    unet = DynamicUnet(body(models.resnet18), n_out=5).eval()
    with torch.no_grad():
        out = unet(torch.randn(2, 3, *size))
    assert out.shape == (2, 5, *size)


def test_y_range_and_self_attention():
    unet = DynamicUnet(body(models.resnet18), n_out=3, self_attention=True,
                       y_range=(-3.0, 3.0), norm="weight").eval()
    assert isinstance(unet.blocks[1].attn, SelfAttention)  # third block from the end of four
    with torch.no_grad():
        out = unet(torch.randn(1, 3, 64, 64) * 50)
    assert out.min() >= -3 and out.max() <= 3


def test_icnr_first_upsample_equals_nearest_neighbour():
    torch.manual_seed(0)
    ps = PixelShuffle_ICNR(8, 4, blur=False)
    x = torch.randn(2, 8, 5, 7)
    small = F.conv2d(x, ps.conv[0].weight[::4], ps.conv[0].bias[::4])  # one kernel per output channel
    expected = F.interpolate(F.relu(small), scale_factor=2, mode="nearest")
    assert torch.allclose(ps(x), expected, atol=1e-6)


def test_icnr_holds_under_weight_and_spectral_norm():
    for norm in ("weight", "spectral"):
        ps = PixelShuffle_ICNR(8, 4, blur=False, norm=norm).eval()
        w = ps.conv[0].weight
        assert torch.allclose(w[0::4], w[1::4]) and torch.allclose(w[0::4], w[3::4]), norm


def test_blur_is_the_mean_of_each_pixel_and_its_upper_left_neighbours():
    """The blur after the pixel shuffle: replication-pad one row on top and one column on the left, then a
    2x2 mean with stride 1, so the size is kept and each output is the mean of a pixel, its left, upper and
    upper-left neighbours (the first row and column repeat themselves)."""
    torch.manual_seed(0)
    sharp, blurred = PixelShuffle_ICNR(8, 4, blur=False), PixelShuffle_ICNR(8, 4, blur=True)
    blurred.load_state_dict(sharp.state_dict())
    x = torch.randn(1, 8, 5, 7)
    s, b = sharp(x), blurred(x)
    assert b.shape == s.shape == (1, 4, 10, 14)
    assert torch.allclose(b[..., 1:, 1:], (s[..., 1:, 1:] + s[..., :-1, 1:] + s[..., 1:, :-1] + s[..., :-1, :-1]) / 4,
                          atol=1e-6)
    assert torch.allclose(b[..., 0, 1:], (s[..., 0, 1:] + s[..., 0, :-1]) / 2, atol=1e-6)
    assert torch.allclose(b[..., 0, 0], s[..., 0, 0], atol=1e-6)


def test_self_attention_starts_as_identity():
    sa = SelfAttention(16)
    x = torch.randn(2, 16, 4, 5)
    assert torch.equal(sa(x), x)


def test_norm_conv_variants():
    assert conv_layer(4, 8, norm=None)[0].bias is not None
    assert isinstance(conv_layer(4, 8, norm="batch")[-1], nn.BatchNorm2d)
    assert hasattr(conv_layer(4, 8, norm="weight")[0], "parametrizations")
    with pytest.raises(ValueError, match="norm must be one of"):
        conv_layer(4, 8, norm="layer")


def test_skip_indices_pick_the_layer_before_each_size_change():
    shapes = [torch.Size([1, 8, s, s]) for s in (32, 32, 16, 16, 8, 4)]
    assert skip_indices(shapes) == [1, 3, 4]


def test_hooks_are_removed_when_the_unet_is_deleted():
    enc = body(models.resnet18)
    unet = DynamicUnet(enc, n_out=2)
    assert sum(len(m._forward_hooks) for m in enc) == 4
    unet(torch.randn(1, 3, 64, 64))
    assert all(s is None for s in unet.hooks.stored), "activations must not be kept between calls"
    del unet
    gc.collect()
    assert sum(len(m._forward_hooks) for m in enc) == 0, "the encoder outlives the U-Net: its hooks must go"


def test_freeze_keeps_batchnorm_training_and_discriminative_lrs():
    from helpers.learner import Learner

    class Data:
        device = torch.device("cpu")

    unet = DynamicUnet(body(models.resnet18), n_out=2)
    learn = Learner(Data(), unet, nn.CrossEntropyLoss(), layer_groups=unet.layer_groups())
    learn.freeze()
    enc = unet.encoder
    assert not enc[0].weight.requires_grad and not enc[7][0].conv1.weight.requires_grad
    assert enc[1].weight.requires_grad and enc[7][0].bn1.weight.requires_grad, "BatchNorm keeps training"
    assert all(p.requires_grad for p in unet.blocks.parameters())
    frozen = sum(p.numel() for p in unet.parameters() if not p.requires_grad)
    bn = sum(p.numel() for m in enc.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters())
    assert frozen == sum(p.numel() for p in enc.parameters()) - bn
    learn.unfreeze()
    assert all(p.requires_grad for p in unet.parameters())
    opt = learn.create_opt(slice(1e-5, 1e-3), 1e-2)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([1e-5, 1e-4, 1e-3])
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(unet.parameters()))


# --- the decoder's norm reaches every conv, the final res block included (issue 11) -------------------
from pathlib import Path  # noqa: E402

from torch.nn.utils import parametrize  # noqa: E402

from helpers.layers import NORMS  # noqa: E402


def _wrapper(conv):
    return type(conv.parametrizations.weight[0]).__name__ if parametrize.is_parametrized(conv, "weight") else None


@pytest.mark.parametrize("norm", NORMS)
def test_every_decoder_conv_and_the_last_res_block_get_the_norm(norm):
    expected = {None: None, "batch": None, "weight": "_WeightNorm", "spectral": "_SpectralNorm",
                "spectral+batch": "_SpectralNorm"}[norm]
    batch = norm in ("batch", "spectral+batch")
    unet = DynamicUnet(body(models.resnet18), n_out=3, norm=norm)
    layers = [unet.middle[2], unet.middle[3], *(c for b in unet.blocks for c in (b.shuf.conv, b.conv1, b.conv2)),
              unet.upsample[0].conv]
    for layer in layers:
        assert _wrapper(layer[0]) == expected
        assert isinstance(layer[-1], nn.BatchNorm2d) == batch
    assert [_wrapper(c[0]) for c in unet.res.convs] == [expected, expected], "the final res block is normalised"
    assert _wrapper(unet.final[0]) == expected
    # the end of the net: BatchNorm only under "batch"; DeOldify's spectral+batch ends spectral-only
    for layer in [*unet.res.convs, unet.final]:
        assert isinstance(layer[-1], nn.BatchNorm2d) == (norm == "batch")


def test_the_lesson_unet_is_exactly_what_it_was_before_the_refactor():
    """Notebook 02's U-Net (default norm), seeded: the same state_dict keys, shapes and values, and the same
    output, as the code before ``conv_layer`` absorbed ``norm_conv`` (tests/data/unet_lesson_state.txt)."""
    lines = (Path(__file__).parent / "data" / "unet_lesson_state.txt").read_text().splitlines()
    out_sum = float(lines[2].rsplit(" ", 1)[1])
    expected = [line.split(" ") for line in lines if not line.startswith("#")]
    torch.manual_seed(42)
    unet = DynamicUnet(body(), n_out=12, bottle=True, last_cross=True).eval()
    state = unet.state_dict()
    assert [(k, "x".join(map(str, v.shape)) or "-") for k, v in state.items()] == [(k, s) for k, s, _ in expected]
    for k, _, total in expected:
        assert state[k].double().sum().item() == pytest.approx(float(total), rel=1e-6, abs=1e-6), k
    torch.manual_seed(0)
    with torch.no_grad():
        out = unet(torch.randn(1, 3, 64, 96))
    assert out.double().sum().item() == pytest.approx(out_sum, rel=1e-4)


@pytest.mark.parametrize("norm", [None, "weight"])
def test_start_as_identity_outputs_the_input_then_learns(norm):
    torch.manual_seed(0)
    unet = start_as_identity_(DynamicUnet(body(models.resnet18), n_out=3, norm=norm))
    x = torch.randn(2, 3, 32, 32)
    unet.train()
    assert torch.allclose(unet(x), x, atol=1e-6)
    # it is a start, not a constraint: one step of training moves the output away from the input
    opt = torch.optim.SGD(unet.parameters(), lr=0.1)
    F.l1_loss(unet(x), x.flip(-1)).backward()
    opt.step()
    assert not torch.allclose(unet(x), x, atol=1e-4)


@pytest.mark.parametrize("kwargs, message", [(dict(norm="spectral"), "spectral"), (dict(norm="batch"), "BatchNorm"),
                                             (dict(y_range=(-3, 3)), "y_range"), (dict(last_cross=False), "last_cross"),
                                             (dict(n_out=2), "as many outputs")])
def test_start_as_identity_refuses_unets_it_cannot_make_the_identity(kwargs, message):
    kwargs = dict(dict(n_out=3), **kwargs)
    with pytest.raises(ValueError, match=message):
        start_as_identity_(DynamicUnet(body(models.resnet18), **kwargs))


def test_the_architecture_does_not_depend_on_the_size_it_is_built_for():
    """B3: the decoder is sized by a fixed 256-px probe; built for 16-px images it has the same 4 blocks and
    parameters as for 256-px ones (a probe at 16 px built 3), and it still returns its input's size."""
    torch.manual_seed(0)
    small, large = DynamicUnet(body(models.resnet18), n_out=3, img_size=(16, 16)), \
        DynamicUnet(body(models.resnet18), n_out=3, img_size=(256, 256))
    assert len(small.blocks) == len(large.blocks) == 4
    assert sum(p.numel() for p in small.parameters()) == sum(p.numel() for p in large.parameters())
    with torch.no_grad():
        assert small.eval()(torch.randn(1, 3, 16, 16)).shape == (1, 3, 16, 16)


def test_a_unet_can_be_copied_saved_and_averaged_whole(tmp_path):
    """B4: the hooks are objects, not closures: a deep copy works on its own activations, the whole model
    pickles, and torch's AveragedModel (a deep copy inside) runs."""
    import copy
    from torch.optim.swa_utils import AveragedModel
    torch.manual_seed(0)
    unet = DynamicUnet(body(models.resnet18), n_out=3).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = unet(x)
        twin = copy.deepcopy(unet)
        assert torch.allclose(twin(x), expected)
        assert twin.hooks.stored is not unet.hooks.stored
        torch.save(unet, tmp_path / "unet.pt")
        loaded = torch.load(tmp_path / "unet.pt", weights_only=False)
        assert torch.allclose(loaded(x), expected)
        assert torch.allclose(AveragedModel(unet)(x), expected)
