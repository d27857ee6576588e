"""Derived folders: every photo of a folder remade by one function, in parallel and atomically, reused when complete
and made the same way (notebook 05; notebooks 03 and 07 too)."""

import hashlib
import json
import os
import random
import shutil
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from itertools import repeat
from pathlib import Path
from typing import Callable

from PIL import Image

from helpers import config
from helpers.data import IMAGE_EXTENSIONS, ImageList
from helpers.files import building, locked
from helpers.photos import ImageDecodeError, convert_image, raise_failures, short_side_size, shrunk_size
from helpers.progress import Progress, progress_bar


def resize_one(src: Path | str, dest: Path | str, size: int, quality: int = 60) -> None:
    """Save ``src`` as ``dest``, RGB JPEG ``quality``, shorter side ``size`` (bilinear, aspect kept) (notebook 05)."""
    with Image.open(src) as img:
        convert_image(img, "RGB").resize(short_side_size(*img.size, size), Image.BILINEAR).save(dest, quality=quality)


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
    params = {"source": os.path.relpath(src, dest.parent), **params, **_listing(src, items, times=False)}
    marker = f".{maker}.json"
    if _made_as(dest, maker, params) is not None:
        return dest
    with building(dest) as new, _thread_pool(workers) as pool:
        jobs = pool.map(_make_or_error, repeat(make_one), items, [new / p.relative_to(src) for p in items])
        results = list(progress_bar(jobs, total=len(items), desc=desc))
        raise_failures([err for err, _ in results if err is not None], len(items), what)
        made = {p.relative_to(src).as_posix(): value for p, (_, value) in zip(items, results) if value is not None}
        (new / marker).write_text(json.dumps({"params": params, "items": made}) + "\n")
    return dest


def _listing(src: Path, files: list[Path], times: bool) -> dict:
    """``{"files": count, "files_sha1": digest}`` of ``files``' names below ``src``, sizes and (``times``) mtimes:
    what a derived folder's record compares to know that its source changed."""
    lines = "".join(f"{p.relative_to(src)}:{p.stat().st_size}" + (f":{p.stat().st_mtime_ns}" if times else "") + "\n"
                    for p in files)
    return {"files": len(files), "files_sha1": hashlib.sha1(lines.encode("utf-8", "surrogateescape")).hexdigest()}


@contextmanager
def _thread_pool(workers: int | None):
    """Threads for PIL, which decodes, resizes and encodes outside the GIL; on leaving (interrupted too), the photos
    not yet started are dropped."""
    pool = ThreadPoolExecutor(workers or config.cpu_count())
    try:
        yield pool
    finally:
        pool.shutdown(cancel_futures=True)


def _made_as(dest: Path, maker: str, params: dict) -> dict | None:
    """``dest``'s marker record if ``maker`` made it with ``params``; None if it must be (re)built (saying why when it
    exists); ``FileExistsError`` for a folder ``maker`` did not make."""
    marker = dest / f".{maker}.json"
    if not dest.exists():
        return None
    if not marker.is_file():
        raise FileExistsError(f"{dest} exists but was not made by {maker} (no {marker.name}); "
                              f"remove it or choose another folder")
    record = json.loads(marker.read_text())
    if record.get("params") == params:
        return record
    print(f"{dest.name}: made with other parameters or from other files; rebuilding")
    return None


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


def _usable_copy(src: Path, dest: Path, short_side: int | None) -> None:
    """``src`` decoded in full (a truncated file fails here) and put at ``dest``: linked (or copied) when it is an RGB
    or gray JPEG or PNG no larger than ``short_side``, else converted to RGB, shrunk and saved (JPEG quality 90)."""
    with Image.open(src) as img:
        img.load()
        size = shrunk_size(*img.size, short_side)
        if img.mode in ("RGB", "L") and img.format in ("JPEG", "PNG") and size == img.size:
            try:
                os.link(src, dest)
            except OSError:  # another file system, or links not allowed
                shutil.copyfile(src, dest)
            return
        convert_image(img, "RGB").resize(size, Image.BILINEAR).save(dest, quality=90)


def photo_sample(src: Path | str, n: int | None = None, short_side: int | None = None, seed: int = 42,
                 dest: Path | str | None = None, workers: int | None = None) -> Path:
    """The photos below ``src`` that decode, as a folder ``dest`` (default ``<src>-<n>`` or ``<src>-all``) with the
    same relative names: all of them, or a fixed sample of ``n`` (drawn with ``seed``, not the run's seed, from the
    files in the same order on every system), RGB or gray (a GIF keeps its palette, which every reader converts),
    shorter side at most ``short_side``. Files that are not images or do not decode are skipped and named in one line,
    every time it is called; built once, atomically, one process at a time, and rebuilt when ``src``'s files change
    (notebook 05)."""
    src = Path(src).absolute()  # not resolve(): a dataset folder that is a link keeps its own path
    if not src.is_dir():
        raise FileNotFoundError(f"no such folder: {src}")
    if n is not None and n < 1:
        raise ValueError(f"n={n}: give the number of photos to sample, or None for all of them")
    dest = Path(dest) if dest is not None else src.with_name(f"{src.name}-{n or 'all'}")
    files = sorted((p for p in src.rglob("*") if p.is_file() and not any(part.startswith(".") for part in
                                                                         p.relative_to(src).parts)),
                   key=lambda p: p.relative_to(src).as_posix())  # not Path order, which ignores case on Windows
    params = {"source": os.path.relpath(src, dest.parent), "n": n, "short_side": short_side, "seed": seed,
              **_listing(src, files, times=True)}
    with locked(dest.parent / f".{dest.name}.lock", f"building {dest.name}"):
        record = _made_as(dest, "photo_sample", params)
        if record is None:
            record = _build_sample(src, dest, files, params, workers)
    _say_skipped(record["skipped"], len(files), src)
    if n is not None and len(record["items"]) < n:
        print(f"{dest.name}: only {len(record['items']):,} usable photos below {src.name}/, fewer than the {n:,} asked")
    return dest


def _build_sample(src: Path, dest: Path, files: list[Path], params: dict, workers: int | None) -> dict:
    """Build ``photo_sample``'s folder: photos in a seeded order, copied until ``n`` decode; returns its record."""
    n, short_side = params["n"], params["short_side"]
    images = [p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS]
    skipped = {p.relative_to(src).as_posix(): "not an image" for p in files if p.suffix.lower() not in IMAGE_EXTENSIONS}
    random.Random(params["seed"]).shuffle(order := list(images))
    wanted, made = (min(n, len(images)) if n else len(images)), []
    with building(dest) as new, Progress(wanted, f"checking and copying {wanted:,} photos") as bar:
        with _thread_pool(workers) as pool:
            while order and len(made) < wanted:  # a photo that fails to decode is replaced by the next in the order
                take, order = order[:wanted - len(made)], order[wanted - len(made):]
                jobs = pool.map(_make_or_error, repeat(lambda s, d: _usable_copy(s, d, short_side)), take,
                                [new / p.relative_to(src) for p in take])
                for p, (err, _) in zip(take, jobs):
                    if err is None:
                        made.append(p.relative_to(src).as_posix())
                        bar.update()
                    else:
                        skipped[p.relative_to(src).as_posix()] = err[len(str(p)) + 2:]
        if not made:
            why = "; ".join(f"{k}: {v}" for k, v in list(skipped.items())[:10]) or "it holds no files"
            raise ImageDecodeError(f"no usable photos below {src}: {why}")
        record = {"params": params, "items": sorted(made), "skipped": dict(sorted(skipped.items()))}
        (new / ".photo_sample.json").write_text(json.dumps(record) + "\n")
    return record


def _say_skipped(skipped: dict[str, str], total: int, src: Path) -> None:
    """One line naming and counting the files ``photo_sample`` skipped."""
    if skipped:
        names = "; ".join(f"{name} ({why[:60]})" for name, why in list(skipped.items())[:10])
        more = f"; and {len(skipped) - 10} more" if len(skipped) > 10 else ""
        print(f"skipped {len(skipped)} of {total:,} files in {src.name}/: {names}{more}")
