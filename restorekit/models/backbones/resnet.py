"""ResNet-18/34/50: He et al., "Deep Residual Learning for Image Recognition", CVPR 2016,
https://arxiv.org/abs/1512.03385, with torchvision's ``state_dict`` keys, and a five-level
encoder (strides 2 to 32) for U-Nets (``ResNet.encode``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from restorekit.models.backbones.base import BACKBONES, InputNormalize

_PAPER = "He et al. 2016, https://arxiv.org/abs/1512.03385"

# ---------------------------------------------------------------- ResNet


class BasicBlock(nn.Module):
    """Two 3x3 convs with an identity (or 1x1 projection) shortcut: ResNet-18/34.

    He et al. 2016, https://arxiv.org/abs/1512.03385. Shapes: (B, in, H, W) ->
    (B, planes, H/stride, W/stride).
    """

    expansion = 1

    def __init__(self, inplanes: int, planes: int, *, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = _projection(inplanes, planes * self.expansion, stride)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4) with a shortcut: ResNet-50.

    He et al. 2016, https://arxiv.org/abs/1512.03385, with the stride on the 3x3 conv as
    torchvision's "ResNet v1.5" (Goyal et al. 2017, https://arxiv.org/abs/1706.02677).
    Shapes: (B, in, H, W) -> (B, 4 * planes, H/stride, W/stride).
    """

    expansion = 4

    def __init__(self, inplanes: int, planes: int, *, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _projection(inplanes, planes * self.expansion, stride)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _projection(inplanes: int, outplanes: int, stride: int) -> nn.Sequential | None:
    # Keys downsample.0 (conv) and downsample.1 (BN), as torchvision's checkpoints.
    if stride == 1 and inplanes == outplanes:
        return None
    return nn.Sequential(
        nn.Conv2d(inplanes, outplanes, 1, stride, bias=False), nn.BatchNorm2d(outplanes)
    )


class ResNet(nn.Module):
    """ResNet (He et al. 2016, https://arxiv.org/abs/1512.03385), torchvision layout.

    Keys ``conv1``, ``bn1``, ``layer1..4``, ``fc``. ``forward`` is torchvision's
    (normalised input -> logits); ``encode`` gives U-Net skip features.

    Args:
        block: :class:`BasicBlock` or :class:`Bottleneck`.
        depths: blocks per stage, e.g. ``(2, 2, 2, 2)`` for ResNet-18.
        num_classes: ``fc`` outputs; ``None`` drops ``fc`` (encoder use).

    Attributes:
        encoder_channels: channels of the five ``encode`` levels.
    """

    head_prefixes = ("fc.",)

    def __init__(
        self,
        block: type[BasicBlock | Bottleneck],
        depths: Sequence[int],
        *,
        num_classes: int | None = 1000,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes = 64
        stages = []
        for i, (planes, depth) in enumerate(zip((64, 128, 256, 512), depths, strict=True)):
            blocks = []
            for j in range(depth):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(block(inplanes, planes, stride=stride))
                inplanes = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(inplanes, num_classes) if num_classes is not None else None
        e = block.expansion
        self.encoder_channels: tuple[int, ...] = (64, 64 * e, 128 * e, 256 * e, 512 * e)
        self.normalize = InputNormalize("imagenet")
        self.weights_source = "random init"
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def encode(self, x: Tensor, *, normalize: bool = True) -> list[Tensor]:
        """Five feature maps at strides 2, 4, 8, 16, 32 (channels ``encoder_channels``).

        Args:
            x: (B, 1 or 3, H, W) image in [0, 1] (or already normalised with
                ``normalize=False``); H and W multiples of 32 keep the levels aligned.

        Returns:
            ``[stem (H/2), layer1 (H/4), layer2 (H/8), layer3 (H/16), layer4 (H/32)]``.

        >>> [f.shape[1] for f in resnet18(num_classes=None).encode(torch.rand(1, 3, 64, 64))]
        [64, 64, 128, 256, 512]
        """
        if normalize:
            x = self.normalize(x)
        stem = self.relu(self.bn1(self.conv1(x)))
        f4 = self.layer1(self.maxpool(stem))
        f8 = self.layer2(f4)
        f16 = self.layer3(f8)
        return [stem, f4, f8, f16, self.layer4(f16)]

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return x if self.fc is None else self.fc(x)


@BACKBONES.register(
    "resnet18", kind="features", paper=_PAPER, extra={"hub_files": ("resnet18-f37072fd.pth",)}
)
def resnet18(*, num_classes: int | None = 1000) -> ResNet:
    """ResNet-18 (https://arxiv.org/abs/1512.03385); random init."""
    return ResNet(BasicBlock, (2, 2, 2, 2), num_classes=num_classes)


@BACKBONES.register(
    "resnet34", kind="features", paper=_PAPER, extra={"hub_files": ("resnet34-b627a593.pth",)}
)
def resnet34(*, num_classes: int | None = 1000) -> ResNet:
    """ResNet-34 (https://arxiv.org/abs/1512.03385); random init."""
    return ResNet(BasicBlock, (3, 4, 6, 3), num_classes=num_classes)


@BACKBONES.register(
    "resnet50",
    kind="features",
    paper=_PAPER,
    extra={"hub_files": ("resnet50-0676ba61.pth", "resnet50-11ad3fa6.pth")},
)
def resnet50(*, num_classes: int | None = 1000) -> ResNet:
    """ResNet-50 v1.5 (https://arxiv.org/abs/1512.03385); random init."""
    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes=num_classes)
