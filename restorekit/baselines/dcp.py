"""Dark channel prior dehazing with the guided filter: the ``dcp`` baseline.

He, Sun and Tang, "Single Image Haze Removal Using Dark Channel Prior", CVPR 2009,
https://doi.org/10.1109/CVPR.2009.5206515: the airlight and the transmission come from
the dark channel (:func:`restorekit.layers.haze.dcp_transmission`, refined with the guided
filter), and ``J = (I - A) / max(t, t0) + A`` inverts the scattering model
``I = J t + A (1 - t)``.

Everything is torch code on the input's device, in float32 (float64 for float64 input).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from torch import Tensor

from restorekit.baselines.base import Baseline, register
from restorekit.layers.haze import dark_channel, dcp_transmission, guided_filter
from restorekit.utils import check_arg, check_images, is_int, working_float

__all__ = ["DCP", "Dehazed", "dark_channel", "dehaze_dcp", "guided_filter"]


def _check_dcp(**kw: Any) -> None:
    p, r = kw["patch"], kw["radius"]
    check_arg(is_int(p) and p >= 1 and p % 2 == 1, "patch", p, "an odd int >= 1")
    for key in ("omega", "t0", "top_fraction"):
        check_arg(0 < kw[key] <= 1, key, kw[key], "in (0, 1]")
    check_arg(is_int(r) and r >= 0, "radius", r, "an int >= 0")
    check_arg(kw["eps"] >= 0, "eps", kw["eps"], ">= 0")


class Dehazed(NamedTuple):
    """What :func:`dehaze_dcp` found: the radiance, the airlight, the transmission."""

    image: Tensor  # (B, C, H, W) in [0, 1]
    airlight: Tensor  # (B, C)
    transmission: Tensor  # (B, 1, H, W), refined, before the t0 floor


def dehaze_dcp(
    x: Tensor,
    *,
    patch: int = 15,
    omega: float = 0.95,
    t0: float = 0.1,
    top_fraction: float = 0.001,
    radius: int = 60,
    eps: float = 1e-4,
) -> Dehazed:
    """Dark channel prior dehazing (He et al. 2009/2011) with guided-filter refinement.

    1. The airlight A and the guided-filter-refined transmission t of
       :func:`~restorekit.layers.haze.dcp_transmission` (the same arguments).
    2. Radiance ``J = (x - A) / max(t, t0) + A``, clipped to [0, 1].

    For one-channel input the dark channel is the window minimum of that channel and the
    guide is the image itself. The defaults are the papers': patch 15, omega 0.95, t0 0.1,
    the brightest 0.1 %, and r = 60, eps = 1e-4 for the guided filter (chosen for images
    of about 600 x 400; scale ``radius`` with the image). ``radius=0`` skips refinement.

    Args:
        x: hazy images, (B, 1 or 3, H, W) float in [0, 1].
        patch: odd dark-channel window side (15 in the paper).
        omega: haze kept is ``1 - omega``, in (0, 1].
        t0: lower bound of the transmission, in (0, 1].
        top_fraction: fraction of dark-channel pixels searched for A, in (0, 1].
        radius: guided filter radius >= 0.
        eps: guided filter regularisation >= 0.

    Returns:
        :class:`Dehazed` ``(image, airlight, transmission)`` in ``x``'s dtype.

    Example:
        >>> import torch
        >>> x = torch.rand(1, 3, 40, 40) * 0.5 + 0.4
        >>> out = dehaze_dcp(x, patch=5, radius=8)
        >>> out.image.shape, out.airlight.shape, out.transmission.shape
        (torch.Size([1, 3, 40, 40]), torch.Size([1, 3]), torch.Size([1, 1, 40, 40]))
    """
    check_images(x, channels=(1, 3))
    _check_dcp(patch=patch, omega=omega, t0=t0, top_fraction=top_fraction, radius=radius, eps=eps)
    i = working_float(x)
    airlight, t = dcp_transmission(
        i, patch=patch, omega=omega, top_fraction=top_fraction, radius=radius, eps=eps
    )
    a = airlight[..., None, None].clamp(min=1e-6)
    j = ((i - a) / t.clamp(min=t0) + a).clamp(0.0, 1.0)
    return Dehazed(j.to(x.dtype), airlight.to(x.dtype), t.to(x.dtype))


@register("dcp", paper="He, Sun and Tang 2009, https://doi.org/10.1109/CVPR.2009.5206515")
class DCP(Baseline):
    """Dark channel prior dehazing, :func:`dehaze_dcp` (the paper's parameters by default).

    One-channel input uses its single channel as the dark channel and the guide.
    """

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
