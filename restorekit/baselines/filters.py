"""Median and Gaussian filters as scipy.ndimage computes them, in torch on any device.

``median`` is the reference for salt-and-pepper noise; ``gaussian`` the simplest
denoiser. Borders are mirrored as scipy's mode 'reflect'.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from restorekit.baselines.base import Baseline, register
from restorekit.utils import check_arg, is_int, working_float

__all__ = ["Gaussian", "Median", "gaussian_blur", "median_filter"]


def _symmetric_pad(x: Tensor, r: int) -> Tensor:
    """Pad H and W by ``r`` as scipy.ndimage's mode 'reflect' (d c b a | a b c d | d c b a).

    Index-based with period 2n, so any ``r`` works, also wider than the image.
    """
    out = x
    for dim in (-2, -1):
        n = x.shape[dim]
        i = torch.remainder(torch.arange(-r, n + r, device=x.device), 2 * n)
        out = out.index_select(dim, torch.where(i >= n, 2 * n - 1 - i, i))
    return out


def median_filter(x: Tensor, *, size: int = 3) -> Tensor:
    """Median over ``size`` x ``size`` windows, borders mirrored as scipy's mode 'reflect'.

    Args:
        x: (B, C, H, W) float images; each channel is filtered on its own.
        size: odd window side >= 1.

    Returns:
        Filtered images, ``x``'s shape, dtype and device (the values are input values).

    Example:
        >>> x = torch.zeros(1, 1, 5, 5)
        >>> x[0, 0, 2, 2] = 1.0  # an isolated impulse disappears
        >>> median_filter(x).abs().max().item()
        0.0
    """
    check_arg(is_int(size) and size >= 1 and size % 2 == 1, "size", size, "an odd int >= 1")
    h, w = x.shape[-2:]
    out = []
    for img in working_float(x).split(1):  # one image at a time: the windows take size**2 memory
        win = _symmetric_pad(img, size // 2).unfold(2, size, 1).unfold(3, size, 1)
        out.append(win.reshape(*img.shape[:2], h, w, size * size).median(dim=-1).values)
    return torch.cat(out).to(x.dtype)


def gaussian_blur(x: Tensor, *, sigma: float = 1.0, truncate: float = 4.0) -> Tensor:
    """Separable Gaussian blur as ``scipy.ndimage.gaussian_filter(mode='reflect')``.

    The kernel has radius ``int(truncate * sigma + 0.5)`` and sums to 1, as scipy's.

    Args:
        x: (B, C, H, W) float images; each channel is blurred on its own.
        sigma: standard deviation in pixels, > 0.
        truncate: kernel radius in standard deviations, > 0.

    Returns:
        Blurred images, ``x``'s shape, dtype and device.

    Example:
        >>> y = gaussian_blur(torch.full((1, 3, 7, 9), 0.25), sigma=2.0)
        >>> y.shape, bool(torch.allclose(y, torch.tensor(0.25)))
        (torch.Size([1, 3, 7, 9]), True)
    """
    check_arg(sigma > 0, "sigma", sigma, "> 0")
    check_arg(truncate > 0, "truncate", truncate, "> 0")
    r = int(truncate * sigma + 0.5)
    y = working_float(x)
    t = torch.arange(-r, r + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = (k / k.sum()).to(device=x.device, dtype=y.dtype)
    b, c, h, w = x.shape
    y = _symmetric_pad(y, r).reshape(b * c, 1, h + 2 * r, w + 2 * r)
    y = F.conv2d(F.conv2d(y, k.view(1, 1, 1, -1)), k.view(1, 1, -1, 1))
    return y.reshape(b, c, h, w).to(x.dtype)


@register("median", paper="median filter (Gonzalez & Woods 5.3), scipy.ndimage's")
class Median(Baseline):
    """:func:`median_filter` with an odd window ``size`` (default 3)."""

    def __init__(self, *, size: int = 3) -> None:
        check_arg(is_int(size) and size >= 1 and size % 2 == 1, "size", size, "an odd int >= 1")
        super().__init__(size=size)
        self.size = size

    def restore(self, x: Tensor) -> Tensor:
        return median_filter(x, size=self.size)


@register("gaussian", paper="Gaussian blur, scipy.ndimage.gaussian_filter's kernel")
class Gaussian(Baseline):
    """:func:`gaussian_blur` with ``sigma`` pixels, truncated at ``truncate`` sigmas."""

    def __init__(self, *, sigma: float = 1.0, truncate: float = 4.0) -> None:
        check_arg(sigma > 0, "sigma", sigma, "> 0")
        check_arg(truncate > 0, "truncate", truncate, "> 0")
        super().__init__(sigma=float(sigma), truncate=float(truncate))
        self.sigma, self.truncate = float(sigma), float(truncate)

    def restore(self, x: Tensor) -> Tensor:
        return gaussian_blur(x, sigma=self.sigma, truncate=self.truncate)
