"""helpers.augment: the padded photo stack, windows cut for a whole batch at once (equal to cutting each
photo alone with roi_align), the same geometry and lighting on input and target, fastai's ranges."""
import math

import pytest
import torch
from torchvision.ops import roi_align

from helpers.augment import NO_AUGMENT, Augment, Params, center_boxes, cut, lighting
from helpers.photos import PhotoStack

SIZES = [(24, 32), (40, 30), (28, 28), (20, 50)]


def photos(scale: int = 1, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 256, (3, h * scale, w * scale), dtype=torch.uint8, generator=g) for h, w in SIZES]


def coordinates(h: int, w: int) -> torch.Tensor:
    """A picture whose pixels hold their own position: (column centre / w, row centre / h, 0.5), in [0, 255]."""
    cols = ((torch.arange(w) + 0.5) / w).expand(h, w)
    rows = ((torch.arange(h) + 0.5) / h)[:, None].expand(h, w)
    return torch.stack([cols, rows, torch.full((h, w), 0.5)]) * 255


def test_the_stack_gives_back_each_photo_and_mirrors_at_its_edges():
    pics = photos()
    stack = PhotoStack.from_list(pics)
    assert stack.data.shape == (4, 3, 30, 50) and stack.transposed.tolist() == [False, True, False, False]
    for i, p in enumerate(pics):
        assert torch.equal(stack.item(i), p)
    # a 24 x 32 photo padded to 30 x 50: row 24 repeats row 23, column 32 repeats column 31, then mirror
    assert torch.equal(stack.data[0, :, 24, :32], pics[0][:, 23])
    assert torch.equal(stack.data[0, :, 25, :32], pics[0][:, 22])
    assert torch.equal(stack.data[0, :, :24, 32], pics[0][:, :, 31])
    assert torch.equal(stack.data[1, :, :30, :40], pics[1].transpose(-1, -2))  # a portrait lies on its side


@pytest.mark.parametrize("size", [8, 16, 40])
def test_a_batch_cut_at_once_equals_each_photo_cut_alone(size):
    """The device-side path against the per-item one: the same boxes through roi_align, one photo at a
    time, with as many samples per output pixel (averaging when shrinking, bilinear when enlarging)."""
    pics = photos()
    stack = PhotoStack.from_list(pics)
    torch.manual_seed(1)
    params = Augment(max_zoom=2.0, max_rotate=0, max_warp=0, max_lighting=0).sample(stack.sizes)
    out = cut(stack, torch.arange(4), params, size)
    box_px = ((params.boxes[:, 2] - params.boxes[:, 0]) * stack.sizes[:, 1]).max().item()
    k = min(4, max(1, math.ceil(box_px / size - 0.1)))
    for i, p in enumerate(pics):
        h, w = p.shape[-2:]
        left, top, right, bottom = params.boxes[i].tolist()
        rois = torch.tensor([[0, left * w, top * h, right * w, bottom * h]])
        ref = roi_align(p[None].float(), rois, (size, size), sampling_ratio=k, aligned=True)[0]
        ref = ref.flip(-1) if params.flip[i] else ref
        torch.testing.assert_close(out[i], ref, atol=2e-2, rtol=0)


def test_the_cpu_cuts_in_chunks_without_changing_the_result(monkeypatch):
    import helpers.augment as augment
    stack = PhotoStack.from_list(photos())
    torch.manual_seed(2)
    params = Augment(max_zoom=2.0).sample(stack.sizes)
    whole = cut(stack, torch.arange(4), params, 16)
    monkeypatch.setattr(augment, "CPU_CHUNK_ELEMENTS", 1)  # one photo per chunk
    assert torch.equal(cut(stack, torch.arange(4), params, 16), whole)


def test_input_and_target_get_the_same_geometry():
    """The same photo at two resolutions, each pixel holding its own position: after the same random
    window, flip, warp and rotation, input and target show the same places."""
    xs = PhotoStack.from_list([coordinates(h, w).round().to(torch.uint8) for h, w in SIZES])
    ys = PhotoStack.from_list([coordinates(4 * h, 4 * w).round().to(torch.uint8) for h, w in SIZES])
    aug = Augment(max_zoom=2.0, max_rotate=10, max_warp=0.2, max_lighting=0, p_affine=1.0)
    torch.manual_seed(0)
    for _ in range(10):
        params = aug.sample(xs.sizes)
        x, y = cut(xs, torch.arange(4), params, 20), cut(ys, torch.arange(4), params, 20)
        inside = ((y[:, :2] > 20) & (y[:, :2] < 235)).all(1)  # away from the borders, where reflection begins
        assert inside.float().mean() > 0.5
        diff = (x - y).abs()[:, :2].amax(1)[inside]
        assert diff.max() < 2.5, diff.max()  # within a pixel level of rounding: the same place
    assert params.angle.abs().min() > 0 and params.warp.abs().sum() > 0


def test_validation_windows_are_the_centred_squares():
    assert center_boxes(torch.tensor([[24, 32], [40, 30]])).tolist() == [[4 / 32, 0.0, 28 / 32, 1.0],
                                                                          [0.0, 5 / 40, 1.0, 35 / 40]]
    stack = PhotoStack.from_list([coordinates(24, 32).round().to(torch.uint8)])
    out = cut(stack, torch.arange(1), Params.plain(center_boxes(stack.sizes)), 24)
    assert torch.allclose(out[0, 0, 0, :], coordinates(24, 32)[0, 0, 4:28].round(), atol=0.01)


def test_rotation_turns_the_picture():
    stack = PhotoStack.from_list([coordinates(32, 32).round().to(torch.uint8)])
    params = Params.plain(center_boxes(stack.sizes))
    params.angle[:] = 90.0
    out = cut(stack, torch.arange(1), params, 32)
    # a quarter turn: the row ramp now runs along the columns, the column ramp up the rows
    ramp = coordinates(32, 32)[0, 16, :].round()
    assert torch.allclose(out[0, 1, 16, :], ramp, atol=0.01)
    assert torch.allclose(out[0, 0, :, 16], ramp.flip(0), atol=0.01)


def test_lighting_is_fastais_and_leaves_the_rest_alone():
    x = torch.rand(3, 3, 4, 4)
    params = Params.plain(torch.zeros(3, 4))
    params.brightness[:] = torch.tensor([0.5, 0.6, 0.45])
    params.contrast[:] = torch.tensor([1.0, 1.0, 1.3])
    out = lighting(x, params)
    assert torch.equal(out[0], x[0])  # no change drawn: untouched
    logit = torch.logit(x.clamp(1e-7, 1 - 1e-7))
    assert torch.allclose(out[1], torch.sigmoid(logit[1] + math.log(0.6 / 0.4)), atol=1e-6)
    assert torch.allclose(out[2], torch.sigmoid((logit[2] + math.log(0.45 / 0.55)) * 1.3), atol=1e-6)


def test_the_random_draws_are_in_fastais_ranges():
    sizes = torch.tensor([[100, 150]]).expand(4000, 2)
    torch.manual_seed(0)
    p = Augment(max_zoom=2.0).sample(sizes)
    rotated, warped = p.angle != 0, p.warp.abs().sum(1) > 0
    assert p.angle.abs().max() <= 10 and abs(rotated.float().mean() - 0.75) < 0.03
    assert p.warp.abs().max() <= 0.2 and abs(warped.float().mean() - 0.75) < 0.03
    assert abs(p.flip.float().mean() - 0.5) < 0.03
    lit = p.brightness != 0.5
    assert p.brightness[lit].min() >= 0.4 and p.brightness[lit].max() <= 0.6 and abs(lit.float().mean() - 0.75) < 0.03
    assert p.contrast.min() >= 0.8 - 1e-6 and p.contrast.max() <= 1.25 + 1e-6
    side = (p.boxes[:, 2] - p.boxes[:, 0]) * 150
    assert side.min() >= 50 - 1e-3 and side.max() <= 100 + 1e-3  # 100 px short side, zoom 1..2
    assert (p.boxes >= -1e-6).all() and (p.boxes <= 1 + 1e-6).all()
    none = NO_AUGMENT.sample(sizes[:10])
    assert not none.flip.any() and not none.angle.any() and not none.warp.any() and (none.brightness == 0.5).all()
