"""Degradations: pure tensor-in, tensor-out operators with explicit generators.

Importing this package registers every preset listed by :func:`list_degradations`.
"""

# The submodules register their presets on import.
from restorekit.degrade import defects, haze, noise, resize  # noqa: F401
from restorekit.degrade.base import (
    Degradation,
    Degraded,
    create_degradation,
    list_degradations,
    register,
)

__all__ = [
    "Degradation",
    "Degraded",
    "create_degradation",
    "list_degradations",
    "register",
]
