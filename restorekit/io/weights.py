"""The one reader of weights files: safetensors, or ``.pth``/``.pt`` never unpickled.

Every weights file restorekit reads (shipped weights, run checkpoints, a user's
``--weights``, torchvision checkpoints for the backbones) goes through
:func:`read_weights`: safetensors with its metadata, or ``torch.load(weights_only=True)``,
which admits tensors and plain containers only, so a file cannot run code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

__all__ = ["STATE_DICT_KEYS", "read_weights"]

STATE_DICT_KEYS = ("state_dict", "params", "model")
"""Keys under which ``.pth`` files of other projects nest their state_dict (BasicSR's
``params``, Lightning's ``state_dict``)."""


TORCH_SUFFIXES = (".pth", ".pt", ".pk")
"""``torch.save`` files read with ``weights_only=True`` (``.pk``: the official FFA-Net's)."""


def read_weights(path: str | os.PathLike[str]) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """``(state_dict, metadata)`` of a ``.safetensors`` or ``.pth``/``.pt``/``.pk`` file.

    Safetensors metadata values are JSON-decoded where they are JSON (restorekit writes
    them so) and kept as text otherwise; ``.pth`` files have no metadata. A ``.pth`` state
    dict nested under one of :data:`STATE_DICT_KEYS` is unwrapped, and DataParallel's
    ``module.`` prefix dropped. Errors name the file: FileNotFoundError when it is
    missing, ValueError when it holds no state dict.
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"{file}: no such weights file")
    suffix = file.suffix.lower()
    if suffix == ".safetensors":
        return _read_safetensors(file)
    if suffix not in TORCH_SUFFIXES:
        raise ValueError(f"{file}: weights must be a .safetensors or .pth/.pt/.pk file")
    return _read_pth(file), {}


def _read_safetensors(file: Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    from safetensors import safe_open

    try:
        with safe_open(str(file), framework="pt") as f:
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - not a dict
            raw = f.metadata() or {}
    except Exception as err:  # safetensors raises its own error types
        raise ValueError(f"{file}: not a readable safetensors file ({err})") from None
    meta: dict[str, Any] = {}
    for key, value in raw.items():
        try:
            meta[key] = json.loads(value)
        except json.JSONDecodeError:
            meta[key] = value  # metadata written by other tools is plain text
    return state, meta


def _read_pth(file: Path) -> dict[str, Tensor]:
    try:
        data = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle and zip errors have many types
        first = str(err).splitlines()[0] if str(err) else ""
        raise ValueError(
            f"{file}: not a weights-only .pth file ({type(err).__name__}: {first})"
        ) from None
    if isinstance(data, dict):
        for key in STATE_DICT_KEYS:
            if isinstance(data.get(key), dict):
                data = data[key]
                break
    if not isinstance(data, dict) or not all(isinstance(v, Tensor) for v in data.values()):
        raise ValueError(
            f"{file}: holds no state_dict (a dict of tensors, or one under "
            f"{', '.join(map(repr, STATE_DICT_KEYS))})"
        )
    if data and all(k.startswith("module.") for k in data):
        data = {k.removeprefix("module."): v for k, v in data.items()}  # DataParallel
    return dict(data)
