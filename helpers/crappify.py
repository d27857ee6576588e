"""The lesson's ``crappify``: small, blocky, numbered copies of photos for a generator to repair. Introduced in
notebook 03 (superres-gan)::

    crappify_folder(path_hr, path_lr)   # the lesson's parallel(crappify, il.items)
    stamp_boxes(path_lr)                # where each number was drawn: scored apart
"""
from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageDraw

from helpers.folders import derive_folder, derived_items, short_side_size

QUALITY = (10, 70)  # the lesson's random.randint(10, 70): both ends included


def crappify(src: Path | str, dest: Path | str, seed: int = 42, key: str | None = None, size: int = 96) -> dict:
    """Save ``src`` as the lesson's crappy JPEG ``dest`` (shorter side ``size`` px, quality ``q`` in 10..70, ``q``
    written in white in the top-left quarter); returns ``{"quality": q, "box": [left, top, right, bottom]}``
    (notebook 03). Draws come from ``random.Random(f"{seed}:{key}")``; ``key`` defaults to the file name."""
    rng = random.Random(f"{seed}:{key or Path(src).name}")
    with Image.open(src) as img:
        img = img.convert("RGB").resize(short_side_size(*img.size, size), Image.BILINEAR)
    q = rng.randint(*QUALITY)
    w, h = img.size
    draw, at = ImageDraw.Draw(img), (rng.randint(0, w // 2), rng.randint(0, h // 2))
    draw.text(at, str(q), fill=(255, 255, 255))
    img.save(dest, "JPEG", quality=q)
    return {"quality": q, "box": [int(v) for v in draw.textbbox(at, str(q))]}


def crappify_folder(src: Path | str, dest: Path | str, seed: int = 42, size: int = 96,
                    workers: int | None = None) -> Path:
    """A crappified copy of every image below ``src``, same relative paths, in ``dest``; returns ``dest`` (notebook
    03). Built (in parallel, reused when up to date) by ``derive_folder``; bad images raise ``ImageDecodeError``."""
    src = Path(src)
    return derive_folder(src, dest, lambda s, d: crappify(s, d, seed, s.relative_to(src).as_posix(), size),
                         {"recipe": "crappify", "size": size, "quality": list(QUALITY), "seed": seed},
                         "crappify_folder", f"crappifying to {size} px", "crappified", workers)


def stamp_boxes(path_lr: Path | str) -> dict[str, tuple[int, int, int, int]]:
    """{path: (left, top, right, bottom)}, right/bottom exclusive, of each number drawn by ``crappify_folder``
    (notebook 03)."""
    return {k: tuple(v["box"]) for k, v in derived_items(path_lr, "crappify_folder").items()}
