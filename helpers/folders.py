"""Derived folders: a copy of every photo of a folder, each made by one function, built in parallel and
atomically, reused only when complete and made the same way.

Introduced in notebook 05 (superres) with ``resize_folder`` (the lesson's ``resize_one``); notebook 03
(superres-gan) makes its crappified copies (``helpers.crappify``) and notebook 07 (deoldify) its gray
copies (``helpers.color``) the same way::

    resize_folder(path_hr, path_lr, 96)
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from itertools import repeat
from pathlib import Path
from typing import Callable

from PIL import Image

from helpers import config
from helpers.data import ImageList, raise_failures
from helpers.progress import progress_bar

def short_side_size(w: int, h: int, size: int) -> tuple[int, int]:
    """(width, height) with the shorter side ``size`` and the aspect kept, the longer side rounded: the
    lesson's ``resize_to(img, size, use_min=True)`` (notebook 05)."""
    scale = size / min(w, h)
    return (size, round(h * scale)) if w <= h else (round(w * scale), size)


def resize_one(src: Path | str, dest: Path | str, size: int, quality: int = 60) -> None:
    """Save ``src`` as ``dest`` with its shorter side ``size`` px (aspect kept, enlarged if smaller),
    bilinear, RGB; JPEG files at ``quality`` (notebook 05)."""
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
    """``make_one(src_file, dest_file)`` for every image below ``src``, under the same relative paths in
    ``dest``; returns ``dest``. The machinery of ``resize_folder`` (notebook 05) and ``crappify_folder``
    (notebook 03).

    Built in parallel threads with a progress bar (``desc``), in a temporary folder beside ``dest`` that
    is renamed into place only when every image is done, with a marker file ``.<maker>.json`` holding
    ``params``, the source folder, the list of source files and, under ``"items"``, what ``make_one``
    returned for each file (when not None; see ``derived_items``). ``dest`` is reused when its marker's
    parameters match; built by ``maker`` with other parameters, it is rebuilt; any other existing folder
    is an error. An interrupted build leaves no ``dest`` behind, so it is never reused. Images that fail
    are all reported by path (``ImageDecodeError``: "could not be ``what``").
    """
    src, dest = Path(src), Path(dest)
    items = ImageList.from_folder(src).items
    names = hashlib.sha1()
    for p in items:
        names.update(f"{p.relative_to(src)}:{p.stat().st_size}\n".encode())
    params = {"source": os.path.relpath(src, dest.parent), **params, "files": len(items),
              "files_sha1": names.hexdigest()}
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
    """What ``make_one`` returned for each file when ``maker`` built ``dest`` (``derive_folder``), by
    relative path, e.g. where ``crappify`` stamped its number (notebook 03)."""
    marker = Path(dest) / f".{maker}.json"
    if not marker.is_file():
        raise FileNotFoundError(f"{dest} was not made by {maker} (no {marker.name})")
    return json.loads(marker.read_text())["items"]


@contextmanager
def building(dest: Path | str):
    """Yields a fresh temporary folder beside ``dest``; when the block ends without an error the folder
    replaces ``dest`` (an older ``dest`` goes), otherwise it is removed and ``dest`` stays as it was
    (notebook 05). Nothing half-written is ever found at ``dest``."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".tmp-{dest.name}-", dir=dest.parent))
    try:
        new = work / dest.name
        new.mkdir()
        yield new
        if dest.exists():  # the old copy leaves with the temporary folder
            os.replace(dest, work / "old")
        os.replace(new, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def resize_folder(src: Path | str, dest: Path | str, size: int, quality: int = 60,
                  workers: int | None = None) -> Path:
    """A copy of every image below ``src`` with its shorter side ``size`` px (``resize_one``), under the
    same relative paths in ``dest``; returns ``dest`` (notebook 05).

    Built by ``derive_folder``: in parallel, atomically, with a marker file holding the parameters
    (source, size, quality, the list of source files); reused when the marker matches, rebuilt when this
    function made it with other parameters; images that fail are all reported by path
    (``ImageDecodeError``).
    """
    return derive_folder(src, dest, lambda s, d: resize_one(s, d, size, quality),
                         {"size": size, "quality": quality, "resample": "bilinear"}, "resize_folder",
                         f"resizing to {size} px", "resized", workers)
