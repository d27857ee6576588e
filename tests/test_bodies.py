"""helpers.bodies: ImageNet weights via the mirror, and the small / full behaviour without them."""
import functools
import hashlib
import socket
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch
from torchvision import models

from helpers import bodies
from helpers.bodies import CorruptWeightsError, PretrainedWeightsError, create_body, weights_file


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A loopback HTTP mirror serving a locally saved resnet18 state dict under torchvision's file name."""
    root = tmp_path / "mirror"
    root.mkdir()
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    torch.manual_seed(1)
    state = models.resnet18(weights=None).state_dict()
    name, _url, _cache = weights_file("resnet18")
    torch.save(state, root / name)
    digest = hashlib.sha256((root / name).read_bytes()).hexdigest()
    (root / "SHA256SUMS").write_text(f"{digest}  {name}\n")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("HELPERS_MIRROR", f"http://127.0.0.1:{server.server_address[1]}")
    yield root, state
    server.shutdown()
    server.server_close()


def test_weights_come_from_the_mirror_and_are_cached(mirror):
    root, state = mirror
    body = create_body("resnet18")
    assert torch.equal(body[0].weight, state["conv1.weight"])
    assert torch.equal(body[7][1].conv2.weight, state["layer4.1.conv2.weight"])
    assert len(body) == 8  # conv1 bn1 relu maxpool layer1-4
    name, _, cache = weights_file("resnet18")
    assert cache.exists()
    (root / name).unlink()  # served no more: the cache must be used
    assert torch.equal(create_body("resnet18")[0].weight, state["conv1.weight"])


def test_wrong_checksum_on_the_mirror_is_refused(mirror, monkeypatch):
    root, _ = mirror
    name, _, cache = weights_file("resnet18")
    (root / "SHA256SUMS").write_text(f"{'0' * 64}  {name}\n")
    monkeypatch.setenv("HELPERS_PROFILE", "full")
    with pytest.raises(PretrainedWeightsError, match="Checksum mismatch"):
        create_body("resnet18")
    assert not cache.exists() and not cache.with_name(cache.name + ".part").exists()


def _dead_mirror(monkeypatch, tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    monkeypatch.setenv("HELPERS_MIRROR", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))


def test_full_profile_stops_with_instructions(monkeypatch, tmp_path):
    _dead_mirror(monkeypatch, tmp_path)
    monkeypatch.setenv("HELPERS_PROFILE", "full")
    with pytest.raises(PretrainedWeightsError, match="needs ImageNet weights for resnet18") as err:
        create_body("resnet18")
    assert "resnet18-f37072fd.pth" in str(err.value) and "HELPERS_MIRROR" in str(err.value)


def test_small_profile_notes_once_on_one_line_and_uses_random_init(monkeypatch, tmp_path, capsys):
    _dead_mirror(monkeypatch, tmp_path)
    monkeypatch.setenv("HELPERS_PROFILE", "small")
    monkeypatch.setattr(bodies, "_warned", set())
    body = create_body("resnet18")
    out, err = capsys.readouterr()
    assert out.startswith("Note: no ImageNet weights for resnet18") and out.count("\n") == 1 and not err
    assert "resnet18-f37072fd.pth" in out and "HELPERS_MIRROR" in out
    assert body[0].weight.shape == (64, 3, 7, 7) and body.imagenet_weights is False
    create_body("resnet18")
    assert capsys.readouterr().out == ""  # second time: nothing


def test_no_weights_wanted(monkeypatch, capsys):
    monkeypatch.setenv("HELPERS_PROFILE", "full")  # where missing weights would stop the notebook
    monkeypatch.setattr(bodies, "load_imagenet_state", lambda arch: pytest.fail(f"weights for {arch} looked for"))
    body = create_body("resnet18", pretrained=False)
    assert len(body) == 8 and body.imagenet_weights is False
    assert capsys.readouterr() == ("", "")  # no note, no warning: random init was asked for


def test_pretrained_off_trains_from_scratch_in_the_full_profile(monkeypatch, tmp_path, capsys):
    _dead_mirror(monkeypatch, tmp_path)
    monkeypatch.setenv("HELPERS_PROFILE", "full")
    monkeypatch.setenv("HELPERS_PRETRAINED", "off")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        body = create_body("resnet18")  # no error, no warning, no download attempt
    assert len(body) == 8 and "random weights" in capsys.readouterr().out
    monkeypatch.setenv("HELPERS_PRETRAINED", "maybe")
    with pytest.raises(ValueError, match="HELPERS_PRETRAINED"):
        create_body("resnet18")


@pytest.mark.parametrize("profile", ["small", "full"])
def test_a_corrupt_cached_file_is_a_clear_error_in_every_profile(monkeypatch, tmp_path, profile):
    _dead_mirror(monkeypatch, tmp_path)
    monkeypatch.setenv("HELPERS_PROFILE", profile)
    monkeypatch.setattr(bodies, "_warned", set())
    name, _, cache = weights_file("resnet18")
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"half a download, or the wrong file" * 100)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not "No ImageNet weights ...; using random init"
        with pytest.raises(CorruptWeightsError) as err:
            create_body("resnet18")
    msg = str(err.value)
    assert str(cache) in msg and "f37072fd" in msg and "Delete it and run again" in msg
    assert cache.exists(), "the user's file is reported, not silently removed"


def _hand_copied(tmp_path, monkeypatch):
    """A real state dict saved under a torchvision-style name whose hash digits are its own sha256's."""
    import shutil
    torch.manual_seed(2)
    state = models.resnet18(weights=None).state_dict()
    src = tmp_path / "resnet18.pth"
    torch.save(state, src)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    cache = tmp_path / "torch" / "hub" / "checkpoints" / f"resnet18-{digest[:8]}.pth"
    cache.parent.mkdir(parents=True)
    shutil.copy(src, cache)
    monkeypatch.setattr(bodies, "weights_file", lambda arch: (cache.name, "https://example.invalid/x", cache))
    return state, cache


def test_a_good_hand_copied_file_is_hashed_once_in_chunks(monkeypatch, tmp_path):
    _dead_mirror(monkeypatch, tmp_path)
    monkeypatch.setenv("HELPERS_PROFILE", "full")
    state, cache = _hand_copied(tmp_path, monkeypatch)
    calls = []
    real = bodies.sha256_file
    monkeypatch.setattr(bodies, "sha256_file", lambda p: calls.append(p) or real(p))

    def no_read_bytes(self):
        raise AssertionError(f"read_bytes({self}): weights must be hashed in chunks")
    monkeypatch.setattr(type(cache), "read_bytes", no_read_bytes)
    assert torch.equal(create_body("resnet18")[0].weight, state["conv1.weight"])
    assert torch.equal(create_body("resnet18")[0].weight, state["conv1.weight"])
    assert calls == [cache], "hashed once per process for an unchanged file"
    with open(cache, "r+b") as f:  # truncate it: size and mtime change, so it is hashed again
        f.truncate(cache.stat().st_size // 2)
    with pytest.raises(CorruptWeightsError, match="Corrupt weights file"):
        create_body("resnet18")
    assert len(calls) == 2


def test_a_mirrored_file_is_checked_against_the_digest_recorded_at_download(mirror, monkeypatch):
    """The test mirror serves random weights under torchvision's name: its SHA256SUMS vouches for them, and
    that digest, recorded beside the cached file, is what a later process checks the file against."""
    root, state = mirror
    create_body("resnet18")
    name, _, cache = weights_file("resnet18")
    record = cache.with_name(name + ".sha256")
    assert record.read_text().split() == [hashlib.sha256(cache.read_bytes()).hexdigest(), name]
    monkeypatch.setattr(bodies, "_verified", set())  # as in a new process
    assert torch.equal(create_body("resnet18")[0].weight, state["conv1.weight"])
    monkeypatch.setattr(bodies, "_verified", set())
    record.unlink()  # without the record only the name's hash is left, which random weights do not match
    with pytest.raises(CorruptWeightsError, match="f37072fd"):
        create_body("resnet18")


def test_a_mirror_that_does_not_list_the_file_is_checked_against_the_name(mirror, monkeypatch):
    root, _ = mirror
    (root / "SHA256SUMS").write_text("")
    name, _, cache = weights_file("resnet18")
    monkeypatch.setenv("HELPERS_PROFILE", "full")
    with pytest.raises(PretrainedWeightsError, match="Checksum mismatch.*expected one starting with f37072fd"):
        create_body("resnet18")
    assert not cache.exists() and not cache.with_name(cache.name + ".part").exists()


# --- VGG16-bn features for the feature loss (notebook 05) ---------------------------------------------
from helpers.bodies import vgg16_bn_features  # noqa: E402


def test_vgg16_bn_features_come_through_the_same_path_frozen_and_in_eval(monkeypatch):
    torch.manual_seed(3)
    state = models.vgg16_bn(weights=None).state_dict()
    asked = []
    monkeypatch.setattr(bodies, "load_imagenet_state", lambda arch: asked.append(arch) or state)
    feats = vgg16_bn_features()
    assert asked == ["vgg16_bn"] and len(feats) == 44
    assert torch.equal(feats[40].weight, state["features.40.weight"])
    assert not feats.training and not any(p.requires_grad for p in feats.parameters())
    pools = [i - 1 for i, m in enumerate(feats) if isinstance(m, torch.nn.MaxPool2d)]
    assert pools == [5, 12, 22, 32, 42]  # the lesson's blocks; the feature loss uses [22, 32, 42]


def test_vgg16_bn_without_weights_small_notes_full_stops(monkeypatch, tmp_path, capsys):
    _dead_mirror(monkeypatch, tmp_path)
    monkeypatch.setattr(bodies, "_warned", set())
    monkeypatch.setenv("HELPERS_PROFILE", "small")
    feats = vgg16_bn_features()
    assert "no ImageNet weights for vgg16_bn" in capsys.readouterr().out
    assert len(feats) == 44 and not feats.training and feats.imagenet_weights is False
    monkeypatch.setenv("HELPERS_PROFILE", "full")
    with pytest.raises(PretrainedWeightsError, match="needs ImageNet weights for vgg16_bn") as err:
        vgg16_bn_features()
    assert "vgg16_bn-6c64b313.pth" in str(err.value) and "HELPERS_MIRROR" in str(err.value)
