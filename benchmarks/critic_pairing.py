"""Notebook 03's critic: does pairing a photo's generated and real versions in one batch help it start?

The lesson's critic data split the files at random and batched unrelated photos; ``critic_data`` batches
each photo's generated and real version together, cut at the same window. This trains fastai's
``gan_critic`` from scratch both ways, everything else equal, and prints the training loss (mean of the
last 250 steps) and the accuracy on the held-out photos every 250 steps.

The "generated" pictures are the crappified photos' centred squares (the shape ``save_preds`` writes),
so no generator has to be trained first; ``unpaired`` takes its real pictures from an independently
shuffled pass over the same photos, so a batch's real and generated pictures show different photos.
Adam at a constant learning rate, as in the GAN phase, so the step count alone sets the budget.

    HELPERS_MIRROR=file://$PWD/../shared/datasets .venv/bin/python benchmarks/critic_pairing.py --steps 1500

Run it alone: it trains, and other processes on the machine slow it down (the scores do not depend on it).
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("HELPERS_PROGRESS", "none")

import torch  # noqa: E402
from PIL import Image  # noqa: E402
from torch import nn  # noqa: E402

from helpers import config  # noqa: E402
from helpers.crappify import crappify_folder  # noqa: E402
from helpers.download import untar_data  # noqa: E402
from helpers.folders import derive_folder  # noqa: E402
from helpers.imagedata import critic_data  # noqa: E402
from helpers.layers import gan_critic  # noqa: E402
from helpers.losses import AdaptiveLoss  # noqa: E402
from helpers.metrics import accuracy_thresh_expand  # noqa: E402


def centre_square(src, dest) -> None:
    img = Image.open(src).convert("RGB")
    s = min(img.size)
    left, top = (img.width - s) // 2, (img.height - s) // 2
    img.crop((left, top, left + s, top + s)).save(dest, quality=95)


@torch.no_grad()
def accuracy(model: nn.Module, dl) -> float:
    model.eval()
    accs = [accuracy_thresh_expand(model(x), y).item() for x, y in dl]
    model.train()
    return sum(accs) / len(accs)


def run(paired: bool, steps: int, nf: int, lr: float, size: int) -> None:
    path = untar_data("oxford-iiit-pet")
    crappy = crappify_folder(path / "images", path / "crappy")
    fakes = derive_folder(crappy, path / "crappy-squares", centre_square, {"centre_square": True}, maker="centre_square",
                          desc="centre squares", what="cropped")
    config.seed_everything()
    data = critic_data(fakes, path / "images", size=size, bs=8, valid_batches=16)
    model = gan_critic(nf=nf)
    loss_func = AdaptiveLoss(nn.BCEWithLogitsLoss())
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses, step = [], 0
    while step < steps:
        for (x, y), (x2, _) in zip(data.train_dl, data.train_dl):  # two independent shuffles
            if not paired:
                n = len(x) // 2
                x = torch.cat([x[:n], x2[n:]])  # generated pictures of some photos, real ones of others
            loss = loss_func(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            step += 1
            if step % 250 == 0:
                print(f"{'paired' if paired else 'unpaired':>8}  step {step:>5}  train loss {sum(losses[-250:]) / 250:.3f}  "
                      f"held-out accuracy {accuracy(model, data.valid_dl):.3f}", flush=True)
            if step >= steps:
                break


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--nf", type=int, default=16, help="the critic's width (the notebook's small profile: 16)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--size", type=int, default=96)
    args = ap.parse_args()
    for paired in (True, False):
        run(paired, args.steps, args.nf, args.lr, args.size)


if __name__ == "__main__":
    main()
