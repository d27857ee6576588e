"""Pretrained CNN bodies (encoders) from torchvision, with a mirror fallback for the weight file.

Introduced in notebook 02 (camvid-unet). The weights come through torchvision's weights API:
``<torch hub dir>/checkpoints/<file>`` if cached, else ``<HELPERS_MIRROR>/<file>`` when a mirror is
set, else torchvision's own URL. When none can be had, the ``small`` profile notes it once and uses
random init; the ``full`` profile stops with a message that says how to get them.

Weights are trusted only once hashed. torchvision's file names end in the first hex digits of the
file's sha256 (``resnet34-b627a593.pth``). A download is hashed while it streams and checked before it
is renamed into the cache: against the mirror's SHA256SUMS when it lists the file, else against the
name. A cached file (downloaded, or copied there by hand) is hashed again before use, once per process
(vgg16_bn's 528 MB included), and must match its name, or the digest recorded beside it in
``<file>.sha256`` when it was downloaded. A file that matches neither is an error in every profile,
``CorruptWeightsError``, naming the file: it is never silently replaced by random weights.
"""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn
from torchvision import models

from helpers import config
from helpers.download import DownloadError, download_file, sha256_file

_warned: set[str] = set()


def _home_relative(path: Path) -> str:
    """``~/...`` for a path under the home folder, so messages stay the same on every machine."""
    try:
        return "~/" + str(Path(path).relative_to(Path.home()))
    except ValueError:
        return str(path)


_verified: set[tuple[str, int, int]] = set()  # (path, size, mtime_ns) of cache files that hashed right


class PretrainedWeightsError(RuntimeError):
    """ImageNet weights are required (full profile) but could not be loaded (notebook 02)."""


class CorruptWeightsError(DownloadError):
    """A weight file in the torch hub cache does not match its known sha256: truncated, damaged or
    another file under that name (notebook 02)."""


def weights_file(arch: str) -> tuple[str, str, Path]:
    """(file name, torchvision URL, local cache path) of ``arch``'s default ImageNet weights (notebook 02)."""
    url = models.get_model_weights(arch).DEFAULT.url
    name = Path(urlparse(url).path).name
    return name, url, Path(torch.hub.get_dir()) / "checkpoints" / name


def name_sha256_prefix(name: str) -> str | None:
    """The sha256 prefix in a torchvision weights file name (``resnet34-b627a593.pth`` -> ``b627a593``),
    or None when the name carries none (notebook 02)."""
    m = re.fullmatch(r".+-([0-9a-f]{8,64})\.[A-Za-z0-9]+", name)
    return m.group(1) if m else None


def verify_cached(path: Path) -> None:
    """Hash a cached weight file (streamed, in chunks) and raise ``CorruptWeightsError`` unless it matches
    the sha256 prefix in its name or the digest recorded in ``<file>.sha256`` at download. A file whose
    name carries no hash and that has no record is accepted as is. Remembered per (path, size, mtime)
    for the rest of the process (notebook 02)."""
    path = Path(path)
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key in _verified:
        return
    record = path.with_name(path.name + ".sha256")
    expected = [(h, "the hash in its name") for h in [name_sha256_prefix(path.name)] if h]
    if record.is_file() and record.read_text().split():
        expected.append((record.read_text().split()[0].lower(), f"recorded in {record.name} at download"))
    if expected:
        digest = sha256_file(path)
        if not any(digest.startswith(h) for h, _ in expected):
            wanted = " or ".join(f"{h[:16]} ({why})" for h, why in expected)
            raise CorruptWeightsError(
                f"Corrupt weights file {path} ({st.st_size:,} bytes): its sha256 {digest[:16]}... does not start "
                f"with {wanted}. It is truncated, damaged or another file under this name. Delete it and run "
                f"again to download it afresh, or copy a good {path.name} there.")
    _verified.add(key)


def load_imagenet_state(arch: str) -> dict[str, torch.Tensor]:
    """The ImageNet state dict of a torchvision model, from the cache, the mirror or torchvision (notebook 02).

    A download is checked while it streams (see the module docstring) and only then renamed into the
    cache; a cached file is verified before it is loaded (``verify_cached``).
    """
    name, url, cache = weights_file(arch)
    if not cache.exists():
        cache.parent.mkdir(parents=True, exist_ok=True)
        digest = download_file(name, url, cache, sha256=name_sha256_prefix(name))
        cache.with_name(cache.name + ".sha256").write_text(f"{digest}  {name}\n")
        st = cache.stat()
        _verified.add((str(cache), st.st_size, st.st_mtime_ns))  # just hashed while it streamed
    verify_cached(cache)
    return torch.load(cache, map_location="cpu", weights_only=True)


def imagenet_model(arch: str, pretrained: bool = True) -> nn.Module:
    """A whole torchvision model with ImageNet weights if wanted and available, else random init as the
    profile allows (see the module docstring) (notebook 02). ``HELPERS_PRETRAINED=off`` turns the
    weights off on purpose (a from-scratch run), in any profile."""
    model = models.get_model(arch, weights=None)
    model.imagenet_weights = False  # what the model holds, for callers that choose by it (notebook 05)
    if pretrained and not config.pretrained_wanted():
        print(f"HELPERS_PRETRAINED=off: {arch} starts from random weights")
    elif pretrained:
        try:
            model.load_state_dict(load_imagenet_state(arch))
            model.imagenet_weights = True
        except CorruptWeightsError:
            raise  # a bad file the user must remove or replace, in every profile: never random init
        except (DownloadError, OSError, RuntimeError) as err:
            name, _url, cache = weights_file(arch)
            how = (f"Get {name} from an internet-connected machine and put it at {_home_relative(cache)}, "
                   f"or into the folder HELPERS_MIRROR points at")
            if config.profile().needs_pretrained:
                raise PretrainedWeightsError(
                    f"The {config.profile().name} profile needs ImageNet weights for {arch}, but they could "
                    f"not be loaded: {err}\n{how}. (HELPERS_PRETRAINED=off trains from random init on purpose; "
                    f"HELPERS_PROFILE=small does at CPU scale.)") from err
            if arch not in _warned:  # once per model, on one line, in the cell's own output (no stderr block)
                _warned.add(arch)
                print(f"Note: no ImageNet weights for {arch} ({type(err).__name__}), so it starts from random "
                      f"weights and results will be far from the lesson's. {how}.", flush=True)
    return model


def create_body(arch: str = "resnet34", pretrained: bool = True, cut: int = -2) -> nn.Sequential:
    """A torchvision CNN without its head (``children()[:cut]``), with ImageNet weights if wanted and
    available (``imagenet_model``) (notebook 02)."""
    model = imagenet_model(arch, pretrained)
    body = nn.Sequential(*list(model.children())[:cut])
    body.imagenet_weights = model.imagenet_weights
    return body


def vgg16_bn_features(pretrained: bool = True) -> nn.Sequential:
    """VGG16 with batch norm, convolutional part only (``vgg16_bn().features``, 44 layers), frozen and in
    eval mode: the fixed network of the feature loss (notebook 05). Its weights come the same way as
    the ResNets' (``vgg16_bn-6c64b313.pth``, 528 MB, mirror fallback, hash checked); without them the
    small profile warns once and uses random init, the full profile stops with instructions."""
    model = imagenet_model("vgg16_bn", pretrained)
    features = model.features.eval().requires_grad_(False)
    features.imagenet_weights = model.imagenet_weights
    return features
