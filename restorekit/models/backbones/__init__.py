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

One file per network (``vgg.py``, ``resnet.py``, ``mobilenet.py``), each registering its
builders in :data:`BACKBONES`; ``weights.py`` finds pretrained weights, ``features.py``
gives named VGG features. Nothing here downloads: :func:`load_pretrained` looks, in order,
at an explicit file, the torch hub cache, weights shipped in installed packages, and
otherwise falls back to random init, and always says which weights it used. Every
backbone carries a ``normalize`` module that maps restorekit's RGB [0, 1] input to what
its weights expect; its buffers are not persistent, so ``state_dict`` keys stay exactly
torchvision's.
"""

from __future__ import annotations

from torch import nn

from restorekit.models.backbones.base import BACKBONES, InputNormalize
from restorekit.models.backbones.features import VGGFeatures
from restorekit.models.backbones.mobilenet import MobileNetV2, mobilenet_v2
from restorekit.models.backbones.resnet import (
    BasicBlock,
    Bottleneck,
    ResNet,
    resnet18,
    resnet34,
    resnet50,
)
from restorekit.models.backbones.vgg import VGG, vgg16, vgg19, vgg_layer_index, vgg_layer_names
from restorekit.models.backbones.weights import HED_SOURCE, MOBILENET_SOURCE, load_pretrained

__all__ = [
    "BACKBONES",
    "HED_SOURCE",
    "MOBILENET_SOURCE",
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


def list_backbones() -> tuple[str, ...]:
    """Names accepted by :func:`create_backbone` and :func:`load_pretrained`."""
    return tuple(BACKBONES.names())


def create_backbone(name: str, *, num_classes: int | None = 1000) -> nn.Module:
    """A randomly initialised backbone by name (see :func:`list_backbones`)."""
    return BACKBONES.get(name)(num_classes=num_classes)
