"""Named VGG feature maps for perceptual losses (Johnson et al. 2016,
https://arxiv.org/abs/1603.08155; "before the ReLU" as in ESRGAN,
https://arxiv.org/abs/1809.00219)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from torch import Tensor, nn

from restorekit.models.backbones.vgg import _VGG_STAGES, VGG, vgg_layer_index
from restorekit.models.backbones.weights import load_pretrained

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

    >>> import torch
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
