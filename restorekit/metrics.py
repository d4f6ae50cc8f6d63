"""Full-reference image quality metrics: PSNR and SSIM under the field's evaluation conventions.

Published restoration numbers differ by more than the gap between models when the protocol
differs, so every option that changes a score is explicit here (see BENCHMARKS.md):

* ``data_range`` is the peak value L of the images (1 for [0, 1], 255 for 8-bit).
* ``crop_border`` removes that many pixels from every side first (super-resolution papers
  crop ``scale`` pixels).
* ``y_channel`` scores the luma of MATLAB's ``rgb2ycbcr`` (ITU-R BT.601, studio swing),
  as super-resolution papers do; grayscale images are scored as they are.
* SSIM ``variant="wang2004"`` is the original definition: 11x11 Gaussian window with
  sigma 1.5, K1 = 0.01, K2 = 0.03, population covariance, valid region only, no
  downsampling. It agrees with scikit-image's ``structural_similarity(...,
  gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=L)`` to float64
  rounding. ``variant="fastmri"`` is scikit-image's default (7x7 uniform window, sample
  covariance), which the fastMRI challenge uses with the volume maximum as ``data_range``.

Two diagnostics catch what PSNR averages away in dehazing: :func:`edge_gap` (is the
border frame restored worse than the interior, the mark of a network that learned
where the image ends) and :func:`colour_cast` (has the output's mean colour drifted from
the truth's, a tint PSNR hides behind structure). For colour denoising,
:func:`opponent_psnr` splits the error into luma and chroma (does a network trail CBM3D
on structure or on colour?).

In-mask variants (:func:`psnr_masked`, :func:`ssim_masked`) score only the pixels a mask
marks (the defects a defect-aware denoiser must keep); an empty mask has no score (NaN).

Every metric the evaluation, reports, CLI tables and training validation can show is
registered once in :data:`METRICS` (a :class:`Metric`: its function, column label,
digits, and whether it needs a mask); adding a metric is one function and one
``@register_metric`` here.

Everything is computed in float64 on the inputs' device, whatever their dtype, so the
scores do not depend on the precision a model ran in (devices without float64, such as
Apple's MPS, are therefore not supported). Both metrics are differentiable and can serve
as losses.

References:
    Wang, Bovik, Sheikh and Simoncelli, "Image quality assessment: from error visibility
    to structural similarity", IEEE Trans. Image Processing 13(4), 2004.
    https://doi.org/10.1109/TIP.2003.819861 (https://www.cns.nyu.edu/~lcv/ssim/)

    MATLAB ``rgb2ycbcr``: https://www.mathworks.com/help/images/ref/rgb2ycbcr.html

    scikit-image ``structural_similarity`` (the parity reference):
    https://scikit-image.org/docs/stable/api/skimage.metrics.html

    Zbontar et al., "fastMRI: An Open Dataset and Benchmarks for Accelerated MRI", 2018.
    https://arxiv.org/abs/1811.08839 (evaluation code: https://github.com/facebookresearch/fastMRI)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from restorekit.registry import Registry
from restorekit.utils import check_positive

__all__ = [
    "DEFAULT_METRICS",
    "MASK_METRICS",
    "METRICS",
    "PSNR",
    "SSIM",
    "SSIM_VARIANTS",
    "Metric",
    "colour_cast",
    "edge_gap",
    "opponent_psnr",
    "psnr",
    "psnr_masked",
    "register_metric",
    "rgb_to_y",
    "ssim",
    "ssim_masked",
    "ssim_window",
]

# MATLAB rgb2ycbcr luma row for R, G, B in [0, 1], giving Y in [16, 235] (BT.601 studio swing).
_Y_OFFSET = 16.0
_Y_WEIGHTS = (65.481, 128.553, 24.966)

# An opponent colour basis (rows: luma, red-green, yellow-blue), normalised when used.
_OPPONENT = ((1.0, 1.0, 1.0), (1.0, -1.0, 0.0), (1.0, 1.0, -2.0))

# Stabilising constants of Wang et al. 2004, scaled by the data range L.
_K1 = 0.01
_K2 = 0.03


@dataclass(frozen=True)
class _SSIMWindow:
    """How one SSIM variant weights its local statistics."""

    size: int
    sigma: float | None  # None: uniform window
    sample_covariance: bool


_VARIANTS: dict[str, _SSIMWindow] = {
    # sigma 1.5 truncated at 3.5 sigma gives radius int(3.5 * 1.5 + 0.5) = 5, i.e. the
    # 11-wide window of the paper and of scikit-image's gaussian_weights=True.
    "wang2004": _SSIMWindow(size=11, sigma=1.5, sample_covariance=False),
    # scikit-image's defaults, which fastMRI's evaluation calls as they are.
    "fastmri": _SSIMWindow(size=7, sigma=None, sample_covariance=True),
}

SSIM_VARIANTS: tuple[str, ...] = tuple(_VARIANTS)
"""The names ``ssim`` accepts for ``variant``."""


def ssim_window(variant: str = "wang2004") -> int:
    """Side of the SSIM window of ``variant`` (11 for Wang et al., 7 for fastMRI): images
    smaller than it, after any border crop, have no SSIM."""
    return _variant(variant).size


def rgb_to_y(x: Tensor, *, data_range: float = 1.0) -> Tensor:
    """Luma of MATLAB's ``rgb2ycbcr``, on the input's scale.

    ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` with R, G, B in [0, 1], computed in
    floating point (MATLAB rounds for uint8 images; this does not) and divided back to
    the input's scale: for [0, 1] input (``data_range=1``) Y lies in [16/255, 235/255],
    for 0-255 input (``data_range=255``) in [16, 235].

    Args:
        x: (*, 3, H, W) RGB images with values in [0, data_range].
        data_range: Peak value of ``x`` (1 for [0, 1], 255 for 8-bit).

    Returns:
        (*, 1, H, W) luma. Floating inputs keep their dtype; integer inputs are converted
        to the default float dtype first.

    Raises:
        ValueError: If ``x`` has no channel axis of size 3 at dim -3, or ``data_range``
            is not positive.

    Example:
        >>> white_black = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]).view(1, 3, 1, 2)
        >>> rgb_to_y(white_black)
        tensor([[[[0.9216, 0.0627]]]])
        >>> rgb_to_y(255 * white_black, data_range=255)
        tensor([[[[235.,  16.]]]])
    """
    if not isinstance(x, Tensor):
        raise ValueError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim < 3 or x.shape[-3] != 3:
        raise ValueError(f"x must have shape (*, 3, H, W) (RGB), got {tuple(x.shape)}")
    _check_data_range(data_range)
    if not x.is_floating_point():
        x = x.to(torch.get_default_dtype())
    r, g, b = x.unbind(dim=-3)
    # Y / 255 * L = 16 L / 255 + (65.481 R' + ...) / 255 with R' = R_input (already scaled by L).
    wr, wg, wb = (w / 255.0 for w in _Y_WEIGHTS)
    y = wr * r + wg * g + wb * b + _Y_OFFSET / 255.0 * data_range
    return y.unsqueeze(-3)


def psnr(
    pred: Tensor,
    target: Tensor,
    *,
    data_range: float = 1.0,
    crop_border: int = 0,
    y_channel: bool = False,
) -> Tensor:
    """Peak signal-to-noise ratio in dB, one value per image.

    ``10 log10(L^2 / MSE)`` with the mean squared error over the channels and pixels of
    each image (after the optional Y conversion and border crop). Identical images give
    ``+inf``. Matches ``skimage.metrics.peak_signal_noise_ratio(..., data_range=L)``.

    Args:
        pred: (B, C, H, W) restored images in [0, data_range], or one (C, H, W) or
            (H, W) image; any real dtype.
        target: reference images, same shape.
        data_range: Peak value L (1 for [0, 1], 255 for 8-bit).
        crop_border: Pixels removed from every side before scoring (SR: the scale).
        y_channel: Score the luma of ``rgb2ycbcr`` (3 channels) or the image as it is
            (1 channel); other channel counts raise.

    Returns:
        (B,) float64 PSNR in dB (a 0-d tensor for one unbatched image); ``inf`` where an
        image equals its target.

    Raises:
        ValueError: On mismatched shapes, fewer than 2 or more than 4 dims, a crop that
            leaves no pixels, ``data_range <= 0``, or ``y_channel`` with neither 1 nor 3
            channels.

    Example:
        >>> x = torch.full((2, 1, 8, 8), 0.5)
        >>> psnr(x, x + 0.1)
        tensor([20.0000, 20.0000], dtype=torch.float64)
        >>> psnr(x, x)
        tensor([inf, inf], dtype=torch.float64)
    """
    x, y = _prepare(pred, target, data_range, crop_border, y_channel, min_size=1, metric="psnr")
    mse = (x - y).square().mean(dim=(1, 2, 3))
    return _per_image(10.0 * torch.log10(float(data_range) ** 2 / mse), pred)


def ssim(
    pred: Tensor,
    target: Tensor,
    *,
    data_range: float = 1.0,
    crop_border: int = 0,
    y_channel: bool = False,
    variant: str = "wang2004",
) -> Tensor:
    """Structural similarity (Wang et al. 2004), one value per image.

    The SSIM map is computed per channel over the valid region only (no padding: a
    window-size minus one strip of the image never becomes a window centre), averaged over
    the map and then over the channels, as scikit-image does with ``channel_axis``.

    Args:
        pred: (B, C, H, W) restored images in [0, data_range], or one (C, H, W) or
            (H, W) image; any real dtype.
        target: reference images, same shape.
        data_range: Peak value L (1 for [0, 1], 255 for 8-bit; fastMRI passes the
            target volume's maximum).
        crop_border: Pixels removed from every side before scoring (SR: the scale).
        y_channel: Score the luma of ``rgb2ycbcr`` (3 channels) or the image as it is
            (1 channel); other channel counts raise.
        variant: ``"wang2004"`` (11x11 Gaussian window, sigma 1.5, population
            covariance) or ``"fastmri"`` (7x7 uniform window, sample covariance).

    Returns:
        (B,) float64 SSIM, at most 1 (exactly 1 for identical images); a 0-d tensor for
        one unbatched image.

    Raises:
        ValueError: On an unknown variant, mismatched shapes, fewer than 2 or more than 4
            dims, a crop that leaves less than the window, ``data_range <= 0``, or
            ``y_channel`` with neither 1 nor 3 channels.

    Example:
        >>> x = torch.full((1, 1, 16, 16), 0.5)
        >>> ssim(x, x)
        tensor([1.], dtype=torch.float64)
        >>> ssim(x, torch.full_like(x, 0.6))  # flat images: only the luminance term differs
        tensor([0.9836], dtype=torch.float64)
    """
    window = _variant(variant)
    x, y = _prepare(
        pred, target, data_range, crop_border, y_channel, min_size=window.size, metric="ssim"
    )
    scores = _ssim_map(x, y, float(data_range), window).mean(dim=(2, 3)).mean(dim=1)
    return _per_image(scores, pred)


def opponent_psnr(
    pred: Tensor, target: Tensor, *, data_range: float = 1.0, crop_border: int = 0
) -> tuple[Tensor, Tensor]:
    """PSNR of the luma and of the chroma of RGB images, in an orthonormal opponent basis.

    The error is rotated to ``(R+G+B)/sqrt 3`` (luma), ``(R-G)/sqrt 2`` and
    ``(R+G-2B)/sqrt 6`` (chroma); being orthonormal, the rotation keeps the squared error,
    so noise that is i.i.d. over R, G and B scores the same in all three and
    :func:`psnr` is ``-10 log10((10^(-luma/10) + 2 x 10^(-chroma/10)) / 3)``. Each value
    is the PSNR the image would have if every channel had that part's mean squared
    error (peak ``data_range``). Where a colour denoiser trails CBM3D, this says whether
    it is the structure (luma) or the colour (chroma) it restores worse.

    Args:
        pred, target: (B, 3, H, W) or one (3, H, W) RGB image, in [0, data_range].
        data_range, crop_border: as :func:`psnr`.

    Returns:
        (luma, chroma): (B,) float64 PSNR in dB each (0-d for one image).

    Raises:
        ValueError: as :func:`psnr`, and for images without 3 channels.

    Example:
        >>> t = torch.full((1, 3, 4, 4), 0.5)
        >>> luma, chroma = opponent_psnr(t + 0.1, t)  # a brighter image: luma error only
        >>> round(float(luma[0]), 2), float(chroma[0])
        (15.23, inf)
    """
    x, y = _prepare(pred, target, data_range, crop_border, False, min_size=1,
                    metric="opponent_psnr")  # fmt: skip
    if x.shape[1] != 3:
        raise ValueError(f"opponent_psnr needs RGB images (3 channels), got {x.shape[1]}")
    basis = torch.tensor(_OPPONENT, dtype=x.dtype, device=x.device)
    basis = basis / basis.norm(dim=1, keepdim=True)
    err = torch.einsum("oc,bchw->bohw", basis, x - y).square()
    peak = float(data_range) ** 2
    luma = 10.0 * torch.log10(peak / err[:, 0].mean(dim=(1, 2)))
    chroma = 10.0 * torch.log10(peak / err[:, 1:].mean(dim=(1, 2, 3)))
    return _per_image(luma, pred), _per_image(chroma, pred)


def psnr_masked(
    pred: Tensor,
    target: Tensor,
    mask: Tensor,
    *,
    data_range: float = 1.0,
    crop_border: int = 0,
    y_channel: bool = False,
) -> Tensor:
    """PSNR over the pixels where ``mask`` is set, one value per image.

    The MSE is the mean over the channels of the masked pixels only; an image whose mask
    (after the crop) is empty has no score: NaN.

    Args:
        pred, target, data_range, crop_border, y_channel: as :func:`psnr`.
        mask: (B, 1, H, W), (1, H, W) or (H, W); nonzero marks a scored pixel.

    Example:
        >>> x, mask = torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4)
        >>> mask[..., 0, 0] = 1
        >>> y = x.clone(); y[..., 0, 0] = 0.1; y[..., 3, 3] = 0.5  # (3, 3) is not scored
        >>> psnr_masked(y, x, mask)
        tensor([20.0000], dtype=torch.float64)
    """
    x, y = _prepare(pred, target, data_range, crop_border, y_channel, min_size=1, metric="psnr")
    m = _prepare_mask(mask, x, crop_border, pred)
    count = m.sum(dim=(1, 2, 3)) * x.shape[1]
    mse = ((x - y).square() * m).sum(dim=(1, 2, 3)) / count
    value = 10.0 * torch.log10(float(data_range) ** 2 / mse)
    return _per_image(torch.where(count > 0, value, math.nan), pred)


def ssim_masked(
    pred: Tensor,
    target: Tensor,
    mask: Tensor,
    *,
    data_range: float = 1.0,
    crop_border: int = 0,
    y_channel: bool = False,
    variant: str = "wang2004",
) -> Tensor:
    """SSIM averaged over the window centres where ``mask`` is set, one value per image.

    The SSIM map is :func:`ssim`'s (valid region only); its centre pixels that the mask
    marks are averaged. No marked centre: NaN.

    Example:
        >>> x = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0))
        >>> mask = torch.zeros(1, 1, 16, 16); mask[..., 8, 8] = 1
        >>> ssim_masked(x, x, mask), ssim_masked(x, x, torch.zeros_like(mask))
        (tensor([1.], dtype=torch.float64), tensor([nan], dtype=torch.float64))
    """
    window = _variant(variant)
    x, y = _prepare(
        pred, target, data_range, crop_border, y_channel, min_size=window.size, metric="ssim"
    )
    m = _prepare_mask(mask, x, crop_border, pred)
    r = window.size // 2
    m = m[..., r : m.shape[-2] - r, r : m.shape[-1] - r]
    per_pixel = _ssim_map(x, y, float(data_range), window).mean(dim=1, keepdim=True)
    count = m.sum(dim=(1, 2, 3))
    value = (per_pixel * m).sum(dim=(1, 2, 3)) / count
    return _per_image(torch.where(count > 0, value, math.nan), pred)


def _prepare_mask(mask: Tensor, x: Tensor, crop_border: int, pred: Tensor) -> Tensor:
    """The mask as a (B, 1, h, w) float64 {0, 1} tensor matching the cropped ``x``."""
    if not isinstance(mask, Tensor):
        raise ValueError(f"mask must be a torch.Tensor, got {type(mask).__name__}")
    m = _batched(mask) if mask.ndim < 4 else mask
    if (
        m.ndim != 4
        or m.shape[1] != 1
        or m.shape[-2:] != pred.shape[-2:]
        or (m.shape[0] != x.shape[0])
    ):
        raise ValueError(
            f"mask must be (B, 1, H, W) matching the images {tuple(pred.shape)}, got "
            f"{tuple(mask.shape)}"
        )
    m = (m != 0).to(device=x.device, dtype=torch.float64)
    h, w = m.shape[-2:]
    return m[..., crop_border : h - crop_border, crop_border : w - crop_border]


# ------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Metric:
    """A registered metric: what evaluation, reports, CLI tables and validation show.

    Attributes:
        fn: ``fn(pred, target, *, data_range, crop_border, y_channel, mask)`` -> (B,)
            float64 scores (NaN where undefined).
        label: the column header, e.g. ``"PSNR dB"``.
        digits: decimals shown.
        needs_mask: scored only on data with masks (in-mask variants).
        min_side: smallest image side, after the border crop, it is defined on (SSIM's
            window); smaller images get NaN.
    """

    fn: Callable[..., Tensor]
    label: str
    digits: int
    needs_mask: bool = False
    min_side: int = 1


METRICS: Registry[Metric] = Registry("metric", ordered=True)
"""Every metric by name, in display order; ``METRICS.entry(name).paper`` describes it."""

DEFAULT_METRICS = ("psnr", "ssim")
"""What evaluation and validation score unless told otherwise."""

MASK_METRICS = ("psnr_mask", "ssim_mask")
"""Added to the defaults when the data has masks."""


def edge_gap(
    pred: Tensor, target: Tensor, *, width: int = 6, data_range: float = 1.0,
    crop_border: int = 0, y_channel: bool = False,
) -> Tensor:  # fmt: skip
    """How much worse the border is restored than the interior, in ``data_range`` units.

    The mean absolute error of each ``width``-pixel strip along the four sides, minus the
    mean absolute error of the interior (the image without a ``width`` frame); the worst
    side is returned. Near 0 means no edge artefact; positive means a side is worse.

    Args:
        pred, target: (B, C, H, W), (C, H, W) or (H, W), the same shape; at least
            2 * width + 1 pixels on each side after ``crop_border``.
        width: strip width in pixels (6 by default).

    Returns:
        (B,) float64 gaps, divided by ``data_range`` (one 0-d value for one image).

    Example:
        >>> t = torch.zeros(1, 1, 20, 20)
        >>> p = t.clone(); p[..., -6:, :] = 0.1  # a bright strip along the bottom
        >>> round(float(edge_gap(p, t)), 3)
        0.1
    """
    check_positive("width", width)
    x, y = _prepare(pred, target, data_range, crop_border, y_channel,
                    min_size=2 * width + 1, metric="edge_gap")  # fmt: skip
    err = (x - y).abs() / data_range
    sides = [err[..., :width, :], err[..., -width:, :], err[..., :, :width], err[..., :, -width:]]
    interior = err[..., width:-width, width:-width].mean(dim=(1, 2, 3))
    gaps = torch.stack([s.mean(dim=(1, 2, 3)) for s in sides], dim=1).amax(dim=1) - interior
    return _per_image(gaps, pred)


def colour_cast(
    pred: Tensor, target: Tensor, *, data_range: float = 1.0, crop_border: int = 0,
    y_channel: bool = False,
) -> Tensor:  # fmt: skip
    """The largest drift of a channel's mean: ``max_c |mean(pred_c) - mean(target_c)|``.

    A dehazer that tints its output (too brown, too blue) shows here even where its PSNR
    looks fine. In ``data_range`` units; a gray image has one channel.

    Returns:
        (B,) float64 values (one 0-d value for one image).

    Example:
        >>> t = torch.full((1, 3, 4, 4), 0.5)
        >>> p = t.clone(); p[:, 0] += 0.03  # too red
        >>> round(float(colour_cast(p, t)), 3)
        0.03
    """
    x, y = _prepare(pred, target, data_range, crop_border, y_channel, min_size=1,
                    metric="colour_cast")  # fmt: skip
    drift = (x.mean(dim=(2, 3)) - y.mean(dim=(2, 3))).abs() / data_range
    return _per_image(drift.amax(dim=1), pred)


def register_metric(
    name: str, *, label: str, digits: int, description: str, needs_mask: bool = False,
    min_side: int = 1,
) -> Callable[[Callable[..., Tensor]], Callable[..., Tensor]]:  # fmt: skip
    """Register ``fn`` as metric ``name`` (see :class:`Metric`)."""

    def deco(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
        metric = Metric(fn, label, digits, needs_mask, min_side)
        METRICS.add(name, metric, module=fn.__module__, paper=description)
        return fn

    return deco


_WANG = "Wang et al. 2004: 11x11 Gaussian, sigma 1.5, K1 0.01, K2 0.03, valid region"


@register_metric("psnr", label="PSNR dB", digits=2, description="PSNR (dB)")
def _psnr_metric(pred: Tensor, target: Tensor, *, mask: Tensor | None = None, **kw) -> Tensor:
    return psnr(pred, target, **kw)


@register_metric("ssim", label="SSIM", digits=4, description=f"SSIM ({_WANG})", min_side=11)
def _ssim_metric(pred: Tensor, target: Tensor, *, mask: Tensor | None = None, **kw) -> Tensor:
    return ssim(pred, target, **kw)


_IN_MASK = "over the masked pixels only (NaN for an empty mask)"


@register_metric("psnr_mask", label="PSNR mask", digits=2, needs_mask=True,
                 description=f"PSNR (dB) {_IN_MASK}")  # fmt: skip
def _psnr_mask_metric(pred: Tensor, target: Tensor, *, mask: Tensor, **kw) -> Tensor:
    return psnr_masked(pred, target, mask, **kw)


@register_metric("ssim_mask", label="SSIM mask", digits=4, needs_mask=True, min_side=11,
                 description=f"SSIM ({_WANG}) {_IN_MASK}")  # fmt: skip
def _ssim_mask_metric(pred: Tensor, target: Tensor, *, mask: Tensor, **kw) -> Tensor:
    return ssim_masked(pred, target, mask, **kw)


_FASTMRI = (
    "fastMRI's SSIM: 7x7 uniform window, sample covariance, data range the target's "
    "maximum (fastMRI takes the volume's; here the slice's)"
)


@register_metric("ssim_fastmri", label="SSIM fastMRI", digits=4, min_side=7, description=_FASTMRI)
def _ssim_fastmri_metric(pred: Tensor, target: Tensor, *, mask: Tensor | None = None,
                         data_range: float = 1.0, **kw) -> Tensor:  # fmt: skip
    scores = [
        ssim(p, t, data_range=float(t.max()) or data_range, variant="fastmri", **kw)
        for p, t in zip(pred.unbind(0), target.unbind(0), strict=True)
    ]
    return torch.stack(scores)


@register_metric("edge_gap", label="edge gap", digits=3, min_side=13,
                 description="border strips' (6 px) mean |error| minus the interior's, "
                             "worst side (dehazing: edge artefacts)")  # fmt: skip
def _edge_gap_metric(pred: Tensor, target: Tensor, *, mask: Tensor | None = None, **kw) -> Tensor:
    return edge_gap(pred, target, **kw)


@register_metric("colour_cast", label="cast", digits=3,
                 description="max over channels of |mean(output) - mean(truth)| "
                             "(dehazing: colour casts)")  # fmt: skip
def _colour_cast_metric(
    pred: Tensor, target: Tensor, *, mask: Tensor | None = None, **kw
) -> Tensor:
    return colour_cast(pred, target, **kw)


_OPPONENT_WORDS = "in an orthonormal opponent basis (opponent_psnr); NaN for gray or Y scoring"


@register_metric("psnr_luma", label="PSNR luma", digits=2,
                 description=f"PSNR (dB) of the luma {_OPPONENT_WORDS}")  # fmt: skip
def _psnr_luma_metric(pred: Tensor, target: Tensor, *, mask: Tensor | None = None, **kw) -> Tensor:
    return _opponent_part(pred, target, 0, **kw)


@register_metric("psnr_chroma", label="PSNR chroma", digits=2,
                 description=f"PSNR (dB) of the chroma {_OPPONENT_WORDS}")  # fmt: skip
def _psnr_chroma_metric(
    pred: Tensor, target: Tensor, *, mask: Tensor | None = None, **kw
) -> Tensor:
    return _opponent_part(pred, target, 1, **kw)


def _opponent_part(
    pred: Tensor, target: Tensor, part: int, *, y_channel: bool = False, **kw
) -> Tensor:
    batch = _batched(pred)
    if y_channel or batch.shape[1] != 3:  # no colour to split (a gray image's luma is psnr)
        return _per_image(torch.full((batch.shape[0],), math.nan, dtype=torch.float64), pred)
    return opponent_psnr(pred, target, **kw)[part]


class _MetricModule(nn.Module):
    """What :class:`PSNR` and :class:`SSIM` share: options checked once, held, and passed
    to their function on every call."""

    def __init__(
        self, *, data_range: float = 1.0, crop_border: int = 0, y_channel: bool = False
    ) -> None:
        super().__init__()
        _check_data_range(data_range)
        _check_crop_border(crop_border)
        self.data_range = float(data_range)
        self.crop_border = int(crop_border)
        self.y_channel = bool(y_channel)

    def options(self) -> dict[str, Any]:
        """The keyword arguments this module passes to its function."""
        return {"data_range": self.data_range, "crop_border": self.crop_border,
                "y_channel": self.y_channel}  # fmt: skip

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.options().items())


class PSNR(_MetricModule):
    """Module twin of :func:`psnr`, holding its options.

    Example:
        >>> metric = PSNR(crop_border=2)
        >>> x = torch.full((1, 1, 8, 8), 0.5)
        >>> metric(x, x + 0.1)
        tensor([20.0000], dtype=torch.float64)
    """

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """(B, C, H, W) pair -> (B,) float64 PSNR in dB."""
        return psnr(pred, target, **self.options())


class SSIM(_MetricModule):
    """Module twin of :func:`ssim`, holding its options.

    Example:
        >>> metric = SSIM(variant="fastmri")
        >>> x = torch.full((1, 1, 16, 16), 0.5)
        >>> metric(x, x)
        tensor([1.], dtype=torch.float64)
    """

    def __init__(
        self,
        *,
        data_range: float = 1.0,
        crop_border: int = 0,
        y_channel: bool = False,
        variant: str = "wang2004",
    ) -> None:
        super().__init__(data_range=data_range, crop_border=crop_border, y_channel=y_channel)
        _variant(variant)
        self.variant = variant

    def options(self) -> dict[str, Any]:
        return {**super().options(), "variant": self.variant}

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """(B, C, H, W) pair -> (B,) float64 SSIM."""
        return ssim(pred, target, **self.options())


def _ssim_map(x: Tensor, y: Tensor, data_range: float, window: _SSIMWindow) -> Tensor:
    """(B, C, H, W) float64 pair -> (B, C, H - size + 1, W - size + 1) SSIM map."""
    channels = x.shape[1]
    taps = _window_taps(window)
    # One filtering pass over all five local moments of all channels and images.
    moments = _filter_valid(torch.cat((x, y, x * x, y * y, x * y), dim=1), taps)
    mu_x, mu_y, m_xx, m_yy, m_xy = moments.split(channels, dim=1)
    # The taps sum to 1, so the filtered values are weighted local means.
    mu_xy = mu_x * mu_y
    mu_sq = mu_x * mu_x + mu_y * mu_y
    cov = m_xy - mu_xy
    var_sum = m_xx + m_yy - mu_sq
    if window.sample_covariance:
        # Unbiased estimate over the n window pixels, the n / (n - 1) scikit-image applies.
        n = window.size**2
        cov = cov * (n / (n - 1))
        var_sum = var_sum * (n / (n - 1))
    c1 = (_K1 * data_range) ** 2
    c2 = (_K2 * data_range) ** 2
    return (2 * mu_xy + c1) * (2 * cov + c2) / ((mu_sq + c1) * (var_sum + c2))


def _window_taps(window: _SSIMWindow) -> tuple[float, ...]:
    """Normalised 1-D taps whose outer product is the 2-D SSIM window."""
    if window.sigma is None:
        return (1.0 / window.size,) * window.size
    radius = window.size // 2
    # The sampled, renormalised Gaussian of scipy.ndimage.gaussian_filter (which
    # scikit-image calls), in Python floats: the taps are constants, not tensors.
    weights = [math.exp(-0.5 * (i / window.sigma) ** 2) for i in range(-radius, radius + 1)]
    total = math.fsum(weights)
    return tuple(w / total for w in weights)


# Output bytes per CPU tile: ~512 KiB keeps a tile's working set in a core's L2 cache,
# measured about twice as fast as filtering whole images at once (and never slower).
_TILE_BYTES = 512 * 1024


def _filter_valid(z: Tensor, taps: tuple[float, ...]) -> Tensor:
    """Separable correlation of every (B, C) plane with ``taps``, valid region only.

    A 1-D pass is written as k scaled shifted adds over the whole batch: on the CPU in
    float64 this is several times faster than a grouped ``conv2d`` (which has no fast
    double-precision kernel there), and it is differentiable and device-agnostic. The
    column pass runs first, on contiguous rows. Without padding every output pixel's
    window lies wholly inside the image: exactly the map scikit-image keeps after
    cropping ``(size - 1) // 2`` pixels from its reflect-padded filter output.
    """
    k = len(taps)
    out_h = z.shape[-2] - k + 1
    if z.device.type == "cpu":
        row_bytes = z[..., 0, :].numel() * z.element_size()
        rows = max(1, _TILE_BYTES // row_bytes)
    else:
        rows = out_h  # accelerators: fewest kernel launches
    tiles = [
        _correlate_last(_correlate_rows(z[..., r : min(out_h, r + rows) + k - 1, :], taps), taps)
        for r in range(0, out_h, rows)
    ]
    return tiles[0] if len(tiles) == 1 else torch.cat(tiles, dim=-2)


def _correlate_rows(z: Tensor, taps: tuple[float, ...]) -> Tensor:
    """Valid 1-D correlation along dim -2."""
    n = z.shape[-2] - len(taps) + 1
    out = z[..., :n, :] * taps[0]
    for i, tap in enumerate(taps[1:], start=1):
        out.add_(z[..., i : i + n, :], alpha=tap)
    return out


def _correlate_last(z: Tensor, taps: tuple[float, ...]) -> Tensor:
    """Valid 1-D correlation along dim -1."""
    n = z.shape[-1] - len(taps) + 1
    out = z[..., :n] * taps[0]
    for i, tap in enumerate(taps[1:], start=1):
        out.add_(z[..., i : i + n], alpha=tap)
    return out


def _variant(variant: str) -> _SSIMWindow:
    if variant not in _VARIANTS:
        raise ValueError(f"variant must be one of {list(SSIM_VARIANTS)}, got {variant!r}")
    return _VARIANTS[variant]


def _check_data_range(data_range: float) -> None:
    if isinstance(data_range, bool) or not isinstance(data_range, (int, float)):
        raise ValueError(f"data_range must be a number, got {type(data_range).__name__}")
    if not (math.isfinite(data_range) and data_range > 0):
        raise ValueError(f"data_range must be finite and > 0, got {data_range}")


def _check_crop_border(crop_border: int) -> None:
    if isinstance(crop_border, bool) or not isinstance(crop_border, int) or crop_border < 0:
        raise ValueError(f"crop_border must be an int >= 0, got {crop_border!r}")


def _prepare(
    pred: Tensor,
    target: Tensor,
    data_range: float,
    crop_border: int,
    y_channel: bool,
    *,
    min_size: int,
    metric: str,
) -> tuple[Tensor, Tensor]:
    """Check a (pred, target) pair and return it in float64, as Y if asked, border-cropped,
    as (B, C, H, W): an (H, W) or (C, H, W) image becomes a batch of one."""
    for name, t in (("pred", pred), ("target", target)):
        if not isinstance(t, Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if not 2 <= t.ndim <= 4:
            raise ValueError(
                f"{name} must be (H, W), (C, H, W) or (B, C, H, W), got {tuple(t.shape)}"
            )
        if t.is_complex():
            raise ValueError(f"{name} must be real-valued, got {t.dtype}")
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target must have the same shape, got {tuple(pred.shape)} "
            f"and {tuple(target.shape)}"
        )
    _check_data_range(data_range)
    _check_crop_border(crop_border)
    pred, target = _batched(pred), _batched(target)
    channels = pred.shape[1]
    if y_channel and channels not in (1, 3):
        raise ValueError(f"y_channel=True needs 1 (gray) or 3 (RGB) channels, got {channels}")
    height, width = pred.shape[-2:]
    kept_h, kept_w = height - 2 * crop_border, width - 2 * crop_border
    if kept_h < min_size or kept_w < min_size:
        need = "at least 1 pixel" if min_size == 1 else f"the {min_size}x{min_size} window"
        raise ValueError(
            f"crop_border={crop_border} leaves {max(kept_h, 0)}x{max(kept_w, 0)} of the "
            f"{height}x{width} images; {metric} needs at least {need}"
        )
    # float64 regardless of the input dtype: SSIM's variance terms cancel catastrophically
    # in float32/bf16, and scores must not depend on the precision a model ran in.
    x = pred.to(torch.float64)
    y = target.to(torch.float64)
    if y_channel and channels == 3:
        x = rgb_to_y(x, data_range=data_range)
        y = rgb_to_y(y, data_range=data_range)
    if crop_border:
        x = x[..., crop_border : height - crop_border, crop_border : width - crop_border]
        y = y[..., crop_border : height - crop_border, crop_border : width - crop_border]
    return x, y


def _batched(t: Tensor) -> Tensor:
    return t.reshape((1,) * (4 - t.ndim) + tuple(t.shape))


def _per_image(value: Tensor, pred: Tensor) -> Tensor:
    """(B,) scores for a batch; one 0-d score for an unbatched (H, W) or (C, H, W) image."""
    return value if pred.ndim == 4 else value[0]
