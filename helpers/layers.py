"""Small model builders with the lesson's semantics: conv layers, res blocks, GAN generators and critics.
Introduced in notebook 01 (resnet-mnist); the later notebooks' U-Nets, GANs and critics build on it."""

import torch
import torch.nn.functional as F
from torch import nn

NORMS = (None, "batch", "weight", "spectral", "spectral+batch")  # what ``conv_layer(norm=...)`` accepts


def conv_layer(ni: int, nf: int, ks: int = 3, stride: int = 1, padding: int | None = None,
               bias: bool | None = None, norm: str | None = "batch", use_activ: bool = True,
               leaky: float | None = None, transpose: bool = False, self_attention: bool = False) -> nn.Sequential:
    """fastai v1's ``conv_layer``: Conv2d -> ReLU (``LeakyReLU(leaky)``) -> BatchNorm2d -> optional ``SelfAttention``,
    kaiming init (notebook 01). ``norm``: ``"batch"`` (default, no bias), ``None``, ``"weight"`` / ``"spectral"`` (no
    BatchNorm) or ``"spectral+batch"``, else ValueError; ``bias`` overrides; ``transpose``: ``ConvTranspose2d``."""
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    batch = norm in ("batch", "spectral+batch")
    if padding is None:
        padding = 0 if transpose else (ks - 1) // 2
    conv_cls = nn.ConvTranspose2d if transpose else nn.Conv2d
    conv = conv_cls(ni, nf, ks, stride=stride, padding=padding, bias=not batch if bias is None else bias)
    nn.init.kaiming_normal_(conv.weight, a=leaky or 0.0, nonlinearity="leaky_relu" if leaky else "relu")
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    if norm == "weight":
        conv = nn.utils.parametrizations.weight_norm(conv)
    elif norm in ("spectral", "spectral+batch"):
        conv = nn.utils.parametrizations.spectral_norm(conv)
    layers: list[nn.Module] = [conv]
    if use_activ:
        layers.append(nn.LeakyReLU(leaky, inplace=True) if leaky else nn.ReLU(inplace=True))
    if batch:
        layers.append(nn.BatchNorm2d(nf))
    if self_attention:
        layers.append(SelfAttention(nf))
    return nn.Sequential(*layers)


class SelfAttention(nn.Module):
    """SAGAN self-attention: ``x + gamma * attention(x)``, gamma starting at 0 (notebook 02)."""

    def __init__(self, n: int):
        super().__init__()

        def conv1d(ni, no):
            conv = nn.Conv1d(ni, no, 1, bias=False)
            nn.init.kaiming_normal_(conv.weight)
            return nn.utils.parametrizations.spectral_norm(conv)

        self.query, self.key, self.value = conv1d(n, n // 8), conv1d(n, n // 8), conv1d(n, n)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape
        flat = x.view(*size[:2], -1)
        f, g, h = self.query(flat), self.key(flat), self.value(flat)
        beta = F.softmax(torch.bmm(f.transpose(1, 2), g), dim=1)
        return (self.gamma * torch.bmm(h, beta) + flat).view(*size)


class MergeLayer(nn.Module):
    """Adds (``x + f(x)``) or, if ``dense``, concatenates (``cat([f(x), x])``) a block's input (notebook 01)."""

    def __init__(self, dense: bool = False):
        super().__init__()
        self.dense = dense

    def forward(self, out: torch.Tensor, orig: torch.Tensor) -> torch.Tensor:
        return torch.cat([out, orig], dim=1) if self.dense else out + orig

    def extra_repr(self) -> str:
        return f"dense={self.dense}"


class ResBlock(nn.Module):
    """``x + convs(x)`` (or ``cat([convs(x), x])`` when dense): what ``res_block`` builds (notebook 01)."""

    def __init__(self, convs: nn.Sequential, merge: MergeLayer):
        super().__init__()
        self.convs, self.merge = convs, merge

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.merge(self.convs(x), x)


def res_block(nf: int, dense: bool = False, bottle: bool = False, norm: str | None = "batch",
              **conv_kwargs) -> ResBlock:
    """Two ``conv_layer`` (nf -> nf, keywords to both) and a skip connection (notebook 01). ``bottle`` halves the
    inner width; ``dense`` concatenates instead of adding, so the block returns ``2 * nf`` channels."""
    inner = nf // 2 if bottle else nf
    convs = nn.Sequential(conv_layer(nf, inner, norm=norm, **conv_kwargs),
                          conv_layer(inner, nf, norm=norm, **conv_kwargs))
    return ResBlock(convs, MergeLayer(dense))


class Flatten(nn.Flatten):
    """``x.view(len(x), -1)``: turns a (bs, c, 1, 1) map into (bs, c) logits (notebook 01)."""


def mnist_resnet() -> nn.Sequential:
    """The lesson's MNIST ResNet, which notebook 01 writes out: four stride-2 ``conv_layer`` each followed by a
    ``res_block``, then a stride-2 conv to 10 channels, flattened (notebook 01; tests and benchmarks build it here)."""
    def conv_and_res(ni: int, nf: int) -> nn.Sequential:
        return nn.Sequential(conv_layer(ni, nf, stride=2), res_block(nf))

    return nn.Sequential(conv_and_res(1, 8), conv_and_res(8, 16), conv_and_res(16, 32), conv_and_res(32, 16),
                         conv_layer(16, 10, stride=2), Flatten())


def basic_generator(in_size: int, n_channels: int, noise_sz: int = 100, n_features: int = 64,
                    n_extra_layers: int = 0) -> nn.Sequential:
    """DCGAN generator: noise (bs, noise_sz, 1, 1) -> images (bs, n_channels, in_size, in_size) in [-1, 1], as in
    the lesson (notebook 04); ``in_size`` not a power of 2 >= 8 raises ValueError."""
    if in_size < 8 or in_size & (in_size - 1):
        raise ValueError(f"in_size must be a power of 2 >= 8, got {in_size}")
    cur_ftrs = n_features * in_size // 8  # channels of the 4x4 map
    layers: list[nn.Module] = [conv_layer(noise_sz, cur_ftrs, 4, 1, 0, transpose=True)]
    cur_size = 4
    while cur_size < in_size // 2:
        layers.append(conv_layer(cur_ftrs, cur_ftrs // 2, 4, 2, 1, transpose=True))
        cur_ftrs, cur_size = cur_ftrs // 2, cur_size * 2
    layers += [conv_layer(cur_ftrs, cur_ftrs, 3, 1, 1, transpose=True) for _ in range(n_extra_layers)]
    layers += [nn.ConvTranspose2d(cur_ftrs, n_channels, 4, 2, 1, bias=False), nn.Tanh()]
    return nn.Sequential(*layers)


def basic_critic(in_size: int, n_channels: int, n_features: int = 64, n_extra_layers: int = 0) -> nn.Sequential:
    """DCGAN critic: images (bs, n_channels, in_size, in_size) -> one score per image, shape (bs,) (notebook 04)."""
    if in_size < 8 or in_size & (in_size - 1):
        raise ValueError(f"in_size must be a power of 2 >= 8, got {in_size}")
    layers: list[nn.Module] = [conv_layer(n_channels, n_features, 4, 2, 1, norm=None, leaky=0.2)]
    cur_size, cur_ftrs = in_size // 2, n_features
    layers += [conv_layer(cur_ftrs, cur_ftrs, 3, 1, 1, leaky=0.2) for _ in range(n_extra_layers)]
    while cur_size > 4:
        layers.append(conv_layer(cur_ftrs, cur_ftrs * 2, 4, 2, 1, leaky=0.2))
        cur_ftrs, cur_size = cur_ftrs * 2, cur_size // 2
    final = nn.Conv2d(cur_ftrs, 1, 4, padding=0, bias=False)
    nn.init.kaiming_normal_(final.weight)
    layers += [final, nn.Flatten(0)]  # (bs, 1, 1, 1) -> (bs,)
    return nn.Sequential(*layers)


def gan_critic(n_channels: int = 3, nf: int = 128, n_blocks: int = 3, p: float = 0.15, norm: str | None = "spectral",
               self_attention: bool = True) -> nn.Sequential:
    """fastai v1's ``gan_critic``: images (bs, n_channels, H, W) -> patch logits (bs, (H/16 - 3) * (W/16 - 3))
    (notebook 03); ``norm`` (as ``conv_layer``'s) and ``self_attention=False`` make plainer critics."""
    def conv(ni: int, no: int, ks: int, stride: int = 1, **kwargs) -> nn.Sequential:
        return conv_layer(ni, no, ks, stride, norm=norm, leaky=0.2, **kwargs)
    layers: list[nn.Module] = [conv(n_channels, nf, 4, 2), nn.Dropout2d(p / 2),
                               res_block(nf, dense=True, norm=norm, leaky=0.2)]
    nf *= 2  # the dense block concatenates its input
    for i in range(n_blocks):
        layers += [nn.Dropout2d(p), conv(nf, nf * 2, 4, 2, self_attention=self_attention and i == 0)]
        nf *= 2
    last = norm if norm in ("spectral", "weight") else None  # no BatchNorm on the logits
    layers += [conv_layer(nf, 1, 4, padding=0, bias=False, use_activ=False, norm=last), Flatten()]
    return nn.Sequential(*layers)


def custom_gan_critic(n_channels: int = 3, nf: int = 256, n_blocks: int = 3, p: float = 0.15,
                      norm: str | None = "spectral", self_attention: bool = True) -> nn.Sequential:
    """DeOldify's ``custom_gan_critic``: images -> flattened patch logits; arguments as ``gan_critic`` (notebook 07)."""
    def conv(ni: int, no: int, ks: int, stride: int = 1, **kwargs) -> nn.Sequential:
        return conv_layer(ni, no, ks, stride, norm=norm, leaky=0.2, **kwargs)
    layers: list[nn.Module] = [conv(n_channels, nf, 4, 2), nn.Dropout2d(p / 2)]
    for i in range(n_blocks):
        layers += [conv(nf, nf, 3), nn.Dropout2d(p), conv(nf, nf * 2, 4, 2, self_attention=self_attention and i == 0)]
        nf *= 2
    last = norm if norm in ("spectral", "weight") else None  # no BatchNorm on the logits
    layers += [conv(nf, nf, 3), conv_layer(nf, 1, 4, padding=0, bias=False, use_activ=False, norm=last), Flatten()]
    return nn.Sequential(*layers)
