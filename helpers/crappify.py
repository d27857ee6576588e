"""The lesson's ``crappify``: small, blocky, numbered copies of photos for a generator to repair (notebook 03)."""

import random
from pathlib import Path

from PIL import Image, ImageDraw

from helpers.folders import derive_folder, derived_items
from helpers.photos import convert_image, short_side_size

QUALITY = (10, 70)  # the lesson's random.randint(10, 70): both ends included


def crappify(src: Path | str, dest: Path | str, seed: int = 42, key: str | None = None, size: int = 96) -> dict:
    """Save ``src`` as the lesson's crappy JPEG ``dest`` (shorter side ``size``, quality ``q`` in 10..70 written in the
    top-left quarter); returns ``{"quality": q, "box": [l, t, r, b]}``, seeded by ``seed`` and ``key`` (notebook 03)."""
    rng = random.Random(f"{seed}:{key or Path(src).name}")
    with Image.open(src) as img:
        img = convert_image(img, "RGB").resize(short_side_size(*img.size, size), Image.BILINEAR)
    q = rng.randint(*QUALITY)
    w, h = img.size
    draw, at = ImageDraw.Draw(img), (rng.randint(0, w // 2), rng.randint(0, h // 2))
    draw.text(at, str(q), fill=(255, 255, 255))
    img.save(dest, "JPEG", quality=q)
    return {"quality": q, "box": [int(v) for v in draw.textbbox(at, str(q))]}


def crappify_folder(src: Path | str, dest: Path | str, seed: int = 42, size: int = 96,
                    workers: int | None = None) -> Path:
    """A crappified copy of every image below ``src`` in ``dest`` (``derive_folder``); returns it (notebook 03)."""
    src = Path(src)
    return derive_folder(src, dest, lambda s, d: crappify(s, d, seed, s.relative_to(src).as_posix(), size),
                         {"recipe": "crappify", "size": size, "quality": list(QUALITY), "seed": seed},
                         "crappify_folder", f"crappifying to {size} px", "crappified", workers)


def stamp_boxes(path_lr: Path | str) -> dict[str, tuple[int, int, int, int]]:
    """{path: (left, top, right, bottom), right/bottom exclusive}: where ``crappify_folder`` drew (notebook 03)."""
    return {k: tuple(v["box"]) for k, v in derived_items(path_lr, "crappify_folder").items()}
