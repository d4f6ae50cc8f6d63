"""Reading and running exported ONNX files with onnxruntime (imported on first use)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

__all__ = ["read_onnx_metadata", "run_onnx"]

_INSTALL_HINT = "pip install 'restorekit[onnx]'"
# Metadata values are strings in ONNX; these keys are read back as ints / JSON / bools.
_INT_KEYS = (
    "scale",
    "size_multiple",
    "in_channels",
    "min_side",
    "export_height",
    "export_width",
    "opset",
)
_JSON_KEYS = ("model_kwargs",)
_BOOL_KEYS = ("dynamic_spatial",)


def _require(module: str) -> Any:
    """Import an optional dependency, or raise ImportError naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"ONNX export needs the {module!r} package: {_INSTALL_HINT} ({err})"
        ) from None


def read_onnx_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata an :func:`export_onnx` file carries, with ints, bools and kwargs parsed.

    Keys: ``model_name``, ``model_kwargs`` (dict; with ``model_name`` they rebuild the
    model with ``create_model``), ``kind``, ``scale``, ``size_multiple``, ``in_channels``,
    ``min_side``, ``restorekit_version``, ``dynamic_spatial`` (bool), ``export_height``,
    ``export_width`` (the traced size, or the only one accepted), ``opset``,
    ``input_name``, ``output_name``, ``layout``; metadata from other tools stays text.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not an ONNX file.
    """
    onnx = _require("onnx")
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such ONNX file")
    try:
        proto = onnx.load(str(source), load_external_data=False)
    except Exception as err:  # protobuf raises its own DecodeError
        raise ValueError(f"{source}: not a readable ONNX file ({_first_line(err)})") from None
    meta: dict[str, Any] = {}
    for entry in proto.metadata_props:
        key, value = entry.key, entry.value
        try:
            if key in _INT_KEYS:
                meta[key] = int(value)
            elif key in _JSON_KEYS:
                meta[key] = json.loads(value)
            elif key in _BOOL_KEYS:
                meta[key] = value == "true"
            else:
                meta[key] = value
        except ValueError:  # written by another tool; keep the text
            meta[key] = value
    return meta


def _session(model: Any, providers: Sequence[str] = ("CPUExecutionProvider",)) -> Any:
    ort = _require("onnxruntime")
    if isinstance(model, ort.InferenceSession):
        return model
    source = Path(model)
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such ONNX file")
    options = ort.SessionOptions()
    # Idle onnxruntime threads otherwise spin for a while after each run, taking the CPU
    # from the torch code that usually runs next (here: the check's reference).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(source), options, providers=list(providers))
    except Exception as err:  # onnxruntime raises its own error types
        raise ValueError(f"{source}: onnxruntime cannot load it ({_first_line(err)})") from None


def run_onnx(
    model: str | os.PathLike[str] | Any,
    x: Tensor,
    *,
    providers: Sequence[str] = ("CPUExecutionProvider",),
) -> Tensor:
    """Run an exported file (or an ``onnxruntime.InferenceSession``) on a batch.

    Args:
        model: the ``.onnx`` path, or a session (reused: loading costs more than a run).
        x: (B, C, H, W) float in [0, 1] (of the file's C; H and W fixed for a static
            export); any device and float dtype, run as float32 on the CPU.
        providers: onnxruntime execution providers, in order of preference.

    Returns:
        The graph's first output as a float32 tensor on ``x``'s device:
        (B, C, scale*H, scale*W) for a restoration model.

    Raises:
        ValueError: ``x`` does not fit the file's input, or the file cannot be loaded.
        FileNotFoundError: no such file.
    """
    session = _session(model, providers)
    if not isinstance(x, Tensor) or x.ndim != 4 or not x.is_floating_point():
        got = f"{tuple(x.shape)} {x.dtype}" if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"x must be a float (B, C, H, W) tensor, got {got}")
    spec = session.get_inputs()[0]
    # Fixed axes of the file are ints; dynamic ones are names such as "height".
    fixed = [(i, d) for i, d in enumerate(spec.shape) if isinstance(d, int)]
    if any(x.shape[i] != d for i, d in fixed):
        want = tuple(d if isinstance(d, int) else str(d) for d in spec.shape)
        raise ValueError(f"the ONNX input {spec.name!r} has shape {want}, got {tuple(x.shape)}")
    array = x.detach().to("cpu", torch.float32).contiguous().numpy()
    (out, *_) = session.run(None, {spec.name: array})
    return torch.from_numpy(out).to(x.device)


def _first_line(err: BaseException) -> str:
    """The innermost cause's first line: torch.onnx wraps the telling error in generic ones."""
    while err.__cause__ is not None:
        err = err.__cause__
    text = (str(err).strip().splitlines() or [""])[0][:300]
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
