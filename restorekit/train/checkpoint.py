"""Checkpoints that survive being killed at any moment, and rebuild their model alone.

A run folder holds one sub-folder per saved step and a ``latest`` file naming the newest
complete one::

    run/
      latest                      -> "step-00001200"
      step-00001200/
        model.safetensors         weights + metadata: model name and kwargs (JSON)
        discriminator.safetensors (GAN runs; any extra module, same format)
        state.pt                  optimiser, scheduler, step, RNG states, config
      best.safetensors            the best validation checkpoint's weights

A step folder is written under a temporary name and renamed when complete, then
``latest`` is replaced atomically; so a SIGKILL at any instant leaves ``latest`` naming a
complete, consistent set of files. ``state.pt`` holds only tensors and plain Python
values and is read with ``torch.load(weights_only=True)``; weights are safetensors.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

from restorekit.io.weights import read_weights as load_weights
from restorekit.utils import atomic_path

__all__ = [
    "Checkpoint",
    "capture_rng",
    "load_checkpoint",
    "load_weights",
    "restore_rng",
    "save_checkpoint",
    "save_weights",
]

LATEST = "latest"


def save_weights(path: str | os.PathLike[str], model: nn.Module, **meta: Any) -> None:
    """Write ``model``'s state_dict as safetensors (atomically), with rebuild metadata.

    The metadata holds ``model_name`` and ``model_kwargs`` (set by ``create_model``) plus
    any JSON-serialisable ``meta`` given, so :func:`load_weights` and
    ``restorekit.load_model`` can rebuild the model from the file alone.
    """
    tensors = {
        k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()
    }
    header = {
        "model_name": getattr(model, "model_name", type(model).__name__),
        "model_kwargs": getattr(model, "model_kwargs", {}),
        **meta,
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={k: json.dumps(v) for k, v in header.items()})


def capture_rng() -> dict[str, Any]:
    """Every RNG state a training step can consume: torch (CPU, CUDA), Python, NumPy."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": _to_lists(random.getstate()),
        # NumPy's state holds an ndarray, which weights_only loading refuses: keep a tensor.
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
    }


def restore_rng(state: dict[str, Any]) -> None:
    """Undo :func:`capture_rng`: the next random draws equal those after the capture."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))


@dataclass
class Checkpoint:
    """A loaded checkpoint: weights per module name, the state dict, and its folder."""

    folder: Path
    weights: dict[str, dict[str, torch.Tensor]]
    meta: dict[str, dict[str, Any]]
    state: dict[str, Any]

    @property
    def step(self) -> int:
        return int(self.state["step"])


def save_checkpoint(
    run_dir: str | os.PathLike[str],
    *,
    step: int,
    modules: dict[str, nn.Module],
    state: dict[str, Any],
    keep: int = 2,
) -> Path:
    """Save ``modules`` (e.g. ``{"model": g, "discriminator": d}``) and ``state`` for ``step``.

    ``state`` must hold only tensors and plain Python values (optimizer and scheduler
    ``state_dict()``s, RNG states from :func:`capture_rng`, the config as a dict); the
    step is stored in it. Older step folders beyond the newest ``keep`` are removed.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:08d}"
    final = run_dir / name
    tmp = run_dir / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)  # left by a run killed while saving
    tmp.mkdir()
    for module_name, module in modules.items():
        save_weights(tmp / f"{module_name}.safetensors", module, step=step)
    torch.save({**state, "step": step}, tmp / "state.pt")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    with atomic_path(run_dir / LATEST) as pointer:
        pointer.write_text(name + "\n")
    _prune(run_dir, keep=keep, current=name)
    return final


def load_checkpoint(run_dir: str | os.PathLike[str]) -> Checkpoint | None:
    """The checkpoint ``latest`` names in ``run_dir``, or None when there is none yet."""
    run_dir = Path(run_dir)
    pointer = run_dir / LATEST
    if not pointer.is_file():
        return None
    folder = run_dir / pointer.read_text().strip()
    state_file = folder / "state.pt"
    if not state_file.is_file():
        raise ValueError(f"{pointer}: names {folder.name}, which has no state.pt")
    try:
        state = torch.load(state_file, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle and zip errors have many types
        raise ValueError(f"{state_file}: not a readable checkpoint state ({err})") from None
    weights, meta = {}, {}
    for file in sorted(folder.glob("*.safetensors")):
        weights[file.stem], meta[file.stem] = load_weights(file)
    return Checkpoint(folder=folder, weights=weights, meta=meta, state=state)


def _prune(run_dir: Path, *, keep: int, current: str) -> None:
    steps = sorted(p for p in run_dir.glob("step-*") if p.is_dir())
    for old in steps[: max(len(steps) - keep, 0)]:
        if old.name != current:
            shutil.rmtree(old, ignore_errors=True)


def _to_lists(value: Any) -> Any:
    """Tuples -> lists recursively (Python's RNG state is a nested tuple of ints)."""
    if isinstance(value, tuple):
        return [_to_lists(v) for v in value]
    return value
