"""tools/device_kit.py: the CamVid subset that travels to a GPU machine keeps each kept frame with its mask, spreads
over the split, and trims the split lists to what it kept."""
import importlib.util
import io
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def kit_module():
    spec = importlib.util.spec_from_file_location("device_kit", ROOT / "tools" / "device_kit.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def add(tar, name, data=b""):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def test_camvid_subset_keeps_frames_with_their_masks(tmp_path, monkeypatch):
    kit = kit_module()
    monkeypatch.setattr(kit, "CAMVID_KEEP", {"train": 3, "val": 2})
    src = tmp_path / "camvid.tgz"
    frames = {"train": [f"f{i:02}.png" for i in range(12)], "val": [f"v{i}.png" for i in range(4)]}
    with tarfile.open(src, "w:gz") as tar:
        for split, names in frames.items():
            for n in names:
                add(tar, f"camvid/{split}/{n}", b"frame " + n.encode())
                add(tar, f"camvid/{split}annot/{n}", b"mask " + n.encode())
            listing = "".join(f"/x/{split}/{n} /x/{split}annot/{n}\n" for n in names)
            add(tar, f"camvid/{split}.txt", listing.encode())
    dest = tmp_path / "subset.tgz"
    kit.camvid_subset(src, dest)
    with tarfile.open(dest) as tar:
        names = {m.name for m in tar.getmembers()}
        train = sorted(Path(n).name for n in names if n.startswith("camvid/train/"))
        assert train == ["f00.png", "f04.png", "f08.png"]  # every fourth of twelve: spread, not the first three
        assert sorted(Path(n).name for n in names if n.startswith("camvid/trainannot/")) == train
        assert tar.extractfile("camvid/trainannot/f04.png").read() == b"mask f04.png"
        assert sorted(Path(n).name for n in names if n.startswith("camvid/val/")) == ["v0.png", "v2.png"]
        listed = tar.extractfile("camvid/train.txt").read().decode().split()
        assert [Path(p).name for p in listed[::2]] == train and len(listed) == 6
    assert not dest.with_suffix(".part").exists()
