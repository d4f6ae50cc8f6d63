"""Model zoo: restoration architectures, discriminators and feature backbones.

A plain registry: each architecture file decorates its builder with ``@register(name)``,
and this package imports the files, so ``create_model(name, **kwargs)`` finds them all.
``create_model`` records the name and kwargs on the model (``model.model_name``,
``model.model_kwargs``) so a checkpoint can rebuild the model from those alone.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}

# One architecture per file; each registers its names when imported (on first lookup, so
# `import restorekit.models` stays cheap).
_ARCHITECTURES = (
    "attention_unet",
    "discriminators",
    "resnet_unet",
    "ffa",
    "srcnn",
    "drrn",
    "edsr",
    "rdn",
    "casr",
)


def _import_architectures() -> None:
    for module in _ARCHITECTURES:
        importlib.import_module(f"{__name__}.{module}")


def register(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a model class or builder under ``name``."""

    def deco(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        known = _REGISTRY.get(name)
        if known is not None and known.__qualname__ != builder.__qualname__:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = builder
        return builder

    return deco


def list_models() -> list[str]:
    """Registered model names, sorted."""
    _import_architectures()
    return sorted(_REGISTRY)


def _builder(name: str) -> Callable[..., nn.Module]:
    _import_architectures()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown model {name!r}; choose one of: {', '.join(list_models())}"
        ) from None


def model_signature(name: str) -> inspect.Signature:
    """The keyword arguments a registered model takes, with their defaults."""
    return inspect.signature(_builder(name))


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model; unknown names and keyword arguments raise ValueError."""
    builder = _builder(name)
    try:
        model = builder(**kwargs)
    except TypeError as err:
        raise ValueError(f"model {name!r}: {err}") from None
    model.model_name = name
    model.model_kwargs = dict(kwargs)
    return model


__all__ = ["create_model", "list_models", "model_signature", "register"]
