"""Pretrained CNN bodies (encoders) from torchvision, with a mirror fallback for the weight file.

Introduced in notebook 02 (camvid-unet). The weights come through torchvision's weights API:
``<torch hub dir>/checkpoints/<file>`` if cached, else ``<HELPERS_MIRROR>/<file>`` when a mirror is
set, else torchvision's own URL. When none can be had, the ``small`` profile warns once and uses
random init; the ``full`` profile stops with a message that says how to get them.
"""
from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn
from torchvision import models

from helpers import config
from helpers.download import DownloadError, download_file

_warned: set[str] = set()


class PretrainedWeightsError(RuntimeError):
    """ImageNet weights are required (full profile) but could not be loaded (notebook 02)."""


def weights_file(arch: str) -> tuple[str, str, Path]:
    """(file name, torchvision URL, local cache path) of ``arch``'s default ImageNet weights (notebook 02)."""
    url = models.get_model_weights(arch).DEFAULT.url
    name = Path(urlparse(url).path).name
    return name, url, Path(torch.hub.get_dir()) / "checkpoints" / name


def load_imagenet_state(arch: str) -> dict[str, torch.Tensor]:
    """The ImageNet state dict of a torchvision model, from the cache, the mirror or torchvision (notebook 02).

    torchvision's file names end in the first hex digits of the file's sha256; a file fetched from
    torchvision's own URL is checked against them, a mirrored one against the mirror's SHA256SUMS.
    """
    name, url, cache = weights_file(arch)
    if not cache.exists():
        cache.parent.mkdir(parents=True, exist_ok=True)
        download_file(name, url, cache)
        if config.mirror() is None:
            prefix = name.rsplit("-", 1)[-1].split(".")[0]
            digest = hashlib.sha256(cache.read_bytes()).hexdigest()
            if not digest.startswith(prefix):
                cache.unlink()
                raise DownloadError(f"{url}: sha256 {digest[:16]}... does not start with {prefix}; removed")
    return torch.load(cache, map_location="cpu", weights_only=True)


def create_body(arch: str = "resnet34", pretrained: bool = True, cut: int = -2) -> nn.Sequential:
    """A torchvision CNN without its head (``children()[:cut]``), with ImageNet weights if wanted and
    available (notebook 02). ``HELPERS_PRETRAINED=off`` turns the weights off on purpose (a
    from-scratch run), in any profile."""
    model = models.get_model(arch, weights=None)
    if pretrained and not config.pretrained_wanted():
        print(f"HELPERS_PRETRAINED=off: {arch} starts from random weights")
    elif pretrained:
        try:
            model.load_state_dict(load_imagenet_state(arch))
        except (DownloadError, OSError, RuntimeError) as err:
            name, _url, cache = weights_file(arch)
            how = (f"Get {name} from an internet-connected machine and put it at {cache}, "
                   f"or into the folder HELPERS_MIRROR points at")
            if config.profile().needs_pretrained:
                raise PretrainedWeightsError(
                    f"The {config.profile().name} profile needs ImageNet weights for {arch}, but they could "
                    f"not be loaded: {err}\n{how}. (HELPERS_PRETRAINED=off trains from random init on purpose; "
                    f"HELPERS_PROFILE=small does at CPU scale.)") from err
            if arch not in _warned:
                _warned.add(arch)
                warnings.warn(f"No ImageNet weights for {arch} ({type(err).__name__}); using random init. "
                              f"Results will be far from the lesson's. {how}.", stacklevel=2)
    return nn.Sequential(*list(model.children())[:cut])
