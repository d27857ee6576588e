"""DRAFT of notebook 03 (superres-gan), not part of `make run`, `make test` or `make smoke`.

Writes notebooks/03_superres_gan.ipynb from the cells below (sources only; `make run` fills in the
outputs). Placeholders are filled from the command line, e.g.

    python drafts/build_03_superres_gan.py SMALL_BATCHES=4 GAN_BATCHES=2 CHECKPOINT_EVERY=40 FLOOR_GAIN=0.0

Status (issue 12): every call runs end to end, but the small profile is not sized yet. In the one run
made (2-core CPU, seed 42, 64 px, 4 batches of 8 per epoch, GAN 2 batches per epoch) it took 312 s
(over the 240 s budget); the generator pre-training (20 steps from an identity start) left the PSNR
where the crappy input was (27.68 vs 27.69 dB); the critic stayed at chance (accuracy 0.44-0.50,
loss 0.69, also with 96 steps: drafts/critic_pretrain_size.py), so the adaptive switcher
(critic_thresh 0.65) never handed over to the generator and the GAN changed nothing.
"""
import json, sys
cells = []
def md(s): cells.append(("markdown", s.strip("\n")))
def code(s): cells.append(("code", s.strip("\n")))

md(r"""
# 03 · Decrappify: a pretrained generator, a pretrained critic, and a short GAN

We damage photos on purpose, then train a network to repair them. The damage is the lesson's
`crappify`: shrink the photo, stamp a random number on it, and save it as a JPEG at that (low)
quality. The repair is done by a U-Net **generator**, first trained alone to match the original
pixels (mean squared error). That already removes most of the damage, but it plays safe where it is
unsure: the result is smooth. The lesson's idea is then to add a **critic**, a classifier trained to
tell the generator's output from real photos, and to train the two against each other for a short
while (a GAN). Both start **pretrained** (the generator on pixels, the critic on the generator's
saved outputs), which makes the GAN phase short and stable, unlike notebook 04's GAN from scratch.

The lesson judged the result by eye and called the GAN's loss numbers "meaningless". This notebook
also measures it: PSNR and SSIM against the originals for the damaged input, the pretrained
generator and the generator after the GAN; a **sharpness** score that PSNR does not reward; and how
often the critic tells real from generated on held-out photos.

Photos: the Oxford-IIIT Pet dataset (O. M. Parkhi, A. Vedaldi, A. Zisserman and C. V. Jawahar,
"Cats and Dogs", CVPR 2012; CC BY-SA 4.0).
""")
code(r"""
import torch
from torch import nn

from helpers import config
from helpers.bodies import create_body
from helpers.crappify import crappify_folder
from helpers.data import ImageList
from helpers.download import untar_data
from helpers.gan import AdaptiveGANSwitcher, GANLearner, SaveEvery, critic_accuracy
from helpers.imagedata import decode_at, image_class_data, image_pair_data, save_preds
from helpers.layers import gan_critic
from helpers.learner import Learner, accuracy_thresh_expand
from helpers.losses import AdaptiveLoss
from helpers.memory import batch_size_for, reclaim
from helpers.metrics import image_scores
from helpers.results import Results
from helpers.show import plot_multi, show_image, show_image_batch, show_image_results
from helpers.unet import DynamicUnet, start_as_identity_

config.banner()
config.seed_everything()
results = Results("03_superres_gan")
""")
md(r"""
The line above names the **profile**. The `full` profile is the lesson: the U-Net and critic at
128×128 with batches of 32, ImageNet weights in the encoder, the lesson's epochs (2 + 3 for the
generator, 6 for the critic, 40 GAN epochs and then 10 more at 192×192). The `small` profile keeps
every call and epoch count and makes the steps cheap, in the one cell below: 64×64 and then 96×96,
a few batches per epoch. Without ImageNet weights (no internet here) the encoder starts from random
weights, with a warning, and, as in notebook 05, the generator **starts as the identity** (it
returns its input before training) and so has no `y_range`: from random weights the lesson's
U-Net spends a few minutes just learning to reproduce the picture. Notebook 05 measured the effect.
""")
code(r"""
# What the profile changes in this notebook (the only place it does):
prof = config.profile()
size, size2 = prof.pick(small=(64, 96), full=(128, 192))  # training size; the GAN's second stage
batches = prof.pick(small=SMALL_BATCHES, full=None)  # training batches per epoch, generator and critic (None: all)
gan_batches = prof.pick(small=GAN_BATCHES, full=None)  # batches per GAN epoch (None: all)
valid_batches = prof.pick(small=2, full=None)  # validation batches after each epoch (None: all)
y_range = prof.pick(small=None, full=(-3.0, 3.0))
identity_start = prof.pick(small=True, full=False)  # the generator starts by returning its input
print(f"{size}x{size}, then {size2}x{size2} for the GAN's second stage; batches per epoch: "
      f"{batches or 'all'} (GAN {gan_batches or 'all'}); y_range {y_range}; identity start: {identity_start}")
""")
md(r"""
## Crappified photos
""")
code(r"""
# NBVAL_CHECK_OUTPUT
path = untar_data("oxford-iiit-pet")
path_hr, path_lr = path / "images", path / "crappy"
print(f"{len(ImageList.from_folder(path_hr).items)} photos")
""")
md(r"""
`crappify` is the lesson's, step for step: resize so the shorter side is 96 px (bilinear), draw a
JPEG quality between 10 and 70, write that number in white somewhere in the top-left quarter, and
save the photo as a JPEG at that quality. The random choices are seeded per photo, so the set is
the same on every run; it is built in parallel into a temporary folder and reused later.
""")
code(r"""
crappify_folder(path_hr, path_lr)
names = [p.relative_to(path_hr) for p in ImageList.from_folder(path_hr).items[:3]]
pairs = [decode_at([path_lr / n])[0] for n in names] + [decode_at([path_hr / n])[0] for n in names]
plot_multi(lambda i, j, ax: show_image(pairs[3 * i + j].float() / 255, ax=ax,
                                       title=f"{'crappy' if i == 0 else 'original'} {pairs[3 * i + j].shape[2]}x{pairs[3 * i + j].shape[1]}"),
           2, 3, figsize=(9, 6), photo=True)
""")
md(r"""
The generator's data: x the crappy photo, y the original of the same name, the lesson's random 10%
for validation (seed 42), the same random crop, zoom and flip for both, normalised with ImageNet's
statistics (notebook 05 explains the pipeline).
""")
code(r"""
bs = batch_size_for({16000: 32, 0: 16}, default=8)
data_gen = image_pair_data(path_lr, path_hr, size=size, bs=bs, hr_size=2 * size2, max_batches=batches,
                           valid_batches=valid_batches)
data_gen
""")
code(r"""
show_image_batch(data_gen, rows=3, imgsize=2.2)
""")
md(r"""
## Pre-training the generator

The lesson's `unet_learner(data_gen, resnet34, wd=1e-3, blur=True, norm_type=NormType.Weight,
self_attention=True, y_range=(-3., 3.), loss_func=MSELossFlat())`: the U-Net of notebooks 02 and 05
with **self-attention** in one decoder block (each position can look at every other, so a repaired
patch can take its cue from far away), and `y_range` keeping its outputs within ±3 standard
deviations. The loss is plain mean squared error on the pixels.
""")
code(r"""
def create_gen_learner():
    body = create_body("resnet34", pretrained=True)
    model = DynamicUnet(body, n_out=3, img_size=(size, size), blur=True, norm="weight", self_attention=True,
                        y_range=y_range)
    if identity_start:
        start_as_identity_(model)
    return Learner(data_gen, model, loss_func=nn.MSELoss(), wd=1e-3, layer_groups=model.layer_groups())


config.seed_everything()
learn_gen = create_gen_learner()
learn_gen.freeze()
learn_gen.fit_one_cycle(2, pct_start=0.8)
""")
code(r"""
learn_gen.unfreeze()
learn_gen.fit_one_cycle(3, slice(1e-6, 1e-3))
learn_gen.save("gen-pre2")
show_image_results(learn_gen, rows=3, imgsize=2.4)
""")
md(r"""
## Pre-training the critic

The critic needs examples of what the generator makes. `save_preds` writes the generator's output
for every **training** photo into `image_gen/`, under the photo's own name (built in a temporary
folder, renamed into place when complete).
""")
code(r"""
path_gen = path / "image_gen"
save_preds(learn_gen, path_gen)
print(f"{len(list(path_gen.iterdir()))} generated photos in {path_gen.relative_to(path.parent)}")
""")
md(r"""
The critic's data: every file of `image_gen/` (label 0, generated) and `images/` (label 1, real),
the lesson's random 10% for validation.

The critic is fastai's `gan_critic`: strided convolutions with **spectral normalisation** (which
bounds how fast its output can change with its input, a standard way to keep a GAN's critic from
overpowering the generator), LeakyReLU, dropout, a dense residual block, self-attention, and no
batch norm. Its last layer does not pool: it gives one logit per overlapping **patch** of the
picture, so it judges texture locally; `AdaptiveLoss` compares every patch with its picture's label,
and `accuracy_thresh_expand` counts the patches it gets right.
""")
code(r"""
data_crit = image_class_data([path_gen, path_hr], size=size, bs=bs, max_zoom=2.0, max_batches=batches,
                             valid_batches=valid_batches)
print(f"classes {data_crit.classes}; train {data_crit.train_dl.n_items}, valid {data_crit.valid_dl.n_items} photos")
loss_critic = AdaptiveLoss(nn.BCEWithLogitsLoss())
learn_crit = Learner(data_crit, gan_critic(), loss_func=loss_critic, metrics=accuracy_thresh_expand, wd=1e-3)
xb, _ = data_crit.one_batch()
print("patch map per picture:", tuple(learn_crit.model(xb).shape[1:]))
""")
code(r"""
learn_crit.fit_one_cycle(6, 1e-3)
learn_crit.save("critic-pre2")
""")
md(r"""
## The GAN

`GANLearner.from_learners` joins the two. The generator's loss is now the critic's verdict on its
output (binary cross-entropy against "real") plus 50 times its pixel loss, so it is pushed towards
photos the critic believes while staying close to the target. The critic's loss is the mean of its
losses on a real and a generated batch. `AdaptiveGANSwitcher(critic_thresh=0.65)` trains the
critic until its loss falls below 0.65, then the generator for one batch, and again. Adam with
β1 = 0 (no momentum, which tends to make adversaries oscillate), weight decay 1e-3, and the critic
at five times the generator's learning rate (the lesson's `GANDiscriminativeLR`). `SaveEvery`
checkpoints both models every so many iterations.

Before the GAN, the numbers to compare with: every validation photo at the GAN's final size, the
crappy input (enlarged bicubically), the pretrained generator, and the critic's accuracy on held-out
real photos and the generator's versions of them.
""")
code(r"""
data_eval = data_gen.resized(size2)
learn_gen.data = data_eval
before = image_scores(learn_gen, with_sharpness=True)
acc_before = critic_accuracy(learn_crit.model, learn_gen.model, data_eval.valid_dl)
learn_gen.data = data_gen
print(f"critic accuracy on held-out real vs generated: {acc_before:.3f}")
""")
code(r"""
switcher = AdaptiveGANSwitcher(critic_thresh=0.65)
learn = GANLearner.from_learners(learn_gen, learn_crit, weights_gen=(1.0, 50.0), switcher=switcher,
                                 betas=(0.0, 0.99), wd=1e-3, critic_lr_mult=5.0, n_grid=8, grid_nrow=4,
                                 callbacks=[SaveEvery(CHECKPOINT_EVERY, "gan-ckpt")])
learn.data = data_gen.resized(size, max_batches=gan_batches)
lr = 1e-4
learn.fit(40, lr)
""")
md(r"""
Progressive resizing, as the lesson did: the same photos at 192 px (96 in the small profile), half
the learning rate, ten more epochs.
""")
code(r"""
reclaim()
bs2 = batch_size_for({16000: 16, 0: 8}, default=8)
learn.data = data_gen.resized(size2, bs=bs2, max_batches=gan_batches)
learn.fit(10, lr / 2)
learn.save("gan-1c")
learn.recorder.plot_losses()
""")
md(r"""
## Results

Validation photos: the crappy input, the generator after the GAN, and the original.
""")
code(r"""
learn_gen.data = data_eval
show_image_results(learn_gen, rows=4, imgsize=2.4)
""")
code(r"""
after = image_scores(learn_gen, with_sharpness=True)
acc_after = critic_accuracy(learn.critic, learn.generator, data_eval.valid_dl)
m0 = {k: v.mean().item() for k, v in before.items()}
m1 = {k: v.mean().item() for k, v in after.items()}
sharp_true = m0["sharpness_target"]
rows = [("crappy input (bicubic)", m0["psnr_bicubic"], m0["ssim_bicubic"], m0["sharpness_bicubic"]),
        ("pretrained generator", m0["psnr_model"], m0["ssim_model"], m0["sharpness_model"]),
        ("generator after the GAN", m1["psnr_model"], m1["ssim_model"], m1["sharpness_model"])]
print(f"{'':<26} {'PSNR':>6} {'SSIM':>7} {'sharpness / real':>17}")
for name, p, s, sh in rows:
    print(f"{name:<26} {p:>6.2f} {s:>7.4f} {sh / sharp_true:>17.3f}")
print(f"critic accuracy, held-out real vs generated: {acc_before:.3f} before the GAN, {acc_after:.3f} after")
""")
md(r"""
Sharpness is the variance of the Laplacian of each picture's brightness, divided by the same for the
real photos: 1 means as much fine detail as the originals, lower means smoother. PSNR and SSIM
reward being close to the original on average, which a smooth guess does well; the GAN pushes the
generator towards the detail the critic expects of a real photo, which may cost a little PSNR.
""")
code(r"""
results.add(psnr_crappy=m0["psnr_bicubic"], psnr_generator=m0["psnr_model"], psnr_gan=m1["psnr_model"],
            psnr_gain_generator=m0["psnr_model"] - m0["psnr_bicubic"],
            ssim_crappy=m0["ssim_bicubic"], ssim_generator=m0["ssim_model"], ssim_gan=m1["ssim_model"],
            sharpness_crappy=m0["sharpness_bicubic"] / sharp_true, sharpness_generator=m0["sharpness_model"] / sharp_true,
            sharpness_gan=m1["sharpness_model"] / sharp_true,
            critic_accuracy_before=acc_before, critic_accuracy=acc_after)
# floors per profile: below the spread measured over seeds (README, "Floors"); the full profile's is a guess
FLOORS = {"small": dict(psnr_gain_generator=FLOOR_GAIN), "full": dict(psnr_gain_generator=1.0)}
results.check(**FLOORS[prof.name])
results.save()
""")
code(r"""
del learn, learn_gen, learn_crit, data_gen, data_crit, data_eval, xb
reclaim()
""")

subs = dict(arg.split("=", 1) for arg in sys.argv[1:])
nb = {"cells": [], "metadata": {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
      "language_info": {"name": "python"}}, "nbformat": 4, "nbformat_minor": 5}
for i, (kind, src) in enumerate(cells):
    for k, v in subs.items():
        src = src.replace(k, v)
    c = {"cell_type": kind, "id": f"c{i:02d}", "metadata": {}, "source": src.splitlines(keepends=True)}
    if kind == "code":
        c.update(execution_count=None, outputs=[])
    nb["cells"].append(c)
out = subs.get("OUT", "notebooks/03_superres_gan.ipynb")
with open(out, "w") as f:
    json.dump(nb, f, indent=1, ensure_ascii=False)
    f.write("\n")
