"""Painted damage: scratches, blotches and blobs over a photo, and their mask shapes.

Old photographs and film carry local defects of three typical shapes (Kokaram,
"Motion Picture Restoration", Springer 1998, https://doi.org/10.1007/978-1-4471-3485-5;
Wan et al. 2020, "Bringing Old Photos Back to Life", CVPR, https://arxiv.org/abs/2004.09484,
which also trains on synthetic ones):

* scratches: thin, long lines or gentle curves, bright or dark;
* blotches: irregular filled regions (stains, dirt), tinted;
* blobs: small round dark spots (dust).

The ``painted_damage`` operator paints them *over* the image, for blind damage removal
(the damage is to be removed; the clean photo is the truth). That is not the
defect-aware task of SPEC.md D, whose defects belong to the scene and must be kept:
:mod:`restorekit.degrade.surface` draws those, reusing the shapes here. Masks are made
first (:func:`scratch_mask`, :func:`blotch_mask`, :func:`blob_mask`,
gathered by :func:`defect_masks`) and then painted by :func:`apply_defects`. Shapes are
rasterised with whole-image tensor operations; Python loops only run over the few
defects. Sizes are relative to the image (fractions of its shorter side or diagonal),
except scratch widths, which are in pixels as real scratches are.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from restorekit.degrade.base import Degradation, Degraded, register
from restorekit.utils import as_range, rgb_to_gray

__all__ = [
    "DefectMasks",
    "Defects",
    "apply_defects",
    "blob_mask",
    "blotch_mask",
    "defect_mask",
    "defect_masks",
    "scratch_mask",
]

# Points sampled along each scratch curve; odd, so the curve's middle (the sampled
# centre, always inside the image) is one of them and every scratch marks a pixel.
_CURVE_POINTS = 25


class DefectMasks(NamedTuple):
    """Masks of each defect kind, each (B, 1, H, W) float in {0, 1}."""

    scratches: torch.Tensor
    blotches: torch.Tensor
    blobs: torch.Tensor

    def union(self) -> torch.Tensor:
        """(B, 1, H, W) float mask, 1 where any defect is."""
        return torch.maximum(torch.maximum(self.scratches, self.blotches), self.blobs)


def _check_size(h: int, w: int) -> None:
    if int(h) != h or int(w) != w or h < 1 or w < 1:
        raise ValueError(f"h and w must be positive integers, got h={h}, w={w}")


def _check_count(n: int, *, name: str) -> None:
    if int(n) != n or n < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {n}")


def _lerp(rng: tuple[float, float], u: torch.Tensor) -> float:
    return float(rng[0] + (rng[1] - rng[0]) * u)


def _centre(h: int, w: int, generator: torch.Generator) -> tuple[int, int]:
    # Whole-pixel centres: the centre pixel is then always part of the defect.
    cy = int(torch.randint(0, h, (1,), generator=generator))
    cx = int(torch.randint(0, w, (1,), generator=generator))
    return cy, cx


def _window(
    h: int, w: int, y_lo: float, y_hi: float, x_lo: float, x_hi: float
) -> tuple[slice, slice, torch.Tensor, torch.Tensor] | None:
    """The pixel window covering [y_lo, y_hi] x [x_lo, x_hi], clipped, with its coordinates."""
    y0, y1 = max(math.floor(y_lo), 0), min(math.ceil(y_hi), h - 1)
    x0, x1 = max(math.floor(x_lo), 0), min(math.ceil(x_hi), w - 1)
    if y0 > y1 or x0 > x1:
        return None
    yy = torch.arange(y0, y1 + 1, dtype=torch.float32).view(-1, 1)
    xx = torch.arange(x0, x1 + 1, dtype=torch.float32).view(1, -1)
    return slice(y0, y1 + 1), slice(x0, x1 + 1), yy, xx


def paint_polyline(mask: torch.Tensor, pts: torch.Tensor, radius: float) -> None:
    """Set ``mask`` (H, W) bool where a pixel centre is within ``radius`` of the polyline."""
    h, w = mask.shape
    (x_lo, y_lo), (x_hi, y_hi) = pts.amin(0).tolist(), pts.amax(0).tolist()
    win = _window(h, w, y_lo - radius - 1, y_hi + radius + 1, x_lo - radius - 1, x_hi + radius + 1)
    if win is None:
        return
    rows, cols, yy, xx = win
    pts = pts.float()
    d2 = torch.full((yy.shape[0], xx.shape[1]), math.inf)
    # Distance to each straight segment (projection clamped to the segment), kept as a
    # running minimum so memory stays one window whatever the number of segments.
    for (ax, ay), (bx, by) in zip(pts[:-1].tolist(), pts[1:].tolist(), strict=True):
        vx, vy = bx - ax, by - ay
        seg2 = max(vx * vx + vy * vy, 1e-12)
        t = (((xx - ax) * vx + (yy - ay) * vy) / seg2).clamp(0.0, 1.0)
        d2 = torch.minimum(d2, (xx - ax - t * vx) ** 2 + (yy - ay - t * vy) ** 2)
    mask[rows, cols] |= d2 <= radius * radius


def scratch_mask(
    h: int,
    w: int,
    *,
    generator: torch.Generator,
    n: int = 3,
    width_range: tuple[float, float] = (1.0, 3.0),
    length_range: tuple[float, float] = (0.2, 0.8),
    bend: float = 0.2,
) -> torch.Tensor:
    """Thin scratches: lines or gentle curves of random position, orientation and width.

    Each scratch is a quadratic Bezier curve through a random pixel, with a uniform random
    orientation, a length that is a fraction of the image diagonal, and a sideways bow of
    up to ``bend`` times its length. Pixels whose centre lies within half the width of the
    curve are marked; a width >= 1 gives an unbroken (8-connected) line.

    Args:
        h: image height in pixels.
        w: image width in pixels.
        generator: the source of randomness (a CPU generator).
        n: number of scratches, >= 0.
        width_range: (lo, hi) width in pixels, lo >= 1.
        length_range: (lo, hi) length as a fraction of the image diagonal.
        bend: largest bow of the curve as a fraction of its length (0: straight lines).

    Returns:
        (1, 1, H, W) float mask in {0, 1}.

    Example:
        >>> m = scratch_mask(64, 64, generator=torch.Generator().manual_seed(0), n=2)
        >>> m.shape, sorted(m.unique().tolist()), 0 < m.mean().item() < 0.2
        (torch.Size([1, 1, 64, 64]), [0.0, 1.0], True)
    """
    _check_size(h, w)
    _check_count(n, name="n")
    as_range(width_range, name="width_range", lo_min=1.0)
    as_range(length_range, name="length_range")
    if bend < 0:
        raise ValueError(f"bend must be >= 0, got {bend}")
    mask = torch.zeros(h, w, dtype=torch.bool)
    s = torch.linspace(0.0, 1.0, _CURVE_POINTS, dtype=torch.float64).view(-1, 1)
    diag = math.hypot(h, w)
    for _ in range(n):
        cy, cx = _centre(h, w, generator)
        u = torch.rand(4, generator=generator, dtype=torch.float64)
        theta = float(u[0]) * math.pi
        length = _lerp(length_range, u[1]) * diag
        width = _lerp(width_range, u[2])
        bow = (2.0 * float(u[3]) - 1.0) * bend * length
        along = torch.tensor([math.cos(theta), math.sin(theta)], dtype=torch.float64)
        normal = torch.tensor([-math.sin(theta), math.cos(theta)], dtype=torch.float64)
        # Shift the control points by half the bow so the curve's middle is the centre.
        c = torch.tensor([cx, cy], dtype=torch.float64) - 0.5 * bow * normal
        p0, p1, p2 = c - 0.5 * length * along, c + bow * normal, c + 0.5 * length * along
        pts = (1 - s) ** 2 * p0 + 2 * (1 - s) * s * p1 + s**2 * p2
        paint_polyline(mask, pts, 0.5 * width)
    return mask.float().view(1, 1, h, w)


def _smooth_noise(h: int, w: int, cell: float, generator: torch.Generator) -> torch.Tensor:
    """(h, w) smooth noise in [-1, 1]: uniform noise on a grid of ``cell`` pixels, bicubic."""
    gh, gw = math.ceil(h / cell) + 2, math.ceil(w / cell) + 2
    coarse = torch.rand(1, 1, gh, gw, generator=generator) * 2 - 1
    fine = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True)
    return fine[0, 0].clamp(-1.0, 1.0)


def blotch_mask(
    h: int,
    w: int,
    *,
    generator: torch.Generator,
    n: int = 2,
    radius_range: tuple[float, float] = (0.03, 0.1),
    roughness: float = 0.5,
) -> torch.Tensor:
    """Blotches: irregular filled regions, like stains or dirt.

    Each blotch is a randomly oriented ellipse (aspect 0.5 to 1) whose boundary is pushed
    in and out by smooth noise (a thresholded, smoothed random field): a pixel is inside
    when its elliptical radius is below ``1 - roughness * noise``. The noise varies over
    about half the radius, so the outline wobbles without fraying into specks.

    Args:
        h: image height in pixels.
        w: image width in pixels.
        generator: the source of randomness (a CPU generator).
        n: number of blotches, >= 0.
        radius_range: (lo, hi) radius as a fraction of the shorter image side (at least
            1.5 pixels).
        roughness: how far the outline departs from the ellipse, in [0, 1).

    Returns:
        (1, 1, H, W) float mask in {0, 1}.

    Example:
        >>> m = blotch_mask(64, 64, generator=torch.Generator().manual_seed(0), n=1)
        >>> m.shape, 0 < m.mean().item() < 0.2
        (torch.Size([1, 1, 64, 64]), True)
    """
    _check_size(h, w)
    _check_count(n, name="n")
    as_range(radius_range, name="radius_range")
    if not 0.0 <= roughness < 1.0:
        raise ValueError(f"roughness must be in [0, 1), got {roughness}")
    mask = torch.zeros(h, w, dtype=torch.bool)
    for _ in range(n):
        cy, cx = _centre(h, w, generator)
        u = torch.rand(3, generator=generator, dtype=torch.float64)
        r = max(_lerp(radius_range, u[0]) * min(h, w), 1.5)
        aspect = 0.5 + 0.5 * float(u[1])
        theta = float(u[2]) * math.pi
        reach = r * (1.0 + roughness) + 1.0
        win = _window(h, w, cy - reach, cy + reach, cx - reach, cx + reach)
        if win is None:  # pragma: no cover - the centre is inside, so never empty
            continue
        rows, cols, yy, xx = win
        dx, dy = xx - cx, yy - cy
        a = (dx * math.cos(theta) + dy * math.sin(theta)) / r
        b = (-dx * math.sin(theta) + dy * math.cos(theta)) / (aspect * r)
        noise = _smooth_noise(yy.shape[0], xx.shape[1], max(r / 2, 2.0), generator)
        mask[rows, cols] |= torch.sqrt(a * a + b * b) <= 1.0 - roughness * noise
    return mask.float().view(1, 1, h, w)


def blob_mask(
    h: int,
    w: int,
    *,
    generator: torch.Generator,
    n: int = 5,
    radius_range: tuple[float, float] = (0.005, 0.02),
) -> torch.Tensor:
    """Blobs: small round spots, like dust.

    Args:
        h: image height in pixels.
        w: image width in pixels.
        generator: the source of randomness (a CPU generator).
        n: number of blobs, >= 0.
        radius_range: (lo, hi) radius as a fraction of the shorter image side (at least
            1 pixel).

    Returns:
        (1, 1, H, W) float mask in {0, 1}: discs of pixel centres within the radius.

    Example:
        >>> m = blob_mask(32, 32, generator=torch.Generator().manual_seed(0), n=1,
        ...               radius_range=(0.1, 0.1))
        >>> int(m.sum())  # a disc of radius 3.2 pixels
        37
    """
    _check_size(h, w)
    _check_count(n, name="n")
    as_range(radius_range, name="radius_range")
    mask = torch.zeros(h, w, dtype=torch.bool)
    for _ in range(n):
        cy, cx = _centre(h, w, generator)
        u = torch.rand(1, generator=generator, dtype=torch.float64)
        r = max(_lerp(radius_range, u[0]) * min(h, w), 1.0)
        win = _window(h, w, cy - r, cy + r, cx - r, cx + r)
        if win is None:  # pragma: no cover - the centre is inside, so never empty
            continue
        rows, cols, yy, xx = win
        mask[rows, cols] |= (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    return mask.float().view(1, 1, h, w)


def defect_masks(
    h: int,
    w: int,
    *,
    generator: torch.Generator,
    n_scratches: int = 3,
    n_blotches: int = 2,
    n_blobs: int = 5,
    scratch_width: tuple[float, float] = (1.0, 3.0),
    blotch_radius: tuple[float, float] = (0.03, 0.1),
    blob_radius: tuple[float, float] = (0.005, 0.02),
) -> DefectMasks:
    """Random masks of each defect kind for one image (see the three mask functions).

    Args:
        h: image height in pixels.
        w: image width in pixels.
        generator: the source of randomness (a CPU generator).
        n_scratches: number of scratches.
        n_blotches: number of blotches.
        n_blobs: number of blobs.
        scratch_width: (lo, hi) scratch width in pixels.
        blotch_radius: (lo, hi) blotch radius, fraction of the shorter side.
        blob_radius: (lo, hi) blob radius, fraction of the shorter side.

    Returns:
        :class:`DefectMasks` of three (1, 1, H, W) float masks in {0, 1}.

    Example:
        >>> m = defect_masks(48, 64, generator=torch.Generator().manual_seed(0))
        >>> m.blobs.shape, m.union().shape
        (torch.Size([1, 1, 48, 64]), torch.Size([1, 1, 48, 64]))
    """
    return DefectMasks(
        scratch_mask(h, w, generator=generator, n=n_scratches, width_range=scratch_width),
        blotch_mask(h, w, generator=generator, n=n_blotches, radius_range=blotch_radius),
        blob_mask(h, w, generator=generator, n=n_blobs, radius_range=blob_radius),
    )


def defect_mask(
    h: int,
    w: int,
    *,
    generator: torch.Generator,
    n_scratches: int = 3,
    n_blotches: int = 2,
    n_blobs: int = 5,
) -> torch.Tensor:
    """One mask of all the defects of :func:`defect_masks`: (1, 1, H, W) float in {0, 1}.

    Example:
        >>> m = defect_mask(64, 64, generator=torch.Generator().manual_seed(0))
        >>> m.shape, sorted(m.unique().tolist())
        (torch.Size([1, 1, 64, 64]), [0.0, 1.0])
    """
    return defect_masks(
        h, w, generator=generator, n_scratches=n_scratches, n_blotches=n_blotches, n_blobs=n_blobs
    ).union()


def check_count_ranges(**counts: tuple[int, int]) -> dict[str, tuple[int, int]]:
    """Each (lo, hi) count range as ints, or ValueError naming it: integers 0 <= lo <= hi."""
    for name, (lo, hi) in counts.items():
        if int(lo) != lo or int(hi) != hi or not 0 <= lo <= hi:
            raise ValueError(f"{name} must be integers 0 <= lo <= hi, got {(lo, hi)}")
    return {name: (int(lo), int(hi)) for name, (lo, hi) in counts.items()}


def _grey_to_channels(colour: torch.Tensor, c: int) -> torch.Tensor:
    """(B, 3) RGB colours as (B, c): kept for RGB, their luminance (Rec. 601) otherwise."""
    if c == 3:
        return colour
    luma = rgb_to_gray(colour.view(-1, 3, 1, 1))
    return luma.view(-1, 1).expand(-1, c)


def apply_defects(
    x: torch.Tensor,
    masks: DefectMasks,
    *,
    generator: torch.Generator,
    scratch_opacity: tuple[float, float] = (0.6, 1.0),
    stain_opacity: tuple[float, float] = (0.5, 0.9),
    blob_opacity: tuple[float, float] = (0.85, 1.0),
) -> torch.Tensor:
    """Paint the defects of ``masks`` onto ``x``.

    Blotches are painted first in a brownish stain colour, then scratches in a near
    white or near black grey (bright or dark, one choice per image, as the scratches of
    one film tend to share their side), then blobs in a near black. Each kind blends over
    the image with an opacity drawn per image: ``y = (1 - a) * x + a * colour`` inside its
    mask, so a little texture can show through. Pixels outside every mask are unchanged.

    Args:
        x: clean images, (B, C, H, W) float in [0, 1]. RGB (C = 3) gets tinted stains;
            other channel counts get the stain's luminance in every channel.
        masks: :class:`DefectMasks` with (B, 1, H, W) or (1, 1, H, W) masks in {0, 1}.
        generator: the source of randomness for colours and opacities (per image).
        scratch_opacity: (lo, hi) opacity of scratches, in [0, 1].
        stain_opacity: (lo, hi) opacity of blotches, in [0, 1].
        blob_opacity: (lo, hi) opacity of blobs, in [0, 1].

    Returns:
        (B, C, H, W) images in [0, 1], ``x``'s dtype.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.full((2, 3, 32, 32), 0.5)
        >>> m = defect_masks(32, 32, generator=g)
        >>> y = apply_defects(x, m, generator=g)
        >>> bool(((y != x).any(1, keepdim=True) <= m.union().bool()).all())
        True
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
        raise ValueError("x must be a float tensor of shape (B, C, H, W)")
    b, c, h, w = x.shape
    for name, m in zip(DefectMasks._fields, masks, strict=True):
        if m.ndim != 4 or m.shape[1] != 1 or m.shape[0] not in (1, b) or m.shape[2:] != (h, w):
            raise ValueError(
                f"masks.{name} must be (B, 1, H, W) or (1, 1, H, W) matching x "
                f"{tuple(x.shape)}, got {tuple(m.shape)}"
            )
    for name, rng in (
        ("scratch_opacity", scratch_opacity),
        ("stain_opacity", stain_opacity),
        ("blob_opacity", blob_opacity),
    ):
        if not 0.0 <= rng[0] <= rng[1] <= 1.0:
            raise ValueError(f"{name} must satisfy 0 <= lo <= hi <= 1, got {rng}")

    def draw(*shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=generator, dtype=torch.float64)

    # Stain: a sepia brown, darker or lighter per image, each channel jittered a little.
    sepia = torch.tensor([0.55, 0.42, 0.26], dtype=torch.float64)
    stain = (sepia * (0.6 + 0.6 * draw(b, 1)) + 0.08 * (draw(b, 3) - 0.5)).clamp(0.0, 1.0)
    bright = draw(b) < 0.5
    scratch_level = torch.where(bright, 0.85 + 0.15 * draw(b), 0.15 * draw(b))
    blob_level = 0.1 * draw(b)
    alphas = [lo + (hi - lo) * draw(b) for lo, hi in (stain_opacity, scratch_opacity, blob_opacity)]
    colours = [
        _grey_to_channels(stain, c),
        scratch_level.view(-1, 1).expand(-1, c),
        blob_level.view(-1, 1).expand(-1, c),
    ]

    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    y = x.to(dtype)
    for m, colour, alpha in zip(
        (masks.blotches, masks.scratches, masks.blobs), colours, alphas, strict=True
    ):
        colour = colour.to(device=x.device, dtype=dtype).view(b, c, 1, 1)
        a = alpha.to(device=x.device, dtype=dtype).view(b, 1, 1, 1) * m.to(x.device, dtype)
        y = (1 - a) * y + a * colour
    return y.clamp(0.0, 1.0).to(x.dtype)


@register("painted_damage", paper="scratches, blotches and blobs painted over the image")
class Defects(Degradation):
    """Twin of :func:`defect_masks` + :func:`apply_defects`, one random mask per image.

    Counts are drawn per image, uniformly in each inclusive (lo, hi) range. Returns
    ``Degraded(lq, mask)`` with the (B, 1, H, W) union of the defects as the mask.

    Args:
        n_scratches: (lo, hi) number of scratches per image.
        n_blotches: (lo, hi) number of blotches per image.
        n_blobs: (lo, hi) number of blobs per image.
        scratch_width: (lo, hi) scratch width in pixels (lo >= 1).
        blotch_radius: (lo, hi) blotch radius, fraction of the shorter side.
        blob_radius: (lo, hi) blob radius, fraction of the shorter side.
    """

    def __init__(
        self,
        n_scratches: tuple[int, int] = (1, 4),
        n_blotches: tuple[int, int] = (0, 2),
        n_blobs: tuple[int, int] = (0, 6),
        *,
        scratch_width: tuple[float, float] = (1.0, 3.0),
        blotch_radius: tuple[float, float] = (0.03, 0.1),
        blob_radius: tuple[float, float] = (0.005, 0.02),
    ):
        super().__init__()
        check_count_ranges(n_scratches=n_scratches, n_blotches=n_blotches, n_blobs=n_blobs)
        as_range(scratch_width, name="scratch_width", lo_min=1.0)
        as_range(blotch_radius, name="blotch_radius")
        as_range(blob_radius, name="blob_radius")
        self.n_scratches = (int(n_scratches[0]), int(n_scratches[1]))
        self.n_blotches = (int(n_blotches[0]), int(n_blotches[1]))
        self.n_blobs = (int(n_blobs[0]), int(n_blobs[1]))
        self.scratch_width = scratch_width
        self.blotch_radius = blotch_radius
        self.blob_radius = blob_radius

    def forward(self, x: torch.Tensor, *, generator: torch.Generator) -> Degraded:
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
            raise ValueError("x must be a float tensor of shape (B, C, H, W)")
        b, _, h, w = x.shape
        per_image = []
        for _ in range(b):
            n = [
                int(torch.randint(lo, hi + 1, (1,), generator=generator))
                for lo, hi in (self.n_scratches, self.n_blotches, self.n_blobs)
            ]
            per_image.append(
                defect_masks(
                    h,
                    w,
                    generator=generator,
                    n_scratches=n[0],
                    n_blotches=n[1],
                    n_blobs=n[2],
                    scratch_width=self.scratch_width,
                    blotch_radius=self.blotch_radius,
                    blob_radius=self.blob_radius,
                )
            )
        masks = DefectMasks(
            *(torch.cat(kind).to(x.device) for kind in zip(*per_image, strict=True))
        )
        lq = apply_defects(x, masks, generator=generator)
        return Degraded(lq, masks.union().to(x.dtype))

    def extra_repr(self) -> str:
        return (
            f"n_scratches={self.n_scratches}, n_blotches={self.n_blotches}, "
            f"n_blobs={self.n_blobs}, scratch_width={self.scratch_width}, "
            f"blotch_radius={self.blotch_radius}, blob_radius={self.blob_radius}"
        )
