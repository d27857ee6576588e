"""Windows cut from a whole batch of photos at once, fastai v1's ``get_transforms`` applied jointly to input and target
(notebook 05; reused by notebooks 03 and 07)."""

import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

from helpers.photos import PhotoStack


@dataclass
class Params:
    """One batch's random choices, shared by input and target (notebook 05): ``boxes`` (n, 4) windows
    (left, top, right, bottom) as fractions of each photo, ``flip`` (n,) bool, ``angle`` (n,) degrees,
    ``warp`` (n, 4) corner magnitudes, ``brightness`` (n,) and ``contrast`` (n,) (0.5 and 1: no change)."""

    boxes: torch.Tensor
    flip: torch.Tensor
    angle: torch.Tensor
    warp: torch.Tensor
    brightness: torch.Tensor
    contrast: torch.Tensor

    def take(self, part: slice) -> "Params":
        """The parameters of the items ``part`` (notebook 05)."""
        return Params(*(getattr(self, f.name)[part] for f in fields(self)))

    @classmethod
    def plain(cls, boxes: torch.Tensor) -> "Params":
        """The windows ``boxes`` and nothing else: no flip, rotation, warp or lighting (notebook 05)."""
        n = len(boxes)
        z = torch.zeros(n)
        return cls(boxes.float(), torch.zeros(n, dtype=torch.bool), z, torch.zeros(n, 4), z + 0.5, z + 1)


def center_boxes(sizes: torch.Tensor) -> torch.Tensor:
    """The centred square of photos of ``sizes`` (n, 2) = (h, w), on whole pixels, as fractions (n, 4) (notebook 05)."""
    h, w = sizes[:, 0].float(), sizes[:, 1].float()
    s = torch.minimum(h, w)
    top, left = ((h - s) // 2), ((w - s) // 2)
    return torch.stack([left / w, top / h, (left + s) / w, (top + s) / h], 1)


@dataclass(frozen=True)
class Augment:
    """Random joint transforms, fastai v1's ``get_transforms`` (notebook 05): a square window of side ``short side
    / zoom`` at a uniform position, ``zoom`` uniform in [``min_zoom``, ``max_zoom``] with probability ``p_zoom``,
    else ``min_zoom`` (1 in fastai; more cuts patches, notebook 03); a horizontal flip with probability 1/2
    (``do_flip``); a symmetric perspective warp up to ``max_warp`` and a rotation up to ``max_rotate`` degrees,
    each with probability ``p_affine``; brightness in ``0.5 * (1 ± max_lighting)`` and log-uniform contrast in
    [1 - ``max_lighting``, 1 / (1 - ``max_lighting``)], each with probability ``p_lighting``."""

    max_zoom: float = 1.1
    p_zoom: float = 0.75
    min_zoom: float = 1.0
    do_flip: bool = True
    max_rotate: float = 10.0
    max_warp: float = 0.2
    max_lighting: float = 0.2
    p_affine: float = 0.75
    p_lighting: float = 0.75

    def sample(self, sizes: torch.Tensor, generator: torch.Generator | None = None) -> Params:
        """Parameters for photos of ``sizes`` (n, 2) = (h, w) (notebook 05)."""
        n = len(sizes)
        u = torch.rand(n, 12, generator=generator)
        h, w = sizes[:, 0].float().cpu(), sizes[:, 1].float().cpu()
        lo = self.min_zoom
        zoom = torch.where(u[:, 1] < self.p_zoom, lo + (self.max_zoom - lo) * u[:, 0], torch.full((n,), lo))
        s = torch.minimum(h, w) / zoom
        top, left = (h - s) * u[:, 2], (w - s) * u[:, 3]
        boxes = torch.stack([left / w, top / h, (left + s) / w, (top + s) / h], 1)
        flip = (u[:, 4] < 0.5) & self.do_flip
        angle = torch.where(u[:, 5] < self.p_affine, (2 * u[:, 6] - 1) * self.max_rotate, torch.zeros(n))
        warp = (2 * torch.rand(n, 4, generator=generator) - 1) * self.max_warp * (u[:, 7:8] < self.p_affine)
        m = self.max_lighting
        bright = torch.where(u[:, 8] < self.p_lighting, 0.5 * (1 - m) + m * u[:, 9], torch.full((n,), 0.5))
        lo = math.log(1 - m) if m else 0.0
        contrast = torch.where(u[:, 10] < self.p_lighting, torch.exp(lo + (-2 * lo) * u[:, 11]), torch.ones(n))
        return Params(boxes, flip, angle, warp, bright, contrast)


NO_AUGMENT = Augment(max_zoom=1.0, do_flip=False, max_rotate=0.0, max_warp=0.0, max_lighting=0.0)


def _homographies(warp: torch.Tensor) -> torch.Tensor:
    """(n, 3, 3) maps of fastai's ``symmetric_warp``: corners (±1, ±1) pushed out by the magnitudes (n, 4)."""
    m0, m1, m2, m3 = warp.unbind(1)
    src = torch.tensor([[-1.0, -1], [-1, 1], [1, -1], [1, 1]]).expand(len(warp), 4, 2)
    dst = torch.stack([torch.stack([-1 - m3, -1 - m1], 1), torch.stack([-1 - m2, 1 + m1], 1),
                       torch.stack([1 + m3, -1 - m0], 1), torch.stack([1 + m2, 1 + m0], 1)], 1)
    # solve for h (8 unknowns): x' = (h0 x + h1 y + h2) / (h6 x + h7 y + 1), y' likewise with h3..h5
    x, y, xp, yp = src[..., 0], src[..., 1], dst[..., 0], dst[..., 1]
    one, zero = torch.ones_like(x), torch.zeros_like(x)
    rows_x = torch.stack([x, y, one, zero, zero, zero, -x * xp, -y * xp], -1)
    rows_y = torch.stack([zero, zero, zero, x, y, one, -x * yp, -y * yp], -1)
    a = torch.cat([rows_x, rows_y], 1).double()
    b = torch.cat([xp, yp], 1).double()
    h = torch.linalg.solve(a, b).float()
    return torch.cat([h, torch.ones(len(warp), 1)], 1).view(-1, 3, 3)


def _matrices(params: Params, sizes: torch.Tensor) -> torch.Tensor:
    """(n, 3, 3) maps from output coordinates in [-1, 1] to photo pixels: flip, warp, rotation, then the window."""
    n = len(sizes)
    flip = torch.eye(3).repeat(n, 1, 1)
    flip[:, 0, 0] = 1 - 2 * params.flip.float()
    a = params.angle * math.pi / 180
    rot = torch.eye(3).repeat(n, 1, 1)
    rot[:, 0, 0], rot[:, 0, 1], rot[:, 1, 0], rot[:, 1, 1] = a.cos(), -a.sin(), a.sin(), a.cos()
    h, w = sizes[:, 0].float(), sizes[:, 1].float()
    l, t, r, b = params.boxes.float().unbind(1)
    box = torch.zeros(n, 3, 3)
    box[:, 0, 0], box[:, 0, 2] = w * (r - l) / 2, w * (l + r) / 2
    box[:, 1, 1], box[:, 1, 2] = h * (b - t) / 2, h * (t + b) / 2
    box[:, 2, 2] = 1
    return box @ rot @ _homographies(params.warp) @ flip


def _grid(params: Params, sizes: torch.Tensor, transposed: torch.Tensor, stack_hw: tuple[int, int],
          out: int, device: torch.device) -> torch.Tensor:
    """Sampling grid (n, out, out, 2): each output pixel's centre in ``grid_sample``'s coordinates of the stack."""
    sh, sw = stack_hw
    swap = torch.tensor([[0.0, 1, 0], [1, 0, 0], [0, 0, 1]])
    to_stack = torch.tensor([[2 / sw, 0, -1], [0, 2 / sh, -1], [0, 0, 1]])
    m = _matrices(params, sizes)
    m = (to_stack @ torch.where(transposed[:, None, None], swap @ m, m)).to(device)
    t = (torch.arange(out, dtype=torch.float32, device=device) + 0.5) / out * 2 - 1  # pixel centres in [-1, 1]
    # row i of m applied to (u, v, 1): an outer sum of a function of v (rows) and one of u (columns)
    x, y, z = (m[:, i, 1, None, None] * t[:, None] + (m[:, i, 0, None, None] * t[None, :] + m[:, i, 2, None, None])
               for i in range(3))
    if bool(params.warp.any()):
        x, y = x / z, y / z  # a perspective warp: the projective divide
    return torch.stack([x, y], -1)


# On the CPU a tensor over 32 MB is freshly mapped each time (glibc's ceiling for reusing freed blocks), and its
# page faults cost more than the resampling (a 48-MB batch: 25 ms to convert to float, 3.6 ms into reused memory);
# so the CPU cuts a batch into chunks of at most this many float elements. A GPU takes the whole batch.
CPU_CHUNK_ELEMENTS = 4 << 20


def cut(stack: PhotoStack, idx: torch.Tensor, params: Params, size: int) -> torch.Tensor:
    """The windows of photos ``idx`` that ``params`` describe (no lighting), resampled to ``size`` x ``size``: float
    (n, C, size, size) in [0, 255] on the stack's device (notebook 05); shrinking averages k x k samples (k <= 4)."""
    idx = torch.as_tensor(idx).long().cpu()
    sizes, transposed = stack.sizes[idx], stack.transposed[idx]
    box_px = ((params.boxes[:, 2] - params.boxes[:, 0]) * sizes[:, 1]).max().item()
    k = int(min(4, max(1, math.ceil(box_px / size - 0.1))))  # a window 10% over the size is not worth more
    dev = stack.data.device
    step = len(idx) if dev.type != "cpu" else max(1, CPU_CHUNK_ELEMENTS // stack.data[0].numel())
    outs = []
    for s in range(0, len(idx), step):
        part = slice(s, s + step)
        grid = _grid(params.take(part), sizes[part], transposed[part], tuple(stack.data.shape[-2:]), size * k, dev)
        photos = stack.data.index_select(0, idx[part].to(dev)).float()
        out = F.grid_sample(photos, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        outs.append(F.avg_pool2d(out, k) if k > 1 else out)
    return torch.cat(outs) if len(outs) > 1 else outs[0]


def lighting(x: torch.Tensor, params: Params) -> torch.Tensor:
    """fastai's lighting on images (n, C, H, W) in [0, 1]: ``sigmoid((logit(x) + logit(b)) * c)`` (notebook 05)."""
    b, c = params.brightness.to(x.device), params.contrast.to(x.device)
    changed = (b != 0.5) | (c != 1)
    if not bool(changed.any()):
        return x
    logit = torch.logit(x.clamp(1e-7, 1 - 1e-7))
    lit = torch.sigmoid((logit + torch.logit(b)[:, None, None, None]) * c[:, None, None, None])
    return torch.where(changed[:, None, None, None], lit, x)
