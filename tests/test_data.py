"""helpers.data: folder lists, splits, labels, decoding (and its errors), rand_pad, loaders."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from helpers.data import ImageDecodeError, ImageList, TensorLoader, rand_pad
from helpers.photos import PhotoStack


def _png(path, value, size=(28, 28)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(size, value, dtype=np.uint8), mode="L").save(path)


@pytest.fixture
def digits(tmp_path):
    """A tiny mnist_png-like tree: training/{0,1}/ x3, testing/{0,1}/ x2; pixel value = 10*label+i."""
    root = tmp_path / "mnist_png"
    for split, n in (("training", 3), ("testing", 2)):
        for label in (0, 1):
            for i in range(n):
                _png(root / split / str(label) / f"{i}.png", 10 * label + i)
    return root


def test_split_and_label_from_folder(digits):
    il = ImageList.from_folder(digits, convert_mode="L")
    assert len(il) == 10
    ll = il.split_by_folder(train="training", valid="testing").label_from_folder()
    assert (len(ll.train_x), len(ll.valid_x)) == (6, 4)
    assert ll.classes == ["0", "1"]
    for x_list, y in ((ll.train_x, ll.train_y), (ll.valid_x, ll.valid_y)):
        for path, label in zip(x_list.items, y.tolist()):
            assert path.parent.name == str(label)


def forbid_decoding(monkeypatch) -> None:
    """From here on, decoding a photo fails the test: what follows must come from a cache."""
    monkeypatch.setattr(PhotoStack, "decode", classmethod(lambda cls, *a, **k: pytest.fail("decoded again")))


def test_decode_matches_pil_and_is_cached(digits, monkeypatch):
    il = ImageList.from_folder(digits / "training", convert_mode="L")
    x = il.decode()
    assert x.shape == (6, 1, 28, 28) and x.dtype == torch.uint8
    for k, path in enumerate(il.items):
        assert torch.equal(x[k, 0], torch.from_numpy(np.array(Image.open(path))))
    cache = list((digits / "training" / ".cache").glob("decoded-*.pt"))
    assert len(cache) == 1
    forbid_decoding(monkeypatch)
    assert torch.equal(il.decode(), x)  # read from the cache
    assert len(ImageList.from_folder(digits / "training")) == 6, "the cache must not be listed as an image"


def test_corrupt_png_is_reported_by_path(digits):
    bad = digits / "training" / "1" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png")
    il = ImageList.from_folder(digits / "training", convert_mode="L")
    with pytest.raises(ImageDecodeError, match="1 of 7 image") as err:
        il.decode()
    assert str(bad) in str(err.value)
    assert not (digits / "training" / ".cache").exists(), "no cache may be written from a failed decode"


def test_many_bad_images_are_all_listed_in_parallel_decode(tmp_path):
    paths = []
    for i in range(2500):
        p = tmp_path / f"{i}.png"
        if i in (7, 2400):
            p.write_bytes(b"garbage")
        else:
            _png(p, i % 255, size=(4, 4))
        paths.append(p)
    with pytest.raises(ImageDecodeError) as err:
        PhotoStack.decode(paths, "L", workers=2)
    assert str(paths[7]) in str(err.value) and str(paths[2400]) in str(err.value)


def test_missing_folder_and_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        ImageList.from_folder(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="no image files"):
        ImageList.from_folder(tmp_path)


def test_rand_pad_is_a_crop_of_the_zero_padded_image():
    torch.manual_seed(0)
    x = torch.rand(64, 1, 28, 28)
    out = rand_pad(3, 28)(x)
    assert out.shape == x.shape
    padded = F.pad(x, (3, 3, 3, 3))
    offsets = set()
    for k in range(len(x)):
        matches = [(i, j) for i in range(7) for j in range(7)
                   if torch.equal(out[k], padded[k, :, i:i + 28, j:j + 28])]
        assert matches, f"image {k} is not a crop of its padded input"
        offsets.add(matches[0])
    assert len(offsets) > 10, "crops should be random"


def test_rand_pad_multichannel_keeps_channels_together():
    x = torch.arange(2 * 3 * 5 * 5, dtype=torch.float32).view(2, 3, 5, 5)
    out = rand_pad(1, 5)(x)
    padded = F.pad(x, (1, 1, 1, 1))
    for k in range(2):
        assert any(torch.equal(out[k], padded[k, :, i:i + 5, j:j + 5]) for i in range(3) for j in range(3))


def test_tensor_loader_batches_and_normalisation():
    x = torch.randint(0, 256, (10, 1, 4, 4), dtype=torch.uint8)
    y = torch.arange(10)
    dl = TensorLoader(x, y, bs=4, device=torch.device("cpu"))
    batches = list(dl)
    assert len(dl) == 3 and [len(b[1]) for b in batches] == [4, 4, 2]
    assert torch.equal(torch.cat([b[1] for b in batches]), y)
    assert torch.allclose(batches[0][0], x[:4].float() / 255)
    dl.stats = (torch.tensor(0.5).view(1, 1, 1, 1), torch.tensor(0.25).view(1, 1, 1, 1))
    assert torch.allclose(next(iter(dl))[0], (x[:4].float() / 255 - 0.5) / 0.25)
    shuffled = TensorLoader(x, y, bs=4, shuffle=True, drop_last=True, device=torch.device("cpu"))
    assert len(shuffled) == 2
    seen = torch.cat([b[1] for b in shuffled])
    assert len(seen) == 8 and len(set(seen.tolist())) == 8


def test_databunch_normalize_uses_batch_stats(digits):
    ll = ImageList.from_folder(digits, convert_mode="L").split_by_folder("training", "testing").label_from_folder()
    data = ll.databunch(bs=6, device=torch.device("cpu")).normalize()
    x, y = data.one_batch()
    assert x.shape == (6, 1, 28, 28) and y.shape == (6,)
    assert abs(float(x.mean())) < 1e-5 and abs(float(x.std()) - 1) < 1e-4
    back = data.denorm(x)
    assert float(back.min()) >= -1e-5 and float(back.max()) <= 1 + 1e-5
    raw = torch.rand(1, 1, 28, 28)
    assert torch.allclose(data.denorm(data.prepare(raw)), raw, atol=1e-6)


def test_profile_subset_keeps_all_or_a_sorted_seeded_sample(capsys):
    from helpers.data import profile_subset

    assert profile_subset(5, None) == [0, 1, 2, 3, 4]
    assert profile_subset(5, 10) == [0, 1, 2, 3, 4]
    a = profile_subset(100, 10, torch.Generator().manual_seed(3))
    b = profile_subset(100, 10, torch.Generator().manual_seed(3))
    assert a == b and a == sorted(a) and len(set(a)) == 10 and max(a) < 100
    assert "using 10 of 100 images" in capsys.readouterr().out


def test_loader_replace_shares_tensors_and_refuses_unknown_settings():
    x, y = torch.zeros(10, 1, 2, 2, dtype=torch.uint8), torch.arange(10)
    dl = TensorLoader(x, y, 4, device=torch.device("cpu"), max_batches=1)
    other = dl.replace(bs=2)
    assert other.x is dl.x and other.bs == 2 and dl.bs == 4 and len(other) == 1
    assert len(dl.full()) == 3
    with pytest.raises(AttributeError, match="no setting"):
        dl.replace(sizee=3)


def test_read_image_converts_and_shrinks_never_enlarges(tmp_path):
    from helpers.photos import read_image, short_side_size, shrunk_size
    Image.fromarray(np.arange(30 * 40 * 3, dtype=np.uint8).reshape(30, 40, 3)).save(tmp_path / "a.png")
    assert read_image(tmp_path / "a.png").shape == (3, 30, 40)
    assert read_image(tmp_path / "a.png", "L").shape == (1, 30, 40)
    assert read_image(tmp_path / "a.png", size=(20, 15)).shape == (3, 15, 20)
    assert shrunk_size(40, 30, 15) == (20, 15) and shrunk_size(40, 30, 60) == (40, 30) and shrunk_size(40, 30, None) == (40, 30)
    assert short_side_size(40, 30, 60) == (80, 60)  # the lesson's resize_to enlarges; shrunk_size does not
    with Image.open(tmp_path / "a.png") as img:  # the same pixels as PIL's own bilinear resize
        expected = np.array(img.resize((20, 15), Image.BILINEAR)).transpose(2, 0, 1)
    assert (read_image(tmp_path / "a.png", size=(20, 15)) == expected).all()


def test_gan_images_and_gan_databunch_on_a_folder_of_photos(tmp_path, monkeypatch):
    from helpers.data import gan_databunch, gan_images
    monkeypatch.setenv("HELPERS_PROFILE", "small")
    for i, (w, h) in enumerate([(40, 30), (30, 50), (24, 24)] * 3):
        Image.fromarray(np.full((h, w, 3), 20 * i, dtype=np.uint8)).save(tmp_path / f"{i}.jpg", quality=95)
    il = ImageList.from_folder(tmp_path)
    stack = gan_images(il, 24)
    assert len(stack) == 9 and stack.sizes.min(1).values.max() == 24  # short sides shrunk to at most 24
    assert (tmp_path / ".cache").is_dir() and len(list((tmp_path / ".cache").iterdir())) == 1
    with monkeypatch.context() as m:
        forbid_decoding(m)
        again = gan_images(il, 24)  # from the cache
    assert torch.equal(again.data, stack.data) and torch.equal(again.sizes, stack.sizes)
    data = gan_databunch(il, size=24, bs=4, device=torch.device("cpu"))
    assert len(data) == 2 and data.n_items == 9
    noise, real = next(iter(data))
    assert noise.shape == (4, 100, 1, 1) and real.shape == (4, 3, 24, 24) and -1 <= real.min() <= real.max() <= 1
