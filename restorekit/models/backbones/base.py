"""What the backbones share: the registry they enter and the input normalisation.

Every backbone carries a ``normalize`` module (:class:`InputNormalize`) that maps
restorekit's RGB [0, 1] input to what its weights expect; its buffers are not persistent,
so ``state_dict`` keys stay exactly torchvision's.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from restorekit.registry import Registry

BACKBONES: Registry[Callable[..., nn.Module]] = Registry(
    "backbone", package="restorekit.models.backbones", helpers=("base", "weights", "features")
)
"""Every backbone builder (``num_classes=None`` builds it without its head), kind
``"features"``, each with its paper and the torchvision checkpoint names it loads
(``extra["hub_files"]``)."""

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
