"""helpers.folders: resized copies built in parallel and atomically, reused only when complete and made
the same way, with what each photo's maker returned kept beside them."""
import json

import numpy as np
import pytest
from PIL import Image

from conftest import SIZES, photo
from helpers import folders
from helpers.data import ImageDecodeError
from helpers.folders import derived_items, resize_folder
from helpers.imagedata import decode_at

MARKER = ".resize_folder.json"


def short_side(path):
    with Image.open(path) as img:
        return min(img.size), img.mode


def test_resize_folder_makes_each_short_side_the_size_and_keeps_names(photos):
    dest = resize_folder(photos, photos.parent / "small-16", 16)
    names = sorted(p.name for p in dest.glob("*.jpg"))
    assert names == sorted(p.name for p in photos.glob("*.jpg"))
    assert all(short_side(dest / n) == (16, "RGB") for n in names)
    with Image.open(dest / "pet_3.jpg") as img:  # 36 x 90: aspect kept
        assert img.size == (16, 40)
    marker = json.loads((dest / MARKER).read_text())["params"]
    assert marker["size"] == 16 and marker["quality"] == 60 and marker["files"] == len(SIZES)
    assert short_side(resize_folder(photos, photos.parent / "big", 80) / "pet_0.jpg")[0] == 80  # enlarged, as the lesson


def test_resize_folder_reuses_a_complete_copy_and_rebuilds_on_other_parameters(photos, monkeypatch):
    dest = resize_folder(photos, photos.parent / "small-16", 16)
    calls = []
    real = folders.resize_one
    monkeypatch.setattr(folders, "resize_one", lambda *a: calls.append(a) or real(*a))
    resize_folder(photos, dest, 16)
    assert calls == [], "same parameters, same files: reused"
    resize_folder(photos, dest, 16, quality=90)
    assert len(calls) == len(SIZES) and json.loads((dest / MARKER).read_text())["params"]["quality"] == 90
    photo(9, 30, 30).save(photos / "pet_new.jpg")
    resize_folder(photos, dest, 16, quality=90)
    assert (dest / "pet_new.jpg").exists(), "a changed source folder is rebuilt"
    assert not list(photos.parent.glob(".tmp-*")), "no temporary folder left behind"


def test_an_interrupted_build_is_not_reused(photos, monkeypatch):
    dest = photos.parent / "small-16"
    real, calls = folders.resize_one, []

    def interrupted(*args):
        calls.append(args)
        if len(calls) == 4:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the build
        real(*args)

    monkeypatch.setattr(folders, "resize_one", interrupted)
    with pytest.raises(KeyboardInterrupt):
        resize_folder(photos, dest, 16, workers=1)
    assert len(calls) < len(SIZES), "the photos not yet started are dropped"
    assert not dest.exists() and not list(photos.parent.glob(".tmp-*"))
    # a harder stop (power cut) leaves its temporary folder: it is not the copy, and is not reused
    (photos.parent / ".tmp-small-16-dead").mkdir()
    (photos.parent / ".tmp-small-16-dead" / "pet_0.jpg").write_bytes(b"half")
    monkeypatch.setattr(folders, "resize_one", real)
    resize_folder(photos, dest, 16)
    assert len(list(dest.glob("*.jpg"))) == len(SIZES) and (dest / MARKER).is_file()


def test_a_folder_not_made_by_resize_folder_is_not_overwritten(photos):
    (photos.parent / "mine").mkdir()
    with pytest.raises(FileExistsError, match="not made by resize_folder"):
        resize_folder(photos, photos.parent / "mine", 16)


def test_an_undecodable_photo_is_reported_by_path(photos):
    bad = photos / "pet_broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(ImageDecodeError, match="1 of 11") as err:
        resize_folder(photos, photos.parent / "small-16", 16)
    assert str(bad) in str(err.value)
    assert not (photos.parent / "small-16").exists(), "nothing half-built is left to be reused"
    with pytest.raises(ImageDecodeError) as err:
        decode_at(sorted(photos.glob("*.jpg")))
    assert str(bad) in str(err.value)




def test_what_each_photo_returned_is_kept_with_the_copy(photos):
    def copy_and_measure(src, dest):
        with Image.open(src) as img:
            img.save(dest)
            return None if src.name == "pet_2.jpg" else {"w": img.size[0]}

    dest = folders.derive_folder(photos, photos.parent / "sized", copy_and_measure, {"what": "copy"}, "sizer",
                                 "copying", "copied")
    items = derived_items(dest, "sizer")
    assert items["pet_0.jpg"] == {"w": 40} and "pet_2.jpg" not in items and len(items) == len(SIZES) - 1
    with pytest.raises(FileNotFoundError, match="not made by other"):
        derived_items(dest, "other")
