"""Notebook 05's small profile without ImageNet weights: which training loss beats bicubic upsampling?

Runs the notebook's small-profile schedule (48-px photos, the lesson's four ``do_fit`` stages at 64 then
96 px, 4 batches of 8 per epoch) once per seed and loss, and prints PSNR / SSIM on the whole validation
split after the last stage, for the model and for bicubic upsampling. Losses: ``pixels`` (L1, the
feature loss's own pixel term) and ``features`` (the lesson's FeatureLoss on a randomly initialised
VGG16-bn). The U-Net starts as the identity (``start_as_identity_``) unless ``--no-identity``.

    HELPERS_MIRROR=file://$PWD/../shared/datasets .venv/bin/python benchmarks/superres_loss_choice.py --seeds 42 1 2

Run it alone: it trains, and other processes on the machine slow it down (it reports no timings, only
scores, so contention changes how long it takes, not what it prints).
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("HELPERS_PROGRESS", "none")

import torch  # noqa: E402

from helpers import config  # noqa: E402
from helpers.bodies import create_body, vgg16_bn_features  # noqa: E402
from helpers.download import untar_data  # noqa: E402
from helpers.folders import resize_folder  # noqa: E402
from helpers.imagedata import image_pair_data  # noqa: E402
from helpers.learner import Learner  # noqa: E402
from helpers.losses import FeatureLoss  # noqa: E402
from helpers.metrics import image_scores  # noqa: E402
from helpers.unet import DynamicUnet, start_as_identity_  # noqa: E402


def run(loss: str, seed: int, identity: bool) -> dict[str, float]:
    path = untar_data("oxford-iiit-pet")
    path_lr = resize_folder(path / "images", path / "small-48", 48)
    config.seed_everything(seed)
    data = image_pair_data(path_lr, path / "images", size=64, bs=8, hr_size=192, max_batches=4, valid_batches=2)
    model = DynamicUnet(create_body("resnet34", pretrained=True), n_out=3, blur=True, norm="weight")
    if identity:
        start_as_identity_(model)
    feat_loss = FeatureLoss(vgg16_bn_features(pretrained=True), (22, 32, 42), (5, 15, 2))
    learn = Learner(data, model, loss_func=feat_loss if loss == "features" else feat_loss.base_loss, wd=1e-3,
                    layer_groups=model.layer_groups())
    lr = 1e-3
    learn.freeze()
    learn.fit_one_cycle(10, slice(lr * 10), pct_start=0.9)
    learn.unfreeze()
    learn.fit_one_cycle(10, slice(1e-5, lr), pct_start=0.9)
    learn.data = data.resized(96, bs=8)
    learn.freeze()
    learn.fit_one_cycle(10, slice(lr), pct_start=0.9)
    learn.unfreeze()
    learn.fit_one_cycle(10, slice(1e-6, 1e-4), pct_start=0.3)
    return {k: v.mean().item() for k, v in image_scores(learn).items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2])
    ap.add_argument("--losses", nargs="+", default=["pixels", "features"], choices=["pixels", "features"])
    ap.add_argument("--no-identity", action="store_true", help="start the U-Net from random weights at its end too")
    args = ap.parse_args()
    print(f"{'loss':<9} {'seed':>4}  {'psnr_model':>10} {'psnr_bicubic':>12} {'gain dB':>7}  {'ssim_model':>10} {'ssim_bicubic':>12}")
    for loss in args.losses:
        for seed in args.seeds:
            s = run(loss, seed, not args.no_identity)
            print(f"{loss:<9} {seed:>4}  {s['psnr_model']:>10.2f} {s['psnr_bicubic']:>12.2f} "
                  f"{s['psnr_model'] - s['psnr_bicubic']:>+7.2f}  {s['ssim_model']:>10.4f} {s['ssim_bicubic']:>12.4f}",
                  flush=True)


if __name__ == "__main__":
    main()
