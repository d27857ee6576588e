"""Notebook 03's small profile: which critic leaves chance in the budget a CPU can afford?

Builds notebook 03's small-profile generator exactly as the notebook does (64-px windows at the
lesson's 1.33x scale, 2 + 3 one-cycle epochs of 12 batches of 8, identity start) and its pictures of
320 training photos, then pre-trains each candidate critic as the notebook does (``critic_data`` at
96 px, the lesson's ``get_transforms(max_zoom=2.)``, 6 one-cycle epochs of 100 batches of 8 at 1e-3)
and prints its accuracy on the held-out photos: first on the critic's own validation data (saved
pictures), then as the notebook scores it before the GAN (``critic_accuracy`` on the live generator's
output for every validation photo at 128 px). Candidates are ``gan_critic`` variants:

- ``sn16``: fastai's critic (spectral norm, dropout, self-attention), 16 channels wide;
- ``plain16`` / ``plain32``: no spectral norm, no dropout, no self-attention, 16 / 32 channels;
- ``wn16``: weight norm instead of spectral norm, no dropout, no self-attention.

Run it alone: it trains, and other processes slow it down (the accuracies do not depend on them).

    HELPERS_MIRROR=file://$PWD/../shared/datasets .venv/bin/python benchmarks/critic_choice.py --seeds 42 1
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HELPERS_PROGRESS", "none")

from torch import nn  # noqa: E402

from helpers import config  # noqa: E402
from helpers.bodies import create_body  # noqa: E402
from helpers.crappify import crappify_folder  # noqa: E402
from helpers.download import untar_data  # noqa: E402
from helpers.imagedata import critic_data, get_transforms, image_pair_data, save_preds  # noqa: E402
from helpers.layers import gan_critic  # noqa: E402
from helpers.learner import Learner  # noqa: E402
from helpers.losses import AdaptiveLoss  # noqa: E402
from helpers.metrics import accuracy_thresh_expand, critic_accuracy  # noqa: E402
from helpers.unet import DynamicUnet, start_as_identity_  # noqa: E402

CANDIDATES = {
    "sn16": dict(nf=16),
    "plain16": dict(nf=16, norm=None, p=0.0, self_attention=False),
    "plain32": dict(nf=32, norm=None, p=0.0, self_attention=False),
    "wn16": dict(nf=16, norm="weight", p=0.0, self_attention=False),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[42])
    ap.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    args = ap.parse_args()
    path = untar_data("oxford-iiit-pet")
    path_hr, path_lr = path / "images", crappify_folder(path / "images", path / "crappy")
    print("| seed | critic | train s | held-out accuracy, saved pictures | critic_accuracy before the GAN |")
    print("|---|---|---|---|---|")
    for seed in args.seeds:
        os.environ["HELPERS_SEED"] = str(seed)
        config.seed_everything(seed)
        data = image_pair_data(path_lr, path_hr, size=64, bs=8, hr_size=256, max_batches=12, valid_batches=2,
                               tfms=get_transforms(max_zoom=2.0, min_zoom=2.0))
        model = DynamicUnet(create_body("resnet34"), n_out=3, blur=True, norm="weight",
                            self_attention=True)
        start_as_identity_(model)
        learn_gen = Learner(data, model, loss_func=nn.MSELoss(), wd=1e-3, layer_groups=model.layer_groups())
        learn_gen.freeze()
        learn_gen.fit_one_cycle(2, pct_start=0.8)
        learn_gen.unfreeze()
        learn_gen.fit_one_cycle(3, slice(1e-6, 1e-3))
        path_gen = save_preds(learn_gen, path / f"image_gen_critic_choice_{seed}", dl=data.resized(96).train_dl,
                              max_batches=40)
        valid_128 = data.resized(128).valid_dl
        for name in args.candidates:
            config.seed_everything(seed)
            data_crit = critic_data(path_gen, path_hr, size=96, bs=8, max_batches=100, valid_batches=2)
            learn = Learner(data_crit, gan_critic(**CANDIDATES[name]), loss_func=AdaptiveLoss(nn.BCEWithLogitsLoss()),
                            metrics=accuracy_thresh_expand, wd=1e-3)
            start = time.perf_counter()
            learn.fit_one_cycle(6, 1e-3)
            seconds = time.perf_counter() - start
            held_out = learn.validate(data_crit.valid_dl.full())[1]
            acc = critic_accuracy(learn.model, learn_gen.model, valid_128)
            print(f"| {seed} | {name} | {seconds:.0f} | {held_out:.3f} | {acc:.3f} |", flush=True)


if __name__ == "__main__":
    main()
