"""helpers.folders.photo_sample and helpers.photos.convert_image: whatever a photo folder holds (the mirror's clean
sample or a canonical download with odd files), the small profile gets the same number of usable RGB photos, the
files it cannot use are named in one line, and a clean folder's photos come through byte for byte."""
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import SIZES, photo
from helpers.folders import photo_sample
from helpers.photos import ImageDecodeError, convert_image, read_image


def odd_files(folder):
    """The canonical pets folder's oddities, added to ``folder``: returns the names that cannot be used."""
    base = photo(1, 60, 40)
    base.convert("CMYK").save(folder / "cmyk.jpg", quality=95)
    base.convert("L").save(folder / "gray.jpg", quality=95)
    rgba = base.convert("RGBA")
    rgba.putalpha(128)
    rgba.save(folder / "alpha.jpg", format="PNG")  # a PNG under a .jpg name
    Image.fromarray((np.arange(40 * 60).reshape(40, 60) * 20).astype(np.uint16)).save(folder / "deep.png")
    base.convert("P").save(folder / "palette.gif")
    (folder / "Abyssinian_100.mat").write_bytes(b"MATLAB 5.0 MAT-file" + bytes(64))
    data = (folder / "pet_0.jpg").read_bytes()
    (folder / "broken.jpg").write_bytes(data[: len(data) // 2])
    return {"Abyssinian_100.mat", "broken.jpg"}


def test_convert_image_gives_rgb_for_every_mode():
    base = photo(3, 30, 20)
    deep = Image.fromarray((np.full((20, 30), 40000)).astype(np.uint16))
    cases = {"RGB": base, "CMYK": base.convert("CMYK"), "L": base.convert("L"), "LA": base.convert("LA"),
             "RGBA": base.convert("RGBA"), "P": base.convert("P"), "I;16": deep, "I": deep.convert("I")}
    for mode, img in cases.items():
        out = convert_image(img, "RGB")
        assert out.mode == "RGB" and out.size == (30, 20), mode
    assert np.asarray(convert_image(deep, "RGB")).max() == round(40000 * 255 / 65535)  # scaled, not clipped to 255
    assert np.array_equal(np.asarray(convert_image(base, "RGB")), np.asarray(base))


def test_a_palette_with_transparency_converts_without_a_warning():
    pal = photo(3, 30, 20).convert("P")
    pal.info["transparency"] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PIL's "should be converted to RGBA" would go to a notebook's stderr
        assert convert_image(pal, "RGB").mode == "RGB"


def test_sample_of_a_clean_folder_is_every_photo_byte_for_byte(photos):
    dest = photo_sample(photos, n=len(SIZES), short_side=256)
    names = sorted(p.name for p in dest.glob("*.jpg"))
    assert names == sorted(p.name for p in photos.glob("*.jpg"))
    assert all((dest / n).read_bytes() == (photos / n).read_bytes() for n in names)  # the same pixels: same metrics
    assert dest.name == "images-10"


def test_sample_skips_what_it_cannot_use_in_one_line_and_keeps_the_count(photos, capsys):
    bad = odd_files(photos)
    n_photos = len(list(photos.iterdir())) - len(bad)
    dest = photo_sample(photos, n=n_photos, short_side=256)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith(f"skipped 2 of {n_photos + 2} files in images/")
    assert all(name in out[0] for name in bad) and "truncated" in out[0].lower() and "not an image" in out[0]
    made = sorted(p.name for p in dest.iterdir() if not p.name.startswith("."))
    assert len(made) == n_photos and not bad & set(made)
    for name in made:  # every one decodes, as RGB or gray (a GIF keeps its palette), whatever it was stored as
        with Image.open(dest / name) as img:
            img.load()
            assert img.mode in (("RGB", "L", "P") if name.endswith(".gif") else ("RGB", "L")), name
        assert read_image(dest / name).shape[0] == 3
    photo_sample(photos, n=n_photos, short_side=256)  # reused: the same line again, from the record
    assert capsys.readouterr().out.strip().startswith("skipped 2 of")


def test_a_broken_photo_in_the_sample_is_replaced_by_the_next_one(photos):
    odd_files(photos)
    for seed in range(6):  # some of these seeds draw broken.jpg into the first n
        dest = photo_sample(photos, n=8, seed=seed, dest=photos.parent / f"s{seed}")
        record = json.loads((dest / ".photo_sample.json").read_text())
        assert len(record["items"]) == 8 and "broken.jpg" not in record["items"]
    drawn = [json.loads((photos.parent / f"s{s}" / ".photo_sample.json").read_text())["skipped"] for s in range(6)]
    assert any("broken.jpg" in d for d in drawn) and not all("broken.jpg" in d for d in drawn)


def test_sample_is_fixed_shrinks_large_photos_and_ignores_the_run_seed(photos, monkeypatch):
    monkeypatch.setenv("HELPERS_SEED", "7")
    a = photo_sample(photos, n=4, short_side=30, dest=photos.parent / "a")
    monkeypatch.setenv("HELPERS_SEED", "8")
    b = photo_sample(photos, n=4, short_side=30, dest=photos.parent / "b")
    names = sorted(p.name for p in a.glob("*.jpg"))
    assert len(names) == 4 and names == sorted(p.name for p in b.glob("*.jpg"))
    for n in names:
        with Image.open(a / n) as img:
            assert min(img.size) <= 30


def test_sample_is_rebuilt_when_a_source_photo_changes(photos, capsys):
    dest = photo_sample(photos, n=3, short_side=256)
    before = json.loads((dest / ".photo_sample.json").read_text())["items"]
    photo(0, 40, 56).save(photos / before[0], quality=50)  # same name, other bytes
    os.utime(photos / before[0], ns=(1, 1))
    photo_sample(photos, n=3, short_side=256)
    assert "rebuilding" in capsys.readouterr().out
    assert (dest / before[0]).read_bytes() == (photos / before[0]).read_bytes()


def test_a_folder_with_no_usable_photo_says_so(tmp_path):
    folder = tmp_path / "junk"
    folder.mkdir()
    (folder / "notes.txt").write_text("no photos here")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff not really")
    with pytest.raises(ImageDecodeError, match="no usable photos below .*junk"):
        photo_sample(folder, n=5)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        photo_sample(tmp_path / "missing", n=5)
    assert not (tmp_path / "missing").exists()
    with pytest.raises(ValueError, match="n=0"):
        photo_sample(folder, n=0)


def test_asking_for_more_photos_than_there_are_says_so(photos, capsys):
    dest = photo_sample(photos, n=50)
    assert len(list(dest.glob("*.jpg"))) == len(SIZES)
    assert f"only {len(SIZES)} usable photos below images/, fewer than the 50 asked" in capsys.readouterr().out


def test_a_photo_on_another_file_system_is_copied(photos, monkeypatch):
    def no_links(src, dest):
        raise OSError(18, "Invalid cross-device link")
    monkeypatch.setattr(os, "link", no_links)
    dest = photo_sample(photos, n=3, short_side=256)
    made = [p for p in dest.glob("*.jpg")]
    assert len(made) == 3 and all(p.read_bytes() == (photos / p.name).read_bytes() for p in made)
    assert all(p.stat().st_ino != (photos / p.name).stat().st_ino for p in made)


def test_a_dataset_folder_that_is_a_link_keeps_its_own_path(photos, tmp_path):
    """`make standin` links the datasets of data/ into a data folder of its own: paths stay under the link."""
    linked = tmp_path / "elsewhere" / "pets"
    linked.parent.mkdir()
    linked.symlink_to(photos.parent)
    dest = photo_sample(linked / "images", n=3)
    assert dest == linked / "images-3" and dest.relative_to(linked.parent) == Path("pets/images-3")
