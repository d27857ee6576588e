"""tools/standin_weights.py and tools/canonical_mirror.py: the learner's path (weight files from a mirror, a
canonical-shaped download) built from stand-ins, and checked to have what the real ones have."""
import json
import re
import sys
import tarfile
from pathlib import Path

import pytest
import torch
from PIL import Image

from helpers import bodies
from helpers.folders import photo_sample

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import canonical_mirror  # noqa: E402
import standin_weights  # noqa: E402


def test_every_network_the_notebooks_download_weights_for_has_a_stand_in():
    asked = set()
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        code = "".join("".join(c["source"]) for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code")
        asked |= set(re.findall(r'create_body\("(\w+)"', code))
        asked |= {"vgg16_bn"} if "vgg16_bn_features(" in code else set()
    assert asked and asked <= set(standin_weights.ARCHS), asked - set(standin_weights.ARCHS)


def test_stand_in_weights_take_the_imagenet_path(tmp_path, monkeypatch, capsys):
    """Served by a file:// mirror with its SHA256SUMS: downloaded, checked, cached and loaded as ImageNet's would be."""
    out = tmp_path / "mirror"
    datasets = tmp_path / "datasets"
    datasets.mkdir()
    (datasets / "tiny.tgz").write_bytes(b"not read here")
    (datasets / "SHA256SUMS").write_text("ab" * 32 + "  tiny.tgz\n")
    monkeypatch.setattr(standin_weights, "ARCHS", ("resnet18",))
    assert standin_weights.main([str(out), "--datasets", str(datasets)]) == 0
    sums = dict(reversed(line.split()) for line in (out / "SHA256SUMS").read_text().splitlines())
    name = bodies.weights_file("resnet18")[0]
    assert set(sums) == {name, "tiny.tgz"} and (out / "tiny.tgz").is_symlink()
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HELPERS_MIRROR", f"file://{out}")
    monkeypatch.setenv("HELPERS_PROFILE", "full")  # missing weights would be an error: these must load
    monkeypatch.setattr(bodies, "_warned", set())
    capsys.readouterr()
    model = bodies.imagenet_model("resnet18")
    said = capsys.readouterr().out.splitlines()
    assert model.imagenet_weights is True and len(said) == 1 and "not torchvision's published file" in said[0]
    monkeypatch.setattr(bodies, "_verified", set())  # checked again against the record: the note is said once
    assert bodies.imagenet_model("resnet18").imagenet_weights is True and not capsys.readouterr().out
    saved = torch.load(out / name, weights_only=True)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in saved.items())
    assert (tmp_path / "torch" / "hub" / "checkpoints" / name).is_file()  # in the TORCH_HOME given, not the real one


@pytest.fixture
def samples(photos, tmp_path, monkeypatch):
    """``untar_data`` of the two samples answered by the conftest photos (no mirror needed)."""
    old = tmp_path / "old_photos"
    old.mkdir()
    for p in list(photos.glob("*.jpg"))[:4]:
        Image.open(p).convert("L").save(old / p.name)
    roots = {"oxford-iiit-pet": photos.parent, "old_photos": old}
    monkeypatch.setattr(canonical_mirror, "untar_data", roots.__getitem__)
    monkeypatch.setattr(canonical_mirror, "EXTRA_PETS", 6)
    monkeypatch.setattr(canonical_mirror, "EXTRA_OLD", 3)
    return photos


def test_canonical_mirror_has_the_canonical_archives_traits(samples, tmp_path, capsys):
    out = canonical_mirror.build(tmp_path / "canonical")
    with tarfile.open(out / "oxford-iiit-pet.tgz") as tar:
        names = tar.getnames()
        tar.extractall(tmp_path / "x", filter="data")
    images = tmp_path / "x" / "oxford-iiit-pet" / "images"
    assert "oxford-iiit-pet/annotations/list.txt" in names and any(n.endswith(".mat") for n in names)
    modes = {}
    for p in images.glob("Bengal_90[0-2].jpg"):
        with Image.open(p) as img:
            modes[img.mode] = p.name
    assert set(modes) == {"CMYK", "L", "RGBA"}
    n_photos = len(list(samples.glob("*.jpg")))
    dest = photo_sample(images, short_side=256)  # every photo: the truncated one and the .mat file named
    said = capsys.readouterr().out
    assert "Bengal_903.jpg" in said and "Abyssinian_100.mat" in said
    extras, odd_usable = 6, 3  # the mirrored copies; CMYK, gray and RGBA
    assert len(json.loads((dest / ".photo_sample.json").read_text())["items"]) == n_photos + extras + odd_usable
    with tarfile.open(out / "old_photos.tgz") as tar:
        old = [m for m in tar.getmembers() if m.isfile()]
        tar.extractall(tmp_path / "y", filter="data")
    assert len(old) == 4 + 3 + 1
    with Image.open(tmp_path / "y" / "old_photos" / "zz_large_scan.jpg") as img:
        assert max(img.size) >= 3000
