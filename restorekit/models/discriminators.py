"""Discriminators of the GAN systems: a conditional PatchGAN and a VGG-style classifier.

Papers:
- PatchGAN (conditional, per-patch decisions): Isola et al., "Image-to-Image Translation
  with Conditional Adversarial Networks", CVPR 2017, https://arxiv.org/abs/1611.07004;
  restorekit follows the face-denoising variant of SPEC.md section B (seeds/001), whose
  encoder blocks are U-Net blocks and whose attention is Oktay et al.'s gate
  (https://arxiv.org/abs/1804.03999).
- VGG-style discriminator: Ledig et al., "Photo-Realistic Single Image Super-Resolution
  Using a Generative Adversarial Network" (SRGAN), CVPR 2017,
  https://arxiv.org/abs/1609.04802; CASRGAN's "simple classification model" (SPEC.md
  section C, seeds/002).

Both return logits (no sigmoid): the GAN loss applies BCE with logits. They are plain
critics (:class:`~restorekit.models.base.Discriminator`). ``conditional`` tells the trainer
what to feed: ``cat(lq, image)`` for the PatchGAN, the image alone for the classifier.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from restorekit.layers import AttentionGate, ConvBlock
from restorekit.models import register
from restorekit.models.base import Discriminator
from restorekit.utils import check_positive

__all__ = ["PatchGANDiscriminator", "VGGDiscriminator"]


class _SelfGatedBlock(nn.Module):
    """A U-Net `ConvBlock` whose output gates itself through an `AttentionGate`.

    The seed's ``EncoderBlock(..., use_attention=True)`` builds
    ``AttentionBlock(out, out, out)`` on its own features: g = x = the block output, so the
    gate is a learned per-pixel saliency map that lets the critic weigh where to look.
    """

    def __init__(self, in_ch: int, out_ch: int, *, attention: bool) -> None:
        super().__init__()
        self.conv = ConvBlock(in_ch, out_ch)
        self.gate = AttentionGate(out_ch, out_ch, out_ch) if attention else None

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        return x if self.gate is None else self.gate(x, x)


@register(
    "patchgan",
    kind="discriminator",
    channels=1,
    tiny={"widths": (8, 16)},
    tiny_input=(2, 48, 48),  # cat(lq, image) of gray 48x48 faces
    paper="Isola et al. 2017, https://arxiv.org/abs/1611.07004",
)
class PatchGANDiscriminator(Discriminator):
    """Conditional PatchGAN critic of the face-denoising GAN (SPEC.md section B).

    Input: the channel concatenation (noisy, clean-or-generated). ``n_layers`` encoder
    blocks (`ConvBlock`, the listed ones self-gated by an `AttentionGate`), a 2x2
    max-pool between blocks, then a 2x2 stride-2 conv to one logit per patch, as in the
    seed (whose critic gates its first and third blocks).

    Output size and receptive field (see :meth:`output_size`, :attr:`receptive_field`):
    each block's two 3x3 convs widen the field by 4 x the current stride, each pool by 1 x
    it, the final conv by 1 x it, giving ``5 * 2**n_layers - 4`` pixels (36 for three
    blocks) at a stride of ``2**n_layers``; an H x W input yields
    ``floor(H / 2**n_layers) x floor(W / 2**n_layers)`` logits (6 x 6 for 48 x 48 faces).

    Args:
        image_channels: channels of each of the two images (1 for gray faces); the input
            has twice as many.
        widths: channels of the encoder blocks; default ``(32, 64, 128)``, the seed's
            ``base_channels=32`` doubled per block.
        n_layers: number of encoder blocks; with ``widths`` unset it gives
            ``32 * 2**k`` widths, and if both are set they must agree.
        attention_blocks: indices of the self-gated blocks; default: every other block
            from the first, i.e. ``(0, 2)`` for three blocks, as the seed.

    Shapes:
        (B, 2 * image_channels, H, W) -> (B, 1, H // 2**n_layers, W // 2**n_layers) logits;
        H and W at least ``2**n_layers``.

    Example:
        >>> PatchGANDiscriminator()(torch.rand(2, 2, 48, 48)).shape
        torch.Size([2, 1, 6, 6])
    """

    conditional = True

    def __init__(
        self,
        *,
        image_channels: int = 1,
        widths: Sequence[int] | None = None,
        n_layers: int | None = None,
        attention_blocks: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        check_positive("image_channels", image_channels)
        if widths is None:
            n = 3 if n_layers is None else check_positive("n_layers", n_layers)
            widths = tuple(32 * 2**k for k in range(n))
        widths = tuple(check_positive("widths", w) for w in widths)
        if not widths:
            raise ValueError("widths is empty: give at least one block width")
        if n_layers is not None and n_layers != len(widths):
            raise ValueError(f"n_layers={n_layers} does not match len(widths)={len(widths)}")
        if attention_blocks is None:
            attention_blocks = range(0, len(widths), 2)
        attention_blocks = tuple(attention_blocks)
        if any(not 0 <= i < len(widths) for i in attention_blocks):
            raise ValueError(
                f"attention_blocks {attention_blocks} must index blocks 0..{len(widths) - 1}"
            )
        self.in_channels = 2 * image_channels
        self.n_layers = len(widths)
        self.blocks = nn.ModuleList(
            _SelfGatedBlock(cin, cout, attention=i in attention_blocks)
            for i, (cin, cout) in enumerate(
                zip((self.in_channels, *widths[:-1]), widths, strict=True)
            )
        )
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Conv2d(widths[-1], 1, 2, stride=2)

    @property
    def min_side(self) -> int:
        return 2**self.n_layers

    @property
    def receptive_field(self) -> int:
        """Side, in input pixels, of the square that one output logit sees."""
        return 5 * 2**self.n_layers - 4

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """(h, w) of the logit map for an input of ``height`` x ``width`` pixels."""
        stride = 2**self.n_layers
        return height // stride, width // stride

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"PatchGANDiscriminator expects (B, {self.in_channels}, H, W) = "
                f"cat(noisy, image), got {tuple(x.shape)}"
            )
        side = 2**self.n_layers
        if min(x.shape[-2:]) < side:
            raise ValueError(f"input {tuple(x.shape[-2:])} is smaller than {side} x {side}")
        for i, block in enumerate(self.blocks):
            if i:
                x = self.pool(x)
            x = block(x)
        return self.head(x)


@register(
    "vgg_discriminator",
    kind="discriminator",
    channels=1,
    tiny={"base": 4},
    tiny_input=(1, 32, 32),
    paper="Ledig et al. 2017 (SRGAN), https://arxiv.org/abs/1609.04802",
)
class VGGDiscriminator(Discriminator):
    """SRGAN/CASRGAN-style image classifier: real-or-fake logit for a whole image.

    Ledig et al. 2017 (https://arxiv.org/abs/1609.04802): conv3x3 + LeakyReLU(0.2), then
    seven conv3x3 + BatchNorm + LeakyReLU(0.2) whose strides alternate 2, 1, 2, 1, ... so
    the width doubles at each stride-1 conv (64, 64, 128, 128, 256, 256, 512, 512 with
    ``base=64``), ending at 1/16 of the input size. SRGAN then flattens a fixed 6x6 map;
    restorekit pools globally instead, so any input size works, before the dense layers
    (8*base -> 16*base -> LeakyReLU -> 1).

    Args:
        in_channels: image channels (1 for MRI slices).
        base: width of the first convs; the others are 2, 4 and 8 times it.

    Shapes:
        (B, in_channels, H, W) -> (B, 1) logits; any H and W of at least 16.

    Example:
        >>> VGGDiscriminator()(torch.rand(2, 1, 40, 24)).shape
        torch.Size([2, 1])
    """

    conditional = False
    min_side = 16  # four stride-2 convs

    def __init__(self, *, in_channels: int = 1, base: int = 64) -> None:
        super().__init__()
        self.in_channels = check_positive("in_channels", in_channels)
        check_positive("base", base)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, base, 3, padding=1), nn.LeakyReLU(0.2)]
        channels = base
        for width in (base, 2 * base, 2 * base, 4 * base, 4 * base, 8 * base, 8 * base):
            stride = 2 if width == channels else 1  # stride 2 where the width stays
            # No bias: BatchNorm's shift replaces it.
            layers += [
                nn.Conv2d(channels, width, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.LeakyReLU(0.2),
            ]
            channels = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(channels, 2 * channels), nn.LeakyReLU(0.2), nn.Linear(2 * channels, 1)
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"VGGDiscriminator expects (B, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))
