"""Notebook 07's small profile: what the generator should train on without ImageNet weights, and what
DeOldify's wider decoder costs.

Trains DeOldify's generator (resnet34 U-Net, spectral norm + batch norm, self-attention, ``y_range``
(-3, 3), ``last_cross``) on gray -> colour pet photos for one one-cycle epoch of ``steps`` batches of 8
at ``size`` px, from random weights, then prints the mean ΔE (CIE76), colorfulness and PSNR on the
whole validation split, for the gray input, the raw output and the output's chroma on the input's
luminance (``merged``, what DeOldify shows), plus the training time. Losses: ``l1`` (pixels) or
``features`` (DeOldify's FeatureLoss through a randomly initialised VGG16-bn).

    HELPERS_MIRROR=file://$PWD/../shared/datasets .venv/bin/python benchmarks/colorize_sizing.py l1 64 40 1.5
    #                                                                                  loss size steps nf_factor

Run it alone: it trains and times, and other processes on the machine slow it down.
"""
from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("HELPERS_PROGRESS", "none")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from helpers import config  # noqa: E402
from helpers.bodies import create_body, vgg16_bn_features  # noqa: E402
from helpers.color import grayscale_folder  # noqa: E402
from helpers.download import untar_data  # noqa: E402
from helpers.folders import resize_folder  # noqa: E402
from helpers.imagedata import image_pair_data  # noqa: E402
from helpers.learner import Learner  # noqa: E402
from helpers.losses import FeatureLoss  # noqa: E402
from helpers.metrics import image_scores  # noqa: E402
from helpers.unet import DynamicUnet  # noqa: E402


def main(loss: str, size: int, steps: int, nf_factor: float) -> None:
    config.seed_everything()
    path = untar_data("oxford-iiit-pet")
    color = resize_folder(path / "images", path / "small-192", 192)
    gray = grayscale_folder(color, path / "gray-192")
    data = image_pair_data(gray, color, size=size, bs=8, max_zoom=1.2, max_batches=steps, valid_batches=4)
    model = DynamicUnet(create_body("resnet34"), n_out=3, blur=True, norm="spectral+batch",
                        self_attention=True, y_range=(-3.0, 3.0), last_cross=True, nf_factor=nf_factor)
    loss_func = F.l1_loss if loss == "l1" else FeatureLoss(vgg16_bn_features(), layer_wgts=(20, 70, 10), gram_weight=None)
    learn = Learner(data, model, loss_func=loss_func, wd=1e-3, layer_groups=model.layer_groups())
    start = time.perf_counter()
    learn.fit_one_cycle(1, 1e-3)
    seconds = time.perf_counter() - start
    raw = image_scores(learn, with_color=True)
    merged = image_scores(learn, with_color=True, keep_luminance=True)
    mean = lambda s, k: s[k].mean().item()
    print(f"loss {loss}, {size} px, {steps} steps, nf_factor {nf_factor}: trained in {seconds:.1f} s")
    print(f"  ΔE: gray {mean(raw, 'deltae_bicubic'):.2f}, raw {mean(raw, 'deltae_model'):.2f}, "
          f"merged {mean(merged, 'deltae_model'):.2f}")
    print(f"  colorfulness: true {mean(raw, 'colorfulness_target'):.2f}, raw {mean(raw, 'colorfulness_model'):.2f}, "
          f"merged {mean(merged, 'colorfulness_model'):.2f}")
    print(f"  PSNR: gray {mean(raw, 'psnr_bicubic'):.2f}, merged {mean(merged, 'psnr_model'):.2f}")


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] not in ("l1", "features"):
        sys.exit(__doc__)
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
