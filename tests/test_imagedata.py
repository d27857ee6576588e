"""helpers.imagedata: pairs matched by name, the loaders; helpers.metrics against hand computations; the
image-to-image pictures."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from conftest import SIZES, photo
from helpers.folders import resize_folder
from helpers.imagedata import get_transforms, image_pair_data, image_pairs, split_by_rand_pct
from helpers.metrics import bicubic_upsample, image_scores, psnr, ssim


# --- pairs and split ------------------------------------------------------------------------------
def test_pairs_are_matched_by_name(photos):
    lr = resize_folder(photos, photos.parent / "small-16", 16)
    photo(0, 20, 20).save(photos / "extra_target_only.jpg")  # targets without an input are fine
    xs, ys = image_pairs(lr, photos)
    assert [p.name for p in xs] == [p.name for p in ys] and all(p.parent == photos for p in ys)
    (photos / "pet_4.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 of 10 image\(s\) in .*small-16 have no file of the same name.*pet_4.jpg"):
        image_pairs(lr, photos)


def test_split_by_rand_pct_keeps_one_valid_item_of_a_handful():
    """A smoke run's 4 photos: fastai's int(0.1 * 4) would leave no validation photo at all."""
    train, valid = split_by_rand_pct(4, 0.1, seed=42)
    assert len(valid) == 1 and sorted(train + valid) == [0, 1, 2, 3]
    assert split_by_rand_pct(1, 0.1)[1] == [] and split_by_rand_pct(4, 0.0)[1] == []


def test_split_by_rand_pct_is_fastais_seeded_draw():
    train, valid = split_by_rand_pct(50, 0.1, seed=42)
    np.random.seed(42)
    assert valid == sorted(np.random.permutation(50)[:5].tolist())
    assert sorted(train + valid) == list(range(50)) and len(valid) == 5
    assert split_by_rand_pct(50, 0.1, seed=42) == (train, valid)


# --- loaders ----------------------------------------------------------------------------------------
def test_image_pair_data_serves_normalised_aligned_pairs(photos):
    lr = resize_folder(photos, photos.parent / "small-16", 16)
    data = image_pair_data(lr, photos, size=24, bs=4, valid_pct=0.2, seed=42, device=torch.device("cpu"))
    assert data.train_dl.n_items == 8 and data.valid_dl.n_items == 2 and len(data.train_dl) == 2
    for valid in (False, True):
        x, y = data.one_batch(valid=valid)
        assert x.shape == y.shape == (4 if not valid else 2, 3, 24, 24)
        x, y = data.denorm(x), data.denorm(y)
        assert x.min() > -0.02 and y.max() < 1.02
        # each input shows the same photo as its target: red says which (JPEG keeps it within a few levels)
        assert torch.allclose(x[:, 0].mean((1, 2)), y[:, 0].mean((1, 2)), atol=0.03)
        assert len(set((y[:, 0].mean((1, 2)) * 255 / 20).round().tolist())) == len(y)
    bigger = data.resized(40, bs=2)
    assert bigger.one_batch()[0].shape == (2, 3, 40, 40) and bigger.train_dl.x is data.train_dl.x
    # targets are kept with their short side at most max_zoom * size; inputs as they are
    assert data.train_dl.y.sizes.min(1).values.max() <= 48 and data.train_dl.x.sizes.min(1).values.min() == 16


# --- metrics ----------------------------------------------------------------------------------------
def test_psnr_against_a_hand_computation():
    target = torch.zeros(2, 3, 8, 8)
    pred = target.clone()
    pred[0] += 0.1  # mse 0.01 -> 20 dB
    pred[1, :, :4] = 0.5  # half the pixels off by 0.5: mse 0.125 -> 10 log10(8) dB
    assert psnr(pred, target).tolist() == pytest.approx([20.0, 10 * np.log10(8)], rel=1e-5)


def gaussian_ssim(a, b, c1=0.01**2, c2=0.03**2):
    """SSIM written out: 11-px Gaussian window (sigma 1.5), images reflect-padded so that every pixel
    counts (no border crop), mean over pixels and channels."""
    g = torch.exp(-((torch.arange(11) - 5.0) ** 2) / (2 * 1.5**2))
    w = (g[:, None] * g[None, :] / g.sum() ** 2).expand(a.shape[1], 1, 11, 11).to(a.dtype)

    def blur(t):
        return F.conv2d(F.pad(t, (5, 5, 5, 5), mode="reflect"), w, groups=a.shape[1])
    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b, cov = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2, blur(a * b) - mu_a * mu_b
    m = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return m.mean((1, 2, 3))


def test_ssim_uses_the_gaussian_window():
    torch.manual_seed(0)
    a = torch.rand(2, 3, 32, 32)
    b = (a + 0.1 * torch.randn_like(a)).clamp(0, 1)
    assert ssim(a, a).tolist() == pytest.approx([1.0, 1.0], abs=1e-5)
    assert ssim(a, b).tolist() == pytest.approx(gaussian_ssim(a.double(), b.double()).tolist(), abs=1e-4)


@pytest.mark.parametrize("size", [20, 5])
def test_bicubic_upsample_is_pils_bicubic(size):
    torch.manual_seed(0)
    x = torch.rand(1, 3, 8, 8)
    up = bicubic_upsample(x, size)
    assert up.shape == (1, 3, size, size) and up.min() >= 0 and up.max() <= 1
    pil = [np.array(Image.fromarray(c.numpy()).resize((size, size), Image.BICUBIC)) for c in x[0]]
    assert torch.allclose(up[0], torch.from_numpy(np.stack(pil)).clamp(0, 1), atol=1e-5)


def test_image_scores_model_and_bicubic_baseline(photos):
    from helpers.learner import Learner
    lr = resize_folder(photos, photos.parent / "small-16", 16)
    data = image_pair_data(lr, photos, size=24, bs=4, valid_pct=0.3, device=torch.device("cpu"))
    learn = Learner(data, nn.Identity(), F.l1_loss)  # the "model" returns its input: bilinear upsampling
    scores = image_scores(learn)
    assert set(scores) == {"psnr_model", "psnr_bicubic", "ssim_model", "ssim_bicubic"}
    assert all(len(v) == 3 for v in scores.values())
    x, y = data.valid_dl.batch(torch.arange(3))
    target = data.denorm(y).clamp(0, 1)
    assert scores["psnr_model"].tolist() == pytest.approx(psnr(data.denorm(x).clamp(0, 1), target).tolist(), rel=1e-5)
    lows = data.valid_dl.inputs(torch.arange(3))
    assert all(t.shape == (3, 16, 16) for t in lows)
    base = torch.cat([bicubic_upsample(t[None], 24) for t in lows])
    assert scores["ssim_bicubic"].tolist() == pytest.approx(ssim(base, target).tolist(), rel=1e-5)
    with pytest.raises(ValueError, match="validation loader"):
        image_scores(learn, data.train_dl)
    from helpers.metrics import colorfulness, delta_e, sharpness
    more = image_scores(learn, with_sharpness=True, with_color=True)
    assert set(more) == set(scores) | {f"{k}_{w}" for k in ("sharpness", "colorfulness") for w in ("model", "bicubic", "target")} \
        | {"deltae_model", "deltae_bicubic"}
    model = data.denorm(x).clamp(0, 1)
    assert more["sharpness_target"].tolist() == pytest.approx(sharpness(target).tolist(), rel=1e-5)
    assert more["colorfulness_model"].tolist() == pytest.approx(colorfulness(model).tolist(), rel=1e-5)
    assert more["deltae_bicubic"].tolist() == pytest.approx(delta_e(base, target).tolist(), rel=1e-4)
    assert more["psnr_model"].tolist() == scores["psnr_model"].tolist()


# --- pictures ---------------------------------------------------------------------------------------
def test_show_image_results_and_batch(photos):
    from helpers.learner import Learner
    from helpers.show import pyplot, show_image_batch, show_image_results
    lr = resize_folder(photos, photos.parent / "small-16", 16)
    data = image_pair_data(lr, photos, size=24, bs=4, valid_pct=0.3, device=torch.device("cpu"))
    plt = pyplot()
    show_image_results(Learner(data, nn.Identity(), F.l1_loss), rows=2)
    axes = plt.gcf().axes
    assert len(axes) == 6 and [a.get_title() for a in axes[:3]] == ["Input", "Prediction", "Target"]
    plt.close("all")
    show_image_batch(data, rows=2)
    assert [a.get_title() for a in plt.gcf().axes[:2]] == ["input", "target"]
    plt.close("all")


def test_show_image_results_of_chosen_items_with_row_titles(photos):
    from helpers.learner import Learner
    from helpers.show import pyplot, show_image_results
    lr = resize_folder(photos, photos.parent / "small-16", 16)
    data = image_pair_data(lr, photos, size=24, bs=4, valid_pct=0.3, device=torch.device("cpu"))
    plt = pyplot()
    show_image_results(Learner(data, nn.Identity(), F.l1_loss), idx=[2, 0], row_titles=["+1 dB", "-1 dB"])
    axes = plt.gcf().axes
    assert len(axes) == 6
    assert [a.get_title() for a in axes] == ["Input", "+1 dB", "Target", "", "-1 dB", ""]
    first_input = axes[0].images[0].get_array()
    x, _ = data.valid_dl.batch(torch.tensor([2]))
    assert np.allclose(np.asarray(first_input), data.denorm(x)[0].clamp(0, 1).permute(1, 2, 0).numpy(), atol=1e-6)
    plt.close("all")


def test_image_scores_follow_the_smoke_cap(photos, monkeypatch):
    from helpers.learner import Learner
    lr = resize_folder(photos, photos.parent / "small-16", 16)
    data = image_pair_data(lr, photos, size=24, bs=1, valid_pct=0.5, device=torch.device("cpu"))
    learn = Learner(data, nn.Identity(), F.l1_loss)
    n = data.valid_dl.n_items
    assert n > 2 and len(image_scores(learn)["psnr_model"]) == n
    monkeypatch.setenv("HELPERS_SMOKE", "1")
    assert len(image_scores(learn)["psnr_model"]) == 2  # SMOKE_BATCHES batches of one


def test_upscale_enlarges_a_whole_photo_through_the_model():
    from helpers.photos import PhotoStack
    from helpers.imagedata import ImagePairData, ImagePairLoader, upscale
    from helpers.learner import Learner

    img = torch.rand(3, 40, 50)
    stack = PhotoStack.from_list([(img * 255).round().byte()])
    loader = ImagePairLoader(stack, stack, bs=1, size=24, train=False, device=torch.device("cpu"))
    data = ImagePairData(loader, loader)  # ImageNet statistics: upscale normalises and denormalises
    x, out = upscale(Learner(data, nn.Identity(), F.l1_loss), img, 2.0)
    assert x.shape == out.shape == (3, 96, 96)  # 80 x 100 rounded to multiples of 32
    assert torch.allclose(out, x, atol=1e-5)  # an identity model returns the bilinear enlargement
    assert torch.allclose(x, F.interpolate(img[None], (96, 96), mode="bilinear")[0].clamp(0, 1))


# --- the generator's pictures and the critic's data (notebook 03) -----------------------------------
def test_save_preds_writes_every_training_photo_under_its_name_atomically(photos, tmp_path):
    from helpers.imagedata import save_preds
    from helpers.learner import Learner
    lr = resize_folder(photos, photos.parent / "small-16", 16)
    data = image_pair_data(lr, photos, size=24, bs=2, valid_pct=0.3, device=torch.device("cpu"))
    learn = Learner(data, nn.Identity(), F.l1_loss)
    dest = save_preds(learn, tmp_path / "image_gen", quality=100)
    names = sorted(p.name for p in dest.iterdir())
    assert names == sorted(data.train_dl.names) and len(names) == data.train_dl.n_items
    x, _ = data.train_dl.replace(shuffle=False).batch(torch.tensor([0]))
    saved = torch.from_numpy(np.array(Image.open(dest / data.train_dl.names[0]))).permute(2, 0, 1).float() / 255
    assert saved.shape == (3, 24, 24)
    assert (saved - data.denorm(x)[0].clamp(0, 1)).abs().mean() < 0.02  # identity model: the input, JPEG-coded

    class Broken(nn.Module):
        def forward(self, x):
            raise RuntimeError("out of memory")

    learn.model = Broken()
    with pytest.raises(RuntimeError, match="out of memory"):
        save_preds(learn, dest)
    assert sorted(p.name for p in dest.iterdir()) == names  # the earlier set is untouched
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]


def test_critic_data_pairs_each_generated_picture_with_its_real_photo(photos, tmp_path):
    from helpers.imagedata import center_square, critic_data
    # stand-in "generated" pictures: each real photo's centred square, shrunk, as save_preds writes them
    gen = tmp_path / "image_gen"
    gen.mkdir()
    for p in sorted(photos.iterdir()):
        img = torch.from_numpy(np.array(Image.open(p).convert("RGB"))).permute(2, 0, 1)
        square = Image.fromarray(center_square(img).permute(1, 2, 0).numpy())
        square.resize((20, 20), Image.BILINEAR).save(gen / p.name, quality=100)
    data = critic_data(gen, photos, size=16, bs=4, valid_pct=0.25, tfms=get_transforms(max_zoom=1.5, max_lighting=0.5),
                       device=torch.device("cpu"))
    assert data.classes == ["image_gen", "images"]
    assert data.train_dl.n_items + data.valid_dl.n_items == len(SIZES)  # split by photo
    assert not set(data.train_dl.names) & set(data.valid_dl.names)
    torch.manual_seed(0)
    x, y = next(iter(data.train_dl))
    assert x.shape == (4, 3, 16, 16) and y.tolist() == [0.0, 0.0, 1.0, 1.0]
    for dl in (data.train_dl, data.valid_dl):
        n = dl.n_items
        x, y = dl.batch(torch.arange(n))  # every photo: n generated pictures, then the n real ones
        assert y.tolist() == [0.0] * n + [1.0] * n
        err = (data.denorm(x[:n]) - data.denorm(x[n:])).abs().flatten(1).mean(1)
        assert err.max() < 0.03, err  # the same window of the same photo, flipped alike
    with pytest.raises(ValueError, match="even"):
        critic_data(gen, photos, size=16, bs=3)


def test_sharpness_prefers_the_sharp_picture():
    from helpers.metrics import sharpness
    torch.manual_seed(0)
    sharp = torch.rand(2, 3, 32, 32)
    blurred = F.avg_pool2d(F.pad(sharp, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    flat = torch.full((1, 3, 32, 32), 0.5)
    assert (sharpness(sharp) > 3 * sharpness(blurred)).all()
    assert sharpness(flat).item() == 0
    gray = sharp[:, :1].expand(-1, 3, -1, -1)  # luminance of a gray picture is the picture
    lap = F.conv2d(sharp[:, :1], torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]]).view(1, 1, 3, 3))
    assert torch.allclose(sharpness(gray), lap.flatten(1).var(1), rtol=1e-5)
