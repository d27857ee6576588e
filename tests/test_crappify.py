"""helpers.crappify: the lesson's recipe (short side 96, JPEG quality 10..70 read back from the saved
quantization tables, the number drawn in the top-left quarter), reproducible per seed whatever the
build order; crappify_folder built atomically, reused, failures reported by path."""
import io
import json

import numpy as np
import pytest
from PIL import Image

from helpers import crappify as crappify_module
from helpers.crappify import crappify, crappify_folder, stamp_boxes
from helpers.data import ImageDecodeError

SIZES = [(150, 200), (200, 120), (128, 128), (110, 170), (180, 100), (160, 140)]


def photo(i: int, w: int, h: int) -> Image.Image:
    """A smooth, dark picture (so white text stands out) whose colour says which photo it is."""
    xs, ys = np.meshgrid(np.linspace(0, 120, w), np.linspace(0, 120, h))
    return Image.fromarray(np.stack([np.full((h, w), 15 * i), xs, ys], -1).astype(np.uint8))


@pytest.fixture
def photos(tmp_path):
    hr = tmp_path / "pets" / "images"
    (hr / "sub").mkdir(parents=True)
    for i, (w, h) in enumerate(SIZES):
        photo(i, w, h).save(hr / ("sub" if i == 0 else "") / f"pet_{i}.jpg", quality=95)
    return hr


def _tables(quality: int) -> dict:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buf, "JPEG", quality=quality)
    return Image.open(buf).quantization


TABLES = {q: _tables(q) for q in range(1, 101)}


def jpeg_quality(path) -> int:
    """The quality a JPEG was saved at, found from its quantization tables (PIL as the oracle)."""
    with Image.open(path) as img:
        assert img.format == "JPEG"
        found = [q for q, t in TABLES.items() if t == img.quantization]
    assert len(found) == 1, found
    return found[0]


def pixels(path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB")).astype(int)


# --- crappify ----------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_crappify_follows_the_recipe(tmp_path, mode):
    src, dest = tmp_path / "pet.png", tmp_path / "crappy.jpg"
    photo(3, 150, 200).convert(mode).save(src)
    q = crappify(src, dest)["quality"]
    with Image.open(dest) as img:
        assert img.size == (96, 128) and img.mode == "RGB"  # shorter side 96, aspect kept
    assert 10 <= q <= 70 and jpeg_quality(dest) == q
    with Image.open(src) as img:
        img.resize((300, 200)).save(src)
    crappify(src, dest)
    with Image.open(dest) as img:
        assert img.size == (144, 96)


def test_the_number_is_drawn_in_white_in_the_top_left_quarter(tmp_path):
    src, dest, plain = tmp_path / "pet.png", tmp_path / "crappy.jpg", tmp_path / "plain.jpg"
    photo(3, 150, 200).save(src)
    for seed in range(6):
        stamp = crappify(src, dest, seed=seed)
        # the same recipe without the text
        Image.open(src).convert("RGB").resize((96, 128), Image.BILINEAR).save(plain, "JPEG", quality=stamp["quality"])
        diff = np.abs(pixels(dest) - pixels(plain)).max(-1)
        ys, xs = np.nonzero(diff > 100)
        assert len(ys) > 5, "white text is drawn"
        left, top, right, bottom = stamp["box"]
        assert left <= xs.min() and xs.max() < right and top <= ys.min() and ys.max() < bottom, "the box holds the text"
        assert (right - left) * (bottom - top) < 300, "and little else"
        # glyphs start up to 3 px right of and 2 px below the point they are drawn at, and are ~10 px
        assert xs.min() <= 96 // 2 + 4 and ys.min() <= 128 // 2 + 4, "drawn at a point of the top-left quarter"
        assert xs.max() < 96 // 2 + 16 and ys.max() < 128 // 2 + 16, "a short number"
        assert (diff[128 // 2 + 24:] == 0).all(), "below it (and its JPEG blocks) the photo is untouched"


def test_quality_draws_cover_10_to_70_inclusive(tmp_path):
    src = tmp_path / "tiny.png"
    photo(0, 8, 8).save(src)
    qs = {crappify(src, tmp_path / "out.jpg", key=str(k), size=8)["quality"] for k in range(500)}
    assert qs == set(range(10, 71))


def test_crappify_is_deterministic_for_a_seed_and_key(tmp_path):
    src = tmp_path / "pet.png"
    photo(1, 120, 160).save(src)
    runs = [(crappify(src, tmp_path / f"{i}.jpg", seed=7), (tmp_path / f"{i}.jpg").read_bytes()) for i in range(2)]
    assert runs[0] == runs[1]
    others = {crappify(src, tmp_path / "x.jpg", seed=7, key=f"other/{k}")["quality"] for k in range(6)}
    assert len(others) > 1, "the key (the photo's relative path) changes the draws"


# --- crappify_folder ---------------------------------------------------------------------------
def _built(dest):
    return {p.relative_to(dest).as_posix(): p.read_bytes() for p in sorted(dest.rglob("*.jpg"))}


def test_crappify_folder_is_reproducible_whatever_the_order_and_seed_matters(photos):
    one = crappify_folder(photos, photos.parent / "crappy-a", seed=1, workers=1)
    many = crappify_folder(photos, photos.parent / "crappy-b", seed=1, workers=4)
    assert sorted(_built(one)) == ["pet_1.jpg", "pet_2.jpg", "pet_3.jpg", "pet_4.jpg", "pet_5.jpg", "sub/pet_0.jpg"]
    assert _built(one) == _built(many), "same seed: the same bytes, whatever the threads"
    assert all(min(Image.open(p).size) == 96 for p in one.rglob("*.jpg"))
    qualities = [jpeg_quality(p) for p in sorted(one.rglob("*.jpg"))]
    other = crappify_folder(photos, photos.parent / "crappy-c", seed=2)
    assert all(10 <= q <= 70 for q in qualities) and len(set(qualities)) > 1
    assert [jpeg_quality(p) for p in sorted(other.rglob("*.jpg"))] != qualities, "another seed, other qualities"
    marker = json.loads((other / ".crappify_folder.json").read_text())["params"]
    assert marker["seed"] == 2 and marker["size"] == 96 and marker["quality"] == [10, 70] and marker["files"] == 6
    boxes = stamp_boxes(other)
    assert sorted(boxes) == sorted(_built(other)) and all(len(b) == 4 for b in boxes.values())


def test_crappify_folder_reuses_and_rebuilds_on_another_seed(photos, monkeypatch):
    dest = crappify_folder(photos, photos.parent / "crappy")
    calls, real = [], crappify_module.crappify
    monkeypatch.setattr(crappify_module, "crappify", lambda *a: calls.append(a) or real(*a))
    assert crappify_folder(photos, dest) == dest and calls == [], "same parameters, same files: reused"
    crappify_folder(photos, dest, seed=3)
    assert len(calls) == len(SIZES) and json.loads((dest / ".crappify_folder.json").read_text())["params"]["seed"] == 3
    assert not list(photos.parent.glob(".tmp-*")), "no temporary folder left behind"


def test_an_interrupted_crappify_leaves_nothing(photos, monkeypatch):
    calls, real = [], crappify_module.crappify

    def interrupted(*args):
        calls.append(args)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(crappify_module, "crappify", interrupted)
    with pytest.raises(KeyboardInterrupt):
        crappify_folder(photos, photos.parent / "crappy", workers=1)
    assert not (photos.parent / "crappy").exists() and not list(photos.parent.glob(".tmp-*"))


def test_an_undecodable_photo_is_reported_by_path(photos):
    bad = photos / "sub" / "pet_broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(ImageDecodeError, match="1 of 7 image\\(s\\) could not be crappified") as err:
        crappify_folder(photos, photos.parent / "crappy")
    assert str(bad) in str(err.value)
    assert not (photos.parent / "crappy").exists(), "nothing half-built is left to be reused"


def test_a_folder_not_made_by_crappify_folder_is_not_overwritten(photos):
    (photos.parent / "mine").mkdir()
    with pytest.raises(FileExistsError, match="not made by crappify_folder"):
        crappify_folder(photos, photos.parent / "mine")
