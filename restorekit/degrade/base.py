"""The shared shape of a degradation operator and the name -> preset registry.

Every degradation is a pure function (``gaussian_noise``, ``salt_pepper``, ``haze``,
``imresize``, ...) plus an ``nn.Module`` twin that holds its parameter *ranges* and
samples from them with the generator it is given. The twins all return a
:class:`Degraded`, so data pipelines and the CLI treat them alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn


class Degraded(NamedTuple):
    """The output of a degradation twin.

    Attributes:
        lq: degraded images, (B, C, h, w) float; h, w differ from the input for resizes.
        mask: (B, 1, H, W) float in {0, 1} marking corrupted pixels, or ``None`` when the
            degradation corrupts every pixel (noise, haze, blur).
    """

    lq: torch.Tensor
    mask: torch.Tensor | None = None


class Degradation(nn.Module):
    """Base class: ``forward(x, *, generator)`` returns a :class:`Degraded`.

    Subclasses sample their parameters from their ranges with ``generator`` (a CPU
    ``torch.Generator``) and call the pure function. One sample per image of the batch.
    """

    def forward(self, x: torch.Tensor, *, generator: torch.Generator) -> Degraded:
        raise NotImplementedError


def uniform(lo: float, hi: float, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` samples from U[lo, hi] on the CPU (lo == hi gives a constant)."""
    return lo + (hi - lo) * torch.rand(n, generator=generator, dtype=torch.float64)


_PRESETS: dict[str, Callable[[], Degradation]] = {}


def register(name: str) -> Callable[[Callable[[], Degradation]], Callable[[], Degradation]]:
    """Register a zero-argument factory for a named preset (``gaussian_low``, ...)."""

    def deco(factory: Callable[[], Degradation]) -> Callable[[], Degradation]:
        known = _PRESETS.get(name)
        # The same definition imported twice (pytest's doctest collection does this) is
        # fine; two different factories under one name are a bug.
        if known is not None and _origin(known) != _origin(factory):
            raise ValueError(f"degradation preset {name!r} is registered twice")
        _PRESETS[name] = factory
        return factory

    return deco


def _origin(factory: Callable[[], Degradation]) -> tuple[str, str]:
    return factory.__module__, factory.__qualname__


def list_degradations() -> list[str]:
    """Names of every registered preset, sorted."""
    return sorted(_PRESETS)


def create_degradation(name: str) -> Degradation:
    """Build a registered preset by name; unknown names raise ValueError listing the choices."""
    try:
        factory = _PRESETS[name]
    except KeyError:
        choices = ", ".join(list_degradations())
        raise ValueError(f"unknown degradation {name!r}; choose one of: {choices}") from None
    return factory()
