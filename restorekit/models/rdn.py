"""RDN: residual dense network for super-resolution.

Zhang, Tian, Kong, Zhong and Fu, "Residual Dense Network for Image Super-Resolution",
CVPR 2018, https://arxiv.org/abs/1802.08797 (official PyTorch code: the ``rdn.py`` of
github.com/sanghyun-son/EDSR-PyTorch, which the authors point to).

As in the official code::

    f1 = SFE1(x)                           # conv 3x3, in -> G0
    f  = SFE2(f1)                          # conv 3x3, G0 -> G0
    F1..FD = the D residual dense blocks   # RDB: C layers of growth G, 1x1 fusion, + input
    y  = GFF(concat(F1..FD)) + f1          # global feature fusion: 1x1 (D*G0 -> G0), 3x3
    out = UPNet(y)                         # no global skip to the input

with the official up-sampling net: x2 / x3 is conv G0 -> G*r^2, PixelShuffle(r); x4 is
conv G0 -> 4G, PixelShuffle(2), conv G -> 4G, PixelShuffle(2); then conv G -> in.
The paper's model (config "B": D = 16, C = 8, G = G0 = 64) has 22,271,107 parameters at
x4 on RGB ("22.3 M" / 22.27 M) and 22,123,395 at x2. The default ``in_channels`` is the
paper's RGB.
"""

from __future__ import annotations

import torch
from torch import nn

from restorekit.layers import RDB
from restorekit.models import register
from restorekit.models.base import Restorer, check_choice, check_positive

__all__ = ["RDN"]


# What the registry knows of this file's models (restorekit.registry.Entry).
_PAPER = "Zhang et al. 2018, https://arxiv.org/abs/1802.08797"
_TINY = {"n_blocks": 2, "n_layers": 2, "growth": 4, "channels": 8}  # a test-size configuration
_META = dict(kind="restorer", scales=(2, 3, 4), channels=3, tiny=_TINY, paper=_PAPER)


def _conv(cin: int, cout: int, kernel_size: int = 3) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size, padding=kernel_size // 2)


def _upnet(scale: int, channels: int, growth: int, out_channels: int) -> nn.Sequential:
    """The official RDN up-sampling net (its widths follow G, not G0)."""
    if scale == 4:
        layers = [
            _conv(channels, growth * 4),
            nn.PixelShuffle(2),
            _conv(growth, growth * 4),
            nn.PixelShuffle(2),
        ]
    else:
        layers = [_conv(channels, growth * scale * scale), nn.PixelShuffle(scale)]
    return nn.Sequential(*layers, _conv(growth, out_channels))


@register("rdn", **_META)
class RDN(Restorer):
    """RDN (Zhang et al. 2018); the defaults are the paper's D=16, C=8, G=G0=64.

    Args:
        scale: 2, 3 or 4.
        in_channels: 3 (RGB, the paper's) or 1; the output has as many.
        n_blocks: D, residual dense blocks.
        n_layers: C, conv layers per block.
        growth: G, channels each dense layer adds (and the up-sampling width).
        channels: G0, the feature channels between blocks.

    Shapes:
        (B, in_channels, H, W) -> (B, in_channels, scale*H, scale*W).

    Example:
        >>> model = RDN(scale=4, n_blocks=2, n_layers=2, growth=8, channels=8)
        >>> model(torch.rand(1, 3, 13, 17)).shape
        torch.Size([1, 3, 52, 68])
    """

    def __init__(
        self,
        *,
        scale: int = 4,
        in_channels: int = 3,
        n_blocks: int = 16,
        n_layers: int = 8,
        growth: int = 64,
        channels: int = 64,
    ) -> None:
        super().__init__()
        check_choice("scale", scale, (2, 3, 4))
        check_choice("in_channels", in_channels, (1, 3))
        check_positive(n_blocks=n_blocks, n_layers=n_layers, growth=growth, channels=channels)
        self.scale = scale
        self.in_channels = in_channels
        self.sfe1 = _conv(in_channels, channels)
        self.sfe2 = _conv(channels, channels)
        self.blocks = nn.ModuleList(RDB(channels, growth, n_layers) for _ in range(n_blocks))
        self.gff = nn.Sequential(_conv(n_blocks * channels, channels, 1), _conv(channels, channels))
        self.upnet = _upnet(scale, channels, growth, in_channels)

    def restore(self, x: torch.Tensor) -> torch.Tensor:
        f1 = self.sfe1(x)
        f = self.sfe2(f1)
        outs = []
        for block in self.blocks:
            f = block(f)
            outs.append(f)
        return self.upnet(self.gff(torch.cat(outs, dim=1)) + f1)


@register("rdn_small", **_META)
def rdn_small(
    *,
    scale: int = 4,
    in_channels: int = 3,
    n_blocks: int = 8,
    n_layers: int = 4,
    growth: int = 32,
    channels: int = 64,
) -> RDN:
    """RDN at a size a CPU can train: D=8 blocks of C=4 layers, G=32, G0=64 (the paper's
    config "B" is D=16, C=8, G=G0=64); the same network otherwise."""
    return RDN(
        scale=scale,
        in_channels=in_channels,
        n_blocks=n_blocks,
        n_layers=n_layers,
        growth=growth,
        channels=channels,
    )
