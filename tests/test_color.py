"""helpers.color and the colour metrics of helpers.metrics (notebook 07, deoldify)."""
import math

import kornia.color
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from helpers.color import RenderOutOfMemoryError, colorize, grayscale_folder, merge_chroma, render_size
from helpers.photos import PhotoStack
from helpers.imagedata import ImagePairData, ImagePairLoader
from helpers.data import normalize
from helpers.learner import Learner
from helpers.metrics import colorfulness, delta_e


def luma(x):
    return kornia.color.rgb_to_yuv(x)[..., :1, :, :]


def test_merge_chroma_keeps_the_gray_photos_luminance_and_takes_the_colour():
    torch.manual_seed(0)
    gray = (0.3 + 0.4 * torch.rand(1, 40, 50)).expand(3, -1, -1)  # mid grays: the merge stays in the RGB cube
    color = (0.4 + 0.2 * torch.rand(3, 10, 12))  # smaller than the photo: resized first
    out = merge_chroma(color, gray)
    assert out.shape == (3, 40, 50)
    assert (out > 0).all() and (out < 1).all()
    assert torch.allclose(luma(out), luma(gray), atol=1e-5)  # Y of the output is Y of the input
    up = F.interpolate(color[None], (40, 50), mode="bilinear", antialias=True)[0]
    chroma = lambda x: kornia.color.rgb_to_yuv(x)[1:]
    assert torch.allclose(chroma(out), chroma(up), atol=1e-5)  # U and V are the colour's
    batch = merge_chroma(color[None].repeat(2, 1, 1, 1), gray[None].repeat(2, 1, 1, 1))
    assert torch.allclose(batch[1], out, atol=1e-6)


def test_delta_e_is_the_lab_distance_of_a_hand_computation():
    """ΔE through helpers.metrics against CIE76 written out: sRGB linearised, to XYZ (D65), to Lab."""
    def lab(rgb):
        lin = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
        m = torch.tensor([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169],
                          [0.019334, 0.119193, 0.950227]])
        xyz = torch.einsum("ij,njhw->nihw", m, lin) / torch.tensor([0.950456, 1.0, 1.088754]).view(1, 3, 1, 1)
        f = torch.where(xyz > 0.008856, xyz ** (1 / 3), 7.787 * xyz + 4 / 29)
        return torch.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], 1)

    torch.manual_seed(0)
    a, b = torch.rand(2, 3, 6, 6), torch.rand(2, 3, 6, 6)
    by_hand = (lab(a) - lab(b)).norm(dim=1).flatten(1).mean(1)
    assert torch.allclose(delta_e(a, b), by_hand, atol=0.05)
    assert torch.allclose(delta_e(a, a), torch.zeros(2), atol=1e-4)


def test_colorfulness_is_zero_for_gray_and_matches_the_formula():
    gray = torch.rand(2, 1, 8, 8).expand(-1, 3, -1, -1)
    assert torch.allclose(colorfulness(gray), torch.zeros(2), atol=1e-4)
    # half pure red, half pure blue: rg = 255 | 0, yb = 127.5 | -255
    img = torch.zeros(1, 3, 4, 4)
    img[0, 0, :, :2] = 1
    img[0, 2, :, 2:] = 1
    std = math.sqrt(127.5 ** 2 + 191.25 ** 2)  # std of (255, 0) and of (127.5, -255)
    mean = math.sqrt(127.5 ** 2 + 63.75 ** 2)
    assert colorfulness(img).item() == pytest.approx(std + 0.3 * mean, rel=1e-5)


def test_delta_e_of_white_and_black():
    black, white = torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4)
    assert delta_e(white, white).item() == pytest.approx(0, abs=1e-3)
    assert delta_e(white, black).item() == pytest.approx(100, abs=0.01)  # L* from 100 to 0


class Recorder(nn.Module):
    """Returns a fixed colour (normalised) and remembers the input's shape."""

    def __init__(self, stats):
        super().__init__()
        self.stats, self.shapes = stats, []

    def forward(self, x):
        self.shapes.append(tuple(x.shape))
        red = torch.tensor([0.6, 0.4, 0.4]).view(1, 3, 1, 1).expand_as(x)
        return normalize(red, self.stats)


def learner(model_cls=Recorder):
    img = PhotoStack.from_list([torch.randint(0, 256, (3, 20, 20), dtype=torch.uint8)])
    loader = ImagePairLoader(img, img, bs=1, size=16, train=False, device=torch.device("cpu"))
    data = ImagePairData(loader, loader)
    return Learner(data, model_cls(data.stats), F.l1_loss)


def test_colorize_renders_at_render_factor_times_16_and_keeps_the_luminance():
    assert render_size(7) == 112 and render_size(35) == 560
    learn = learner()
    torch.manual_seed(0)
    photo = (0.3 + 0.4 * torch.rand(1, 50, 70)).expand(3, -1, -1)
    out = colorize(learn, photo, render_factor=7)
    assert learn.model.shapes == [(1, 3, 112, 112)]
    assert out.shape == (3, 50, 70)
    assert torch.allclose(luma(out), luma(photo), atol=1e-4)
    assert (out[0] > out[1] + 0.05).all()  # the model's reddish chroma
    one_channel = colorize(learn, photo[:1], render_factor=2)
    assert one_channel.shape == (3, 50, 70) and learn.model.shapes[-1] == (1, 3, 32, 32)
    with pytest.raises(ValueError, match="positive"):
        colorize(learn, photo, render_factor=0)


@pytest.mark.parametrize("error", [torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
                                   RuntimeError("MPS backend out of memory"),
                                   RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")])
def test_colorize_out_of_memory_raises_a_clear_error_with_a_smaller_factor(error):
    class Exhausted(nn.Module):
        def __init__(self, stats):
            super().__init__()

        def forward(self, x):
            raise error

    with pytest.raises(RenderOutOfMemoryError, match=r"render_factor=40 \(640x640 px\).*render_factor, e.g. 30") as info:
        colorize(learner(Exhausted), torch.rand(3, 30, 30), render_factor=40)
    assert info.value.__cause__ is error


def test_colorize_lets_other_errors_through():
    class Broken(nn.Module):
        def __init__(self, stats):
            super().__init__()

        def forward(self, x):
            raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        colorize(learner(Broken), torch.rand(3, 30, 30), render_factor=2)


def test_grayscale_folder_makes_deoldifys_gray_copies(tmp_path):
    src = tmp_path / "images"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(src / f"p{i}.png")
    dest = grayscale_folder(src, tmp_path / "gray")
    assert sorted(p.name for p in dest.iterdir() if not p.name.startswith(".")) == ["p0.png", "p1.png", "p2.png"]
    for i in range(3):
        got = np.array(Image.open(dest / f"p{i}.png"))
        assert got.shape == (20, 30, 3)
        assert (got[..., 0] == got[..., 1]).all() and (got[..., 1] == got[..., 2]).all()
        assert (got[..., 0] == np.array(Image.open(src / f"p{i}.png").convert("L"))).all()  # PIL's BT.601 luma


def test_image_scores_keep_luminance_scores_the_merged_picture():
    from helpers.metrics import image_scores
    torch.manual_seed(0)
    colour = [0.2 + 0.6 * torch.rand(3, 20, 20) for _ in range(3)]
    gray = [kornia.color.rgb_to_grayscale(c).expand(3, -1, -1).clone() for c in colour]
    u8 = lambda t: (t * 255).round().to(torch.uint8)
    loader = ImagePairLoader(PhotoStack.from_list([u8(g) for g in gray]), PhotoStack.from_list([u8(c) for c in colour]),
                             bs=2, size=16, train=False, device=torch.device("cpu"))
    data = ImagePairData(loader, loader)
    learn = Learner(data, Recorder(data.stats), F.l1_loss)
    raw = image_scores(learn, with_color=True)
    merged = image_scores(learn, with_color=True, keep_luminance=True)
    x, y = loader.batch(torch.arange(3))
    g, target = data.denorm(x).clamp(0, 1), data.denorm(y).clamp(0, 1)
    red = torch.tensor([0.6, 0.4, 0.4]).view(1, 3, 1, 1).expand_as(g)
    assert merged["deltae_model"].tolist() == pytest.approx(delta_e(merge_chroma(red, g), target).tolist(), rel=1e-4)
    assert raw["deltae_model"].tolist() == pytest.approx(delta_e(red, target).tolist(), rel=1e-4)
    assert merged["deltae_bicubic"].tolist() == pytest.approx(raw["deltae_bicubic"].tolist())  # the baseline is not merged
    assert (merged["deltae_model"] < raw["deltae_model"]).all()  # the right luminance helps


def test_show_image_results_keep_luminance_shows_the_merged_picture():
    from helpers.show import pyplot, show_image_results
    learn = learner()
    plt = pyplot()
    show_image_results(learn, rows=1, keep_luminance=True)
    shown = np.asarray(plt.gcf().axes[1].images[0].get_array(), dtype=np.float32)
    plt.close("all")
    x, _ = learn.data.valid_dl.batch(torch.tensor([0]))
    inputs = learn.data.denorm(x).clamp(0, 1)
    red = torch.tensor([0.6, 0.4, 0.4]).view(1, 3, 1, 1).expand_as(inputs)
    want = merge_chroma(red, inputs)[0].permute(1, 2, 0).numpy()
    assert shown.shape == want.shape and np.allclose(shown, want, atol=1e-5)
    assert not np.allclose(shown, red[0].permute(1, 2, 0).numpy(), atol=0.05)  # not the raw prediction
