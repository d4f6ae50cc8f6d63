"""The shared shape of a degradation operator, its registry, presets and composition.

Every degradation is a pure function (``gaussian_noise``, ``salt_pepper``, ``haze``,
``imresize``, ...) plus an ``nn.Module`` twin, the *operator*, that holds its parameters
(a fixed value or a (lo, hi) range to sample from) and samples with the generator it is
given. Operators return a :class:`Degraded`: the degraded images, the corruption mask if
there is one, and the values sampled for each image.

Operators are registered by name with their keyword parameters (``gaussian``,
``salt_pepper``, ``haze``, ``bicubic``, ``defects``); the seed's settings are *presets*,
named parameter sets of an operator (``gaussian_low`` is ``gaussian`` with
``sigma=0.04, clip=True``). :func:`create_degradation` builds either, with parameters::

    create_degradation("gaussian", sigma=(0.0, 0.2))
    create_degradation("gaussian_low")                      # a preset
    create_degradation("bicubic:scale=4 + gaussian:sigma=0.05")   # a spec string
    Compose(create_degradation("bicubic_x4"), create_degradation("gaussian_15"))

A spec string is ``name[:key=value,...]`` with YAML values (``sigma=[0, 0.2]``,
``clip=false``), and ``+`` composes. Every operator's ``spec`` gives that string back,
so results tables and protocol lines state the parameters that made them.

An operator that needs more than the image (haze reads a depth map) declares it in
``inputs``; data pipelines pass those inputs by name when they have them.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import sys
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from restorekit.config import ConfigError, format_value, parse_call, split_outside_brackets
from restorekit.registry import Registry

__all__ = [
    "DEGRADATIONS",
    "TARGETS",
    "Compose",
    "Degradation",
    "Degraded",
    "Preset",
    "create_degradation",
    "list_degradations",
    "parse_spec",
    "preset",
    "register",
    "uniform",
]

_NO_PARAMS: Mapping[str, torch.Tensor] = MappingProxyType({})

TARGETS = ("transmission", "airlight")
"""The names an operator's ``Degraded.targets`` may use (the training loop passes these
items of a batch to the loss terms)."""


class Degraded(NamedTuple):
    """The output of an operator.

    Attributes:
        lq: degraded images, (B, C, h, w) float; h, w differ from the input for resizes.
        mask: (B, 1, h, w) float in {0, 1} marking the pixels the task singles out (those
            corrupted by impulse noise or painted damage; the surface defects a
            defect-aware denoiser must keep), or ``None`` (noise, haze, blur: every pixel).
        params: the values sampled for each image, name -> (B,) float64 CPU tensor
            (``{"sigma": ...}`` for Gaussian noise); empty for deterministic operators.
        gt: the new ground truth when the operator changes the scene itself (surface
            defects drawn in), else ``None``: the clean input is the ground truth.
        targets: what the operator knows about each image that a loss may supervise,
            name -> tensor with the batch first: :class:`~restorekit.degrade.haze.Haze`
            gives the ``"transmission"`` (B, 1, h, w) and the ``"airlight"`` (B, C) it
            made the haze with; empty for the others.
    """

    lq: torch.Tensor
    mask: torch.Tensor | None = None
    params: Mapping[str, torch.Tensor] = _NO_PARAMS
    gt: torch.Tensor | None = None
    targets: Mapping[str, torch.Tensor] = _NO_PARAMS


class Degradation(nn.Module):
    """Base class: ``forward(x, *, generator, **inputs)`` returns a :class:`Degraded`.

    Subclasses sample their parameters with ``generator`` (a CPU ``torch.Generator``),
    one sample per image of the batch, and call the pure function.

    Attributes:
        inputs: names of the auxiliary inputs ``forward`` accepts beside the image
            (``("depth",)`` for haze); each may be omitted.
        spec: the string :func:`create_degradation` builds this operator from (set by
            it; empty for an operator built directly).
        scale: how many times smaller the output is than the input (1 but for resizes).
    """

    inputs: ClassVar[tuple[str, ...]] = ()
    spec: str = ""
    scale: int = 1

    def forward(self, x: torch.Tensor, *, generator: torch.Generator, **inputs: Any) -> Degraded:
        raise NotImplementedError


def uniform(lo: float, hi: float, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` samples from U[lo, hi] on the CPU (lo == hi gives a constant)."""
    return lo + (hi - lo) * torch.rand(n, generator=generator, dtype=torch.float64)


# ------------------------------------------------------------------------- registry

DEGRADATIONS: Registry[Any] = Registry(
    "degradation", package="restorekit.degrade", helpers=("base",)
)
"""Operators (kind ``"operator"``: the :class:`Degradation` class) and presets (kind
``"preset"``: a :class:`Preset`), one name space."""


def register(name: str, **meta: Any):  # -> class decorator
    """Register an operator class under ``name``: ``@register("gaussian", paper=...)``."""
    return DEGRADATIONS.register(name, kind="operator", **meta)


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named parameter set of a registered operator."""

    operator: str
    params: Mapping[str, Any]
    description: str = ""


def preset(name: str, operator: str, *, description: str = "", **params: Any) -> None:
    """Register preset ``name``: ``operator`` with ``params`` (given ones override them).

    ``operator`` may also be a spec string of several steps (``"surface_defects +
    gaussian:sigma=[0.02, 0.2]"``): a composed preset, which takes no parameters."""
    DEGRADATIONS.add(
        name,
        Preset(operator, MappingProxyType(params), description),
        module=sys._getframe(1).f_globals["__name__"],  # the module that declares it
        kind="preset",
        paper=description,
    )


def list_degradations(*, kind: str | None = None) -> list[str]:
    """Names of every operator and preset, sorted (``kind="preset"`` or ``"operator"``)."""
    return DEGRADATIONS.names(kind=kind)


def parse_spec(spec: str) -> list[tuple[str, dict[str, Any]]]:
    """``"bicubic:scale=4 + gaussian:sigma=[0, 0.1]"`` -> ``[(name, params), ...]``.

    Each step is ``name[:key=value,...]`` (:func:`restorekit.config.parse_call`: values
    read as YAML, commas inside brackets belong to the value); ``+`` composes.
    """
    steps = split_outside_brackets(spec, "+")
    if not steps:
        raise ValueError(f"degradation {spec!r}: give a name (restorekit degradations)")
    try:
        return [parse_call(step) for step in steps]
    except ConfigError as err:
        raise ValueError(f"degradation {spec!r}: {err}") from None


def create_degradation(spec: str, **params: Any) -> Degradation:
    """Build an operator or preset by name (or spec string), with ``params`` on top.

    Unknown names and parameters raise ValueError naming them and listing the choices.

    >>> create_degradation("gaussian", sigma=(0.0, 0.2)).spec
    'gaussian:sigma=[0.0, 0.2]'
    >>> create_degradation("gaussian_low").sigma_range
    (0.04, 0.04)
    """
    steps = parse_spec(spec)
    if params:
        if len(steps) > 1:
            raise ValueError(f"degradation {spec!r}: give a composition's parameters in its spec")
        steps[0][1].update(params)
    ops = [_build(name, step_params) for name, step_params in steps]
    if len(ops) == 1:
        return ops[0]
    return Compose(*ops)


def _build(name: str, params: dict[str, Any]) -> Degradation:
    entry = DEGRADATIONS.entry(name)
    if entry.kind == "preset" and entry.obj.operator not in DEGRADATIONS:
        # A composed preset: its operator is a spec string of several steps.
        if params:
            raise ValueError(
                f"degradation {name!r} is a composition ({entry.obj.operator}): write its "
                "spec with the parameters you want instead"
            )
        op = create_degradation(entry.obj.operator)
        op.spec = name
        return op
    if entry.kind == "preset":
        operator = DEGRADATIONS.entry(entry.obj.operator)
        full = {**entry.obj.params, **params}
    else:
        operator, full = entry, params
    takes = list(inspect.signature(operator.obj).parameters)
    unknown = [k for k in full if k not in takes]
    if unknown:
        raise ValueError(
            f"degradation {name!r}: unknown parameter {', '.join(map(repr, unknown))}; "
            f"{operator.name} takes {', '.join(takes)}"
        )
    try:
        op = operator.obj(**full)
    except TypeError as err:  # a required parameter missing
        raise ValueError(f"degradation {name!r}: {err}") from None
    op.spec = name + (
        ":" + ",".join(f"{k}={format_value(v)}" for k, v in params.items()) if params else ""
    )
    return op


# ---------------------------------------------------------------------- composition


class Compose(Degradation):
    """Operators applied in order (``Compose(bicubic, noise)``: downscale, then add noise).

    The masks of the steps are combined (their union, resized to the output by nearest
    neighbour); the sampled values are returned as ``"<step>.<name>"`` (``"1.sigma"``), and
    the steps' targets under their own names (a later step's replacing an earlier one's).
    Auxiliary inputs go to the steps that declare them.
    """

    def __init__(self, *ops: Degradation) -> None:
        super().__init__()
        if not ops:
            raise ValueError("Compose needs at least one degradation")
        self.ops = nn.ModuleList(ops)
        self.inputs = tuple(dict.fromkeys(i for op in ops for i in op.inputs))  # type: ignore[misc]
        self.spec = " + ".join(op.spec or type(op).__name__ for op in ops)
        self.scale = math.prod(op.scale for op in ops)

    def forward(self, x: torch.Tensor, *, generator: torch.Generator, **inputs: Any) -> Degraded:
        masks, params, targets, gt = [], {}, {}, None
        for i, op in enumerate(self.ops):
            out = op(x, generator=generator, **{k: v for k, v in inputs.items() if k in op.inputs})
            x = out.lq
            gt = out.gt if out.gt is not None else gt  # the scene as the last change left it
            if out.mask is not None:
                masks.append(out.mask)
            params |= {f"{i}.{k}": v for k, v in out.params.items()}
            targets |= out.targets
        mask = None
        for m in masks:
            m = (
                F.interpolate(m, size=x.shape[-2:], mode="nearest")
                if m.shape[-2:] != x.shape[-2:]
                else m
            )
            mask = m if mask is None else torch.maximum(mask, m)
        return Degraded(x, mask, MappingProxyType(params), gt, MappingProxyType(targets))

    def __repr__(self) -> str:  # one line, for protocol lines: "Bicubic(scale=4) + ..."
        return " + ".join(repr(op) for op in self.ops)
