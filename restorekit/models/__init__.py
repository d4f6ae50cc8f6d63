"""Model zoo: restoration architectures, discriminators and feature backbones.

Each architecture file registers its builders with ``@register(name, kind=..., ...)``
(the metadata of :class:`restorekit.registry.Entry`: kind, scales, channels, a tiny test
configuration, the paper). Every module of this package is imported on the first lookup,
so a new file needs no entry anywhere else. ``create_model`` records the name and the
fully resolved arguments on the model (``model.model_name``, ``model.model_kwargs``), so
a checkpoint rebuilds the same network even after a default changes.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from restorekit.registry import Entry, Registry

MODELS: Registry[Callable[..., nn.Module]] = Registry(
    "model", package=__name__, helpers=("base", "summary", "backbones")
)
"""Every architecture: ``MODELS.entry(name)`` gives its metadata, ``MODELS.names(kind=...)``
the restorers (``"restorer"``) or discriminators (``"discriminator"``)."""

register = MODELS.register


def list_models(*, kind: str | None = None) -> list[str]:
    """Registered model names, sorted; only ``kind`` (``"restorer"``, ...) if given."""
    return MODELS.names(kind=kind)


def model_entry(name: str) -> Entry[Callable[..., nn.Module]]:
    """A registered model's metadata; unknown names raise ValueError listing the choices."""
    return MODELS.entry(name)


def model_signature(name: str) -> inspect.Signature:
    """The keyword arguments a registered model takes, with their defaults."""
    return inspect.signature(MODELS.get(name))


def resolved_kwargs(name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` completed with every default of the model's builder (what checkpoints
    store); ValueError for an argument the builder does not take."""
    try:
        bound = model_signature(name).bind(**kwargs)
    except TypeError as err:
        raise ValueError(f"model {name!r}: {err}") from None
    bound.apply_defaults()
    return dict(bound.arguments)


def adapt_state(model: nn.Module, state: dict[str, Any]) -> dict[str, Any]:
    """``state`` in ``model``'s own key layout: through its ``adapt_state_dict`` where it
    has one (an official checkpoint's names, or an older layout of restorekit's), else
    as it is. Every weights loader calls this before ``load_state_dict``."""
    adapt = getattr(model, "adapt_state_dict", None)
    return adapt(state) if adapt is not None else state


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model; unknown names and keyword arguments raise ValueError."""
    builder = MODELS.get(name)
    full = resolved_kwargs(name, kwargs)
    try:
        model = builder(**full)
    except TypeError as err:
        raise ValueError(f"model {name!r}: {err}") from None
    model.model_name = name
    model.model_kwargs = full
    return model


__all__ = [
    "MODELS",
    "adapt_state",
    "create_model",
    "list_models",
    "model_entry",
    "model_signature",
    "register",
    "resolved_kwargs",
]
