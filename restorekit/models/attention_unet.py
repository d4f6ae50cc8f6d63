"""Attention U-Net: a U-Net whose skip connections pass through attention gates.

Oktay et al., "Attention U-Net: Learning Where to Look for the Pancreas", MIDL 2018,
https://arxiv.org/abs/1804.03999; the U-Net itself: Ronneberger et al., MICCAI 2015,
https://arxiv.org/abs/1505.04597.

restorekit builds the face-denoising generator of SPEC.md section B (seeds/001) with the
seed's widths: encoder levels of 16, 32, 64 and 128 channels (`ConvBlock`, then 2x2
max-pool), a 256-channel bottleneck, and decoder levels 256->128, 128->64, 64->32 and
32->16, each a 2x2 stride-2 transposed conv, the encoder skip concatenated, and a
`ConvBlock`. The three deeper skips pass through an `AttentionGate` driven by the
upsampled decoder features; the shallowest (16 channels) does not, as in the seed. A
final 1x1 conv maps back to the image channels.

Two readings of the seed, stated here because its code is partial:

- gates: the seed builds ``AttentionBlock(out, out, out)``, i.e. gate, skip and
  intermediate channels all equal the level's width (the paper halves the intermediate
  width; the seed does not, and neither does this file).
- output: the seed ends in the 1x1 conv with no activation shown, so ``out_activation``
  defaults to ``"none"`` (trained with MSE the output approaches [0, 1] by itself);
  ``"sigmoid"`` bounds it to (0, 1) for those who prefer that.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext

import torch
from torch import Tensor, nn

from restorekit.layers import AttentionGate, ConvBlock
from restorekit.models import register
from restorekit.models.base import Restorer, check_choice

__all__ = ["AttentionUNet"]

_ACTIVATIONS = ("none", "sigmoid")


class _Up(nn.Module):
    """One decoder level: transposed-conv x2, optional gate on the skip, concat, ConvBlock."""

    def __init__(self, in_ch: int, out_ch: int, *, gated: bool) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_ch, out_ch, 2, stride=2)
        # The seed's AttentionBlock(out, out, out): the upsampled features gate the skip.
        self.gate = AttentionGate(out_ch, out_ch, out_ch) if gated else None
        self.conv = ConvBlock(2 * out_ch, out_ch)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = self.up(x)
        if self.gate is not None:
            skip = self.gate(x, skip)
        return self.conv(torch.cat([skip, x], dim=1))


@register(
    "attention_unet",
    kind="restorer",
    channels=1,
    tiny={"widths": (4, 8, 8)},
    paper="Oktay et al. 2018, https://arxiv.org/abs/1804.03999",
)
class AttentionUNet(Restorer):
    """Attention U-Net denoiser (Oktay et al. 2018), with the widths of SPEC.md section B.

    Args:
        in_channels: image channels, 1 (the 48x48 gray faces) or 3; the output has as many.
        widths: encoder widths then the bottleneck width, e.g. ``(16, 32, 64, 128, 256)``;
            ``len(widths) - 1`` levels of 2x2 max-pooling, so inputs are padded to a
            multiple of ``2 ** (len(widths) - 1)`` (16 by default).
        attention: put attention gates on every skip but the shallowest (the seed's
            ``use_attention``); False gives the plain U-Net, to measure what the gates add.
        out_activation: ``"none"`` (the seed's plain 1x1 conv) or ``"sigmoid"``.

    Shapes:
        (B, in_channels, H, W) in [0, 1] -> (B, in_channels, H, W); any H and W.

    Example:
        >>> AttentionUNet()(torch.rand(2, 1, 13, 17)).shape
        torch.Size([2, 1, 13, 17])
    """

    def __init__(
        self,
        *,
        in_channels: int = 1,
        widths: Sequence[int] = (16, 32, 64, 128, 256),
        attention: bool = True,
        out_activation: str = "none",
    ) -> None:
        super().__init__()
        check_choice("in_channels", in_channels, (1, 3))
        widths = tuple(widths)
        if len(widths) < 2 or not all(
            isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in widths
        ):
            raise ValueError(f"widths must be at least two positive integers, got {widths!r}")
        if out_activation not in _ACTIVATIONS:
            raise ValueError(
                f"out_activation must be one of {_ACTIVATIONS}, got {out_activation!r}"
            )
        self.in_channels = in_channels
        self.size_multiple = 2 ** (len(widths) - 1)
        self.out_activation = out_activation

        levels = widths[:-1]
        self.encoders = nn.ModuleList(
            ConvBlock(cin, cout)
            for cin, cout in zip((in_channels, *levels[:-1]), levels, strict=True)
        )
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = ConvBlock(levels[-1], widths[-1])
        # Deepest first: 256->128, 128->64, 64->32 (gated), 32->16 (not gated).
        self.decoders = nn.ModuleList(
            _Up(widths[i + 1], widths[i], gated=attention and i > 0)
            for i in reversed(range(len(levels)))
        )
        self.head = nn.Conv2d(widths[0], in_channels, 1)

    def restore(self, x: Tensor) -> Tensor:
        skips = []
        for encoder in self.encoders:
            x = encoder(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for decoder, skip in zip(self.decoders, reversed(skips), strict=True):
            x = decoder(x, skip)
        # The 1x1 head writes the image itself: in bf16 its rounding cost the shipped
        # salt-and-pepper model 0.06 dB; in fp32 (a negligible share of the work) 0.03.
        autocast = x.device.type in ("cpu", "cuda")  # not on "meta" (MAC counting)
        with torch.autocast(x.device.type, enabled=False) if autocast else nullcontext():
            x = self.head(x.float())
        return torch.sigmoid(x) if self.out_activation == "sigmoid" else x
