"""helpers.layers against hand-built torch modules and the lesson's parameter counts."""
import torch
from torch import nn

from helpers.layers import Flatten, conv_layer, res_block


def conv(ni, nf):
    return nn.Conv2d(ni, nf, kernel_size=3, stride=2, padding=1)


def basic_cnn():
    return nn.Sequential(
        conv(1, 8), nn.BatchNorm2d(8), nn.ReLU(),
        conv(8, 16), nn.BatchNorm2d(16), nn.ReLU(),
        conv(16, 32), nn.BatchNorm2d(32), nn.ReLU(),
        conv(32, 16), nn.BatchNorm2d(16), nn.ReLU(),
        conv(16, 10), nn.BatchNorm2d(10), Flatten())


def resnet_mnist():
    def conv2(ni, nf):
        return conv_layer(ni, nf, stride=2)

    def conv_and_res(ni, nf):
        return nn.Sequential(conv2(ni, nf), res_block(nf))

    return nn.Sequential(conv_and_res(1, 8), conv_and_res(8, 16), conv_and_res(16, 32),
                         conv_and_res(32, 16), conv2(16, 10), Flatten())


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_lesson_parameter_counts():
    assert n_params(basic_cnn()) == 12_126
    assert n_params(resnet_mnist()) == 41_132


def test_models_map_mnist_to_ten_logits():
    x = torch.randn(5, 1, 28, 28)
    assert basic_cnn()(x).shape == (5, 10)
    assert resnet_mnist()(x).shape == (5, 10)


def test_conv_layer_order_bias_and_init():
    layer = conv_layer(4, 6, stride=2)
    assert [type(m) for m in layer] == [nn.Conv2d, nn.ReLU, nn.BatchNorm2d]
    assert layer[0].bias is None and layer[0].stride == (2, 2) and layer[0].padding == (1, 1)
    no_bn = conv_layer(4, 6, bn=False)
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
