"""Fixtures shared by the test modules: a folder of small, distinct photos of different sizes; tiny learners
(a classifier on 4x4 images, a WGAN on 32-px squares) on the CPU."""
import numpy as np
import pytest
from PIL import Image

SIZES = [(40, 56), (64, 48), (50, 50), (36, 90), (48, 64), (60, 45), (44, 44), (56, 40), (72, 54), (45, 60)]


def photo(i: int, w: int, h: int) -> Image.Image:
    """A smooth picture whose colour says which photo it is (red = 20 * i) and where (green, blue ramps)."""
    xs, ys = np.meshgrid(np.linspace(0, 255, w), np.linspace(0, 255, h))
    arr = np.stack([np.full((h, w), 20 * i), xs, ys], -1).astype(np.uint8)
    return Image.fromarray(arr)


@pytest.fixture
def photos(tmp_path):
    """``<tmp>/pets/images/pet_<i>.jpg``, one photo per size in ``SIZES``."""
    hr = tmp_path / "pets" / "images"
    hr.mkdir(parents=True)
    for i, (w, h) in enumerate(SIZES):
        photo(i, w, h).save(hr / f"pet_{i}.jpg", quality=95)
    return hr


@pytest.fixture
def tiny_learner():
    """A function making a seeded ``Learner``: an MLP with batch norm for 32 random 4x4 images, batches of 8."""
    import torch
    from torch import nn

    from helpers.data import DataBunch, TensorLoader
    from helpers.learner import Learner

    def make() -> Learner:
        torch.manual_seed(0)
        cpu = torch.device("cpu")
        x = torch.randint(0, 256, (32, 1, 4, 4), dtype=torch.uint8)
        y = (x.float().mean((1, 2, 3)) > 127).long()
        data = DataBunch(TensorLoader(x, y, 8, shuffle=True, device=cpu), TensorLoader(x, y, 8, device=cpu))
        return Learner(data, nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.BatchNorm1d(8), nn.Linear(8, 2)),
                       nn.CrossEntropyLoss())
    return make


@pytest.fixture
def tiny_gan():
    """A function making a seeded ``GANLearner.wgan`` (keyword arguments passed on): 8-feature generator and critic,
    64 random 28-px images padded to 32 px, batches of 16 (4 per epoch), a grid of 4."""
    import torch

    from helpers.data import GANLoader
    from helpers.gan import GANLearner
    from helpers.layers import basic_critic, basic_generator
    from helpers.photos import PhotoStack

    def make(**kwargs) -> GANLearner:
        torch.manual_seed(0)
        images = PhotoStack.from_list(list(torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8)))
        data = GANLoader(images, size=32, bs=16, noise_sz=100, device=torch.device("cpu"))
        return GANLearner.wgan(data, basic_generator(32, 1, n_features=8), basic_critic(32, 1, n_features=8),
                               n_grid=4, **kwargs)
    return make
