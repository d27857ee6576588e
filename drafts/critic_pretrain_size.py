"""DRAFT measurement for notebook 03 (issue 12): pre-train fastai's gan_critic on image_gen/ (generated) vs
images/ (real) at a given size, batches per epoch, learning rate and width, as the lesson's
fit_one_cycle(6, lr). Needs data/oxford-iiit-pet/image_gen from a run of the draft notebook.

    .venv/bin/python drafts/critic_pretrain_size.py SIZE BATCHES LR NF     # e.g. 64 16 1e-3 128

Measured on the 2-core CPU (seed 42): 64 px, 16 batches of 8, lr 1e-3, nf 128: about 1 s per step,
101.6 s for 6 epochs, validation accuracy 0.41-0.56 (chance) and loss 0.69 throughout.
"""
import os, sys, time, warnings; os.environ.setdefault("HELPERS_MIRROR", "file:///work/shared/datasets"); os.environ["HELPERS_PROGRESS"]="none"; warnings.simplefilter("ignore")
import torch
from torch import nn
from helpers import config
from helpers.imagedata import image_class_data
from helpers.layers import gan_critic
from helpers.learner import Learner, accuracy_thresh_expand
from helpers.losses import AdaptiveLoss
size, batches, lr, nf = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
config.seed_everything()
p = config.data_dir() / "oxford-iiit-pet"
t = time.perf_counter()
data = image_class_data([p / "image_gen", p / "images"], size=size, bs=8, max_zoom=2.0, max_batches=batches, valid_batches=4)
print(f"data {time.perf_counter()-t:.1f}s")
learn = Learner(data, gan_critic(nf=nf), loss_func=AdaptiveLoss(nn.BCEWithLogitsLoss()), metrics=accuracy_thresh_expand, wd=1e-3)
learn.fit_one_cycle(6, lr)
