"""Convolutional building blocks of the restoration models.

Papers:
- U-Net, Ronneberger et al., MICCAI 2015: https://arxiv.org/abs/1505.04597
- EDSR, Lim et al., CVPRW 2017: https://arxiv.org/abs/1707.02921
- RDN, Zhang et al., CVPR 2018: https://arxiv.org/abs/1802.08797
- ESPCN pixel shuffle, Shi et al., CVPR 2016: https://arxiv.org/abs/1609.05158
- CASR's adaptive high-pass filter: SPEC.md section C and seeds/002.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from restorekit.utils import check_positive

__all__ = ["AHPF", "RDB", "ConvBlock", "ResBlock", "Upsampler"]


class ConvBlock(nn.Sequential):
    """The U-Net block: (conv3x3 -> BatchNorm -> ReLU) twice.

    Ronneberger et al. 2015 (https://arxiv.org/abs/1505.04597), with the BatchNorm that
    Attention U-Net implementations add. The convs have a bias only without BatchNorm,
    which would cancel it.

    Args:
        in_ch: input channels.
        out_ch: output channels (of both convs).
        batch_norm: insert BatchNorm after each conv.

    Shapes:
        (B, in_ch, H, W) -> (B, out_ch, H, W).
    """

    def __init__(self, in_ch: int, out_ch: int, *, batch_norm: bool = True) -> None:
        layers: list[nn.Module] = []
        for cin in (check_positive("in_ch", in_ch), check_positive("out_ch", out_ch)):
            layers.append(nn.Conv2d(cin, out_ch, 3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_ch))
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class ResBlock(nn.Module):
    """EDSR residual block: ``x + res_scale * conv(ReLU(conv(x)))``, no BatchNorm.

    Lim et al. 2017 (https://arxiv.org/abs/1707.02921) drop BatchNorm from the ResNet block
    and scale the residual (0.1 in the wide EDSR) to keep training stable.

    Args:
        channels: C, input and output channels.
        res_scale: factor on the residual branch.
        kernel_size: odd conv size.

    Shapes:
        (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, channels: int, *, res_scale: float = 1.0, kernel_size: int = 3) -> None:
        super().__init__()
        if check_positive("kernel_size", kernel_size) % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        channels = check_positive("channels", channels)
        self.res_scale = res_scale
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.res_scale * self.body(x)


class RDB(nn.Module):
    """Residual dense block of RDN.

    Zhang et al. 2018 (https://arxiv.org/abs/1802.08797): layer i (conv3x3 -> ReLU) sees the
    block input and all earlier layers' outputs concatenated and adds ``growth`` channels;
    a 1x1 conv (local feature fusion) maps them all back to C; the input is added.

    Args:
        channels: C, input and output channels (RDN: G0).
        growth: channels added per layer (RDN: G).
        n_layers: dense layers (RDN: C).

    Shapes:
        (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, channels: int, growth: int, n_layers: int) -> None:
        super().__init__()
        channels, growth = check_positive("channels", channels), check_positive("growth", growth)
        self.layers = nn.ModuleList(
            nn.Sequential(nn.Conv2d(channels + i * growth, growth, 3, padding=1), nn.ReLU())
            for i in range(check_positive("n_layers", n_layers))
        )
        self.fusion = nn.Conv2d(channels + n_layers * growth, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, dim=1)))
        return x + self.fusion(torch.cat(features, dim=1))


class AHPF(nn.Module):
    """CASR's adaptive high-pass filter: ``ReLU(x - conv_alpha(x) + b)``.

    conv_alpha is a depthwise 3x3 conv whose nine weights all equal one learnable scalar
    alpha, shared by every channel; b is a learnable per-channel bias (starting at 0). At
    alpha = 1/9 (the initial value) ``x - conv_alpha(x)`` is x minus its 3x3 mean, a
    high-pass; smaller alpha lets more of x through. The bias then works with the ReLU as
    a threshold that removes weak responses (noise). See SPEC.md section C.

    The input is padded by replicating its border, so a constant image gives 0 everywhere,
    borders included (up to float rounding of 9 * alpha); zero padding would show the
    image's edges as false detail.

    Args:
        channels: C, input and output channels.

    Shapes:
        (B, C, H, W) -> (B, C, H, W), values >= 0.

    Example:
        >>> AHPF(3)(torch.full((1, 3, 4, 5), 0.5)).abs().max() < 1e-6
        tensor(True)
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = check_positive("channels", channels)
        self.alpha = nn.Parameter(torch.tensor(1.0 / 9.0))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        kernel = self.alpha.expand(self.channels, 1, 3, 3)
        low = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, groups=self.channels)
        return F.relu(x - low + self.bias.view(1, -1, 1, 1))


class Upsampler(nn.Sequential):
    """Pixel-shuffle upsampler for scales 2, 3 and 4.

    Shi et al. 2016 (https://arxiv.org/abs/1609.05158): a 3x3 conv makes s^2 times the
    channels and `nn.PixelShuffle` rearranges them into an s times larger image. Scale 4
    is two x2 stages, as in EDSR (https://arxiv.org/abs/1707.02921). No activation.

    Args:
        scale: 2, 3 or 4.
        channels: C, input channels.
        out_channels: output channels of the last stage (default C).

    Shapes:
        (B, C, H, W) -> (B, out_channels, scale * H, scale * W).

    Example:
        >>> Upsampler(3, 8, out_channels=1)(torch.rand(1, 8, 5, 4)).shape
        torch.Size([1, 1, 15, 12])
    """

    def __init__(self, scale: int, channels: int, *, out_channels: int | None = None) -> None:
        if isinstance(scale, bool) or not isinstance(scale, int) or scale not in (2, 3, 4):
            raise ValueError(f"scale must be 2, 3 or 4, got {scale!r}")
        channels = check_positive("channels", channels)
        out_channels = check_positive(
            "out_channels", channels if out_channels is None else out_channels
        )
        factors = (2, 2) if scale == 4 else (scale,)
        layers: list[nn.Module] = []
        for i, s in enumerate(factors):
            cout = out_channels if i == len(factors) - 1 else channels
            layers += [nn.Conv2d(channels, cout * s * s, 3, padding=1), nn.PixelShuffle(s)]
        super().__init__(*layers)
