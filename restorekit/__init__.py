"""restorekit: attention-based image restoration (denoising, dehazing, super-resolution).

``import restorekit`` stays cheap: torch and the heavy submodules load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# name -> submodule that defines it; resolved lazily on first attribute access.
_LAZY = {
    "psnr": "restorekit.metrics",
    "ssim": "restorekit.metrics",
    "read_image": "restorekit.io",
    "write_image": "restorekit.io",
    "read_volume": "restorekit.io",
    "imresize": "restorekit.degrade",
    "restore": "restorekit.api",
    "restore_volume": "restorekit.api",
    "load_model": "restorekit.api",
    "list_weights": "restorekit.api",
    "create_model": "restorekit.models",
    "list_models": "restorekit.models",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'restorekit' has no attribute {name!r}")
