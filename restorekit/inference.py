"""Running a trained model on images of any size: tiles, self-ensemble, the machine's precision.

Works with any ``nn.Module`` that maps (B, C, H, W) to (B, C, scale*H, scale*W) and has
``scale`` and ``size_multiple`` attributes (restorekit's models and baselines do).

Tiling. The image is cut into tiles of ``tile`` x ``tile`` input pixels, each run with a
halo of ``overlap`` pixels of context on every side (clamped at the image border), and
the outputs are blended with weights that ramp linearly across a band of width
``overlap`` centred on the tile boundary. Every output pixel a tile contributes to has at
least ``overlap / 2`` pixels of real context, so for a model whose receptive-field radius
is at most ``overlap / 2`` (and whose downsamplings align, which rounding ``tile`` and
``overlap`` up to ``size_multiple`` ensures), the tiled output equals the untiled one up to
floating-point rounding. Models with global operations (global pooling, linear attention)
see only their tile, and the blending hides the seams. The model's activations are those
of one tile at a time, so peak memory is bounded by the tile size.

Automatic tiling. With ``tile=None`` and a ``memory_budget`` (``"auto"``: half of this
machine's RAM), the peak memory of the untiled forward is estimated first, for free: a
copy of the model is moved to the meta device and run there on a probe while every tensor it
allocates is counted until it is freed (:func:`peak_bytes`). The estimate grows with the
pixels; when the whole image would pass the budget, the image is tiled with the largest
tile that fits, and a line is logged saying so. (A 4000x3000 RGB image through the face
U-Net needed over 12 GB untiled.)

Self-ensemble (Lim et al. 2017, "EDSR", https://arxiv.org/abs/1707.02921, section 4.3):
the model runs on the 8 flips and rotations of the input and the outputs, transformed
back, are averaged. A model trained on upright content with mirrors only (the face
U-Nets, ``data.augment: hflip``) has ``ensemble_group = "hflip"`` (from its weights'
metadata): it is averaged over the input and its mirror, never shown a rotated face.
"""

from __future__ import annotations

import copy
import logging
import math
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from restorekit.degrade import imresize
from restorekit.hardware import resolve
from restorekit.utils import FLIP_GROUPS, ram_bytes

__all__ = [
    "ChannelMismatchError",
    "auto_tile",
    "ensemble_label",
    "ensemble_words",
    "model_channels",
    "peak_bytes",
    "restore_channels",
    "restore_tensor",
    "self_ensemble",
    "tiled_forward",
]

log = logging.getLogger(__name__)

SAFETY = 1.5
"""Measured RSS over the meta-device count (the face U-Net at 4000x3000: about 12 GB
against 8.2): allocator slack, layout copies, the input and output themselves."""


def restore_tensor(
    model: nn.Module,
    x: Tensor,
    *,
    tile: int | None = None,
    overlap: int = 32,
    ensemble: bool = False,
    precision: str = "auto",
    memory_format: str = "auto",
    progress: Callable[[int, int], None] | None = None,
    memory_budget: int | str | None = None,
) -> Tensor:
    """Restore (B, C, H, W) images in [0, 1]; the output is clipped to [0, 1].

    Args:
        model: maps (B, C, H, W) -> (B, C, scale*H, scale*W); put in eval mode here.
        x: input images.
        tile: tile side in input pixels, or None to run the whole image at once.
        overlap: context halo around each tile, in input pixels (see module docstring).
        ensemble: average over the 8 flips and rotations (8x the cost), or over the
            input and its mirror for a model whose ``ensemble_group`` is ``"hflip"``.
        precision: ``"auto"`` (bf16 autocast where the hardware has native bf16, else
            fp32), ``"fp32"`` or ``"bf16"``; see :mod:`restorekit.hardware`.
        memory_format: ``"auto"`` (the model's preference, channels_last by default),
            ``"channels_last"`` or ``"contiguous"``.
        progress: called as ``progress(done, total)`` after each tile.
        memory_budget: with ``tile=None``, tile when the untiled forward would need more
            than this many bytes (``"auto"``: half the RAM; None: never tile unasked).
    """
    model.eval()
    if tile is None and memory_budget is not None:
        tile = auto_tile(model, x, overlap=overlap, budget=memory_budget)
    numerics = resolve(precision, memory_format, device=x.device, model=model)
    model = numerics.prepare(model)

    def run(inp: Tensor) -> Tensor:
        inp = numerics.input(inp)
        if tile is None:
            return model(inp).float()
        return tiled_forward(model, inp, tile=tile, overlap=overlap, progress=progress)

    with torch.no_grad(), numerics.autocast():  # not inference_mode: callers may edit the output
        group = getattr(model, "ensemble_group", "dihedral")
        y = self_ensemble(run, x, group=group) if ensemble else run(x)
        return y.float().clamp(0, 1)


class ChannelMismatchError(ValueError):
    """An image whose channels no rule of :func:`restore_channels` adapts to the model's;
    ``wanted`` and ``channels`` are the two counts."""

    def __init__(self, wanted: int, channels: int) -> None:
        super().__init__(f"the model takes {wanted}-channel images; this one has {channels}")
        self.wanted, self.channels = wanted, channels


def restore_channels(model: nn.Module, x: Tensor, **options: Any) -> Tensor:
    """:func:`restore_tensor` for an image of any channel count: a gray image through an
    RGB model is repeated to RGB and the output averaged back to gray; an RGB image
    through a gray model is restored channel by channel; a 2nd or 4th (alpha) channel
    passes through, resized to the output. ``options`` are :func:`restore_tensor`'s.

    Shapes:
        (B, C, H, W) in [0, 1], C in 1..4 -> (B, C, sH, sW), clipped to [0, 1].

    Raises:
        ChannelMismatchError: channel counts that none of these rules match.
    """

    def run(inp: Tensor) -> Tensor:
        return restore_tensor(model, inp, **options)

    channels = x.shape[1]
    wanted = model_channels(model)
    if wanted == channels:
        return run(x)
    alpha = None
    if channels in (2, 4):
        x, alpha = x[:, :-1], x[:, -1:]
    colour = x.shape[1]
    if wanted is None or wanted == colour:  # None: any channel count (the baselines)
        y = run(x)
    elif wanted == 1 and colour == 3:
        # Channels as a batch: each is restored alone, as a gray image.
        b, _, h, w = x.shape
        y = run(x.reshape(b * 3, 1, h, w))
        y = y.reshape(b, 3, *y.shape[-2:])
    elif wanted == 3 and colour == 1:
        y = run(x.expand(-1, 3, -1, -1)).mean(dim=1, keepdim=True)
    else:
        raise ChannelMismatchError(wanted, channels)
    if alpha is not None:
        if alpha.shape[-2:] != y.shape[-2:]:
            # float64: imresize's weights sum to 1 exactly, so a constant alpha stays so.
            alpha = imresize(alpha.double(), size=tuple(y.shape[-2:])).clamp(0, 1).float()
        y = torch.cat([y, alpha.to(y.device)], dim=1)
    return y


def model_channels(model: nn.Module) -> int | None:
    """The channels a model takes: ``in_channels``, else its first conv's, else unknown."""
    channels = getattr(model, "in_channels", None)
    if isinstance(channels, int):
        return channels
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    return None if first is None else first.in_channels


def tiled_forward(
    model: nn.Module,
    x: Tensor,
    *,
    tile: int,
    overlap: int,
    progress: Callable[[int, int], None] | None = None,
) -> Tensor:
    """``model(x)`` computed tile by tile and blended (see the module docstring);
    ``progress(done, total)`` is called after each tile.

    >>> conv = nn.Conv2d(1, 1, 3, padding=1)
    >>> conv.scale, conv.size_multiple = 1, 1
    >>> x = torch.rand(1, 1, 20, 30)
    >>> with torch.no_grad():
    ...     err = (tiled_forward(conv, x, tile=8, overlap=2) - conv(x)).abs().max()
    >>> bool(err < 1e-6)
    True
    """
    if tile <= 0 or overlap < 0:
        raise ValueError(
            f"tile must be positive and overlap >= 0, got tile={tile}, overlap={overlap}"
        )
    scale = int(getattr(model, "scale", 1))
    multiple = int(getattr(model, "size_multiple", 1))
    tile, overlap = _round_up(tile, multiple), _round_up(overlap, multiple)
    b, h, w = x.shape[0], x.shape[-2], x.shape[-1]
    out = None
    weight = x.new_zeros(1, 1, h * scale, w * scale, dtype=torch.float32)
    cores = [(ys, xs) for ys in _cores(h, tile) for xs in _cores(w, tile)]
    for done, ((y0, y1), (x0, x1)) in enumerate(cores, start=1):
        wy0, wy1 = max(y0 - overlap, 0), min(y1 + overlap, h)  # the tile with its halo
        wx0, wx1 = max(x0 - overlap, 0), min(x1 + overlap, w)
        y = model(x[..., wy0:wy1, wx0:wx1]).float()
        if out is None:
            out = x.new_zeros(b, y.shape[1], h * scale, w * scale, dtype=torch.float32)
        ramp_y = _ramp(wy0, wy1, y0, y1, h, overlap, scale, x.device)
        ramp_x = _ramp(wx0, wx1, x0, x1, w, overlap, scale, x.device)
        mask = ramp_y[:, None] * ramp_x[None, :]
        out[..., wy0 * scale : wy1 * scale, wx0 * scale : wx1 * scale] += y * mask
        weight[..., wy0 * scale : wy1 * scale, wx0 * scale : wx1 * scale] += mask
        if progress is not None:
            progress(done, len(cores))
    return out / weight


def auto_tile(
    model: nn.Module, x: Tensor, *, overlap: int = 32, budget: int | str = "auto"
) -> int | None:
    """The tile side that keeps the forward of ``x`` under ``budget`` bytes, or None when
    the whole image fits (or the model cannot be measured: classical baselines).

    ``"auto"`` is half the physical memory. Logs one line when it tiles.
    """
    limit = ram_bytes() // 2 if budget == "auto" else int(budget)
    per_pixel = _bytes_per_pixel(model, x.shape[1], x.dtype)
    if per_pixel is None:
        return None
    batch, h, w = x.shape[0], x.shape[-2], x.shape[-1]
    need = per_pixel * batch * h * w
    if need <= limit:
        return None
    side = int(math.sqrt(limit / (per_pixel * batch))) - 2 * overlap
    tile = max(64, side // 64 * 64)
    log.info("the untiled forward of %dx%d would need about %.1f GB (budget %.1f GB): "
             "tiles of %d px with a %d px halo", w, h, need / 1e9, limit / 1e9, tile,
             overlap)  # fmt: skip
    return tile


def peak_bytes(model: nn.Module, shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> int:
    """Peak bytes of the tensors one ``model(x)`` holds at once, for ``x`` of ``shape``,
    counted on the meta device (no memory, no compute); ``model`` must be on meta."""
    counter = _LiveBytes()
    with torch.no_grad(), counter:
        model(torch.zeros(shape, dtype=dtype, device="meta"))
    return counter.peak


class _LiveBytes(TorchDispatchMode):
    """Counts the bytes of every tensor an op returns until it is freed; keeps the peak."""

    def __init__(self) -> None:
        super().__init__()
        self.live = self.peak = 0

    def _free(self, n: int) -> None:
        self.live -= n

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, Tensor) and not t._is_view():
                n = t.numel() * t.element_size()
                self.live += n
                self.peak = max(self.peak, self.live)
                weakref.finalize(t, self._free, n)
        return out


_PER_PIXEL: weakref.WeakKeyDictionary[nn.Module, dict[tuple[int, torch.dtype], float | None]]
_PER_PIXEL = weakref.WeakKeyDictionary()


def _bytes_per_pixel(model: nn.Module, channels: int, dtype: torch.dtype) -> float | None:
    """Estimated peak bytes per input pixel of ``model`` (cached while the model lives)."""
    cached = _PER_PIXEL.setdefault(model, {})
    if (channels, dtype) not in cached:
        cached[(channels, dtype)] = _measure(model, channels, dtype)
    return cached[(channels, dtype)]


def _measure(model: nn.Module, channels: int, dtype: torch.dtype) -> float | None:
    if getattr(model, "classical", False) or next(model.parameters(), None) is None:
        return None  # a classical baseline: numpy inside, nothing to count
    multiple = int(getattr(model, "size_multiple", 1) or 1)
    side = max(multiple, 256 // multiple * multiple)
    try:
        probe = copy.deepcopy(model).to("meta").eval()  # weights are not needed to count
        return SAFETY * peak_bytes(probe, (1, channels, side, side), dtype) / side**2
    except Exception as err:  # an estimate only: it never stops a restore
        log.debug("no memory estimate for %s: %s", type(model).__name__, err)
        return None


def self_ensemble(run: Callable[[Tensor], Tensor], x: Tensor, *, group: str = "dihedral") -> Tensor:
    """Mean of ``run`` over the 8 dihedral transforms of ``x`` (``group="hflip"``: ``x`` and
    its left-right mirror), each transformed back.

    >>> flip_sensitive = lambda t: t + torch.arange(t.shape[-1], dtype=t.dtype)
    >>> x = torch.zeros(1, 1, 3, 3)
    >>> self_ensemble(flip_sensitive, x)[0, 0, 0]  # position effects average out
    tensor([1., 1., 1.])
    >>> row_sensitive = lambda t: t + torch.arange(t.shape[-2], dtype=t.dtype)[:, None]
    >>> self_ensemble(row_sensitive, x, group="hflip")[0, 0, :, 0]  # no rotation: rows stay
    tensor([0., 1., 2.])
    """
    if group not in FLIP_GROUPS:
        raise ValueError(f"ensemble group must be one of {FLIP_GROUPS}, got {group!r}")
    pairs = list(_dihedral())
    if group == "hflip":
        pairs = pairs[:2]  # the identity and the mirror (k = 0)
    total = None
    for forward, backward in pairs:
        y = backward(run(forward(x)))
        total = y if total is None else total + y
    return total / len(pairs)


def ensemble_label(name: str, model: nn.Module) -> str:
    """How tables and cards name ``model`` run with self-ensemble: ``"NAME + self-ensemble
    (x2: it and its mirror)"`` for a mirror-only model, else ``"(x8 flips/rotations)"``.
    ``restorekit weights`` reads a card's row of that name as the model's own score."""
    return f"{name} + self-ensemble ({ensemble_words(model)})"


def ensemble_words(model: nn.Module) -> str:
    """The flips :func:`restore_tensor` averages ``model`` over with ``ensemble=True``."""
    if getattr(model, "ensemble_group", "dihedral") == "hflip":
        return "x2: it and its mirror"
    return "x8 flips/rotations"


def _dihedral() -> Iterator[tuple[Callable[[Tensor], Tensor], Callable[[Tensor], Tensor]]]:
    """The 8 flips/rotations and their inverses, on the last two dimensions."""
    for k in range(4):
        for flip in (False, True):

            def forward(t: Tensor, k: int = k, flip: bool = flip) -> Tensor:
                t = torch.rot90(t, k, dims=(-2, -1))
                return t.flip(-1) if flip else t

            def backward(t: Tensor, k: int = k, flip: bool = flip) -> Tensor:
                t = t.flip(-1) if flip else t
                return torch.rot90(t, -k, dims=(-2, -1))

            yield forward, backward


def _cores(n: int, tile: int) -> list[tuple[int, int]]:
    """Non-overlapping [start, end) cores of length ``tile`` covering 0..n."""
    return [(s, min(s + tile, n)) for s in range(0, n, tile)]


def _ramp(
    w0: int, w1: int, c0: int, c1: int, n: int, overlap: int, scale: int, device: torch.device
) -> Tensor:
    """Blending weights along one axis for output pixels of the window [w0, w1).

    1 inside the core [c0, c1); across each inner core boundary a linear ramp from 1 to 0
    over ``overlap`` input pixels centred on the boundary, so neighbouring tiles' weights
    sum to 1. No ramp at the image border, where no neighbour takes over.
    """
    pos = (torch.arange(w0 * scale, w1 * scale, device=device, dtype=torch.float32) + 0.5) / scale
    band = max(overlap, 1e-6)
    weight = torch.ones_like(pos)
    if c0 > 0:
        weight = torch.minimum(weight, (0.5 + (pos - c0) / band).clamp(0, 1))
    if c1 < n:
        weight = torch.minimum(weight, (0.5 + (c1 - pos) / band).clamp(0, 1))
    return weight


def _round_up(value: int, multiple: int) -> int:
    return int(math.ceil(value / multiple) * multiple)
