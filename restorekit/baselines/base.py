"""What the baselines share: the :class:`Baseline` module, its registry, argument checks.

A baseline is a class in one module of this package, registered with
``@register("name", paper=...)``; every module is imported on the first lookup.
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor, nn

from restorekit.registry import Registry
from restorekit.utils import check_images

BASELINES: Registry[type[Any]] = Registry(
    "baseline", package="restorekit.baselines", helpers=("base",)
)
"""Every classical baseline class by name, with its paper."""


def register(name: str, **meta: Any):  # -> class decorator
    """Register a :class:`Baseline` subclass as ``name`` (its ``name`` attribute is set)."""

    def deco(cls: type[Baseline]) -> type[Baseline]:
        cls.name = name
        return BASELINES.register(name, kind="baseline", **meta)(cls)

    return deco


class Baseline(nn.Module):
    """Base of the baselines: input checks, name and arguments, a description.

    Attributes:
        scale: output size / input size (1 but for bicubic).
        size_multiple: 1: any size works.
        baseline_name: the registry name.
        baseline_kwargs: every argument with its value, defaults included.
        classical: True: ``precision="auto"`` runs it in fp32 and NCHW (its numbers
            must not depend on the machine; see :mod:`restorekit.hardware`).
    """

    name: ClassVar[str]
    scale: int = 1
    size_multiple: int = 1
    classical: ClassVar[bool] = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        self.baseline_name = self.name
        self.baseline_kwargs = dict(kwargs)

    def forward(self, x: Tensor) -> Tensor:
        """Restore (B, C, H, W) in [0, 1], C = 1 or 3 -> (B, C, scale*H, scale*W)."""
        check_images(x, channels=(1, 3))
        return self.restore(x).to(device=x.device, dtype=x.dtype)

    def restore(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def describe(self) -> str:
        """The name and every parameter, for result tables: ``"median(size=3)"``."""
        return f"{self.baseline_name}({self.extra_repr()})"

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.baseline_kwargs.items())
