"""Side-by-side benchmark: our Learner against a plain PyTorch loop on preloaded tensors.

Both train the notebook-01 ResNet on the same full MNIST split (60,000 / 10,000), batch 128, with
AdamW + OneCycleLR and the same rand_pad augmentation; each epoch also evaluates the 10,000
validation images. Epochs alternate (plain, learner, plain, ...) so that background load hits both
alike. Prints the median seconds per epoch of each and their ratio.

    HELPERS_MIRROR=file:///path/to/shared/datasets .venv/bin/python benchmarks/mnist_resnet_loop.py [rounds]
"""
import os
import statistics
import sys
import time

import torch
from torch import nn

from helpers import config
from helpers.data import ImageList, rand_pad
from helpers.download import untar_data
from helpers.layers import mnist_resnet
from helpers.learner import Learner
from helpers.metrics import accuracy
from helpers.results import machine


def plain_epoch(x_train, y_train, x_valid, y_valid, mean, std, device):
    """One epoch of the most direct loop we could write: no callbacks, no recorder, no progress."""
    model = mnist_resnet().to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=0.05, betas=(0.9, 0.99), weight_decay=1e-2)
    steps = len(x_train) // 128
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 0.05, total_steps=steps, base_momentum=0.85, max_momentum=0.95)
    tfm, loss_fn = rand_pad(3, 28), nn.CrossEntropyLoss()
    start = time.perf_counter()
    model.train()
    order = torch.randperm(len(x_train))
    for b in range(steps):
        idx = order[b * 128:(b + 1) * 128]
        xb = (tfm(x_train[idx].float() / 255) - mean) / std
        loss = loss_fn(model(xb), y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    correct = 0
    with torch.no_grad():
        for b in range(0, len(x_valid), 256):
            xb = (x_valid[b:b + 256].float() / 255 - mean) / std
            correct += (model(xb).argmax(1) == y_valid[b:b + 256]).sum().item()
    return time.perf_counter() - start, correct / len(x_valid)


def main(rounds: int = 5):
    os.environ["HELPERS_PROFILE"] = "full"  # all 60,000 training images
    config.seed_everything()
    device = config.device()
    ll = ImageList.from_folder(untar_data("mnist_png"), convert_mode="L") \
        .split_by_folder("training", "testing").label_from_folder()
    x_train, x_valid = ll.train_x.decode(), ll.valid_x.decode()
    mean, std = (x_train[:128].float() / 255).mean(), (x_train[:128].float() / 255).std()
    data_kwargs = dict(bs=128, tfms=([rand_pad(3, 28)], []))
    plain, ours = [], []
    for r in range(rounds):
        t, acc = plain_epoch(x_train, ll.train_y, x_valid, ll.valid_y, mean, std, device)
        plain.append(t)
        # the Learner reads the (cached) decoded tensors through the full data pipeline
        data = ll.databunch(**data_kwargs).normalize()
        learn = Learner(data, mnist_resnet(), nn.CrossEntropyLoss(), accuracy)
        learn.fit_one_cycle(1, 0.05)
        ours.append(learn.recorder.train_seconds)
        print(f"round {r + 1}: plain {t:.1f} s (acc {acc:.4f}), learner {ours[-1]:.1f} s "
              f"(acc {learn.recorder.metrics[-1][0]:.4f})", flush=True)
    mp, mo = statistics.median(plain), statistics.median(ours)
    print(f"\n{machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"median seconds per epoch (60k train + 10k valid): plain loop {mp:.2f}, Learner {mo:.2f}, "
          f"ratio Learner/plain {mo / mp:.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
