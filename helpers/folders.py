"""Derived folders: every photo of a folder remade by one function, in parallel and atomically, reused when complete
and made the same way (notebook 05; notebooks 03 and 07 too)."""

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from itertools import repeat
from pathlib import Path
from typing import Callable

from PIL import Image

from helpers import config
from helpers.data import ImageList
from helpers.files import building
from helpers.photos import raise_failures, short_side_size
from helpers.progress import progress_bar


def resize_one(src: Path | str, dest: Path | str, size: int, quality: int = 60) -> None:
    """Save ``src`` as ``dest``, RGB JPEG ``quality``, shorter side ``size`` (bilinear, aspect kept) (notebook 05)."""
    with Image.open(src) as img:
        img.convert("RGB").resize(short_side_size(*img.size, size), Image.BILINEAR).save(dest, quality=quality)


def _make_or_error(make_one: Callable[[Path, Path], object], src: Path, dest: Path) -> tuple[str | None, object]:
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        return None, make_one(src, dest)
    except Exception as exc:  # noqa: BLE001 - every failure is reported by path
        return f"{src}: {type(exc).__name__}: {exc}", None


def derive_folder(src: Path | str, dest: Path | str, make_one: Callable[[Path, Path], object], params: dict,
                  maker: str, desc: str, what: str, workers: int | None = None) -> Path:
    """``make_one(src_file, dest_file)`` for every image below ``src``, same relative paths in ``dest``; returns it
    (notebooks 05, 03). Built by threads (bar ``desc``) in a temporary folder, with a marker ``.<maker>.json`` of
    ``params``, sources and non-None results (``derived_items``); a matching ``dest`` is reused, one by ``maker`` with
    other parameters rebuilt, any other raises ``FileExistsError``; failures raise ``ImageDecodeError``."""
    src, dest = Path(src), Path(dest)
    items = ImageList.from_folder(src).items
    listing = "".join(f"{p.relative_to(src)}:{p.stat().st_size}\n" for p in items)
    params = {"source": os.path.relpath(src, dest.parent), **params, "files": len(items),
              "files_sha1": hashlib.sha1(listing.encode()).hexdigest()}
    marker = f".{maker}.json"
    if dest.exists():
        if not (dest / marker).is_file():
            raise FileExistsError(f"{dest} exists but was not made by {maker} (no {marker}); "
                                  f"remove it or choose another folder")
        if json.loads((dest / marker).read_text()).get("params") == params:
            return dest
        print(f"{dest.name}: made with other parameters or from other files; rebuilding")
    with building(dest) as new:
        pool = ThreadPoolExecutor(workers or config.cpu_count())  # PIL decodes, resizes and encodes outside the GIL
        try:
            jobs = pool.map(_make_or_error, repeat(make_one), items, [new / p.relative_to(src) for p in items])
            results = list(progress_bar(jobs, total=len(items), desc=desc))
        finally:
            pool.shutdown(cancel_futures=True)  # interrupted: the photos not yet started are dropped
        raise_failures([err for err, _ in results if err is not None], len(items), what)
        made = {p.relative_to(src).as_posix(): value for p, (_, value) in zip(items, results) if value is not None}
        (new / marker).write_text(json.dumps({"params": params, "items": made}) + "\n")
    return dest


def derived_items(dest: Path | str, maker: str) -> dict:
    """What ``make_one`` returned per file when ``maker`` built ``dest``; ``FileNotFoundError`` if not (notebook 03)."""
    marker = Path(dest) / f".{maker}.json"
    if not marker.is_file():
        raise FileNotFoundError(f"{dest} was not made by {maker} (no {marker.name})")
    return json.loads(marker.read_text())["items"]


def resize_folder(src: Path | str, dest: Path | str, size: int, quality: int = 60, workers: int | None = None) -> Path:
    """A copy of every image below ``src``, shorter side ``size``, in ``dest``; returns it (notebook 05)."""
    return derive_folder(src, dest, lambda s, d: resize_one(s, d, size, quality),
                         {"size": size, "quality": quality, "resample": "bilinear"}, "resize_folder",
                         f"resizing to {size} px", "resized", workers)
