"""The dark channel prior's haze estimate (He et al.), shared by the ``dcp`` baseline and
the FFA-Net's ``guide="dcp"`` input.

He, Sun and Tang, "Single Image Haze Removal Using Dark Channel Prior", CVPR 2009,
https://doi.org/10.1109/CVPR.2009.5206515, and TPAMI 33(12) 2011,
https://doi.org/10.1109/TPAMI.2010.168: in haze-free outdoor images most patches have a
channel close to 0, so the dark channel of a hazy image measures its haze,
``t = 1 - omega * dark_channel(I / A)``. The coarse, blocky transmission is refined with
the guided filter (He, Sun and Tang, "Guided Image Filtering", ECCV 2010,
https://doi.org/10.1007/978-3-642-15549-9_1; TPAMI 35(6) 2013,
https://doi.org/10.1109/TPAMI.2012.213), which replaces the soft matting of the CVPR paper
at a fraction of the cost.

Torch code on the input's device, in float32 (float64 for float64 input).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from restorekit.utils import check_arg, is_int, rgb_to_gray, working_float

__all__ = ["dark_channel", "dcp_transmission", "guided_filter"]


def _box_mean(x: Tensor, r: int) -> Tensor:
    """Mean over the (2r+1)^2 window clipped to the image (He et al.'s box filter / N).

    Two 1-D passes; the clipped window is a product of intervals, so the mean of the
    row means is the window mean.
    """
    if r == 0:
        return x
    x = F.avg_pool2d(x, (1, 2 * r + 1), stride=1, padding=(0, r), count_include_pad=False)
    return F.avg_pool2d(x, (2 * r + 1, 1), stride=1, padding=(r, 0), count_include_pad=False)


def guided_filter(guide: Tensor, src: Tensor, *, radius: int, eps: float) -> Tensor:
    """The guided filter (He et al., ECCV 2010, Algorithm 1) with a one-channel guide.

    ``q = mean(a) * I + mean(b)`` with ``a = cov(I, p) / (var(I) + eps)``,
    ``b = mean(p) - a * mean(I)``; means over (2 radius + 1)^2 windows clipped at the
    border. Radius 0 returns ``src`` (one-pixel windows have no variance).

    Args:
        guide: (B, 1, H, W) float guidance image I.
        src: (B, C, H, W) float image p to filter, each channel with the same guide.
        radius: window radius >= 0.
        eps: regularisation >= 0; larger smooths more (edges with variance << eps).

    Returns:
        (B, C, H, W) filtered image, ``src``'s dtype.

    Example:
        >>> g = torch.rand(1, 1, 12, 12, dtype=torch.float64)
        >>> bool(torch.allclose(guided_filter(g, g, radius=2, eps=1e-12), g))
        True
    """
    check_arg(is_int(radius) and radius >= 0, "radius", radius, "an int >= 0")
    check_arg(eps >= 0, "eps", eps, ">= 0")
    dtype = torch.promote_types(working_float(guide).dtype, working_float(src).dtype)
    i, p = guide.to(dtype), src.to(dtype)
    mean_i, mean_p = _box_mean(i, radius), _box_mean(p, radius)
    var_i = _box_mean(i * i, radius) - mean_i * mean_i
    cov_ip = _box_mean(i * p, radius) - mean_i * mean_p
    # Flat windows (var 0, eps 0) get a = 0: q is then the local mean of p.
    a = torch.where(var_i + eps > 0, cov_ip / (var_i + eps).clamp(min=1e-30), 0.0)
    b = mean_p - a * mean_i
    return (_box_mean(a, radius) * i + _box_mean(b, radius)).to(src.dtype)


def dark_channel(x: Tensor, *, patch: int = 15) -> Tensor:
    """He et al.'s dark channel: the minimum over channels and a ``patch``^2 window.

    The window is clipped at the border (a min over the pixels inside the image).

    Args:
        x: (B, C, H, W) float images.
        patch: odd window side >= 1.

    Returns:
        (B, 1, H, W) dark channel, ``x``'s dtype.

    Example:
        >>> x = torch.rand(2, 3, 20, 20)
        >>> bool((dark_channel(x, patch=3) <= x.amin(1, keepdim=True)).all())
        True
    """
    check_arg(is_int(patch) and patch >= 1 and patch % 2 == 1, "patch", patch, "an odd int >= 1")
    m = x.amin(dim=1, keepdim=True)
    return -F.max_pool2d(-m, patch, stride=1, padding=patch // 2)


def dcp_transmission(
    x: Tensor,
    *,
    patch: int = 15,
    omega: float = 0.95,
    top_fraction: float = 0.001,
    radius: int = 60,
    eps: float = 1e-4,
) -> tuple[Tensor, Tensor]:
    """The dark channel prior's airlight and refined transmission of hazy images.

    1. Airlight A: among the ``top_fraction`` brightest pixels of the dark channel, the
       one of highest intensity (channel mean) in ``x`` gives A, a colour per image.
    2. Transmission ``t = 1 - omega * dark_channel(x / A)``; omega < 1 keeps some haze
       for depth perception, as in the paper.
    3. Refinement: the guided filter with the grey image (BT.601 luma) as guide replaces
       soft matting (ECCV 2010, section on haze removal).

    For one-channel input the dark channel is the window minimum of that channel and the
    guide is the image itself. The defaults are the papers' (``radius`` 60 suits images
    of about 600 x 400; ``radius=0`` skips refinement).

    Args:
        x: hazy images, (B, 1 or 3, H, W) float in [0, 1].
        patch: odd dark-channel window side (checked by :func:`dark_channel`).
        omega: haze kept is ``1 - omega``, in (0, 1] (not checked here).
        top_fraction: fraction of dark-channel pixels searched for A, in (0, 1] (not
            checked here).
        radius, eps: the guided filter's (checked by :func:`guided_filter`).

    Returns:
        ``(airlight, transmission)``: (B, C) and (B, 1, H, W), in float32 (float64 for
        float64 input); the transmission has no floor and can fall below 0.

    Example:
        >>> a, t = dcp_transmission(torch.full((1, 3, 32, 32), 0.5), patch=5, radius=4)
        >>> a.tolist(), round(t.mean().item(), 3)
        ([[0.5, 0.5, 0.5]], 0.05)
    """
    i = working_float(x)
    b, c, h, w = i.shape
    dark = dark_channel(i, patch=patch).flatten(1)
    n = max(1, math.floor(top_fraction * h * w))
    # The most haze-opaque pixels, not simply the brightest: a white object is bright but
    # its neighbourhood is rarely white in every channel.
    cand = dark.topk(n, dim=1).indices  # (B, n)
    best = cand.gather(1, i.mean(1).flatten(1).gather(1, cand).argmax(1, keepdim=True))
    airlight = i.flatten(2).gather(2, best[:, None, :].expand(b, c, 1)).squeeze(2)  # (B, C)
    a = airlight[..., None, None].clamp(min=1e-6)  # a black image would divide by zero
    t = 1.0 - omega * dark_channel(i / a, patch=patch)
    guide = rgb_to_gray(i)  # the gray image guides the filter (one channel: itself)
    return airlight, guided_filter(guide, t, radius=radius, eps=eps)
