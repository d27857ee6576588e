"""Fixtures shared by the test modules: a folder of small, distinct photos of different sizes."""
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
