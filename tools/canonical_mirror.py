"""A mirror whose pets and old-photograph archives are shaped like the canonical downloads, made from the small
profile's samples of the pets and old photographs (the mirror's, or the downloads), so that the tests take the path
a learner with internet takes (`make test-canonical`).

    python tools/canonical_mirror.py OUT

The canonical `oxford-iiit-pet` archive holds 7,390 photos at their original sizes with `annotations/` beside
`images/`, `.mat` files among the photos, and some files that are gray, CMYK or carry an alpha channel; DeOldify's
`test_images` holds 285 photographs at their original sizes. OUT gets `oxford-iiit-pet.tgz` and `old_photos.tgz`
with each of those traits, more photos than the small profile's samples, one truncated JPEG and one photograph with a
longer side of 3,200 px, and a SHA256SUMS. The samples come through `untar_data` (HELPERS_MIRROR, or the download).
"""

import argparse
import sys
import tarfile
import tempfile
from pathlib import Path

from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helpers.data import ImageList  # noqa: E402 (after the path insert, for a run from any folder)
from helpers.download import sha256_file, untar_data  # noqa: E402
from helpers.files import atomic_write  # noqa: E402
from helpers.folders import photo_sample  # noqa: E402

EXTRA_PETS = 352  # 998 + 352 = 1,350 photos before the odd files: more than the small profile's 998
EXTRA_OLD = 20  # 49 + 20 old photographs: more than the small profile's 49
LARGE_SIDE = 3200  # the longer side of one old photograph: a 10-megapixel scan


def _extras(photos: list[Path], n: int, dest: Path, name) -> None:
    """``n`` more photos made from ``photos`` (mirrored, every other one enlarged 2x, as the originals are larger)."""
    for i in range(n):
        with Image.open(photos[i % len(photos)]) as img:
            img = ImageOps.mirror(img.convert("RGB"))
            if i % 2:
                img = img.resize((img.width * 2, img.height * 2), Image.BICUBIC)
            img.save(dest / name(i, photos[i % len(photos)]), quality=90)


def _odd_pets(photos: list[Path], images: Path) -> None:
    """The canonical folder's odd files: a .mat file, CMYK, gray, RGBA saved as PNG under a .jpg name, a truncated JPEG."""
    (images / "Abyssinian_100.mat").write_bytes(b"MATLAB 5.0 MAT-file, not an image\n" + bytes(200))
    with Image.open(photos[0]) as img:
        img.convert("CMYK").save(images / "Bengal_900.jpg", quality=90)
        img.convert("L").save(images / "Bengal_901.jpg", quality=90)
        rgba = img.convert("RGBA")
        rgba.putalpha(200)
        rgba.save(images / "Bengal_902.jpg", format="PNG")  # a PNG under a .jpg name, as some canonical files are
    data = photos[1].read_bytes()
    (images / "Bengal_903.jpg").write_bytes(data[: len(data) // 2])


def pets_tree(root: Path) -> Path:
    """``root/oxford-iiit-pet/{images,annotations}`` shaped like the canonical archive; returns the folder."""
    photos = ImageList.from_folder(photo_sample(untar_data("oxford-iiit-pet") / "images", 998, 256)).items
    images, annotations = root / "oxford-iiit-pet" / "images", root / "oxford-iiit-pet" / "annotations"
    images.mkdir(parents=True)
    (annotations / "trimaps").mkdir(parents=True)
    for p in photos:
        (images / p.name).write_bytes(p.read_bytes())
    _extras(photos, EXTRA_PETS, images, lambda i, p: f"{p.stem.rsplit('_', 1)[0]}_{1000 + i}.jpg")
    _odd_pets(photos, images)
    lines = [f"{p.stem} {i % 37 + 1} {1 if p.stem[0].isupper() else 2} 1" for i, p in enumerate(photos)]
    (annotations / "list.txt").write_text("#Image CLASS-ID SPECIES BREED ID\n" + "\n".join(lines) + "\n")
    for p in photos[:3]:  # a trimap or two, as the canonical annotations hold one per photo
        with Image.open(p) as img:
            Image.new("L", img.size, 2).save(annotations / "trimaps" / f"{p.stem}.png")
    return root / "oxford-iiit-pet"


def old_photos_tree(root: Path) -> Path:
    """``root/old_photos`` with more photographs than the mirror's and one of ``LARGE_SIDE`` px; returns it."""
    photos = ImageList.from_folder(photo_sample(untar_data("old_photos"), 49)).items
    folder = root / "old_photos"
    folder.mkdir(parents=True)
    for p in photos:
        (folder / p.name).write_bytes(p.read_bytes())
    _extras(photos, EXTRA_OLD, folder, lambda i, p: f"{p.stem}_copy{i}.jpg")
    with Image.open(photos[0]) as img:
        scale = LARGE_SIDE / max(img.size)
        img.resize((round(img.width * scale), round(img.height * scale)), Image.BICUBIC).save(
            folder / "zz_large_scan.jpg", quality=85)
    return folder


def build(out: Path) -> Path:
    """Both archives and their SHA256SUMS in ``out``; returns it."""
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in (("oxford-iiit-pet", pets_tree), ("old_photos", old_photos_tree)):
            folder = make(Path(tmp) / name)
            archive = atomic_write(out / f"{name}.tgz", lambda t, f=folder: _pack(t, f))
            lines.append(f"{sha256_file(archive)}  {archive.name}\n")
            print(f"{archive.name}: {sum(1 for p in folder.rglob('*') if p.is_file()):,} files, "
                  f"{archive.stat().st_size / 2**20:.1f} MiB")
    atomic_write(out / "SHA256SUMS", lambda t: t.write_text("".join(lines)))
    return out


def _pack(tmp: Path, folder: Path) -> None:
    with tarfile.open(tmp, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the mirror folder to write")
    build(parser.parse_args(argv).out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
