"""Size and cost of a model: parameters, and multiply-accumulates at a stated input size.

MACs are counted with PyTorch's own operator-level flop counter
(``torch.utils.flop_counter.FlopCounterMode``: convolutions, matrix products and attention,
one MAC = two flops) on the meta device, so counting a 40 M-parameter model at 256x256
allocates no memory and runs no arithmetic. Element-wise work (activations, additions,
normalisation) is not counted, as is usual in the papers' tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from restorekit.models import create_model, model_signature


@dataclass(frozen=True)
class ModelCost:
    """What :func:`model_cost` reports for one model at one input size."""

    name: str
    params: int
    macs: int
    input_size: tuple[int, int, int]  # (C, H, W) of the input the MACs were counted on
    scale: int


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (buffers such as BatchNorm statistics excluded)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of one ``model(x)`` forward pass (conv, matmul, attention).

    Run it on the meta device (model and ``x`` both) to count without computing.

    >>> with torch.device("meta"):
    ...     conv = nn.Conv2d(3, 8, 3, padding=1)
    ...     x = torch.zeros(1, 3, 10, 10)
    >>> count_macs(conv, x)  # 3 * 8 * 3 * 3 per output pixel, 100 pixels
    21600
    """
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() // 2


def model_cost(name: str, *, output_size: int = 256, **kwargs: Any) -> ModelCost:
    """Parameters and MACs of a registered model whose output is about ``output_size``².

    The input is ``output_size // scale`` pixels on each side (so x3 models see 85x85
    and return 255x255). Discriminators and backbones have no ``scale``; they are
    counted on an ``output_size`` input.
    """
    if "pretrained" in model_signature(name).parameters:
        kwargs.setdefault("pretrained", False)  # weights do not change the cost
    with torch.device("meta"):
        model = create_model(name, **kwargs).eval()
        scale = int(getattr(model, "scale", 1))
        channels = int(getattr(model, "in_channels", 3))
        side = output_size // scale
        x = torch.zeros(1, channels, side, side)
        macs = count_macs(model, x)
    return ModelCost(name, count_parameters(model), macs, (channels, side, side), scale)
