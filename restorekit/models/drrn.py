"""DRRN: deep recursive residual network (B1U25: one recursive block of 25 units).

Tai, Yang and Liu, "Image Super-Resolution via Deep Recursive Residual Network", CVPR 2017,
https://openaccess.thecvf.com/content_cvpr_2017/html/Tai_Image_Super-Resolution_via_CVPR_2017_paper.html
(official Caffe code: github.com/tyshiwo/DRRN_CVPR17).

On the bicubic-upscaled image::

    H0 = conv_in(x)                                   # 1 -> 128 channels
    Hu = conv_b(BN-ReLU(conv_a(BN-ReLU(H(u-1))))) + H0,   u = 1..U   (conv_a, conv_b shared)
    y  = conv_out(BN-ReLU(HU)) + x                    # global residual

Every unit uses the same two 3x3 convolutions (the recursion), and each unit's output is the
block input H0 plus its residual (the paper's multi-path local residual learning). The
convolutions have no bias, as in the official Caffe model: each one feeds a BatchNorm that
would cancel it. Their weights are the paper's "297 K" parameters: 3*3*128 (in) +
2*3*3*128*128 (the shared pair) + 3*3*128 (out) = 297,216 on one channel.

Two choices the paper leaves open, stated here:

- BatchNorm is per unit, not shared with the convolutions: features at recursion depth 1
  and depth 25 have different statistics, and one shared running mean and variance would
  be a blend fitting neither at evaluation time. That adds 2 BatchNorms (512 parameters)
  per unit plus one before ``conv_out``: 13,056 parameters, 310,272 in all for B1U25 on one
  channel. ``batch_norm=False`` drops them (a plain ReLU-conv pre-activation, 297,216).
- ``conv_in`` has no pre-activation: BN-ReLU on the one-channel input image would discard
  half of it.

Pre-upsampling and ``scale`` work as in `SRCNN`: by default the model upsamples its LR
input with MATLAB-exact bicubic `imresize` (``model.scale == scale``); with
``pre_upsampled=True`` it takes HR-size input (``model.scale == 1``, ``model.upscale ==
scale``). Convolutions zero-pad ('same'), as in the official model.
"""

from __future__ import annotations

import torch
from torch import nn

from restorekit.degrade import imresize
from restorekit.models import register
from restorekit.models.base import Restorer, check_choice, check_positive

__all__ = ["DRRN"]


# What the registry knows of this file's models (restorekit.registry.Entry).
_PAPER = "Tai et al. 2017, https://openaccess.thecvf.com/content_cvpr_2017/html/Tai_Image_Super-Resolution_via_CVPR_2017_paper.html"
_TINY = {"n_units": 2, "channels": 8}  # a test-size configuration
_META = dict(kind="restorer", scales=(2, 3, 4), channels=1, tiny=_TINY, paper=_PAPER)


def _conv(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1, bias=False)


def _pre_activation(channels: int, batch_norm: bool) -> nn.Sequential:
    norm: nn.Module = nn.BatchNorm2d(channels) if batch_norm else nn.Identity()
    return nn.Sequential(norm, nn.ReLU())


@register("drrn", **_META)
class DRRN(Restorer):
    """DRRN (Tai et al. 2017), one recursive block of ``n_units`` weight-sharing units.

    Args:
        scale: 2, 3 or 4, the super-resolution factor.
        in_channels: 1 (the paper's Y channel, the default) or 3; the output has as many.
        n_units: U, residual units in the recursive block (B1U25: 25).
        channels: feature channels (paper: 128).
        batch_norm: BatchNorm in the pre-activations (per unit; module doc).
        pre_upsampled: the input is already at HR size (``model.scale`` is then 1).

    Shapes:
        (B, in_channels, H, W) -> (B, in_channels, scale*H, scale*W), or the same size
        with ``pre_upsampled=True``.

    Example:
        >>> DRRN(scale=2, n_units=2, channels=8)(torch.rand(1, 1, 13, 17)).shape
        torch.Size([1, 1, 26, 34])
    """

    def __init__(
        self,
        *,
        scale: int = 4,
        in_channels: int = 1,
        n_units: int = 25,
        channels: int = 128,
        batch_norm: bool = True,
        pre_upsampled: bool = False,
    ) -> None:
        super().__init__()
        check_choice("scale", scale, (2, 3, 4))
        check_choice("in_channels", in_channels, (1, 3))
        check_positive(n_units=n_units, channels=channels)
        self.in_channels = in_channels
        self.upscale = scale
        self.pre_upsampled = bool(pre_upsampled)
        self.scale = 1 if self.pre_upsampled else scale
        self.conv_in = _conv(in_channels, channels)
        self.conv_a, self.conv_b = _conv(channels, channels), _conv(channels, channels)
        self.act_a = nn.ModuleList(_pre_activation(channels, batch_norm) for _ in range(n_units))
        self.act_b = nn.ModuleList(_pre_activation(channels, batch_norm) for _ in range(n_units))
        self.act_out = _pre_activation(channels, batch_norm)
        self.conv_out = _conv(channels, in_channels)

    def restore(self, x: torch.Tensor) -> torch.Tensor:
        if not self.pre_upsampled:
            x = imresize(x, self.upscale)
        h0 = self.conv_in(x)
        h = h0
        for act_a, act_b in zip(self.act_a, self.act_b, strict=True):
            h = self.conv_b(act_b(self.conv_a(act_a(h)))) + h0
        return self.conv_out(self.act_out(h)) + x


@register("drrn_small", **_META)
def drrn_small(
    *,
    scale: int = 4,
    in_channels: int = 1,
    n_units: int = 9,
    channels: int = 32,
    batch_norm: bool = True,
    pre_upsampled: bool = False,
) -> DRRN:
    """DRRN at a size a CPU can train: B1U9 (the paper's shallower configuration) with 32
    channels instead of 128. The paper-size B1U25 costs about 16 s per training step of 16
    96x96 crops on 2 CPU threads; this one about 0.4 s."""
    return DRRN(
        scale=scale,
        in_channels=in_channels,
        n_units=n_units,
        channels=channels,
        batch_norm=batch_norm,
        pre_upsampled=pre_upsampled,
    )
