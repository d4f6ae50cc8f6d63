"""VGG16 / VGG19: Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale
Image Recognition", ICLR 2015, https://arxiv.org/abs/1409.1556, with torchvision's
``state_dict`` keys; named layers for perceptual losses (:func:`vgg_layer_names`)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from restorekit.models.backbones.base import BACKBONES, InputNormalize

_PAPER = "Simonyan & Zisserman 2015, https://arxiv.org/abs/1409.1556"

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


@BACKBONES.register(
    "vgg16", kind="features", paper=_PAPER, extra={"hub_files": ("vgg16-397923af.pth",)}
)
def vgg16(*, num_classes: int | None = 1000) -> VGG:
    """VGG16 (configuration D of https://arxiv.org/abs/1409.1556); random init."""
    return VGG("vgg16", num_classes=num_classes)


@BACKBONES.register(
    "vgg19", kind="features", paper=_PAPER, extra={"hub_files": ("vgg19-dcbb9e9d.pth",)}
)
def vgg19(*, num_classes: int | None = 1000) -> VGG:
    """VGG19 (configuration E of https://arxiv.org/abs/1409.1556); random init."""
    return VGG("vgg19", num_classes=num_classes)
