"""The lesson's ``crappify``: small, blocky, numbered copies of photos for a generator to repair.

Introduced in notebook 03 (superres-gan). Each photo is shrunk so its shorter side is 96 px, a JPEG
quality ``q`` is drawn from 10..70, the number ``q`` is written in white somewhere in the top-left
quarter, and the photo is saved at quality ``q``::

    crappify_folder(path_hr, path_lr)   # the lesson's parallel(crappify, il.items)
    stamp_boxes(path_lr)                # where each number was drawn: scored apart (notebook 03)

The lesson drew from Python's global random state; here every photo draws from its own generator,
seeded by ``seed`` and the photo's relative path, so a folder is the same whatever the order or the
number of threads that build it.
"""
from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageDraw

from helpers.folders import derive_folder, derived_items, short_side_size

QUALITY = (10, 70)  # the lesson's random.randint(10, 70): both ends included


def crappify(src: Path | str, dest: Path | str, seed: int = 42, key: str | None = None,
             size: int = 96) -> dict:
    """Save ``src`` as a crappy JPEG ``dest``; returns ``{"quality": q, "box": [left, top, right, bottom]}``,
    the quality it drew and the pixels the number covers (PIL's ``textbbox``) (notebook 03).

    The lesson's recipe: shorter side ``size`` px (bilinear, aspect kept), RGB, ``q`` uniform in
    10..70, ``str(q)`` drawn in white with PIL's default font at a random point of the top-left
    quarter, saved as JPEG at quality ``q``. The draws come from ``random.Random(f"{seed}:{key}")``;
    ``key`` defaults to the file name (``crappify_folder`` passes the relative path).
    """
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
    """A crappified copy (``crappify``) of every image below ``src``, under the same relative paths in
    ``dest``; returns ``dest`` (notebook 03).

    Built by ``derive_folder``: in parallel threads with a progress bar, atomically, reused when
    present with the same parameters (seed, size, source files) and rebuilt otherwise; images that fail
    are all reported by path (``ImageDecodeError``). What ``crappify`` returns for each photo is kept
    with the copy (``stamp_boxes``).
    """
    src = Path(src)
    return derive_folder(src, dest, lambda s, d: crappify(s, d, seed, s.relative_to(src).as_posix(), size),
                         {"recipe": "crappify", "size": size, "quality": list(QUALITY), "seed": seed},
                         "crappify_folder", f"crappifying to {size} px", "crappified", workers)


def stamp_boxes(path_lr: Path | str) -> dict[str, tuple[int, int, int, int]]:
    """Where ``crappify_folder`` drew each photo's number: {relative path: (left, top, right, bottom)} in
    the crappy photo's pixels, right and bottom exclusive (notebook 03)."""
    return {k: tuple(v["box"]) for k, v in derived_items(path_lr, "crappify_folder").items()}
