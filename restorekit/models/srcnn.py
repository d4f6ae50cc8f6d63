"""SRCNN: the first convolutional super-resolution network (9-5-5, 64/32 filters).

Dong, Loy, He and Tang, "Image Super-Resolution Using Deep Convolutional Networks",
TPAMI 38(2), 2016 (online 2015), https://arxiv.org/abs/1501.00092.

Three convolutions on the bicubic-upscaled image: 9x9 patch extraction (-> 64), 5x5
non-linear mapping (-> 32), 5x5 reconstruction (-> image channels), ReLU after the first
two. On one channel (the paper's Y channel; the grayscale MRI of SPEC.md C) that is
64*81 + 64 + 32*64*25 + 32 + 32*25 + 1 = 57,281 parameters, the paper's "57 K".

Pre-upsampling, and how ``scale`` is declared (the `Restorer` contract: output size =
``scale`` x input size):

- ``pre_upsampled=False`` (default): the model takes the low-resolution image and upsamples
  it first with MATLAB-exact bicubic `imresize` (the field's convention, BENCHMARKS.md), so
  ``model.scale == scale`` and it drops into an SR pipeline like EDSR or RDN.
- ``pre_upsampled=True``: the input is already bicubic-upscaled to the HR size (the seed's
  ``downsample.py -k`` data, ``restorekit downsample --bicubic-up``), so ``model.scale == 1``;
  ``model.upscale`` still records the factor the network is meant for.

Padding: the paper trains with valid convolutions and an output 12 pixels smaller than the
input. Here every conv pads to keep the size ('same'), so the output covers the whole image
and the losses, metrics and tiling of restorekit apply unchanged. The padding replicates
the border (``padding_mode="replicate"``): the input is an image in [0, 1], not a
zero-mean signal, so zero padding would darken a 4-pixel frame; ``"zeros"`` is available.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from restorekit.degrade import imresize
from restorekit.models import register
from restorekit.models.base import Restorer, check_choice

__all__ = ["SRCNN"]

_PADDING_MODES = ("replicate", "zeros", "reflect")


@register(
    "srcnn",
    kind="restorer",
    scales=(2, 3, 4),
    channels=1,
    tiny={"filters": (8, 4)},
    paper="Dong et al. 2015, https://arxiv.org/abs/1501.00092",
)
class SRCNN(Restorer):
    """SRCNN (Dong et al. 2015): conv 9x9 -> ReLU -> conv 5x5 -> ReLU -> conv 5x5.

    Args:
        scale: 2, 3 or 4, the super-resolution factor.
        in_channels: 1 (the paper's Y channel, the default) or 3; the output has as many.
        pre_upsampled: the input is already at HR size (``model.scale`` is then 1).
        filters: widths of the first two layers (paper: 64, 32).
        kernel_sizes: odd sizes of the three layers (paper: 9, 5, 5; also 9-1-5, 9-3-5).
        padding_mode: ``"replicate"``, ``"zeros"`` or ``"reflect"`` ('same' padding).

    Shapes:
        (B, in_channels, H, W) -> (B, in_channels, scale*H, scale*W), or the same size
        with ``pre_upsampled=True``.

    Example:
        >>> SRCNN(scale=3)(torch.rand(1, 1, 13, 17)).shape
        torch.Size([1, 1, 39, 51])
    """

    def __init__(
        self,
        *,
        scale: int = 4,
        in_channels: int = 1,
        pre_upsampled: bool = False,
        filters: Sequence[int] = (64, 32),
        kernel_sizes: Sequence[int] = (9, 5, 5),
        padding_mode: str = "replicate",
    ) -> None:
        super().__init__()
        check_choice("scale", scale, (2, 3, 4))
        check_choice("in_channels", in_channels, (1, 3))
        filters, kernel_sizes = tuple(filters), tuple(kernel_sizes)
        if len(filters) != 2 or not all(isinstance(f, int) and f > 0 for f in filters):
            raise ValueError(f"filters must be two positive integers, got {filters!r}")
        if len(kernel_sizes) != 3 or not all(
            isinstance(k, int) and k > 0 and k % 2 for k in kernel_sizes
        ):
            raise ValueError(f"kernel_sizes must be three odd positive ints, got {kernel_sizes!r}")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}")
        self.in_channels = in_channels
        self.upscale = scale
        self.pre_upsampled = bool(pre_upsampled)
        self.scale = 1 if self.pre_upsampled else scale
        widths = (in_channels, *filters, in_channels)
        layers: list[nn.Module] = []
        for i, k in enumerate(kernel_sizes):
            layers.append(
                nn.Conv2d(widths[i], widths[i + 1], k, padding=k // 2, padding_mode=padding_mode)
            )
            if i < 2:
                layers.append(nn.ReLU(inplace=True))
        self.body = nn.Sequential(*layers)

    def restore(self, x: torch.Tensor) -> torch.Tensor:
        if not self.pre_upsampled:
            x = imresize(x, self.upscale)
        return self.body(x)
