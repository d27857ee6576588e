"""The data paths of the GPU issue, before and after, side by side on this machine:

- ``loaders``: ms per training batch of notebook 05's and 03's image-pair loaders (128 px, batch 32, the
  998 pets) and of notebook 04's WGAN loader (64 px, batch 128), median over 25 batches after 3 warm-up
  ones. "before" is the per-item path of commit 081945d (each photo moved and cut alone, two roi_align per
  photo; WGAN photos cropped one by one), "after" the batched one (``helpers.augment.cut``, one
  grid_sample per batch; ``helpers.photos.random_squares``), with the same transforms as before (window,
  zoom, flip) and, for the pairs, also with all of fastai's (rotation, warp, lighting).
- ``decode``: a folder of generated JPEGs (``--photos``, 256 x 341 like the lesson's LSUN sample) decoded
  for a 64-px GAN: photos per second and the peak resident memory the decoding added, before (081945d's
  ``gan_images``: processes, a list of arrays, a copy each) and after (``PhotoStack.decode``: headers first,
  one tensor, threads, PIL's ``draft``), against the size of the final tensor.

"before" runs in a subprocess on a checkout of 081945d (``git worktree``), "after" on this checkout; each
measurement in its own process, one after another. Run it alone: it times things.

    HELPERS_MIRROR=file://$PWD/../shared/datasets .venv/bin/python benchmarks/data_paths.py loaders decode
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "081945d"


def _loader_times(impl: str, which: str) -> dict:
    """In this process: ms per batch of one loader."""
    import torch
    from helpers.download import untar_data
    torch.manual_seed(0)
    path = untar_data("oxford-iiit-pet")
    if which == "wgan":
        from helpers.data import ImageList, gan_databunch
        dl = gan_databunch(ImageList.from_folder(path / "images"), size=64, bs=128, device=torch.device("cpu"))
    else:
        if impl == "before":
            from helpers.imagedata import image_pair_data, resize_folder
            from helpers.crappify import crappify_folder
        else:
            from helpers.crappify import crappify_folder
            from helpers.folders import resize_folder
            from helpers.imagedata import get_transforms, image_pair_data
        lr = resize_folder(path / "images", path / "small-96", 96) if which == "05" else \
            crappify_folder(path / "images", path / "crappy")
        kw = {}
        if impl == "after":
            kw["tfms"] = get_transforms(max_zoom=2.0, max_rotate=0, max_warp=0, max_lighting=0)
        if impl == "after-all":
            kw["tfms"] = get_transforms(max_zoom=2.0)
        dl = image_pair_data(lr, path / "images", size=128, bs=32, hr_size=256, device=torch.device("cpu"),
                             **kw).train_dl
    times, it = [], iter(dl)
    for i in range(28):
        start = time.perf_counter()
        try:
            next(it)
        except StopIteration:
            it = iter(dl)
            next(it)
        if i >= 3:
            times.append((time.perf_counter() - start) * 1000)
    return {"median_ms": round(statistics.median(times), 1), "batches": len(times)}


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _decode(impl: str, folder: str) -> dict:
    """In this process: decode the folder for a 64-px GAN, without any cache."""
    import resource
    os.environ["HELPERS_DATA"] = tempfile.mkdtemp()
    from helpers.data import ImageList
    il = ImageList.from_folder(folder)
    import helpers.data as data
    base = _rss_mb()
    start = time.perf_counter()
    if impl == "before":
        images = data.gan_images(il, 64)
        nbytes = sum(t.numel() for t in images)
    else:
        from helpers.photos import PhotoStack
        stack = PhotoStack.decode(il.items, "RGB", short_side=64, draft=True)
        nbytes = stack.data.numel()
    seconds = time.perf_counter() - start
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, 0) / 1024  # kB on Linux
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"photos": len(il), "seconds": round(seconds, 1), "photos_per_s": round(len(il) / seconds),
            "tensor_mb": round(nbytes / 2**20, 1), "baseline_rss_mb": round(base), "peak_rss_mb": round(peak),
            "added_peak_mb": round(peak - base), "largest_worker_rss_mb": round(children)}


def make_photos(folder: Path, n: int) -> None:
    """``n`` smooth random 341 x 256 JPEGs (quality 90), made once."""
    import numpy as np
    from PIL import Image
    folder.mkdir(parents=True, exist_ok=True)
    have = len(list(folder.glob("*.jpg")))
    rng = np.random.default_rng(0)
    for i in range(have, n):
        small = rng.integers(0, 256, (8, 11, 3), dtype=np.uint8)
        Image.fromarray(small).resize((341, 256), Image.BICUBIC).save(folder / f"{i:06d}.jpg", quality=90)


def in_subprocess(impl: str, task: str, *args: str) -> dict:
    env = dict(os.environ, HELPERS_PROGRESS="none", HELPERS_DATA=os.environ.get("HELPERS_DATA", str(ROOT / "data")))
    if impl == "before":
        checkout = Path(tempfile.gettempdir()) / f"lesson7-{BEFORE}"
        if not checkout.exists():
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(checkout), BEFORE], check=True,
                           capture_output=True)
        env["PYTHONPATH"] = str(checkout)
    out = subprocess.run([sys.executable, __file__, "--child", impl, task, *args], env=env, capture_output=True,
                         text=True, cwd=ROOT)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        impl, task, *rest = sys.argv[2:]
        print(json.dumps(_loader_times(impl, rest[0]) if task == "loader" else _decode(impl, rest[0])))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", nargs="+", choices=["loaders", "decode"])
    ap.add_argument("--photos", type=int, default=20_000, help="generated JPEGs for 'decode'")
    args = ap.parse_args()
    if "loaders" in args.what:
        print("| loader | before (081945d) | after, same transforms | after, all of fastai's |")
        print("|---|---|---|---|")
        for which in ("05", "03", "wgan"):
            row = [in_subprocess("before", "loader", which)["median_ms"], in_subprocess("after", "loader", which)["median_ms"]]
            row.append(in_subprocess("after-all", "loader", which)["median_ms"] if which != "wgan" else "")
            print(f"| {which} | {row[0]} ms | {row[1]} ms | {row[2]}{' ms' if row[2] != '' else ''} |", flush=True)
    if "decode" in args.what:
        folder = Path(tempfile.gettempdir()) / f"lesson7-jpegs-{args.photos}"
        make_photos(folder, args.photos)
        for impl in ("before", "after"):
            print(impl, json.dumps(in_subprocess(impl, "decode", str(folder))), flush=True)


if __name__ == "__main__":
    main()
