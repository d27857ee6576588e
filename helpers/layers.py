"""Small composable model builders with the lesson's semantics.

Introduced in notebook 01 (resnet-mnist): ``conv_layer``, ``res_block``, ``MergeLayer``, ``Flatten``.
Order inside ``conv_layer`` is the lesson's: conv -> ReLU -> BatchNorm.
"""
from __future__ import annotations

import torch
from torch import nn


def conv_layer(ni: int, nf: int, ks: int = 3, stride: int = 1, padding: int | None = None,
               bn: bool = True, use_activ: bool = True, leaky: float | None = None) -> nn.Sequential:
    """Conv2d -> ReLU (or LeakyReLU) -> BatchNorm2d, kaiming-normal init (notebook 01).

    The convolution has a bias only when no BatchNorm follows it, exactly as in fastai v1.
    """
    padding = (ks - 1) // 2 if padding is None else padding
    conv = nn.Conv2d(ni, nf, ks, stride=stride, padding=padding, bias=not bn)
    nn.init.kaiming_normal_(conv.weight, a=leaky or 0.0, nonlinearity="leaky_relu" if leaky else "relu")
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    layers: list[nn.Module] = [conv]
    if use_activ:
        layers.append(nn.LeakyReLU(leaky, inplace=True) if leaky else nn.ReLU(inplace=True))
    if bn:
        layers.append(nn.BatchNorm2d(nf))
    return nn.Sequential(*layers)


class MergeLayer(nn.Module):
    """Adds (``x + f(x)``) or, if ``dense``, concatenates (``cat([f(x), x])``) a block's input to its output (notebook 01)."""

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


def res_block(nf: int, dense: bool = False, bottle: bool = False, **conv_kwargs) -> ResBlock:
    """Two ``conv_layer`` (nf -> nf) and a skip connection (notebook 01).

    ``bottle`` halves the inner width; ``dense`` concatenates instead of adding, so the block
    returns ``2 * nf`` channels.
    """
    inner = nf // 2 if bottle else nf
    convs = nn.Sequential(conv_layer(nf, inner, **conv_kwargs), conv_layer(inner, nf, **conv_kwargs))
    return ResBlock(convs, MergeLayer(dense))


class Flatten(nn.Flatten):
    """``x.view(len(x), -1)``: turns a (bs, c, 1, 1) map into (bs, c) logits (notebook 01)."""
