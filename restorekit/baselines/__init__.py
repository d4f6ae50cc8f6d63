"""Classical baselines reported beside every learned model, as parameter-free ``nn.Module``s.

Each maps (B, C, H, W) float images in [0, 1], C = 1 or 3, to (B, C, scale*H, scale*W) of
the same dtype and device, and has ``scale`` and ``size_multiple = 1``, so
:func:`restorekit.inference.restore_tensor` and the benchmark runner take it like a model.
Build them by name with :func:`create_baseline`; :func:`list_baselines` names them all.

* ``median``: median filter, the reference for salt-and-pepper noise (torch).
* ``gaussian``: Gaussian blur with ``scipy.ndimage.gaussian_filter``'s kernel (torch).
* ``nlm``: non-local means, Buades, Coll and Morel, CVPR 2005,
  https://doi.org/10.1109/CVPR.2005.38, via scikit-image's ``denoise_nl_means`` (fast
  mode: Darbon et al., ISBI 2008, https://doi.org/10.1109/ISBI.2008.4541250).
* ``bm3d``: Dabov, Foi, Katkovnik and Egiazarian, IEEE TIP 16(8), 2007,
  https://doi.org/10.1109/TIP.2007.901238, via the optional ``bm3d`` package (Mäkinen,
  Azzari and Foi, ICIP 2019, https://doi.org/10.1109/ICIP.2019.8803785); CBM3D for RGB.
* ``bicubic``: upscaling with restorekit's MATLAB-exact ``imresize``.
* ``dcp``: dark channel prior dehazing, He, Sun and Tang, CVPR 2009,
  https://doi.org/10.1109/CVPR.2009.5206515 and TPAMI 33(12) 2011,
  https://doi.org/10.1109/TPAMI.2010.168, with the transmission refined by the guided
  filter, He, Sun and Tang, ECCV 2010, https://doi.org/10.1007/978-3-642-15549-9_1
  (the operations live in :mod:`restorekit.baselines.dcp`).

Median, Gaussian, bicubic and DCP are torch code on the input's device; NLM and BM3D run
per image on the CPU in float64 and move the result back. scikit-image and bm3d are
imported on first use, so importing this package stays cheap.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

# The argument checks are shared with the DCP operations, defined once there.
from restorekit.baselines.dcp import (
    Dehazed,
    _check,
    _check_dcp,
    _is_int,
    _work,
    dark_channel,
    dehaze_dcp,
    guided_filter,
)
from restorekit.degrade.resize import imresize
from restorekit.utils import check_images

__all__ = [
    "BM3D",
    "DCP",
    "NLM",
    "Baseline",
    "Bicubic",
    "Dehazed",
    "Gaussian",
    "Median",
    "create_baseline",
    "dark_channel",
    "dehaze_dcp",
    "gaussian_blur",
    "guided_filter",
    "list_baselines",
    "median_filter",
]

logger = logging.getLogger(__name__)

_BM3D_PROFILES = ("np", "refilter", "vn", "high")  # bm3d's denoising profiles
_BM3D_MIN_SIDE = 16  # bm3d 4.0.3 rejects images under its 8-pixel block; 8 x 8 segfaults


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
    _check(_is_int(size) and size >= 1 and size % 2 == 1, "size", size, "an odd int >= 1")
    h, w = x.shape[-2:]
    out = []
    for img in _work(x).split(1):  # one image at a time: the windows take size**2 memory
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
    _check(sigma > 0, "sigma", sigma, "> 0")
    _check(truncate > 0, "truncate", truncate, "> 0")
    r = int(truncate * sigma + 0.5)
    y = _work(x)
    t = torch.arange(-r, r + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = (k / k.sum()).to(device=x.device, dtype=y.dtype)
    b, c, h, w = x.shape
    y = _symmetric_pad(y, r).reshape(b * c, 1, h + 2 * r, w + 2 * r)
    y = F.conv2d(F.conv2d(y, k.view(1, 1, 1, -1)), k.view(1, 1, -1, 1))
    return y.reshape(b, c, h, w).to(x.dtype)


def _per_image_numpy(x: Tensor, fn: Callable[[np.ndarray], np.ndarray]) -> Tensor:
    """Run ``fn`` on each image as a float64 (H, W) or (H, W, 3) array; back to ``x``'s."""
    arr = x.detach().to("cpu", torch.float64).permute(0, 2, 3, 1).numpy()
    out = [np.asarray(fn(img[..., 0] if img.shape[-1] == 1 else img)) for img in arr]
    y = torch.from_numpy(np.stack(out).reshape(arr.shape)).permute(0, 3, 1, 2)
    return y.to(device=x.device, dtype=x.dtype)


def _estimate_sigma(img: np.ndarray) -> float:
    from skimage.restoration import estimate_sigma  # heavy: imported on first use

    axis = -1 if img.ndim == 3 else None
    return float(estimate_sigma(img, average_sigmas=True, channel_axis=axis))


def _import_bm3d() -> Any:
    try:
        import bm3d
    except ImportError as err:
        raise ImportError(
            "the bm3d baseline needs the optional bm3d package: pip install 'restorekit[bm3d]'"
        ) from err
    return bm3d


class Baseline(nn.Module):
    """Base of the baselines: input checks, name and arguments, a description.

    Attributes:
        scale: output size / input size (1 but for bicubic).
        size_multiple: 1: any size works.
        baseline_name: the registry name.
        baseline_kwargs: every argument with its value, defaults included.
        classical: True: ``precision="auto"`` runs it in fp32 and NCHW (its numbers
            must not depend on the machine; see :mod:`restorekit.hardware`).
    """

    name: ClassVar[str]
    scale: int = 1
    size_multiple: int = 1
    classical: ClassVar[bool] = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        self.baseline_name = self.name
        self.baseline_kwargs = dict(kwargs)

    def forward(self, x: Tensor) -> Tensor:
        """Restore (B, C, H, W) in [0, 1], C = 1 or 3 -> (B, C, scale*H, scale*W)."""
        check_images(x, channels=(1, 3))
        return self.restore(x).to(device=x.device, dtype=x.dtype)

    def restore(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def describe(self) -> str:
        """The name and every parameter, for result tables: ``"median(size=3)"``."""
        return f"{self.baseline_name}({self.extra_repr()})"

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.baseline_kwargs.items())


class Median(Baseline):
    """:func:`median_filter` with an odd window ``size`` (default 3)."""

    name = "median"

    def __init__(self, *, size: int = 3) -> None:
        _check(_is_int(size) and size >= 1 and size % 2 == 1, "size", size, "an odd int >= 1")
        super().__init__(size=size)
        self.size = size

    def restore(self, x: Tensor) -> Tensor:
        return median_filter(x, size=self.size)


class Gaussian(Baseline):
    """:func:`gaussian_blur` with ``sigma`` pixels, truncated at ``truncate`` sigmas."""

    name = "gaussian"

    def __init__(self, *, sigma: float = 1.0, truncate: float = 4.0) -> None:
        _check(sigma > 0, "sigma", sigma, "> 0")
        _check(truncate > 0, "truncate", truncate, "> 0")
        super().__init__(sigma=float(sigma), truncate=float(truncate))
        self.sigma, self.truncate = float(sigma), float(truncate)

    def restore(self, x: Tensor) -> Tensor:
        return gaussian_blur(x, sigma=self.sigma, truncate=self.truncate)


class NLM(Baseline):
    """Non-local means via ``skimage.restoration.denoise_nl_means``, per image.

    ``sigma`` (noise std on the [0, 1] scale) is estimated per image by
    ``estimate_sigma`` when None and always passed on, so the noise variance is
    subtracted from the patch distances. ``h`` defaults to the scikit-image gallery's
    choice with sigma given: 0.6 sigma in fast mode, 0.8 sigma otherwise. Patch size 5
    and search distance 6 are the gallery's too. An image whose sigma is 0 is returned
    unchanged (h = 0 would divide by zero).
    """

    name = "nlm"

    def __init__(
        self,
        *,
        sigma: float | None = None,
        h: float | None = None,
        patch_size: int = 5,
        patch_distance: int = 6,
        fast_mode: bool = True,
    ) -> None:
        _check(sigma is None or sigma >= 0, "sigma", sigma, "None or >= 0")
        _check(h is None or h > 0, "h", h, "None or > 0")
        for key, value in (("patch_size", patch_size), ("patch_distance", patch_distance)):
            _check(_is_int(value) and value >= 1, key, value, "an int >= 1")
        kw = {"sigma": sigma, "h": h, "patch_size": patch_size}
        super().__init__(**kw, patch_distance=patch_distance, fast_mode=bool(fast_mode))
        self.sigma, self.h, self.fast_mode = sigma, h, bool(fast_mode)
        self.patch_size, self.patch_distance = patch_size, patch_distance

    def _one(self, img: np.ndarray) -> np.ndarray:
        from skimage.restoration import denoise_nl_means  # heavy: imported on first use

        sigma = _estimate_sigma(img) if self.sigma is None else self.sigma
        h = self.h if self.h is not None else (0.6 if self.fast_mode else 0.8) * sigma
        if h <= 0:
            logger.debug("nlm: sigma is 0, image returned unchanged")
            return img
        return denoise_nl_means(
            img,
            patch_size=self.patch_size,
            patch_distance=self.patch_distance,
            h=h,
            fast_mode=self.fast_mode,
            sigma=sigma,
            channel_axis=-1 if img.ndim == 3 else None,
        )

    def restore(self, x: Tensor) -> Tensor:
        return _per_image_numpy(x, self._one)


class BM3D(Baseline):
    """BM3D (grey) or CBM3D (RGB, opponent colour space) via the optional bm3d package.

    ``sigma`` is the noise std on the [0, 1] scale; None estimates it per image with
    ``skimage.restoration.estimate_sigma`` (an image estimated noise-free is returned
    as it is). Images with a side below 16 are mirrored up to 16 and cropped back
    (bm3d 4.0.3 rejects images smaller than its 8 x 8 blocks and crashes on 8 x 8).

    Raises:
        ImportError: bm3d is not installed (``pip install 'restorekit[bm3d]'``).
    """

    name = "bm3d"

    def __init__(self, *, sigma: float | None = None, profile: str = "np") -> None:
        _check(sigma is None or sigma > 0, "sigma", sigma, "None or > 0")
        _check(profile in _BM3D_PROFILES, "profile", profile, f"one of {_BM3D_PROFILES}")
        _import_bm3d()  # fail at construction, not in the middle of a benchmark
        super().__init__(sigma=sigma, profile=profile)
        self.sigma, self.profile = sigma, profile

    def _one(self, img: np.ndarray) -> np.ndarray:
        bm3d = _import_bm3d()
        sigma = _estimate_sigma(img) if self.sigma is None else self.sigma
        if sigma <= 0:
            logger.debug("bm3d: estimated sigma is 0, image returned unchanged")
            return img
        h, w = img.shape[:2]
        ph, pw = max(0, _BM3D_MIN_SIDE - h), max(0, _BM3D_MIN_SIDE - w)
        pad = ((0, ph), (0, pw)) + ((0, 0),) * (img.ndim - 2)
        z = np.pad(img, pad, mode="symmetric") if ph or pw else img
        if img.ndim == 3:
            y = bm3d.bm3d_rgb(z, sigma, profile=self.profile)
        else:
            y = bm3d.bm3d(z, sigma, profile=self.profile)
        return y[:h, :w]

    def restore(self, x: Tensor) -> Tensor:
        return _per_image_numpy(x, self._one)


class Bicubic(Baseline):
    """Super-resolution baseline: ``imresize(x, scale)``, MATLAB-exact bicubic upscaling.

    Not clipped, as MATLAB (overshoot near edges); ``restore_tensor`` clips to [0, 1].
    """

    name = "bicubic"

    def __init__(self, *, scale: int = 4) -> None:
        _check(_is_int(scale) and scale in (2, 3, 4), "scale", scale, "2, 3 or 4")
        super().__init__(scale=scale)
        self.scale = scale

    def restore(self, x: Tensor) -> Tensor:
        return imresize(x, self.scale)


class DCP(Baseline):
    """Dark channel prior dehazing, :func:`dehaze_dcp` (the paper's parameters by default).

    One-channel input uses its single channel as the dark channel and the guide.
    """

    name = "dcp"

    def __init__(
        self,
        *,
        patch: int = 15,
        omega: float = 0.95,
        t0: float = 0.1,
        top_fraction: float = 0.001,
        radius: int = 60,
        eps: float = 1e-4,
    ) -> None:
        kw = {"patch": patch, "omega": omega, "t0": t0, "top_fraction": top_fraction}
        kw |= {"radius": radius, "eps": eps}
        _check_dcp(**kw)
        super().__init__(**kw)

    def restore(self, x: Tensor) -> Tensor:
        return dehaze_dcp(x, **self.baseline_kwargs).image


_BASELINES: dict[str, type[Baseline]] = {
    cls.name: cls for cls in (Median, Gaussian, NLM, BM3D, Bicubic, DCP)
}


def list_baselines() -> list[str]:
    """The names :func:`create_baseline` accepts, sorted.

    >>> list_baselines()
    ['bicubic', 'bm3d', 'dcp', 'gaussian', 'median', 'nlm']
    """
    return sorted(_BASELINES)


def create_baseline(name: str, **kwargs: Any) -> Baseline:
    """The baseline ``name`` with keyword arguments ``kwargs`` (see each class).

    Raises:
        ValueError: an unknown name or argument (the message lists the valid ones), or
            a bad value.
        ImportError: ``bm3d`` without the bm3d package.

    Example:
        >>> create_baseline("median", size=5).describe()
        'median(size=5)'
    """
    if name not in _BASELINES:
        raise ValueError(f"unknown baseline {name!r}; valid names: {', '.join(list_baselines())}")
    cls = _BASELINES[name]
    valid = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown argument(s) {', '.join(unknown)} for baseline {name!r}; "
            f"valid: {', '.join(valid)}"
        )
    return cls(**kwargs)
