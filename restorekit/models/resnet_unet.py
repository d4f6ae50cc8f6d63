"""U-Net with a pretrained ResNet (or MobileNetV2) encoder and scSE attention in the decoder.

The defect-aware denoiser of SPEC.md section D (seeds/003). Papers:
- U-Net: Ronneberger et al., MICCAI 2015, https://arxiv.org/abs/1505.04597
- ResNet encoder: He et al., CVPR 2016, https://arxiv.org/abs/1512.03385; MobileNetV2:
  Sandler et al., CVPR 2018, https://arxiv.org/abs/1801.04381
- scSE attention: Roy et al., "Concurrent Spatial and Channel Squeeze & Excitation in
  Fully Convolutional Networks", MICCAI 2018, https://arxiv.org/abs/1803.02579

The encoder (:mod:`restorekit.models.backbones`) gives five feature maps at strides 2, 4,
8, 16 and 32. The decoder climbs back one level at a time: a 2x2 stride-2 transposed conv,
concatenation with the encoder map of that stride, a `ConvBlock`, then `SCSE`. A last level
returns from stride 2 to full resolution, and a 1x1 conv maps to the image channels. The
encoders' first layer has stride 2, so that last level has no skip unless ``full_skip``
adds one: a `ConvBlock` on the input image at full resolution (the usual U-Net's first
level), which denoising needs to keep pixel-level detail (issue 10: without it, the
photo denoiser lost to BM3D and, at sigma 5, to its own input).

The seed's output layer is "a final 1x1 convolution [that] produces the denoised image":
the network predicts the image directly, which is the default here. ``residual=True``
predicts a correction added to the input instead, a common alternative for denoising; its
output conv starts at zero, so a fresh residual network is the identity (the defects cover
little of an image: it starts at the input's PSNR, not at a random image's).

``refine`` adds EDSR residual blocks (no BatchNorm) at full resolution between the last
decoder level and the output conv: more layers where the fine texture is, which the
encoder (stride 2 from its first layer) and the two-conv ``full_skip`` branch leave thin.
Each block's last conv starts at zero, so trained weights without the blocks load into a
network with them and give the same output: training continues from there.

Trained weights also load into a *wider* decoder (larger ``decoder_widths``, a larger or
new ``full_skip``, same encoder): :meth:`ResNetUNet.adapt_state_dict` puts each trained
tensor in the corner of its wider one and zeroes the weights that read the new channels,
so the wider network starts with the narrower one's output (its new channels computed but
read by nothing) and training grows them from there (Chen et al., "Net2Net", ICLR 2016,
https://arxiv.org/abs/1511.05641, with zeros in place of copies).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from restorekit.layers import SCSE, ConvBlock, ResBlock
from restorekit.models import register
from restorekit.models.backbones import create_backbone, load_pretrained
from restorekit.models.base import Restorer, check_choice

__all__ = ["ResNetUNet"]


ENCODERS = ("resnet18", "resnet34", "mobilenet_v2")


class _DecoderLevel(nn.Module):
    """Transposed-conv x2, concat with the skip (if any), ConvBlock, scSE."""

    def __init__(self, in_ch: int, skip_ch: int, out_ch: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_ch, out_ch, 2, stride=2)
        self.conv = ConvBlock(out_ch + skip_ch, out_ch)
        # At least 4 hidden units in the channel gate: with SE's usual reduction of 16 a
        # 16-channel level would squeeze through a single ReLU unit, which can die.
        self.attention = SCSE(out_ch, reduction=max(1, min(16, out_ch // 4)))

    def forward(self, x: Tensor, skip: Tensor | None = None) -> Tensor:
        x = self.up(x)
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.attention(self.conv(x))


@register(
    "resnet_unet",
    kind="restorer",
    channels=3,
    tiny={"encoder": "resnet18", "pretrained": False, "decoder_widths": (8, 8, 4, 4, 4)},
    paper="U-Net with a ResNet encoder and scSE (Roy et al. 2018, https://arxiv.org/abs/1803.02579)",
)
class ResNetUNet(Restorer):
    """ResNet-encoder U-Net with scSE decoder attention (SPEC.md section D).

    Args:
        in_channels: image channels, 3 (RGB) or 1 (gray, repeated to three for the
            encoder); the output has as many.
        encoder: ``"resnet18"``, ``"resnet34"`` or ``"mobilenet_v2"``.
        pretrained: start the encoder from ImageNet weights found offline by
            :func:`~restorekit.models.backbones.load_pretrained` (random init with a
            warning when there are none). Pass False when the weights will be overwritten
            anyway, e.g. when rebuilding a trained model from its checkpoint.
        decoder_widths: channels of the five decoder levels, deepest first (strides
            16, 8, 4, 2, 1).
        residual: add the input to the output (predict a correction); the seed's network
            predicts the image directly (False).
        full_skip: channels of a full-resolution branch on the input, concatenated into
            the last decoder level (0: none, as the seed's network).
        refine: residual blocks at full resolution before the output conv (module
            docstring), each starting as the identity.

    Attributes:
        encoder_source: which weights the encoder started from (quote it in results).

    Shapes:
        (B, in_channels, H, W) in [0, 1] -> (B, in_channels, H, W); any H and W (padded
        to a multiple of 32 and cropped back).

    Example:
        >>> net = ResNetUNet(encoder="resnet18", pretrained=False)
        >>> net(torch.rand(1, 3, 20, 45)).shape, net.encoder_source
        (torch.Size([1, 3, 20, 45]), 'random init (pretrained=False)')
    """

    size_multiple = 32

    def __init__(
        self,
        *,
        in_channels: int = 3,
        encoder: str = "resnet34",
        pretrained: bool = True,
        decoder_widths: Sequence[int] = (256, 128, 64, 32, 16),
        residual: bool = False,
        full_skip: int = 0,
        refine: int = 0,
    ) -> None:
        super().__init__()
        check_choice("in_channels", in_channels, (1, 3))
        if encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {encoder!r}")
        widths = tuple(decoder_widths)
        if len(widths) != 5 or not all(
            isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in widths
        ):
            raise ValueError(f"decoder_widths must be five positive integers, got {widths!r}")
        if isinstance(full_skip, bool) or not isinstance(full_skip, int) or full_skip < 0:
            raise ValueError(f"full_skip must be an integer >= 0, got {full_skip!r}")
        if isinstance(refine, bool) or not isinstance(refine, int) or refine < 0:
            raise ValueError(f"refine must be an integer >= 0, got {refine!r}")
        self.in_channels = in_channels
        self.residual = residual
        self.full = ConvBlock(in_channels, full_skip) if full_skip else None

        if pretrained:
            backbone, self.encoder_source = load_pretrained(encoder, features_only=True)
        else:
            backbone = create_backbone(encoder, num_classes=None)
            self.encoder_source = "random init (pretrained=False)"
        # load_pretrained hands back an eval-mode model; a new module trains by default.
        self.encoder = backbone.train()
        channels = tuple(backbone.encoder_channels)

        skips = (*reversed(channels[:4]), full_skip)  # strides 16, 8, 4, 2, 1
        self.decoder = nn.ModuleList(
            _DecoderLevel(cin, skip, cout)
            for cin, skip, cout in zip((channels[4], *widths[:-1]), skips, widths, strict=True)
        )
        self.refine = nn.Sequential(*(ResBlock(widths[-1]) for _ in range(refine)))
        for block in self.refine:  # each starts as the identity (module docstring)
            nn.init.zeros_(block.body[-1].weight)
            nn.init.zeros_(block.body[-1].bias)
        self.head = nn.Conv2d(widths[-1], in_channels, 1)
        if residual:  # start as the identity (module docstring)
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def adapt_state_dict(self, state: dict[str, Tensor]) -> dict[str, Tensor]:
        """``state`` as it is, or, from a network with a narrower decoder, widened to this
        one's shapes so that this network computes what that one did (module docstring).

        A tensor grows only where its shape has as many axes as this network's and no axis
        is larger; new output channels keep this network's fresh values, new input
        channels get zero weights. A level's first conv reads the upsampled map and then
        the skip, so the skip's trained weights move to their new place after the wider
        upsampled map. Tensors that cannot grow are left as they are (a loader then skips
        them as before).
        """
        own = self.state_dict()
        if all(k not in own or own[k].shape == v.shape for k, v in state.items()):
            return state
        modules = dict(self.named_modules())
        grown = dict(state)
        for key, old in state.items():
            new = own.get(key)
            if new is None or new.shape == old.shape or not _fits_inside(old, new):
                continue
            out = new.detach().clone()
            if key.startswith("decoder.") and key.endswith(".conv.0.weight"):
                up_key = key.replace(".conv.0.weight", ".up.weight")
                up, new_up = state[up_key].shape[1], own[up_key].shape[1]
                # Input channels: the upsampled map's (old ones first), then the skip's.
                place = [*range(up), *range(new_up, new_up + old.shape[1] - up)]
                out[:, sorted(set(range(new.shape[1])) - set(place))] = 0
                out[: old.shape[0], place] = old.to(out.dtype)
            else:
                module = modules[key.rsplit(".", 1)[0]]
                for axis in _input_axes(module, new.ndim):  # nothing reads the new channels
                    out.narrow(axis, old.shape[axis], new.shape[axis] - old.shape[axis]).zero_()
                out[tuple(slice(0, n) for n in old.shape)] = old.to(out.dtype)
            grown[key] = out
        return grown

    def restore(self, x: Tensor) -> Tensor:
        features = self.encoder.encode(x)
        y = features[-1]
        skips = [*reversed(features[:-1]), None if self.full is None else self.full(x)]
        for level, skip in zip(self.decoder, skips, strict=True):
            y = level(y, skip)
        y = self.head(self.refine(y))
        return x + y if self.residual else y


def _fits_inside(old: Tensor, new: Tensor) -> bool:
    return old.ndim == new.ndim and all(a <= b for a, b in zip(old.shape, new.shape, strict=True))


def _input_axes(module: nn.Module, ndim: int) -> tuple[int, ...]:
    """The axes of ``module``'s weight that run over its input channels (none for
    biases and BatchNorm's vectors)."""
    if ndim < 2:
        return ()
    return (0,) if isinstance(module, nn.ConvTranspose2d) else (1,)
