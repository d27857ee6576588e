"""Notebook 02: CamVid's joint crop and flip, hand-written (``helpers.camvid.joint_transform``) against
torchvision's ``transforms.v2`` with ``tv_tensors.Mask`` (``RandomResizedCrop`` with the frame's aspect and
``RandomHorizontalFlip``, applied item by item, since v2 draws one set of parameters per call).

Median ms per batch of 8 real frames with their masks, over 30 batches after 3 warm-up ones, at the small
profile's sizes (72x96 and 96x128) and the full profile's (180x240 and 360x480). Run it alone: it times
things.

    HELPERS_MIRROR=file://$PWD/../shared/datasets .venv/bin/python benchmarks/camvid_transforms.py
"""
from __future__ import annotations

import os
import statistics
import time

os.environ.setdefault("HELPERS_PROGRESS", "none")

import torch  # noqa: E402
from torchvision import tv_tensors  # noqa: E402
from torchvision.transforms import v2  # noqa: E402

from helpers.camvid import decode_masks, joint_transform, pairs  # noqa: E402
from helpers.download import untar_data  # noqa: E402


def median_ms(fn, n: int = 30) -> float:
    times = []
    for i in range(n + 3):
        start = time.perf_counter()
        fn()
        if i >= 3:
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    path = untar_data("camvid")
    frames, masks = pairs(path, "train")
    x = frames.subset(range(64)).decode().float().div_(255)
    y = decode_masks(masks[:64]).long()
    print("| size | hand-written | transforms.v2 |")
    print("|---|---|---|")
    for size in ((72, 96), (96, 128), (180, 240), (360, 480)):
        aspect = x.shape[-1] / x.shape[-2]
        tv = v2.Compose([v2.RandomResizedCrop(size, scale=(0.49, 1.0), ratio=(aspect, aspect), antialias=True),
                         v2.RandomHorizontalFlip()])
        torch.manual_seed(0)

        def ours():
            idx = torch.randint(0, len(x), (8,))
            joint_transform(x[idx], y[idx], size, flip=True, crop=0.7)

        def theirs():
            idx = torch.randint(0, len(x), (8,))
            out = [tv(tv_tensors.Image(x[i]), tv_tensors.Mask(y[i])) for i in idx.tolist()]
            torch.stack([a for a, _ in out]), torch.stack([b for _, b in out])

        print(f"| {size[0]}x{size[1]} | {median_ms(ours):.1f} ms | {median_ms(theirs):.1f} ms |", flush=True)


if __name__ == "__main__":
    main()
