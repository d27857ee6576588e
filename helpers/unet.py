"""U-Net from any CNN encoder, as fastai v1's ``DynamicUnet`` in the lesson (blur after *every* pixel shuffle).
Introduced in notebook 02 (camvid-unet); reused by the super-resolution, GAN and colorization notebooks."""

import torch
import torch.nn.functional as F
from torch import nn

from helpers.hooks import Hooks
from helpers.layers import MergeLayer, SelfAttention, conv_layer, res_block


def icnr_(weight: torch.Tensor, scale: int = 2) -> torch.Tensor:
    """ICNR init, in place: a pixel shuffle after the conv starts as nearest-neighbour upsampling (notebook 02)."""
    nf, ni, *k = weight.shape
    sub = nn.init.kaiming_normal_(torch.empty(nf // scale**2, ni, *k))
    with torch.no_grad():
        return weight.copy_(sub.repeat_interleave(scale**2, dim=0))


class PixelShuffle_ICNR(nn.Module):
    """1×1 conv (ICNR init) to ``nf * scale**2`` channels → ReLU → PixelShuffle → optional blur (notebook 02)."""

    def __init__(self, ni: int, nf: int | None = None, scale: int = 2, blur: bool = True, norm: str | None = None):
        super().__init__()
        nf = nf or ni
        self.conv = conv_layer(ni, nf * scale**2, ks=1, norm=norm, use_activ=False)
        conv = self.conv[0]  # conv_layer has zeroed its bias, if any
        if norm in ("weight", "spectral", "spectral+batch"):
            with torch.no_grad():  # a parametrized weight is set through its right_inverse
                conv.weight = icnr_(torch.empty_like(conv.weight), scale)
        else:
            icnr_(conv.weight, scale)
        self.relu = nn.ReLU(inplace=True)
        self.shuf = nn.PixelShuffle(scale)
        self.blur = nn.Sequential(nn.ReplicationPad2d((1, 0, 1, 0)), nn.AvgPool2d(2, stride=1)) if blur else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blur(self.shuf(self.relu(self.conv(x))))


class UnetBlock(nn.Module):
    """Upsample ``up_in_c`` channels, concatenate the batch-normed skip activation, two convs (notebook 02) as wide
    as their input (half if not ``final_div``) times ``nf_factor`` (DeOldify's wider decoder)."""

    def __init__(self, up_in_c: int, x_in_c: int, final_div: bool = True, blur: bool = True,
                 self_attention: bool = False, norm: str | None = None, nf_factor: float = 1.0):
        super().__init__()
        self.shuf = PixelShuffle_ICNR(up_in_c, up_in_c // 2, blur=blur, norm=norm)
        self.bn = nn.BatchNorm2d(x_in_c)
        ni = up_in_c // 2 + x_in_c
        nf = int((ni if final_div else ni // 2) * nf_factor)
        self.relu = nn.ReLU()
        self.conv1 = conv_layer(ni, nf, norm=norm)
        self.conv2 = conv_layer(nf, nf, norm=norm)
        self.attn = SelfAttention(nf) if self_attention else nn.Identity()

    def forward(self, up_in: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = self.shuf(up_in)
        if up.shape[-2:] != skip.shape[-2:]:
            up = F.interpolate(up, skip.shape[-2:], mode="nearest")
        x = self.relu(torch.cat([up, self.bn(skip)], dim=1))
        return self.attn(self.conv2(self.conv1(x)))


class SigmoidRange(nn.Module):
    """``sigmoid(x) * (hi - lo) + lo`` (notebook 02)."""

    def __init__(self, lo: float, hi: float):
        super().__init__()
        self.lo, self.hi = lo, hi

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x) * (self.hi - self.lo) + self.lo


@torch.no_grad()
def _sizes(layers: nn.Sequential, img_size: tuple[int, int], in_ch: int) -> list[torch.Size]:
    """Output shape of each child for a dummy batch (eval mode, no grad)."""
    x, was, shapes = torch.zeros(1, in_ch, *img_size), layers.training, []
    layers.eval()
    for layer in layers:
        x = layer(x)
        shapes.append(x.shape)
    layers.train(was)
    return shapes


def skip_indices(shapes: list[torch.Size]) -> list[int]:
    """Indices of the encoder children whose output is the last one before a change of grid size (notebook 02)."""
    return [i for i in range(len(shapes) - 1) if shapes[i][-1] != shapes[i + 1][-1]]


PROBE = (256, 256)  # the dummy batch's size: the architecture never depends on ``img_size``


class DynamicUnet(nn.Module):
    """A U-Net whose decoder is sized by a dummy 256 x 256 batch through ``encoder``, as DeOldify's (notebook 02); hooks
    stay until ``hooks.remove()``. ``norm``: every decoder conv's; ``nf_factor`` widens the decoder (notebook 07)."""

    def __init__(self, encoder: nn.Sequential, n_out: int, img_size: tuple[int, int] | None = None, in_ch: int = 3,
                 blur: bool = True, self_attention: bool = False,
                 y_range: tuple[float, float] | None = None, last_cross: bool = True, bottle: bool = False,
                 norm: str | None = None, nf_factor: float = 1.0):
        super().__init__()
        self.encoder, self.in_ch = encoder, in_ch
        shapes = _sizes(encoder, PROBE, in_ch)
        self.skip_idxs = skip_indices(shapes)
        self.hooks = Hooks([encoder[i] for i in self.skip_idxs], detach=False)
        ni = shapes[-1][1]
        self.middle = nn.Sequential(nn.BatchNorm2d(ni), nn.ReLU(), conv_layer(ni, ni * 2, norm=norm),
                                    conv_layer(ni * 2, ni, norm=norm))
        n_skips = len(self.skip_idxs)
        self.blocks, up_c = nn.ModuleList(), ni
        for k, i in enumerate(reversed(self.skip_idxs)):
            self.blocks.append(UnetBlock(up_c, shapes[i][1], final_div=k != n_skips - 1, blur=blur,
                                         self_attention=self_attention and k == n_skips - 3, norm=norm,
                                         nf_factor=nf_factor))
            up_c = self.blocks[-1].conv2[0].out_channels
        needs_up = shapes[self.skip_idxs[0]][-2:] != torch.Size(PROBE)  # the first skip is below full size
        self.upsample = nn.Sequential(PixelShuffle_ICNR(up_c, blur=blur, norm=norm)) if needs_up else nn.Sequential()
        self.last_cross = last_cross
        last_norm = "spectral" if norm == "spectral+batch" else norm  # DeOldify: no extra BN at the end
        if last_cross:
            up_c += in_ch
            self.cross = MergeLayer(dense=True)
            self.res = res_block(up_c, bottle=bottle, norm=last_norm)
        self.final = conv_layer(up_c, n_out, ks=1, use_activ=False, norm=last_norm)
        self.y_range = SigmoidRange(*y_range) if y_range else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inp = x
        x = self.middle(self.encoder(x))
        try:
            for skip, block in zip(reversed(self.hooks.stored), self.blocks):
                x = block(x, skip)
        finally:
            self.hooks.clear()  # do not keep activations alive between calls
        x = self.upsample(x)
        if x.shape[-2:] != inp.shape[-2:]:
            x = F.interpolate(x, inp.shape[-2:], mode="nearest")
        if self.last_cross:
            x = self.res(self.cross(x, inp))
        return self.y_range(self.final(x))

    def layer_groups(self, split: int = 6) -> list[nn.Module]:
        """fastai's three layer groups: encoder ``[:split]``, encoder ``[split:]``, decoder (notebook 02)."""
        decoder = [m for name, m in self.named_children() if name != "encoder"]
        return [nn.Sequential(*self.encoder[:split]), nn.Sequential(*self.encoder[split:]), nn.ModuleList(decoder)]


def start_as_identity_(unet: DynamicUnet) -> DynamicUnet:
    """Make an image-to-image U-Net output its input exactly, before training (notebook 05). ValueError unless built
    with ``last_cross``, no ``y_range``, outputs = input channels and decoder norm ``None`` or ``"weight"``."""
    final = unet.final[0]
    if not unet.last_cross:
        raise ValueError("start_as_identity_ needs a U-Net built with last_cross=True: only then does its end see the input")
    if not isinstance(unet.y_range, nn.Identity):
        raise ValueError("start_as_identity_ needs a U-Net without y_range: the sigmoid would squash the input")
    n_out, n_all, n_img = final.out_channels, final.in_channels, unet.in_ch
    if n_out != n_img:
        raise ValueError(f"start_as_identity_ needs as many outputs as input channels, got {n_out} and {n_img}")
    last = unet.res.convs[-1][0]
    with torch.no_grad():
        if hasattr(last, "parametrizations") and hasattr(last.parametrizations.weight, "original0"):
            last.parametrizations.weight.original0.zero_()  # weight norm: the magnitude g at zero
        elif hasattr(last, "parametrizations"):
            raise ValueError("start_as_identity_ cannot zero a spectral-normed conv; use norm=None or 'weight'")
        elif len(unet.res.convs[-1]) > 2:
            raise ValueError("start_as_identity_ needs a last res block without BatchNorm; use norm=None or 'weight'")
        else:
            last.weight.zero_()
        if last.bias is not None:
            last.bias.zero_()
        pick = torch.zeros_like(final.weight)
        pick[torch.arange(n_out), n_all - n_img + torch.arange(n_out)] = 1
        if hasattr(final, "parametrizations"):
            final.weight = pick  # set through the parametrization's right_inverse
        else:
            final.weight.copy_(pick)
        if final.bias is not None:
            final.bias.zero_()
    return unet
