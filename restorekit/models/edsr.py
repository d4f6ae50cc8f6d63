"""EDSR: enhanced deep residual network for super-resolution, full and baseline.

Lim, Son, Kim, Nah and Lee, "Enhanced Deep Residual Networks for Single Image
Super-Resolution", CVPRW 2017, https://arxiv.org/abs/1707.02921 (official code:
github.com/sanghyun-son/EDSR-PyTorch, ``src/model/edsr.py``).

As in the official code::

    x = x - mean                        # MeanShift, rgb_range 1
    f = head(x)                         # conv 3x3, in -> F
    y = body_conv(ResBlocks(f)) + f     # long skip; ResBlock: x + s * conv(ReLU(conv(x)))
    y = tail_conv(Upsampler(y)) + mean  # pixel shuffle (x4 = two x2 stages), conv F -> in

- ``edsr``: 32 blocks, F = 256, residual scale 0.1; 43,089,923 parameters at x4 on RGB
  (the paper's 43 M).
- ``edsr_baseline``: 16 blocks, F = 64, residual scale 1; 1,369,859 parameters at x2 on RGB
  (the paper's 1.37 M), 1,517,571 at x4.

The mean shift is a fixed buffer, not a parameter (the official MeanShift conv is frozen
and not counted either). The mean is DIV2K's RGB mean (0.4488, 0.4371, 0.4040); for one
channel it is that colour's BT.601 luma, 0.4368. ``pixel_mean`` overrides it (e.g. the mean
of an MRI training set). The default ``in_channels`` is the paper's RGB.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from restorekit.layers import ResBlock, Upsampler
from restorekit.models import register
from restorekit.models.base import Restorer, check_choice

__all__ = ["EDSR", "edsr_baseline"]

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)
# BT.601 luma of the RGB mean (what a gray conversion of the DIV2K mean colour gives).
DIV2K_GRAY_MEAN = 0.299 * 0.4488 + 0.587 * 0.4371 + 0.114 * 0.4040


# What the registry knows of this file's models (restorekit.registry.Entry).
_PAPER = "Lim et al. 2017, https://arxiv.org/abs/1707.02921"
_TINY = {"n_blocks": 1, "n_feats": 8}  # a test-size configuration
_META = dict(kind="restorer", scales=(2, 3, 4), channels=3, tiny=_TINY, paper=_PAPER)


@register("edsr", **_META)
class EDSR(Restorer):
    """EDSR (Lim et al. 2017); the defaults are the full model, ``edsr_baseline`` the small one.

    Args:
        scale: 2, 3 or 4.
        in_channels: 3 (RGB, the paper's) or 1; the output has as many.
        n_blocks: residual blocks (full: 32, baseline: 16).
        n_feats: feature channels F (full: 256, baseline: 64).
        res_scale: factor on each block's residual (full: 0.1, baseline: 1).
        pixel_mean: per-channel mean subtracted at the input and added back at the output
            (None: DIV2K's, see the module doc).

    Shapes:
        (B, in_channels, H, W) -> (B, in_channels, scale*H, scale*W).

    Example:
        >>> model = EDSR(scale=3, in_channels=1, n_blocks=1, n_feats=8)
        >>> model(torch.rand(1, 1, 13, 17)).shape
        torch.Size([1, 1, 39, 51])
    """

    def __init__(
        self,
        *,
        scale: int = 4,
        in_channels: int = 3,
        n_blocks: int = 32,
        n_feats: int = 256,
        res_scale: float = 0.1,
        pixel_mean: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        check_choice("scale", scale, (2, 3, 4))
        check_choice("in_channels", in_channels, (1, 3))
        if isinstance(n_blocks, bool) or not isinstance(n_blocks, int) or n_blocks < 0:
            raise ValueError(f"n_blocks must be a non-negative integer, got {n_blocks!r}")
        if pixel_mean is None:
            pixel_mean = DIV2K_RGB_MEAN if in_channels == 3 else (DIV2K_GRAY_MEAN,)
        pixel_mean = tuple(float(m) for m in pixel_mean)
        if len(pixel_mean) != in_channels:
            raise ValueError(
                f"pixel_mean needs {in_channels} value(s), one per channel, got {pixel_mean!r}"
            )
        self.scale = scale
        self.in_channels = in_channels
        # A constant of the architecture, rebuilt from the kwargs: kept out of checkpoints.
        self.register_buffer(
            "pixel_mean", torch.tensor(pixel_mean).view(1, -1, 1, 1), persistent=False
        )
        self.head = nn.Conv2d(in_channels, n_feats, 3, padding=1)
        self.body = nn.Sequential(
            *(ResBlock(n_feats, res_scale=res_scale) for _ in range(n_blocks)),
            nn.Conv2d(n_feats, n_feats, 3, padding=1),
        )
        self.tail = nn.Sequential(
            Upsampler(scale, n_feats), nn.Conv2d(n_feats, in_channels, 3, padding=1)
        )

    def restore(self, x: torch.Tensor) -> torch.Tensor:
        mean = self.pixel_mean.to(x.dtype)
        f = self.head(x - mean)
        return self.tail(self.body(f) + f) + mean


@register("edsr_baseline", **_META)
def edsr_baseline(
    *,
    scale: int = 4,
    in_channels: int = 3,
    n_blocks: int = 16,
    n_feats: int = 64,
    res_scale: float = 1.0,
    pixel_mean: Sequence[float] | None = None,
) -> EDSR:
    """EDSR baseline: 16 blocks of 64 features, no residual scaling (1.37 M at x2 RGB)."""
    return EDSR(
        scale=scale,
        in_channels=in_channels,
        n_blocks=n_blocks,
        n_feats=n_feats,
        res_scale=res_scale,
        pixel_mean=pixel_mean,
    )
