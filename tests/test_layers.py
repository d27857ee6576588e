"""helpers.layers against hand-built torch modules and the lesson's parameter counts."""
import torch
from torch import nn

from helpers.layers import Flatten, conv_layer, mnist_resnet, res_block


def conv(ni, nf):
    return nn.Conv2d(ni, nf, kernel_size=3, stride=2, padding=1)


def basic_cnn():
    return nn.Sequential(
        conv(1, 8), nn.BatchNorm2d(8), nn.ReLU(),
        conv(8, 16), nn.BatchNorm2d(16), nn.ReLU(),
        conv(16, 32), nn.BatchNorm2d(32), nn.ReLU(),
        conv(32, 16), nn.BatchNorm2d(16), nn.ReLU(),
        conv(16, 10), nn.BatchNorm2d(10), Flatten())


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_lesson_parameter_counts():
    assert n_params(basic_cnn()) == 12_126
    assert n_params(mnist_resnet()) == 41_132


def test_models_map_mnist_to_ten_logits():
    x = torch.randn(5, 1, 28, 28)
    assert basic_cnn()(x).shape == (5, 10)
    assert mnist_resnet()(x).shape == (5, 10)


def test_conv_layer_order_bias_and_init():
    layer = conv_layer(4, 6, stride=2)
    assert [type(m) for m in layer] == [nn.Conv2d, nn.ReLU, nn.BatchNorm2d]
    assert layer[0].bias is None and layer[0].stride == (2, 2) and layer[0].padding == (1, 1)
    no_bn = conv_layer(4, 6, norm=None)
    assert [type(m) for m in no_bn] == [nn.Conv2d, nn.ReLU]
    assert no_bn[0].bias is not None and torch.all(no_bn[0].bias == 0)
    assert [type(m) for m in conv_layer(4, 6, use_activ=False)] == [nn.Conv2d, nn.BatchNorm2d]
    assert isinstance(conv_layer(4, 6, leaky=0.2)[1], nn.LeakyReLU)
    big = conv_layer(256, 256)[0].weight  # kaiming normal, fan_in = 256*9: std = sqrt(2/fan_in)
    assert abs(big.std().item() - (2 / (256 * 9)) ** 0.5) < 2e-3


def test_conv_layer_forward_equals_manual():
    torch.manual_seed(0)
    layer = conv_layer(3, 5).eval()
    x = torch.randn(2, 3, 8, 8)
    conv, _, bn = layer
    expected = bn(torch.relu(nn.functional.conv2d(x, conv.weight, None, 1, 1)))
    assert torch.allclose(layer(x), expected)


def test_res_block_adds_and_dense_concatenates():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 6, 6)
    block = res_block(8).eval()
    assert torch.allclose(block(x), x + block.convs(x))
    dense = res_block(8, dense=True).eval()
    out = dense(x)
    assert out.shape == (2, 16, 6, 6)
    assert torch.allclose(out, torch.cat([dense.convs(x), x], 1))
    bottle = res_block(8, bottle=True)
    assert bottle.convs[0][0].out_channels == 4 and bottle.convs[1][0].out_channels == 8


def test_flatten():
    assert Flatten()(torch.zeros(3, 10, 1, 1)).shape == (3, 10)


# --- one conv_layer for every notebook (issue 11) -----------------------------------------------------
import pytest  # noqa: E402
from torch.nn.utils import parametrize  # noqa: E402

from helpers.layers import NORMS, SelfAttention  # noqa: E402

# norm -> (parametrization of the conv weight, BatchNorm after the activation, conv bias)
EXPECTED_NORM = {None: (None, False, True), "batch": (None, True, False), "weight": ("_WeightNorm", False, True),
                 "spectral": ("_SpectralNorm", False, True), "spectral+batch": ("_SpectralNorm", True, False)}


def weight_parametrization(conv):
    if not parametrize.is_parametrized(conv, "weight"):
        return None
    (p,) = conv.parametrizations.weight
    return type(p).__name__


@pytest.mark.parametrize("norm", NORMS)
def test_each_norm_gives_its_parametrization(norm):
    wrapper, batch, bias = EXPECTED_NORM[norm]
    layer = conv_layer(4, 6, norm=norm)
    conv = layer[0]
    assert weight_parametrization(conv) == wrapper
    assert isinstance(conv, nn.Conv2d) and [type(m) for m in layer[1:]] == [nn.ReLU] + [nn.BatchNorm2d] * batch
    assert (conv.bias is not None) == bias
    assert (conv_layer(4, 6, norm=norm, bias=not bias)[0].bias is not None) == (not bias), "bias= overrides"


def test_weight_norm_splits_direction_and_length():
    conv = conv_layer(4, 6, norm="weight")[0]
    g, v = conv.parametrizations.weight.original0, conv.parametrizations.weight.original1
    assert g.shape == (6, 1, 1, 1) and v.shape == (6, 4, 3, 3)
    assert torch.allclose(conv.weight, g * v / v.flatten(1).norm(dim=1).view(6, 1, 1, 1), atol=1e-6)


def test_spectral_norm_bounds_the_largest_singular_value():
    torch.manual_seed(0)
    layer = conv_layer(8, 16, norm="spectral+batch")
    assert [type(m) for m in layer[1:]] == [nn.ReLU, nn.BatchNorm2d]  # DeOldify: SN conv -> ReLU -> BN
    for _ in range(30):  # each training forward does one power iteration
        layer(torch.randn(2, 8, 5, 5))
    assert torch.linalg.matrix_norm(layer[0].weight.flatten(1), ord=2).item() == pytest.approx(1.0, abs=1e-3)


def test_unknown_norm_is_a_clear_error():
    with pytest.raises(ValueError, match="norm must be one of"):
        conv_layer(4, 8, norm="instance")


def test_transposed_conv_layer_upsamples_without_bias():
    layer = conv_layer(8, 4, 4, 2, 1, transpose=True)
    assert [type(m) for m in layer] == [nn.ConvTranspose2d, nn.ReLU, nn.BatchNorm2d] and layer[0].bias is None
    assert layer(torch.randn(2, 8, 5, 5)).shape == (2, 4, 10, 10)
    assert conv_layer(8, 4, 4, transpose=True)[0].padding == (0, 0)  # fastai's default for transposed convs


def test_leaky_and_self_attention_options():
    layer = conv_layer(16, 16, norm="spectral", leaky=0.2, self_attention=True)
    assert isinstance(layer[0], nn.Conv2d) and [type(m) for m in layer[1:]] == [nn.LeakyReLU, SelfAttention]
    assert layer[1].negative_slope == 0.2
    assert layer(torch.randn(1, 16, 4, 4)).shape == (1, 16, 4, 4)


@pytest.mark.parametrize("norm", NORMS)
def test_res_block_passes_the_norm_to_both_convs(norm):
    block = res_block(8, norm=norm)
    wrapper, batch, _ = EXPECTED_NORM[norm]
    for layer in block.convs:
        assert weight_parametrization(layer[0]) == wrapper
        assert isinstance(layer[-1], nn.BatchNorm2d) == batch
