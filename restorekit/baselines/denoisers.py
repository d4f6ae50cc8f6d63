"""Non-local means (scikit-image) and BM3D (the bm3d package): the denoising references.

* ``nlm``: Buades, Coll and Morel, CVPR 2005, https://doi.org/10.1109/CVPR.2005.38, via
  scikit-image's ``denoise_nl_means`` (fast mode: Darbon et al., ISBI 2008,
  https://doi.org/10.1109/ISBI.2008.4541250).
* ``bm3d``: Dabov, Foi, Katkovnik and Egiazarian, IEEE TIP 16(8), 2007,
  https://doi.org/10.1109/TIP.2007.901238, via the optional ``bm3d`` package (Mäkinen,
  Azzari and Foi, ICIP 2019, https://doi.org/10.1109/ICIP.2019.8803785); CBM3D for RGB.

Both run per image on the CPU in float64 and move the result back; scikit-image and bm3d
are imported on first use.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from restorekit.baselines.base import Baseline, register
from restorekit.utils import check_arg, is_int

__all__ = ["BM3D", "NLM"]

logger = logging.getLogger(__name__)

_BM3D_PROFILES = ("np", "refilter", "vn", "high")  # bm3d's denoising profiles
_BM3D_MIN_SIDE = 16  # bm3d 4.0.3 rejects images under its 8-pixel block; 8 x 8 segfaults


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


@register("nlm", paper="Buades, Coll and Morel 2005, https://doi.org/10.1109/CVPR.2005.38")
class NLM(Baseline):
    """Non-local means via ``skimage.restoration.denoise_nl_means``, per image.

    ``sigma`` (noise std on the [0, 1] scale) is estimated per image by
    ``estimate_sigma`` when None and always passed on, so the noise variance is
    subtracted from the patch distances. ``h`` defaults to the scikit-image gallery's
    choice with sigma given: 0.6 sigma in fast mode, 0.8 sigma otherwise. Patch size 5
    and search distance 6 are the gallery's too. An image whose sigma is 0 is returned
    unchanged (h = 0 would divide by zero).
    """

    def __init__(
        self,
        *,
        sigma: float | None = None,
        h: float | None = None,
        patch_size: int = 5,
        patch_distance: int = 6,
        fast_mode: bool = True,
    ) -> None:
        check_arg(sigma is None or sigma >= 0, "sigma", sigma, "None or >= 0")
        check_arg(h is None or h > 0, "h", h, "None or > 0")
        for key, value in (("patch_size", patch_size), ("patch_distance", patch_distance)):
            check_arg(is_int(value) and value >= 1, key, value, "an int >= 1")
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


@register("bm3d", paper="Dabov et al. 2007, https://doi.org/10.1109/TIP.2007.901238")
class BM3D(Baseline):
    """BM3D (grey) or CBM3D (RGB, opponent colour space) via the optional bm3d package.

    ``sigma`` is the noise std on the [0, 1] scale; None estimates it per image with
    ``skimage.restoration.estimate_sigma`` (an image estimated noise-free is returned
    as it is). Images with a side below 16 are mirrored up to 16 and cropped back
    (bm3d 4.0.3 rejects images smaller than its 8 x 8 blocks and crashes on 8 x 8).

    Raises:
        ImportError: bm3d is not installed (``pip install 'restorekit[bm3d]'``).
    """

    def __init__(self, *, sigma: float | None = None, profile: str = "np") -> None:
        check_arg(sigma is None or sigma > 0, "sigma", sigma, "None or > 0")
        check_arg(profile in _BM3D_PROFILES, "profile", profile, f"one of {_BM3D_PROFILES}")
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
