"""What an export is checked on, and the check: onnxruntime against PyTorch.

The traced size takes the general path of every remaining branch, and the probe sizes
the others; :func:`compare` runs the file at each and fails on any disagreement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from restorekit.export.runtime import _session, run_onnx
from restorekit.utils import make_generator

# Largest |onnx - torch| accepted by the check, relative to max(1, max |torch|). float32
# kernels differ by about 1e-6 on these networks; a wrong branch or padding is far larger.
CHECK_TOLERANCE = 1e-3


@dataclass(frozen=True)
class _Spec:
    """What the export needs to know of a model (:func:`_describe`)."""

    kind: str  # "restorer" or "discriminator"
    in_channels: int
    scale: int
    size_multiple: int
    min_side: int  # smallest H, W the model accepts

    @property
    def input_name(self) -> str:
        return "lq" if self.kind == "restorer" else "image"

    @property
    def output_name(self) -> str:
        return "restored" if self.kind == "restorer" else "logits"


def _side(multiple: int, at_least: int, extra: int = 0) -> int:
    """A side >= ``at_least`` that pads to an odd number (+ ``extra``) of ``multiple``s."""
    k = -(-(at_least + multiple // 2) // multiple)
    k += 1 - k % 2 + extra
    return k * multiple - multiple // 2


def _trace_size(multiple: int, min_side: int = 1) -> tuple[int, int]:
    """Example input size for a dynamic export (module doc, 1).

    Not a multiple of ``multiple`` (so padding is traced), padding to an odd number of
    multiples (so a window grid over the padded map needs padding and masks), H != W (so
    no axis stands in for the other), and small, so tracing and checking are quick.
    """
    at_least = max(24, min_side)
    return _side(multiple, at_least), _side(multiple, at_least, extra=2)


def _probe_sizes(spec: _Spec) -> list[tuple[int, int]]:
    """Sizes at which a dynamic export is checked, besides the traced one.

    An exact multiple with even multiple counts (no padding; window grids that need
    none), and for padding models an image smaller than its padding (replication). Taller
    than wide: PyTorch's own ``SwinBlock`` fails at batch 1 on a map one window high and
    several wide (a ``view`` of a non-contiguous tensor), and the reference must run.
    """
    m = spec.size_multiple
    if m == 1:
        side = max(spec.min_side, 3)
        return [(8 * side, 4 * side), (side, side + 2)]
    return [(8 * m, 4 * m), (max(1, m // 2 - 1), 2 * m + 1)]


class CheckError(Exception):
    """The exported graph disagrees with PyTorch."""


def compare(
    path: Path, reference: nn.Module, in_channels: int, sizes: Sequence[tuple[int, int, int]]
) -> float:
    """Worst |onnx - torch| over seeded random inputs of ``sizes``; CheckError if off."""
    session = _session(path)
    gen = make_generator(0)
    worst = 0.0
    for b, h, w in sizes:
        x = torch.rand(b, in_channels, h, w, generator=gen)
        with torch.no_grad():
            expected = reference(x)
        got = run_onnx(session, x)
        if got.shape != expected.shape:
            raise CheckError(
                f"at {h}x{w} the output is {tuple(got.shape)}, not {tuple(expected.shape)}"
            )
        error = float((got - expected).abs().max())
        limit = CHECK_TOLERANCE * max(1.0, float(expected.abs().max()))
        if not error <= limit:  # also catches NaN
            raise CheckError(f"at {h}x{w} max |onnx - torch| = {error:.3g} > {limit:.3g}")
        worst = max(worst, error)
    return worst
