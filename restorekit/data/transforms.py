"""Paired transforms: aligned random crops (across scales for super-resolution), the eight
flips/rotations, modcrop, channel conversion, and deterministic train/val/test splits.

Every random choice takes an explicit ``torch.Generator``, and the same choice is applied
to every tensor of a pair (``lq``, ``gt``, ``mask``, depth), so they stay aligned.

References:
    - The paired crop and flip/rotation augmentation of EDSR (Lim et al. 2017, "Enhanced
      Deep Residual Networks for Single Image Super-Resolution", CVPRW,
      https://arxiv.org/abs/1707.02921), the field's convention since.
    - ITU-R BT.601 luma weights: https://www.itu.int/rec/R-REC-BT.601
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from restorekit.utils import FLIP_GROUPS, rgb_to_gray

__all__ = [
    "augment_group",
    "crop_offsets",
    "dihedral",
    "modcrop",
    "paired_random_crop",
    "photometric_jitter",
    "random_dihedral",
    "split_indices",
    "to_channels",
]


def modcrop(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Crop the bottom and right of ``x`` so that H and W are multiples of ``scale``.

    Args:
        x: (..., H, W) tensor.
        scale: integer >= 1.

    Returns:
        A view of ``x``, (..., H - H % scale, W - W % scale).

    Raises:
        ValueError: ``scale`` < 1, or H or W smaller than ``scale``.

    Example:
        >>> modcrop(torch.zeros(3, 10, 7), 3).shape
        torch.Size([3, 9, 6])
    """
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    h, w = x.shape[-2] - x.shape[-2] % scale, x.shape[-1] - x.shape[-1] % scale
    if h == 0 or w == 0:
        raise ValueError(f"image {x.shape[-2]}x{x.shape[-1]} is smaller than the scale {scale}")
    return x[..., :h, :w]


def crop_offsets(
    height: int, width: int, size: int, *, generator: torch.Generator
) -> tuple[int, int]:
    """A uniformly random (top, left) for a ``size`` x ``size`` crop of a height x width image.

    Raises:
        ValueError: the image is smaller than the crop.

    Example:
        >>> crop_offsets(4, 4, 4, generator=torch.Generator().manual_seed(0))
        (0, 0)
    """
    if size < 1 or height < size or width < size:
        raise ValueError(f"cannot take a {size}x{size} crop from a {height}x{width} image")
    top = int(torch.randint(height - size + 1, (1,), generator=generator))
    left = int(torch.randint(width - size + 1, (1,), generator=generator))
    return top, left


def paired_random_crop(
    lq: torch.Tensor,
    gt: torch.Tensor,
    *,
    size: int,
    generator: torch.Generator,
    scale: int = 1,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """One random crop, aligned across ``lq``, ``gt`` and ``mask``, also across scales.

    The offset is drawn on the low-resolution grid, so the ``gt`` crop starts at exactly
    ``scale`` times the ``lq`` crop's offset and is ``scale`` times its size.

    Args:
        lq: (C, h, w) degraded image, with h = H / scale and w = W / scale.
        gt: (C', H, W) ground truth.
        size: side of the ``gt`` crop (the HR patch), a multiple of ``scale``; the ``lq``
            crop's side is ``size // scale``.
        generator: draws the offset.
        scale: super-resolution factor (1 for same-size pairs).
        mask: optional (1, H, W) mask aligned with ``gt``, cropped like it.

    Returns:
        (lq crop (C, size/scale, size/scale), gt crop (C', size, size), mask crop or None).

    Raises:
        ValueError: sizes that do not match the scale, or an image smaller than the crop.

    Example:
        >>> gt = torch.arange(64.0).reshape(1, 8, 8)
        >>> lq = gt[:, ::2, ::2]  # a stand-in for a x2 downscale
        >>> g = torch.Generator().manual_seed(0)
        >>> lq_c, gt_c, _ = paired_random_crop(lq, gt, size=4, scale=2, generator=g)
        >>> lq_c.shape, gt_c.shape, bool(torch.equal(gt_c[:, ::2, ::2], lq_c))
        (torch.Size([1, 2, 2]), torch.Size([1, 4, 4]), True)
    """
    if size % scale:
        raise ValueError(f"crop size {size} must be a multiple of the scale {scale}")
    h, w = lq.shape[-2:]
    if gt.shape[-2:] != (h * scale, w * scale):
        raise ValueError(
            f"gt is {tuple(gt.shape[-2:])} but lq {(h, w)} x scale {scale} is "
            f"{(h * scale, w * scale)}"
        )
    if mask is not None and mask.shape[-2:] != gt.shape[-2:]:
        raise ValueError(f"mask is {tuple(mask.shape[-2:])}, gt is {tuple(gt.shape[-2:])}")
    small = size // scale
    top, left = crop_offsets(h, w, small, generator=generator)
    t, s = top * scale, left * scale
    lq_c = lq[..., top : top + small, left : left + small]
    gt_c = gt[..., t : t + size, s : s + size]
    mask_c = None if mask is None else mask[..., t : t + size, s : s + size]
    return lq_c, gt_c, mask_c


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """One of the eight flips/rotations of the square's symmetry group, on the last two dims.

    ``k`` in 0..7: bit 2 flips left-right first, then ``k % 4`` rotations by 90 degrees
    counter-clockwise. ``k = 0`` is the identity.

    Args:
        x: (..., H, W) tensor.
        k: which transform, 0..7.

    Returns:
        (..., H, W) for even ``k % 4``, (..., W, H) for odd.

    Example:
        >>> x = torch.tensor([[1, 2], [3, 4]])
        >>> dihedral(x, 1).tolist(), dihedral(x, 4).tolist()
        ([[2, 4], [1, 3]], [[2, 1], [4, 3]])
    """
    if not 0 <= k <= 7:
        raise ValueError(f"k must be in 0..7, got {k}")
    if k & 4:
        x = x.flip(-1)
    return torch.rot90(x, k % 4, dims=(-2, -1)) if k % 4 else x


def augment_group(augment: bool | str) -> str | None:
    """The flips a dataset's ``augment`` option names: True is ``"dihedral"`` (all eight
    flips and rotations), ``"hflip"`` the left-right mirror alone (content with an up,
    such as faces, stays upright), False None.

    Raises:
        ValueError: any other value, naming the choices.
    """
    if augment is True or augment is False:
        return "dihedral" if augment else None
    if augment not in FLIP_GROUPS:
        raise ValueError(f"augment must be true, false or one of {FLIP_GROUPS}, got {augment!r}")
    return str(augment)


def random_dihedral(
    *tensors: torch.Tensor | None, generator: torch.Generator, group: str = "dihedral"
) -> tuple[torch.Tensor | None, ...]:
    """Apply the same random flip/rotation (:func:`dihedral`) to every tensor given.

    ``None`` entries pass through, so an optional mask can be handed in as is.
    ``group="hflip"`` draws only the identity and the left-right mirror.

    Example:
        >>> a = torch.rand(3, 4, 5)
        >>> x, y, m = random_dihedral(a, a.clone(), None, generator=torch.Generator())
        >>> bool(torch.equal(x, y)), m
        (True, None)
    """
    if group == "hflip":
        k = 4 * int(torch.randint(2, (1,), generator=generator))  # bit 2: the mirror
    else:
        k = int(torch.randint(8, (1,), generator=generator))
    return tuple(None if t is None else dihedral(t, k) for t in tensors)


def photometric_jitter(
    x: torch.Tensor,
    *,
    generator: torch.Generator,
    shift: int = 2,
    brightness: float = 0.1,
    contrast: float = 0.15,
    depth: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A small random shift and a brightness/contrast change of a clean (C, H, W) image.

    The shift moves the content by up to ``shift`` pixels in each direction, filling the
    uncovered border by reflection (so no black bands appear); ``depth`` moves with it.
    Contrast scales about the image mean by a factor in [1 - contrast, 1 + contrast],
    brightness adds an offset in [-brightness, brightness]; the result is clipped to
    [0, 1]. It is applied to the clean image before degrading, so the pair stays exact.

    Example:
        >>> x = torch.rand(1, 8, 8)
        >>> y, _ = photometric_jitter(x, generator=torch.Generator().manual_seed(0))
        >>> y.shape, bool(y.min() >= 0 and y.max() <= 1)
        (torch.Size([1, 8, 8]), True)
    """
    if shift < 0 or brightness < 0 or not 0 <= contrast < 1:
        raise ValueError(
            f"jitter needs shift >= 0, brightness >= 0 and 0 <= contrast < 1, got "
            f"{shift}, {brightness}, {contrast}"
        )
    u = torch.rand(2, generator=generator, dtype=torch.float64)
    dy, dx = (int(v) for v in torch.randint(-shift, shift + 1, (2,), generator=generator))

    def move(t: torch.Tensor) -> torch.Tensor:
        h, w = t.shape[-2:]
        pad = (max(dx, 0), max(-dx, 0), max(dy, 0), max(-dy, 0))
        if max(pad) == 0 or min(h, w) <= shift:
            return t
        t = torch.nn.functional.pad(t[None], pad, mode="reflect")[0]
        top, left = max(-dy, 0), max(-dx, 0)
        return t[..., top : top + h, left : left + w]

    y = move(x)
    gain = 1 + contrast * (2 * float(u[0]) - 1)
    offset = brightness * (2 * float(u[1]) - 1)
    mean = y.mean()
    y = ((y - mean) * gain + mean + offset).clamp(0.0, 1.0)
    return y, None if depth is None else move(depth)


def to_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """Convert a (C, H, W) or (B, C, H, W) image to 1 (BT.601 luma) or 3 (repeated gray)
    channels; an image that already has ``channels`` is returned as is.

    Example:
        >>> to_channels(torch.ones(3, 2, 2), 1).shape, to_channels(torch.ones(1, 2, 2), 3).shape
        (torch.Size([1, 2, 2]), torch.Size([3, 2, 2]))
    """
    c = x.shape[-3]
    if c == channels:
        return x
    if channels == 1 and c == 3:
        return rgb_to_gray(x)  # MATLAB rgb2gray's weights (BT.601), as the CLI's --gray
    if channels == 3 and c == 1:
        return x.expand(*x.shape[:-3], 3, *x.shape[-2:]).contiguous()
    raise ValueError(f"cannot convert {c} channels to {channels}; use 1 or 3")


def split_indices(
    n: int, *, seed: int, fractions: Sequence[float] = (0.7, 0.2, 0.1)
) -> tuple[list[int], ...]:
    """Split ``range(n)`` at random into disjoint parts of the given fractions (70/20/10).

    The indices are shuffled with a generator seeded by ``seed`` alone, so the same
    (n, seed, fractions) always gives the same split. Part sizes are the fractions of
    ``n`` rounded by largest remainder (earlier parts win ties), so they sum to ``n``.

    Args:
        n: number of items, >= 0.
        seed: shuffling seed.
        fractions: one fraction per part, each >= 0, summing to 1.

    Returns:
        One sorted list of indices per fraction; together they cover ``range(n)``.

    Example:
        >>> train, val, test = split_indices(10, seed=0)
        >>> len(train), len(val), len(test), sorted(train + val + test) == list(range(10))
        (7, 2, 1, True)
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not fractions or any(f < 0 for f in fractions) or not math.isclose(sum(fractions), 1.0):
        raise ValueError(f"fractions must be >= 0 and sum to 1, got {tuple(fractions)}")
    exact = [f * n for f in fractions]
    counts = [math.floor(e) for e in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in by_remainder[: n - sum(counts)]:
        counts[i] += 1
    order = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed))).tolist()
    parts, start = [], 0
    for count in counts:
        parts.append(sorted(order[start : start + count]))
        start += count
    return tuple(parts)
