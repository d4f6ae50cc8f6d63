"""MobileNetV2: Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks",
CVPR 2018, https://arxiv.org/abs/1801.04381, with torchvision's ``state_dict`` keys, and a
five-level encoder for U-Nets (``MobileNetV2.encode``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from restorekit.models.backbones.base import BACKBONES, InputNormalize

# ---------------------------------------------------------------- MobileNetV2


def _conv_bn_relu6(
    inp: int, out: int, kernel: int, *, stride: int = 1, groups: int = 1
) -> nn.Sequential:
    # Keys .0 (conv) and .1 (BN), as torchvision's Conv2dNormActivation.
    return nn.Sequential(
        nn.Conv2d(inp, out, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    """Expand (1x1), depthwise 3x3, linear projection (1x1); residual when shapes match.

    Sandler et al. 2018, https://arxiv.org/abs/1801.04381. Shapes: (B, inp, H, W) ->
    (B, out, H/stride, W/stride).
    """

    def __init__(self, inp: int, out: int, *, stride: int, expand: int) -> None:
        super().__init__()
        hidden = inp * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(_conv_bn_relu6(inp, hidden, 1))
        layers += [
            _conv_bn_relu6(hidden, hidden, 3, stride=stride, groups=hidden),
            nn.Conv2d(hidden, out, 1, bias=False),
            nn.BatchNorm2d(out),
        ]
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and inp == out

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


# (expansion t, channels c, repeats n, first stride s): Table 2 of the paper.
_MOBILENET_V2_SETTINGS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
# features slices ending each encoder level (strides 2, 4, 8, 16, 32).
_MOBILENET_V2_LEVELS = (2, 4, 7, 14, 19)


class MobileNetV2(nn.Module):
    """MobileNetV2 (Sandler et al. 2018, https://arxiv.org/abs/1801.04381), width 1.0.

    torchvision layout: ``features.0`` stem, ``features.1..17`` inverted residuals,
    ``features.18`` 1x1 conv to 1280, ``classifier.1`` Linear(1280, classes) after
    dropout. ``forward`` is torchvision's (normalised input -> logits).

    Args:
        num_classes: classifier outputs; ``None`` drops the classifier (encoder use).
        dropout: dropout probability before the classifier.

    Attributes:
        encoder_channels: channels of the five ``encode`` levels, (16, 24, 32, 96, 1280).
    """

    head_prefixes = ("classifier.",)

    def __init__(self, *, num_classes: int | None = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        layers: list[nn.Module] = [_conv_bn_relu6(3, 32, 3, stride=2)]
        inp = 32
        for t, c, n, s in _MOBILENET_V2_SETTINGS:
            for i in range(n):
                layers.append(InvertedResidual(inp, c, stride=s if i == 0 else 1, expand=t))
                inp = c
        layers.append(_conv_bn_relu6(inp, 1280, 1))
        self.features = nn.Sequential(*layers)
        self.classifier: nn.Sequential | None = None
        if num_classes is not None:
            self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(1280, num_classes))
        self.encoder_channels: tuple[int, ...] = (16, 24, 32, 96, 1280)
        self.normalize = InputNormalize("imagenet")
        self.weights_source = "random init"
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def encode(self, x: Tensor, *, normalize: bool = True) -> list[Tensor]:
        """Five feature maps at strides 2, 4, 8, 16, 32 (channels ``encoder_channels``).

        Args:
            x: (B, 1 or 3, H, W) image in [0, 1] (or already normalised with
                ``normalize=False``); H and W multiples of 32 keep the levels aligned.

        >>> [f.shape[-1] for f in mobilenet_v2(num_classes=None).encode(torch.rand(1, 3, 64, 64))]
        [32, 16, 8, 4, 2]
        """
        if normalize:
            x = self.normalize(x)
        feats, start = [], 0
        for end in _MOBILENET_V2_LEVELS:
            x = self.features[start:end](x)
            feats.append(x)
            start = end
        return feats

    def forward(self, x: Tensor) -> Tensor:
        x = torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1)
        return x if self.classifier is None else self.classifier(x)


@BACKBONES.register(
    "mobilenet_v2",
    kind="features",
    paper="Sandler et al. 2018, https://arxiv.org/abs/1801.04381",
    extra={"hub_files": ("mobilenet_v2-b0353104.pth", "mobilenet_v2-7ebf99e0.pth")},
)
def mobilenet_v2(*, num_classes: int | None = 1000) -> MobileNetV2:
    """MobileNetV2 width 1.0 (https://arxiv.org/abs/1801.04381); random init."""
    return MobileNetV2(num_classes=num_classes)
