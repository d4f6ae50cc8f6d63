"""Synthetic haze from the atmospheric scattering model, and depth for images without it.

The model (Narasimhan & Nayar 2002, "Vision and the Atmosphere", IJCV,
https://doi.org/10.1023/A:1016328200723; the form used by He et al. 2009, "Single Image
Haze Removal Using Dark Channel Prior", CVPR, https://doi.org/10.1109/CVPR.2009.5206515)::

    I = J * t + A * (1 - t),    t = exp(-beta * d)

with J the clear image, d the scene depth, beta the scattering coefficient, A the
airlight (the colour of the haze, a grey level or an RGB colour) and t the transmission.

Ranges follow RESIDE (Li et al. 2019, "Benchmarking Single-Image Dehazing and Beyond",
IEEE TIP, https://arxiv.org/abs/1712.04143): its outdoor set draws beta in [0.04, 0.2]
with depth from a monocular estimator in metre-like units, and airlight in [0.7, 1.0]
(indoor) / [0.8, 1.0] (outdoor). Our depth priors and :func:`disparity_to_depth` return
depth normalised to [0, 1]; with that depth, beta 0.04-0.2 would leave the scene almost
clear (t >= 0.82), so :class:`Haze` multiplies the normalised depth by ``depth_scale``
(default 12, "the far end of the scene is 12 units away"). The far end's transmission is
then exp(-12 * beta): 0.62 at beta 0.04, 0.24 at 0.12 and 0.09 at 0.2, the range of
RESIDE's visibly hazy images.

The skimage motorcycle (Middlebury 2014, Scharstein et al., GCPR 2014,
https://vision.middlebury.edu/stereo/data/scenes2014/) ships a true disparity map; depth
is proportional to 1 / disparity there (:func:`disparity_to_depth`).

Photos without depth get a prior. The ``vertical`` and ``dark_channel`` priors tie the haze
to the image's position or content; ``random`` (:func:`random_depth`) draws a fresh smooth
depth field per sample (planes and ramps, blurred noise, nearer foreground objects, sky at
the far end), so a network trained on it must read the haze from the image itself rather
than from where a pixel sits in its crop.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from restorekit.degrade.base import Degradation, Degraded, preset, register, uniform
from restorekit.utils import as_range, check_images

__all__ = [
    "DEPTH_PRIORS",
    "Haze",
    "dark_channel_depth",
    "disparity_to_depth",
    "haze",
    "random_depth",
    "transmission",
    "vertical_gradient_depth",
]

logger = logging.getLogger(__name__)

DepthPrior = Literal["vertical", "dark_channel", "random"]


def _work_dtype(t: torch.Tensor) -> torch.dtype:
    # Half-precision inputs are computed in float32; exp and pooling need the range.
    return torch.float64 if t.dtype == torch.float64 else torch.float32


def _per_image(
    value: float | torch.Tensor, batch: int | None, *, name: str, ndim_extra: int = 0
) -> torch.Tensor:
    """A float or a (B, ...) tensor as float64 on the CPU, checked finite and >= 0."""
    v = torch.as_tensor(value, dtype=torch.float64).detach().cpu()
    if v.ndim not in (0, 1, 1 + ndim_extra) or (v.ndim >= 1 and batch and v.shape[0] != batch):
        raise ValueError(f"{name} must be a float or have batch size {batch}, got {tuple(v.shape)}")
    if not torch.isfinite(v).all() or (v < 0).any():
        raise ValueError(f"{name} must be finite and >= 0, got {v.tolist()}")
    return v


def _check_depth(depth: torch.Tensor) -> None:
    check_images(depth, name="depth")
    if depth.shape[1] != 1:
        raise ValueError(f"depth must have one channel, (B, 1, H, W), got {tuple(depth.shape)}")
    if not torch.isfinite(depth).all():
        raise ValueError(
            "depth has non-finite values; mask or fill them first (disparity_to_depth fills them)"
        )
    if (depth < 0).any():
        raise ValueError(f"depth must be >= 0, got a minimum of {depth.min().item():.4g}")


def transmission(depth: torch.Tensor, beta: float | torch.Tensor) -> torch.Tensor:
    """Transmission ``t = exp(-beta * depth)``: the fraction of scene light that survives.

    Args:
        depth: scene depth, (B, 1, H, W) float, finite and >= 0 (any unit; beta is per unit).
        beta: scattering coefficient >= 0, a float or a (B,) tensor (one per image; a
            depth with B = 1 is then shared by the batch).

    Returns:
        (B, 1, H, W) transmission in (0, 1], decreasing with depth; 1 where depth is 0.

    Example:
        >>> d = torch.tensor([0.0, 1.0, 10.0]).view(1, 1, 1, 3)
        >>> transmission(d, 0.1).flatten().tolist()  # doctest: +ELLIPSIS
        [1.0, 0.904..., 0.367...]
    """
    _check_depth(depth)
    b = _per_image(beta, None, name="beta")
    if b.ndim == 1 and depth.shape[0] not in (1, b.shape[0]):
        raise ValueError(f"beta has {b.shape[0]} values but depth has batch {depth.shape[0]}")
    dtype = _work_dtype(depth)
    b = b.to(device=depth.device, dtype=dtype).reshape(-1, 1, 1, 1)
    return torch.exp(-b * depth.to(dtype))


def haze(
    x: torch.Tensor,
    depth: torch.Tensor,
    *,
    beta: float | torch.Tensor,
    airlight: float | torch.Tensor,
) -> torch.Tensor:
    """Hazy images by the scattering model ``I = J * t + A * (1 - t)``, ``t = exp(-beta * d)``.

    Each output pixel is a convex combination of the clear pixel and the airlight, so
    inputs in [0, 1] and an airlight <= 1 give an output in [0, 1] (no clipping needed).

    Args:
        x: clear images J, (B, C, H, W) float in [0, 1].
        depth: scene depth d, (B, 1, H, W) or (1, 1, H, W) float, finite and >= 0.
            Non-finite values (e.g. holes of a disparity map) raise ValueError: mask or
            fill them first.
        beta: scattering coefficient per unit depth, a float or a (B,) tensor, >= 0.
        airlight: the haze colour A >= 0: a float (grey), a (B,) tensor (a grey per
            image) or a (B, C) tensor (a colour per image).

    Returns:
        Hazy images, (B, C, H, W), ``x``'s dtype.

    Example:
        >>> x = torch.zeros(1, 3, 4, 4)
        >>> d = torch.linspace(0, 1, 4).view(1, 1, 1, 4).expand(1, 1, 4, 4)
        >>> y = haze(x, d, beta=2.0, airlight=1.0)
        >>> [round(v, 3) for v in y[0, 0, 0].tolist()]  # 1 - exp(-2 d)
        [0.0, 0.487, 0.736, 0.865]
        >>> torch.equal(haze(x, d, beta=0.0, airlight=1.0), x)
        True
    """
    check_images(x)
    _check_depth(depth)
    bsz, c, h, w = x.shape
    if depth.shape[0] not in (1, bsz) or depth.shape[2:] != (h, w):
        raise ValueError(
            f"depth must be (B, 1, H, W) or (1, 1, H, W) matching x {tuple(x.shape)}, "
            f"got {tuple(depth.shape)}"
        )
    a = _per_image(airlight, bsz, name="airlight", ndim_extra=1)
    if a.ndim == 2 and a.shape[1] not in (1, c):
        raise ValueError(f"airlight (B, C) must have C = {c} colours, got {tuple(a.shape)}")
    b = _per_image(beta, bsz, name="beta")
    dtype = _work_dtype(x)
    t = transmission(depth.to(x.device), b)
    a = a.to(device=x.device, dtype=dtype).reshape(a.shape[0] if a.ndim else 1, -1, 1, 1)
    return (x.to(dtype) * t + a * (1 - t)).to(x.dtype)


def vertical_gradient_depth(
    x: torch.Tensor, *, near: float = 0.0, far: float = 1.0, horizon: float = 0.0
) -> torch.Tensor:
    """The usual outdoor depth prior: far at the top of the image, near at the bottom.

    Depth grows linearly from ``near`` at the bottom row to ``far`` at the horizon line
    ``horizon`` (a fraction of the height from the top) and stays ``far`` above it (sky).
    With ``horizon=0`` the ramp spans the whole height. Only ``x``'s shape, device and
    dtype are used.

    Args:
        x: images, (B, C, H, W) float.
        near: depth of the bottom row, in [0, 1].
        far: depth at and above the horizon, in [near, 1].
        horizon: where the ramp reaches ``far``, as a fraction of the height from the
            top, in [0, 1).

    Returns:
        (B, 1, H, W) normalised depth in [near, far], constant along each row.

    Example:
        >>> d = vertical_gradient_depth(torch.zeros(2, 3, 5, 4))
        >>> d.shape, d[0, 0, :, 0].tolist()
        (torch.Size([2, 1, 5, 4]), [1.0, 0.75, 0.5, 0.25, 0.0])
        >>> vertical_gradient_depth(torch.zeros(1, 1, 5, 1), horizon=0.5).flatten().tolist()
        [1.0, 1.0, 1.0, 0.5, 0.0]
    """
    check_images(x)
    if not 0.0 <= near <= far <= 1.0:
        raise ValueError(f"near and far must satisfy 0 <= near <= far <= 1, got {near}, {far}")
    if not 0.0 <= horizon < 1.0:
        raise ValueError(f"horizon must be in [0, 1), got {horizon}")
    b, _, h, w = x.shape
    dtype = _work_dtype(x)
    # Height above the bottom row, 0 (bottom) .. 1 (top), then rescaled so the ramp
    # ends at the horizon line. A one-row image is all "top", hence far.
    up = torch.linspace(1.0, 0.0, h, device=x.device, dtype=dtype) if h > 1 else None
    up = torch.ones(1, device=x.device, dtype=dtype) if up is None else up
    ramp = (up / (1.0 - horizon)).clamp(max=1.0)
    depth = near + (far - near) * ramp
    return depth.view(1, 1, h, 1).expand(b, 1, h, w).to(x.dtype).contiguous()


def _box_filter(t: torch.Tensor, size: int, *, reduce: str) -> torch.Tensor:
    """Separable ``size`` x ``size`` mean or min filter with edge-replicated borders."""
    lo, hi = (size - 1) // 2, size // 2
    t = F.pad(t, (lo, hi, lo, hi), mode="replicate")
    if reduce == "min":
        t = -F.max_pool2d(-t, (1, size), stride=1)
        return -F.max_pool2d(-t, (size, 1), stride=1)
    t = F.avg_pool2d(t, (1, size), stride=1)
    return F.avg_pool2d(t, (size, 1), stride=1)


def dark_channel_depth(x: torch.Tensor, *, patch: int = 15, smooth: int = 31) -> torch.Tensor:
    """A learning-free depth prior from the dark channel: brighter, greyer areas are farther.

    The dark channel (He et al. 2009) is the minimum over the colour channels and over a
    ``patch`` x ``patch`` window. It is high where every channel is bright, that is where
    a region is bright *and* unsaturated (sky, distant haze-lit scenery), and low on
    nearby saturated or shadowed objects; so it rises with distance in outdoor photos.
    The dark channel is smoothed by three passes of a ``smooth`` x ``smooth`` box filter
    (close to a Gaussian), because depth varies slowly and the haze must not copy
    texture, then stretched to [0, 1] per image. A flat image gives depth 0 (no cue).

    Args:
        x: images, (B, C, H, W) float in [0, 1]; grey images use brightness alone.
        patch: side of the minimum window, >= 1 (15 as in He et al.).
        smooth: side of the smoothing box, >= 1.

    Returns:
        (B, 1, H, W) normalised depth in [0, 1], ``x``'s dtype.

    Example:
        >>> x = torch.zeros(1, 3, 32, 32)
        >>> x[..., :16, :] = 0.9  # a bright grey top half (sky)
        >>> d = dark_channel_depth(x, patch=3, smooth=5)
        >>> d.shape, bool(d[..., 0, :].min() == 1), bool(d[..., -1, :].max() == 0)
        (torch.Size([1, 1, 32, 32]), True, True)
    """
    check_images(x)
    if patch < 1 or smooth < 1:
        raise ValueError(f"patch and smooth must be >= 1, got patch={patch}, smooth={smooth}")
    dark = x.to(_work_dtype(x)).amin(dim=1, keepdim=True)
    dark = _box_filter(dark, patch, reduce="min")
    for _ in range(3):
        dark = _box_filter(dark, smooth, reduce="mean")
    lo = dark.amin(dim=(2, 3), keepdim=True)
    span = dark.amax(dim=(2, 3), keepdim=True) - lo
    # Flat images (span 0) get depth 0 rather than a division by zero.
    depth = torch.where(span > 0, (dark - lo) / span.clamp(min=1e-12), torch.zeros_like(dark))
    return depth.clamp(0.0, 1.0).to(x.dtype)


def disparity_to_depth(
    disparity: torch.Tensor | np.ndarray, *, fill: Literal["far", "background"] = "far"
) -> torch.Tensor:
    """Normalised depth from a stereo disparity map: depth proportional to 1 / disparity.

    Depth is ``1 / disparity`` divided by its maximum over the image, so the farthest
    valid point is at 1 and the ratios between depths are the true ones (a min-max
    stretch would put the nearest point at depth 0, with no haze). Non-finite
    disparities (occlusions and holes: the Middlebury files mark them ``inf``) and
    disparities <= 0 have no depth; ``fill`` decides theirs:

    * ``"far"``: the maximum depth 1, the simplest safe value for haze;
    * ``"background"``: the depth of the farthest valid neighbour, grown into each hole
      one pixel ring at a time (3 x 3 max-filter of the known depths). Stereo holes are
      mostly occluded background beside a foreground edge, so this avoids the bright
      haze halo that ``"far"`` draws around near objects.

    Args:
        disparity: (H, W) or (B, 1, H, W) tensor or array, in pixels. Each image needs
            at least one finite disparity > 0.
        fill: how invalid disparities get a depth, ``"far"`` or ``"background"``.

    Returns:
        (B, 1, H, W) depth in (0, 1], float32 (float64 for float64 input).

    Example:
        >>> disp = torch.tensor([[40.0, 20.0], [10.0, float("inf")]])
        >>> disparity_to_depth(disp).flatten().tolist()
        [0.25, 0.5, 1.0, 1.0]
        >>> disp = torch.tensor([[10.0, 40.0, float("nan"), 40.0]])
        >>> disparity_to_depth(disp, fill="background").flatten().tolist()
        [1.0, 0.25, 0.25, 0.25]
    """
    if fill not in ("far", "background"):
        raise ValueError(f"fill must be 'far' or 'background', got {fill!r}")
    d = torch.as_tensor(disparity)
    if d.ndim == 2:
        d = d[None, None]
    if d.ndim != 4 or d.shape[1] != 1:
        raise ValueError(f"disparity must be (H, W) or (B, 1, H, W), got {tuple(d.shape)}")
    d = d.to(torch.float64 if d.dtype == torch.float64 else torch.float32)
    valid = torch.isfinite(d) & (d > 0)
    if not valid.flatten(1).any(dim=1).all():
        raise ValueError("disparity has an image with no finite value > 0")
    n_bad = int((~valid).sum())
    if n_bad:
        logger.debug("disparity_to_depth: %d invalid disparities filled (%s)", n_bad, fill)
    inv = torch.where(valid, 1.0 / torch.where(valid, d, torch.ones_like(d)), torch.zeros_like(d))
    depth = inv / inv.amax(dim=(2, 3), keepdim=True)
    if fill == "far":
        return torch.where(valid, depth, torch.ones_like(d))
    # Valid depths are > 0, so 0 marks "unknown" and a max-filter spreads known depths
    # into the holes ring by ring; every image has a valid pixel, so this terminates.
    known = torch.where(valid, depth, torch.zeros_like(d))
    while not (known > 0).all():
        grown = F.max_pool2d(known, 3, stride=1, padding=1)
        known = torch.where(known > 0, known, grown)
    return known


def _stretch(t: torch.Tensor) -> torch.Tensor:
    """``t`` min-max stretched to [0, 1] (a constant gives 0)."""
    lo, span = t.min(), t.max() - t.min()
    return (t - lo) / span if span > 0 else torch.zeros_like(t)


def _one_random_depth(h: int, w: int, generator: torch.Generator) -> torch.Tensor:
    """One (H, W) float32 depth field in [0, 1]; see :func:`random_depth`."""

    def u(lo: float = 0.0, hi: float = 1.0) -> float:
        return lo + (hi - lo) * float(torch.rand((), generator=generator, dtype=torch.float64))

    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    # A plane rising towards a direction: mostly up (outdoor ground towards the horizon).
    angle = u(-0.35, 0.35) * math.pi if u() < 0.7 else u(-math.pi, math.pi)
    plane = _stretch(-yy * math.cos(angle) + xx * math.sin(angle))
    # Smooth noise: a random k x k grid, bicubically upsampled (hills, walls, clutter).
    k = int(torch.randint(2, 7, (), generator=generator))
    grid = torch.rand(1, 1, k, k, generator=generator)
    noise = F.interpolate(grid, size=(h, w), mode="bicubic", align_corners=True)[0, 0]
    mix = u()
    # The far side of the field, and how much nearer its near side is: from a scene at one
    # distance (a wall, a patch of far hills) to one that runs from the camera to far away.
    far = u(0.4, 1.0)
    near = far * u()
    depth = near + (far - near) * _stretch(mix * plane + (1 - mix) * _stretch(noise))
    # Foreground objects: up to three ellipses or boxes, each a flat layer in front.
    for _ in range(int(torch.randint(0, 4, (), generator=generator))):
        cy, cx, ry, rx = u(-1, 1), u(-1, 1), u(0.1, 0.5), u(0.1, 0.5)
        if u() < 0.5:
            inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        else:
            inside = ((yy - cy).abs() <= ry) & ((xx - cx).abs() <= rx)
        if inside.any():
            layer = u(0.1, 0.9) * float(depth[inside].min())
            depth = torch.where(inside, torch.minimum(depth, torch.tensor(layer)), depth)
    # Sky: above a wavy horizon everything is at the far end.
    if u() < 0.3:
        level, amp = u(-0.9, 0.0), u(0.0, 0.15)
        horizon = level + amp * torch.sin(u(0.5, 3.0) * math.pi * xx + u(0.0, 2 * math.pi))
        depth = torch.where(yy < horizon, torch.ones_like(depth), depth)
    return depth.clamp(0.0, 1.0)


def random_depth(x: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
    """A random smooth depth field per image, for haze on photos without a depth map.

    Each field mixes a plane (its far side mostly up, as outdoor ground runs to the
    horizon; any direction 30% of the time) with bicubically upsampled noise on a 2x2 to
    6x6 grid, stretched to [near, far] with far drawn in [0.4, 1] and near in [0, far]
    (so a crop may sit at one depth or span many); then puts up to three
    foreground objects (ellipses or boxes, each a flat layer nearer than everything it
    covers) in front, and 30% of the time a sky above a wavy horizon, at depth 1. The
    field does not follow the image, so a dehazer trained on it cannot learn "the top of
    a crop is hazier" (the ``vertical`` prior's lesson) and must read haze from the image.

    Args:
        x: images, (B, C, H, W); only the shape, device and dtype are used.
        generator: the explicit random stream (CPU), so samples are reproducible.

    Returns:
        (B, 1, H, W) normalised depth in [0, 1], ``x``'s dtype.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> d = random_depth(torch.zeros(2, 3, 32, 48), generator=g)
        >>> d.shape, bool(d.min() >= 0) and bool(d.max() <= 1)
        (torch.Size([2, 1, 32, 48]), True)
    """
    check_images(x)
    b, _, h, w = x.shape
    fields = torch.stack([_one_random_depth(h, w, generator) for _ in range(b)])[:, None]
    return fields.to(device=x.device, dtype=x.dtype)


DEPTH_PRIORS: dict[str, Callable[..., torch.Tensor]] = {
    "vertical": lambda x, generator: vertical_gradient_depth(x),
    "dark_channel": lambda x, generator: dark_channel_depth(x),
    "random": random_depth,
}
"""Depth priors by name, for :class:`Haze`: each maps (B, C, H, W) images and a generator
to (B, 1, H, W) depth in [0, 1] (only ``random`` draws from the generator)."""


@register("haze", paper="atmospheric scattering model (Koschmieder; RESIDE OTS ranges)")
class Haze(Degradation):
    """Twin of :func:`haze`: one beta and one airlight per image, from their ranges.

    Depth is the ``depth`` given to :meth:`forward` (normalised to [0, 1], e.g. from
    :func:`disparity_to_depth`) or, without one, the ``depth_prior`` of the image. It is
    multiplied by ``depth_scale`` before the model, so beta keeps RESIDE's per-unit scale:
    the far end (depth 1) has transmission ``exp(-beta * depth_scale)``, 0.62 .. 0.09 for
    the default ranges (see the module docstring); the repr states that range.

    Args:
        beta: scattering coefficient per unit of scaled depth, fixed or a (lo, hi) range
            (RESIDE OTS); 0 is a clear image.
        airlight: grey airlight, fixed or a (lo, hi) range within [0, 1] so the output
            stays in [0, 1].
        tint: tinted haze: each colour channel's airlight is the grey one plus its own
            offset drawn from [-tint, tint] (then clipped to [0, 1]); 0 keeps it grey.
        depth_scale: the scaled depth of the far end of the scene, > 0.
        depth_prior: ``"vertical"`` (:func:`vertical_gradient_depth`),
            ``"dark_channel"`` (:func:`dark_channel_depth`) or ``"random"``
            (:func:`random_depth`, a fresh field per sample).
        far_transmission: instead of ``beta``, a (lo, hi) range of the far end's
            transmission, drawn uniformly (so light haze is as common as dense: uniform
            beta puts half the samples below a third of that range's transmission).
        clear_fraction: this fraction of the samples gets no haze at all (beta 0).

    Returns ``params = {"beta": (B,), "airlight": (B,)}``, plus ``"tint": (B, C)`` when
    ``tint`` > 0, and the haze it made as ``targets``: the ``"transmission"`` t (B, 1, H,
    W) and the ``"airlight"`` colour A (B, C), float32, so that I = J t + A (1 - t).
    """

    inputs = ("depth",)

    def __init__(
        self,
        beta: float | tuple[float, float] = (0.04, 0.2),
        airlight: float | tuple[float, float] = (0.7, 1.0),
        *,
        tint: float = 0.0,
        depth_scale: float = 12.0,
        depth_prior: DepthPrior = "vertical",
        far_transmission: tuple[float, float] | None = None,
        clear_fraction: float = 0.0,
    ):
        super().__init__()
        if not 0.0 <= clear_fraction < 1.0:
            raise ValueError(f"clear_fraction must be in [0, 1), got {clear_fraction}")
        self.clear_fraction = float(clear_fraction)
        if far_transmission is not None:
            lo, hi = as_range(far_transmission, name="far_transmission", hi_max=1.0)
            if lo <= 0:
                raise ValueError(f"far_transmission must be > 0, got {far_transmission}")
            beta = (abs(math.log(hi)) / depth_scale, -math.log(lo) / depth_scale)  # no -0.0
        self.uniform_in_transmission = far_transmission is not None
        self.beta_range = as_range(beta, name="beta")
        self.airlight_range = as_range(airlight, name="airlight", hi_max=1.0)
        if not 0.0 <= tint <= 1.0:
            raise ValueError(f"tint must be in [0, 1], got {tint}")
        if not depth_scale > 0:
            raise ValueError(f"depth_scale must be > 0, got {depth_scale}")
        if depth_prior not in DEPTH_PRIORS:
            raise ValueError(
                f"depth_prior must be one of {sorted(DEPTH_PRIORS)}, got {depth_prior!r}"
            )
        self.tint = float(tint)
        self.depth_scale = float(depth_scale)
        self.depth_prior = depth_prior

    @property
    def far_transmission(self) -> tuple[float, float]:
        """The range of the far end's transmission ``exp(-beta * depth_scale)``, (lo, hi)."""
        lo, hi = self.beta_range
        return math.exp(-hi * self.depth_scale), math.exp(-lo * self.depth_scale)

    def forward(
        self,
        x: torch.Tensor,
        *,
        generator: torch.Generator,
        depth: torch.Tensor | None = None,
    ) -> Degraded:
        """Haze ``x`` (B, C, H, W) in [0, 1]; ``depth`` (B or 1, 1, H, W) in [0, 1] or None."""
        check_images(x)
        if depth is None:
            depth = DEPTH_PRIORS[self.depth_prior](x, generator=generator)
        b, c = x.shape[:2]
        if self.uniform_in_transmission:  # uniform in the far end's transmission
            t_lo, t_hi = self.far_transmission
            beta = -torch.log(uniform(t_lo, t_hi, b, generator)) / self.depth_scale
        else:
            beta = uniform(*self.beta_range, b, generator)
        if self.clear_fraction:  # these samples stay clear: a dehazer must leave them be
            beta = torch.where(uniform(0.0, 1.0, b, generator) < self.clear_fraction, 0.0, beta)
        airlight = uniform(*self.airlight_range, b, generator)
        params = {"beta": beta, "airlight": airlight}
        colour: torch.Tensor = airlight
        if self.tint > 0:
            params["tint"] = uniform(-self.tint, self.tint, b * c, generator).view(b, c)
            colour = (airlight[:, None] + params["tint"]).clamp(0.0, 1.0)
        scaled = depth.to(x.device) * self.depth_scale
        targets = {
            "transmission": transmission(scaled, beta).expand(b, 1, *x.shape[2:]).float(),
            "airlight": colour.view(b, -1).expand(b, c).float().to(x.device),
        }
        hazy = haze(x, scaled, beta=beta, airlight=colour)
        return Degraded(hazy, params=params, targets=targets)

    def extra_repr(self) -> str:
        t_lo, t_hi = self.far_transmission
        haze = (
            f"far_transmission=({t_lo:.2f}, {t_hi:.2f}) drawn uniformly"
            if self.uniform_in_transmission
            else f"beta_range={self.beta_range}"
        )
        tint = f", tint={self.tint}" if self.tint else ""
        tint += f", clear_fraction={self.clear_fraction}" if self.clear_fraction else ""
        return (
            f"{haze}, airlight_range={self.airlight_range}{tint}, "
            f"depth_scale={self.depth_scale}, depth_prior={self.depth_prior!r}; "
            f"far-end transmission {t_lo:.2f}..{t_hi:.2f}"
        )


preset(
    "haze_wide",
    "haze",
    far_transmission=(0.09, 1.0),
    airlight=(0.6, 1.0),
    tint=0.08,
    depth_prior="random",
    description="clear (far-end transmission 1) to dense (0.09), grey and tinted airlight, "
    "a random depth field per sample: the dehazers' training haze",
)

# Fixed haze levels for evaluation, on a random depth field (or the scene's true depth).
for _level, _beta in (("clear", 0.0), ("faint", 0.005), ("light", 0.03), ("dense", 0.1)):
    preset(
        f"haze_{_level}",
        "haze",
        beta=_beta,
        depth_prior="random",
        description=f"{_level} haze, far-end transmission {math.exp(-12 * _beta):.2f}, "
        "grey airlight 0.7-1.0, random depth (the scene's own where known)",
    )
