"""Pretrained CNN bodies from torchvision, ImageNet weights from the torch hub cache, else from ``HELPERS_MIRROR``
when it is set, otherwise from torchvision's URL, used only once their sha256 checks out. Introduced in notebook 02
(camvid-unet)."""

import re
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn
from torchvision import models

from helpers import config
from helpers.download import DownloadError, download_file, sha256_file
from helpers.files import locked

_warned: set[str] = set()
_verified: set[tuple[str, int, int]] = set()  # (path, size, mtime_ns) of cache files that hashed right


class PretrainedWeightsError(RuntimeError):
    """ImageNet weights are required (full profile) but could not be loaded (notebook 02)."""


class CorruptWeightsError(DownloadError):
    """A cached weight file does not match its known sha256; never replaced by random weights (notebook 02)."""


def weights_file(arch: str) -> tuple[str, str, Path]:
    """(file name, torchvision URL, local cache path) of ``arch``'s default ImageNet weights (notebook 02)."""
    url = models.get_model_weights(arch).DEFAULT.url
    name = Path(urlparse(url).path).name
    return name, url, Path(torch.hub.get_dir()) / "checkpoints" / name


def name_sha256_prefix(name: str) -> str | None:
    """The sha256 prefix in a weights file name (``resnet34-b627a593.pth`` -> ``b627a593``), or None (notebook 02)."""
    m = re.fullmatch(r".+-([0-9a-f]{8,64})\.[A-Za-z0-9]+", name)
    return m.group(1) if m else None


def verify_cached(path: Path) -> None:
    """Raise ``CorruptWeightsError`` unless a cached weight file's sha256 matches the prefix in its name or the
    digest in ``<file>.sha256``; with neither, accept it. Checked once per (path, size, mtime) (notebook 02)."""
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
        note_unpublished(path.name, digest)  # accepted, though perhaps not as the file its name promises
    _verified.add(key)


def note_unpublished(name: str, digest: str) -> None:
    """Say once, on stdout, when a weights file accepted by a mirror's or a record's checksum is not the file its name
    promises (its sha256 does not start with the hash in the name): stand-in weights, for one (notebook 02)."""
    published = name_sha256_prefix(name)
    if published and not digest.startswith(published) and name not in _warned:
        _warned.add(name)
        print(f"Note: {name} is not torchvision's published file (sha256 {digest[:8]}..., not {published}...); it is "
              f"used as the ImageNet weights the mirror vouched for (stand-ins: results are not ImageNet's).")


def load_imagenet_state(arch: str) -> dict[str, torch.Tensor]:
    """A torchvision model's ImageNet state dict, downloaded if need be, verified by ``verify_cached`` (notebook 02)."""
    name, url, cache = weights_file(arch)
    if not cache.exists():
        with locked(cache.with_name(f".{cache.name}.lock"), f"downloading {name}"):
            if not cache.exists():  # else another process downloaded it while this one waited
                digest = download_file(name, url, cache, sha256=name_sha256_prefix(name))
                cache.with_name(cache.name + ".sha256").write_text(f"{digest}  {name}\n")
                note_unpublished(name, digest)
                st = cache.stat()
                _verified.add((str(cache), st.st_size, st.st_mtime_ns))  # just hashed while it streamed
    verify_cached(cache)
    return torch.load(cache, map_location="cpu", weights_only=True)


def imagenet_model(arch: str, pretrained: bool = True) -> nn.Module:
    """A torchvision model with ImageNet weights if wanted and available, else random init as the profile allows
    (``PretrainedWeightsError`` in ``full``); ``model.imagenet_weights`` says which (notebook 02)."""
    model = models.get_model(arch, weights=None)
    model.imagenet_weights = False
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
            # ~/... for a cache under the home folder, so that the message is the same on every machine
            where = f"~/{cache.relative_to(Path.home())}" if cache.is_relative_to(Path.home()) else cache
            how = (f"Get {name} from an internet-connected machine and put it at {where}, "
                   f"or into the folder HELPERS_MIRROR points at")
            if config.profile().needs_pretrained:
                raise PretrainedWeightsError(
                    f"The {config.profile().name} profile needs ImageNet weights for {arch}, but they could "
                    f"not be loaded: {err}\n{how}. (HELPERS_PRETRAINED=off trains from random init on purpose; "
                    f"HELPERS_PROFILE=small does at CPU scale.)") from err
            if arch not in _warned:  # once per model, on stdout: no stderr block in the notebook
                _warned.add(arch)
                print(f"Note: no ImageNet weights for {arch} ({type(err).__name__}), so it starts from random "
                      f"weights and results will be far from the lesson's. {how}.", flush=True)
    return model


def create_body(arch: str = "resnet34", pretrained: bool = True, cut: int = -2) -> nn.Sequential:
    """A torchvision CNN without its head (``children()[:cut]``), weights as ``imagenet_model`` (notebook 02)."""
    model = imagenet_model(arch, pretrained)
    body = nn.Sequential(*list(model.children())[:cut])
    body.imagenet_weights = model.imagenet_weights
    return body


def vgg16_bn_features(pretrained: bool = True) -> nn.Sequential:
    """``vgg16_bn().features`` (44 layers), frozen and in eval mode, weights as ``imagenet_model`` (notebook 05)."""
    model = imagenet_model("vgg16_bn", pretrained)
    features = model.features.eval().requires_grad_(False)
    features.imagenet_weights = model.imagenet_weights
    return features
