"""MATLAB-exact bicubic ``imresize``: the super-resolution benchmarks' bicubic degradation.

The published SR tables (BENCHMARKS.md convention 3) make their low-resolution inputs with
MATLAB's ``imresize(im2double(x), 1/scale)``. PIL, OpenCV and ``torch.nn.functional.interpolate``
resize differently (no antialiasing, other kernels or other boundary rules) and shift the x3/x4
baselines by up to about 1 dB, so restorekit reproduces MATLAB's algorithm itself.

MATLAB behaviours reproduced (for ``'bicubic'`` on double input):

* Kernel: Keys' cubic convolution with a = -0.5, support [-2, 2] (:func:`cubic`).
* Coordinates: output pixel ``x`` (1-based) sits at input position
  ``u = x / scale + 0.5 * (1 - 1 / scale)``, so pixel *areas* line up, not pixel centres.
* Antialiasing on downscales only (the default): for ``scale < 1`` the kernel is stretched to
  ``scale * cubic(scale * t)``, of width ``4 / scale``; upscales use the plain kernel.
* Taps: ``left = floor(u - width / 2)``, ``P = ceil(width) + 2`` candidates per output
  pixel; the weights are normalised to sum to 1 per output pixel.
* Boundary: out-of-range tap *indices* are mirrored including the edge pixel (symmetric
  padding: 1-based index 0 -> 1, -1 -> 2, n + 1 -> n), after normalisation, so weights that
  fold onto the same pixel add up; taps whose weight is zero for every output are dropped.
* Output size ``ceil(scale * in)`` per axis; given ``size`` instead, the scale per axis is
  ``out / in``.
* Dimension order: MATLAB resizes first along the dimension with the smallest scale factor
  (a stable sort, so rows, i.e. H, first when equal). Separable resizing is linear, so the
  order changes results only at the 1e-16 level; it is followed anyway (and it keeps the
  intermediate image small).
* No clipping: bicubic overshoot beyond [0, 1] near edges is kept, as MATLAB does for doubles
  (MATLAB rounds and saturates only integer inputs; quantise yourself if you need that).

Not reproduced: integer (uint8) inputs, other kernels, and NaN/inf locality. Each axis is
applied as a dense (out, in) matrix product, so a NaN or inf pixel spreads to its whole
row/column, where MATLAB's tap loop spreads it only to nearby outputs. MATLAB releases from
before the symmetric rule (for example the one behind the 2013 Stack Overflow output in the
tests) replicated the edge pixel instead of mirroring it; they differ only within two (or
``2 / scale``) pixels of the border.

How this was verified without MATLAB (``tests/test_resize.py``):

(a) hand-derived weights: exact rational weights derived by hand from the formulas above for
    x2, x3 and x4 downscales and an x2 upscale of short 1-D signals, including border pixels
    where mirrored taps fold, equal ``imresize`` of one-hot inputs to 1e-12;
(b) properties: constants stay constant at every scale, ``ceil`` output sizes, the kernel's
    values at 0, 0.5, 1, 1.5, 2, overshoot is kept (no clipping), linear ramps stay linear
    away from the borders on upscales;
(c) an independent plain-Python loop implementation written in the test file from MATLAB's
    documented formulas agrees to 1e-10 on random images at scales 1/2, 1/3, 1/4, 2, 3, 0.7
    and 1.3;
(d) a golden MATLAB output published on Stack Overflow (question 17380407, an x2 upscale of
    ``[0 0 1 1 0]`` printed to 4 decimals) is reproduced.

Compute dtype: the weights are built in float64; float64 inputs are resized in float64
(MATLAB-exact to about 1e-15), float32 inputs in float32 (about 1e-7 relative), float16 and
bfloat16 inputs in float32 and cast back. The output has the input's dtype and device.

References:
    R. Keys, "Cubic convolution interpolation for digital image processing", IEEE Trans.
    ASSP 29(6), 1981. https://doi.org/10.1109/TASSP.1981.1163711
    MATLAB ``imresize`` documentation: https://www.mathworks.com/help/images/ref/imresize.html
    S. Eddins, "Aliasing and image resizing - part 3" (how imresize antialiases):
    https://blogs.mathworks.com/steve/2017/01/16/aliasing-and-image-resizing-part-3/
"""

from __future__ import annotations

import math
from functools import lru_cache
from numbers import Integral, Real

import torch

from restorekit.degrade.base import Degradation, Degraded, preset, register

__all__ = ["Bicubic", "cubic", "imresize"]

_KERNEL_WIDTH = 4.0  # support of the cubic kernel: [-2, 2]


def cubic(t: torch.Tensor) -> torch.Tensor:
    """Keys' cubic convolution kernel with a = -0.5, as MATLAB's ``imresize`` uses it.

    ``1.5|t|^3 - 2.5|t|^2 + 1`` for ``|t| <= 1``, ``-0.5|t|^3 + 2.5|t|^2 - 4|t| + 2`` for
    ``1 < |t| <= 2``, and 0 beyond.

    Args:
        t: distances in input pixels, any shape, float.

    Returns:
        Kernel values, same shape and dtype as ``t``.

    Example:
        >>> cubic(torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0])).tolist()
        [1.0, 0.5625, 0.0, -0.0625, 0.0]
    """
    a = t.abs()
    a2 = a * a
    a3 = a2 * a
    inner = (1.5 * a3 - 2.5 * a2 + 1.0) * (a <= 1)
    outer = (-0.5 * a3 + 2.5 * a2 - 4.0 * a + 2.0) * ((a > 1) & (a <= 2))
    return inner + outer


@lru_cache(maxsize=64)
def _resize_matrix(n_in: int, n_out: int, scale: float, antialiasing: bool) -> torch.Tensor:
    """The (n_out, n_in) float64 CPU matrix resizing one axis as MATLAB's ``contributions``.

    Cached: data pipelines resize many images of the same size. Callers must not modify it.
    Built on the CPU whatever the default device: a matrix first made inside
    ``with torch.device("meta")`` (restore's memory probe) would be cached empty.
    """
    width = _KERNEL_WIDTH
    stretch = scale < 1 and antialiasing
    if stretch:
        # Widening the kernel by 1/scale low-pass filters and interpolates in one step.
        width = width / scale
    cpu = torch.device("cpu")
    x = torch.arange(1, n_out + 1, dtype=torch.float64, device=cpu)  # 1-based output pixels
    u = x / scale + 0.5 * (1 - 1 / scale)  # their centres in 1-based input coordinates
    left = torch.floor(u - width / 2)
    taps = math.ceil(width) + 2  # one spare tap; zero-weight taps are dropped below
    j = left[:, None] + torch.arange(taps, dtype=torch.float64, device=cpu)  # 1-based inputs
    t = u[:, None] - j
    weights = scale * cubic(scale * t) if stretch else cubic(t)
    weights = weights / weights.sum(dim=1, keepdim=True)
    # Mirror the 0-based indices into [0, n_in) with the edge pixel repeated (period 2 n_in).
    idx = torch.remainder(j.long() - 1, 2 * n_in)
    idx = torch.where(idx >= n_in, 2 * n_in - 1 - idx, idx)
    matrix = torch.zeros(n_out, n_in, dtype=torch.float64, device=cpu)
    # Taps folded onto the same input pixel add up; zero-weight taps add nothing.
    matrix.scatter_add_(1, idx, weights)
    return matrix


def _scales_and_size(
    in_hw: tuple[int, int],
    scale: float | tuple[float, float] | None,
    size: tuple[int, int] | None,
) -> tuple[tuple[float, float], tuple[int, int]]:
    if (scale is None) == (size is None):
        raise ValueError("give exactly one of scale and size")
    if size is not None:
        if (
            not isinstance(size, (tuple, list))
            or len(size) != 2
            or not all(isinstance(s, Integral) and s > 0 for s in size)
        ):
            raise ValueError(f"size must be two positive ints (out_h, out_w), got {size!r}")
        out_h, out_w = int(size[0]), int(size[1])
        return (out_h / in_hw[0], out_w / in_hw[1]), (out_h, out_w)
    bad_scale = f"scale must be a positive float or two of them, got {scale!r}"
    if isinstance(scale, Real):
        pair: tuple[object, ...] = (scale, scale)
    else:
        try:
            pair = tuple(scale)
        except TypeError:
            raise ValueError(bad_scale) from None
    if len(pair) != 2 or not all(isinstance(s, Real) and math.isfinite(s) and s > 0 for s in pair):
        raise ValueError(bad_scale)
    sh, sw = float(pair[0]), float(pair[1])
    # MATLAB: output size = ceil(scale .* input size), in double precision like here.
    return (sh, sw), (math.ceil(sh * in_hw[0]), math.ceil(sw * in_hw[1]))


def imresize(
    x: torch.Tensor,
    scale: float | tuple[float, float] | None = None,
    *,
    size: tuple[int, int] | None = None,
    antialiasing: bool = True,
) -> torch.Tensor:
    """Resize images exactly as MATLAB's ``imresize(x, scale)`` with its default bicubic.

    Give either ``scale`` (``0.5``, ``1 / 3``, ``4``, or ``(scale_h, scale_w)``; output size
    ``ceil(in * scale)``) or ``size`` ``(out_h, out_w)`` (scale per axis ``out / in``).
    Downscales are antialiased unless ``antialiasing=False``; values are never clipped.

    Args:
        x: images, (B, C, H, W) or (C, H, W) (any leading dims), any float dtype and device;
            values are usually in [0, 1] but any real values work (the resize is linear).
        scale: the resize factor, > 0, for both axes or as (scale_h, scale_w).
        size: the output size (out_h, out_w) instead of ``scale``.
        antialiasing: stretch the kernel by ``1 / scale`` when downscaling (MATLAB's default).

    Returns:
        The resized images, (..., out_h, out_w), with ``x``'s dtype and device. The values
        may leave [0, 1] slightly near edges (bicubic overshoot), as in MATLAB.

    Raises:
        ValueError: ``x`` is not a floating tensor with at least 2 dims, both or neither of
            ``scale`` and ``size`` is given, or either is not positive.

    Example:
        >>> x = torch.rand(2, 3, 17, 23)
        >>> imresize(x, 1 / 3).shape
        torch.Size([2, 3, 6, 8])
        >>> imresize(torch.full((1, 1, 8, 8), 0.25), 0.5).unique().tolist()
        [0.25]
        >>> imresize(torch.tensor([[[0.0, 0.0, 1.0, 1.0, 0.0]]]), size=(1, 10))[0, 0, :3]
        tensor([ 0.0000, -0.0234, -0.0703])
    """
    if not isinstance(x, torch.Tensor) or x.ndim < 2 or not x.is_floating_point():
        got = f"{tuple(x.shape)} {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a float tensor of shape (B, C, H, W) or (C, H, W), got {got}")
    in_h, in_w = x.shape[-2], x.shape[-1]
    if in_h == 0 or in_w == 0:
        raise ValueError(f"x must have H, W >= 1, got {tuple(x.shape)}")
    (sh, sw), (out_h, out_w) = _scales_and_size((in_h, in_w), scale, size)

    compute = torch.float64 if x.dtype == torch.float64 else torch.float32
    y = x.to(compute)
    # MATLAB resizes first along the axis with the smallest scale (rows first on ties).
    for axis in ("h", "w") if sh <= sw else ("w", "h"):
        if axis == "h":
            matrix = _resize_matrix(in_h, out_h, sh, antialiasing)
            y = torch.matmul(matrix.to(device=x.device, dtype=compute), y)
        else:
            matrix = _resize_matrix(in_w, out_w, sw, antialiasing)
            y = torch.matmul(y, matrix.to(device=x.device, dtype=compute).T)
    return y.to(x.dtype)


@register("bicubic", scales=(2, 3, 4), paper="MATLAB imresize bicubic with antialiasing")
class Bicubic(Degradation):
    """The SR benchmarks' bicubic degradation: ``lq = imresize(x, 1 / scale)``.

    Deterministic; the generator is accepted for a uniform interface and not used. As in the
    benchmarks, crop ``x`` to a multiple of ``scale`` first so that ``lq`` is exactly
    ``1 / scale`` of it (otherwise the size is ``ceil(H / scale), ceil(W / scale)``).

    Args:
        scale: the integer downscale factor (2, 3 and 4 are the benchmark ones), >= 1.

    Example:
        >>> Bicubic(4)(torch.rand(1, 3, 32, 48)).lq.shape
        torch.Size([1, 3, 8, 12])
    """

    def __init__(self, scale: int) -> None:
        super().__init__()
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
            raise ValueError(f"scale must be an integer >= 1, got {scale!r}")
        self.scale = scale

    def forward(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> Degraded:
        """Downscale (B, C, H, W) images by ``scale``; returns ``Degraded(lq, mask=None)``."""
        return Degraded(imresize(x, 1 / self.scale))

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


for _scale in (2, 3, 4):
    preset(f"bicubic_x{_scale}", "bicubic", scale=_scale,
           description=f"MATLAB-exact bicubic downscaling by {_scale}")  # fmt: skip
