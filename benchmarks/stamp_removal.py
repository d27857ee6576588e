"""Notebook 03: how much generator training does it take to paint over the stamped numbers?

Trains notebook 03's small-profile generator (resnet34 U-Net, identity start, MSE, 64-px windows at
the lesson's 1.33x scale, batches of 8) first as the notebook does (2 frozen + 3 unfrozen one-cycle
epochs of 12 batches), then on at a constant rate, and prints after each stretch the PSNR over whole
validation photos at 128 px and inside the boxes where ``crappify`` stamped the numbers
(``stamp_boxes``), next to the crappy input's. Run it alone: it trains for a long while, and other
processes slow it down (the scores do not depend on them).

    HELPERS_MIRROR=file://$PWD/../shared/datasets .venv/bin/python benchmarks/stamp_removal.py --steps 960
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HELPERS_PROGRESS", "none")

from torch import nn  # noqa: E402

from helpers import config  # noqa: E402
from helpers.bodies import create_body  # noqa: E402
from helpers.crappify import crappify_folder, stamp_boxes  # noqa: E402
from helpers.download import untar_data  # noqa: E402
from helpers.imagedata import get_transforms, image_pair_data  # noqa: E402
from helpers.learner import Learner  # noqa: E402
from helpers.metrics import image_scores  # noqa: E402
from helpers.unet import DynamicUnet, start_as_identity_  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=960, help="generator steps in all")
    ap.add_argument("--lr", type=float, default=1e-3, help="the decoder's constant rate after the notebook's schedule")
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    config.seed_everything(args.seed)
    path = untar_data("oxford-iiit-pet")
    path_lr = crappify_folder(path / "images", path / "crappy")
    boxes = stamp_boxes(path_lr)
    data = image_pair_data(path_lr, path / "images", size=64, bs=8, hr_size=256, max_batches=12, valid_batches=2,
                           tfms=get_transforms(max_zoom=2.0, min_zoom=2.0))
    data_eval = data.resized(128)
    model = DynamicUnet(create_body("resnet34"), n_out=3, blur=True, norm="weight",
                        self_attention=True)
    start_as_identity_(model)
    learn = Learner(data, model, loss_func=nn.MSELoss(), wd=1e-3, layer_groups=model.layer_groups())

    def report(steps: int, seconds: float) -> None:
        learn.data = data_eval
        s = {k: v.nanmean().item() for k, v in image_scores(learn, regions=boxes).items()}
        learn.data = data
        print(f"| {steps} | {seconds:.0f} | {s['psnr_bicubic']:.2f} | {s['psnr_model']:.2f} | "
              f"{s['psnr_region_bicubic']:.2f} | {s['psnr_region_model']:.2f} |", flush=True)

    print("| generator steps | train s | PSNR crappy | PSNR generator | stamp PSNR crappy | stamp PSNR generator |")
    print("|---|---|---|---|---|---|")
    start = time.perf_counter()
    learn.freeze()
    learn.fit_one_cycle(2, pct_start=0.8)
    learn.unfreeze()
    learn.fit_one_cycle(3, slice(1e-6, 1e-3))
    steps = 60
    report(steps, time.perf_counter() - start)
    while steps < args.steps:
        epochs = min(steps, args.steps - steps) // 12  # double the steps each stretch
        learn.fit(epochs, slice(args.lr / 1000, args.lr))
        steps += 12 * epochs
        report(steps, time.perf_counter() - start)


if __name__ == "__main__":
    main()
