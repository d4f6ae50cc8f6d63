"""The Python API: ``load_model`` a trained model and ``restore`` images with it.

>>> import restorekit
>>> model = restorekit.load_model("srcnn", scale=2, filters=(8, 4))  # untrained: a warning
>>> restorekit.restore(np.zeros((5, 7), dtype=np.uint8), model=model).shape
(10, 14)

``load_model`` takes, in this order of lookup:

1. a path to a ``.safetensors`` file written by ``save_weights`` (the model is rebuilt
   from the file's ``model_name`` and ``model_kwargs`` metadata alone);
2. a path to a training run folder: its ``best.safetensors``, else the model weights of
   the checkpoint its ``latest`` file names;
3. the name of a shipped weights file, ``restorekit/weights/<name>.safetensors``
   (:func:`list_weights` names them);
4. a registered model name (``restorekit.list_models()``), built with ``**kwargs`` and
   loaded with ``weights=`` (a ``.safetensors`` file, or a ``.pth``/``.pt`` file read with
   ``torch.load(weights_only=True)``, never unpickled). Without weights the model is
   untrained: a warning is logged and ``model.untrained`` is True.

A classical baseline's name (``restorekit.baselines.list_baselines()``: median, nlm, bm3d,
dcp, ...) gives that baseline, with ``**kwargs`` as its options, so every command that
takes a model takes a baseline too.

A plain string without a path separator is looked up as a shipped or registered name
first, so a run folder called ``srcnn`` in the working directory is ``"./srcnn"``.

``restore`` runs any of those (or any ``nn.Module`` with ``scale``/``size_multiple``)
through :func:`restorekit.inference.restore_tensor` (tiles, self-ensemble, the
machine's precision).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import Tensor, nn

from restorekit.baselines import create_baseline, list_baselines
from restorekit.hardware import check_device
from restorekit.inference import restore_channels
from restorekit.io import read_image, read_nifti_slices, volume_name, write_nifti_slices
from restorekit.io.weights import TORCH_SUFFIXES, read_weights
from restorekit.models import adapt_state, create_model, list_models, model_signature
from restorekit.train.checkpoint import load_checkpoint
from restorekit.utils import WEIGHTS_DIR

__all__ = ["WEIGHTS_DIR", "list_weights", "load_model", "restore"]

logger = logging.getLogger(__name__)


PathLike = str | os.PathLike[str]
ImageT = TypeVar("ImageT", str, os.PathLike, np.ndarray, Tensor)

# Keys under which other tools nest a state_dict inside a .pth file (BasicSR: "params").
_MAX_KEYS_SHOWN = 5


WEIGHTS_ALIASES = {"sr_edsr": "sr_edsr_x2"}
"""Older shipped names that still load: ``sr_edsr`` was the only scale before x3 and x4."""


def list_weights() -> list[str]:
    """Names of the shipped weights files (``restorekit/weights/*.safetensors``), sorted.

    Empty when the package ships none. Each name is accepted by :func:`load_model`.
    """
    if not WEIGHTS_DIR.is_dir():
        return []
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.safetensors") if p.is_file())


@dataclass(frozen=True)
class ShippedCard:
    """What a shipped model's card says, in brief (:func:`shipped_cards`)."""

    name: str
    task: str  # the card's first line of description
    domain: str  # what it was trained on ("" when the card does not say)
    score: str  # its held-out PSNR / SSIM beside the best classical baseline's
    protocol: str = ""  # how that score was measured, in brief ("" when the card has none)


def shipped_cards() -> list[ShippedCard]:
    """Each shipped weights file with its task, domain and held-out score, read from its
    card (``restorekit/weights/NAME.md``); what ``restorekit weights`` prints."""
    out = []
    for name in list_weights():
        card = WEIGHTS_DIR / f"{name}.md"
        text = card.read_text() if card.is_file() else ""
        lines = [line.strip() for line in text.splitlines()]
        task = next((line for line in lines[1:] if line and not line.startswith("#")), "")
        domain = next((line.removeprefix("- Domain: ").split(" (other")[0]
                       for line in lines if line.startswith("- Domain: ")), "")  # fmt: skip
        score, protocol = _card_score(name, lines), _brief_protocol(lines)
        out.append(ShippedCard(name, task, domain, score, protocol))
    return out


def _brief_protocol(lines: list[str]) -> str:
    """The first ``Protocol:`` line of a card, cut to what a score needs beside it: the
    images, channels, border crop, degradation and the precision the model ran in."""
    line = next((x.removeprefix("Protocol: ") for x in lines if x.startswith("Protocol: ")), "")
    if not line:
        return ""
    head = line.split("; seed")[0]  # images; channels; crop; data range
    degradation = re.search(r"; seeds? [\d, ]+(?: \([^)]*\))?: (.*?); outputs", line)
    precision = re.search(r"models in ([^,;(]+)", line)
    parts = [head.removesuffix("; data range 1")]
    parts += [degradation.group(1)] if degradation else []
    parts += [f"models in {precision.group(1).strip()}"] if precision else []
    return "; ".join(parts)


def _card_score(name: str, lines: list[str]) -> str:
    """``"33.34 dB / 0.9507 (best classical: bm3d 33.79 / 0.9559)"`` from a card's first
    results table, or ``"see its card"`` when there is none."""
    rows: dict[str, tuple[str, str]] = {}
    table = False  # inside the first "| method | images | PSNR | SSIM |" table
    for line in lines:
        cells = [c.strip() for c in line.strip("|").split("|")] if line.startswith("|") else []
        if not table:
            table = len(cells) == 4 and cells[0] == "method"
        elif not cells:
            break
        elif cells[0] not in ("---", "degraded input"):
            rows.setdefault(cells[0], (cells[2].split(" ")[0], cells[3].split(" ")[0]))
    if name not in rows:
        return "see its card"
    own = f"{rows[name][0]} dB / {rows[name][1]}"
    # The row inference.ensemble_label names: the model run with self-ensemble.
    ensemble = next((v for m, v in rows.items() if m.startswith(f"{name} + self-ensemble")), None)
    if ensemble is not None:
        own += f", {ensemble[0]} / {ensemble[1]} with --ensemble"
    # Baselines print their options; the model's own ensemble row is not one.
    classical = {m: v for m, v in rows.items() if "(" in m and not m.startswith(name)}
    if not classical:
        return own
    best = max(classical, key=lambda m: float(classical[m][0]))
    return (
        f"{own} (best classical: {best.split('(')[0]} {classical[best][0]} / {classical[best][1]})"
    )


def load_model(
    name_or_path: PathLike,
    *,
    weights: PathLike | None = None,
    device: str | torch.device = "cpu",
    **kwargs: Any,
) -> nn.Module:
    """Build a model, load its weights, and put it in eval mode on ``device``.

    Args:
        name_or_path: a ``.safetensors`` file from ``save_weights``, a run folder, a
            shipped weights name, or a registered model name (see the module docstring
            for the order of lookup).
        weights: only with a registered model name: a ``.safetensors`` or ``.pth``/``.pt``/
            ``.pk`` file of its state_dict (a ``.pth`` may nest it under "state_dict",
            "params" or "model"; a "module." prefix from DataParallel is removed), in the
            model's own key layout or one its ``adapt_state_dict`` converts (the official
            FFA-Net checkpoints: ``load_model("ffa", weights="its_train_ffa_3_19.pk")``).
        device: where the model is put.
        **kwargs: only with a registered model name: its constructor arguments.

    Returns:
        The model in eval mode, with ``model.untrained`` (True when no weights were
        loaded), ``model.weights_file`` (the file read, or None) and ``model.domain``
        (what the weights were trained on, when their card records it, else None) and
        ``model.auto_precision`` (``"fp32"`` for weights that ``auto`` must not run in
        bf16, else None) and ``model.ensemble_group`` (``"hflip"`` for weights trained
        on mirrors only, which ``ensemble=True`` then averages over; else
        ``"dihedral"``).

    Raises:
        FileNotFoundError: a path that does not exist, or a run folder without weights.
        ValueError: an unknown name, options given for a file, an unreadable file, or
            weights that do not fit the model (naming the file and the first keys).
    """
    device = check_device(device)
    if isinstance(name_or_path, str) and name_or_path in list_baselines():
        # A classical baseline restores like a model (no weights; kwargs are its options).
        if weights is not None:
            raise ValueError(f"baseline {name_or_path!r} has no weights to load")
        baseline = create_baseline(name_or_path, **kwargs).to(device).eval()
        baseline.untrained, baseline.weights_file = False, None
        return baseline
    source = _resolve(name_or_path)
    if source is None:
        raise ValueError(
            f"unknown model {str(name_or_path)!r}: not a file or folder, a shipped weights "
            f"name ({', '.join(list_weights()) or 'none shipped'}), a registered model "
            f"({', '.join(list_models())}) or a baseline ({', '.join(list_baselines())})"
        )
    kind, target = source
    if kind != "name" and (weights is not None or kwargs):
        given = ["weights="] if weights is not None else []
        given += [f"{k}=" for k in kwargs]
        raise ValueError(
            f"{target}: {', '.join(given)} apply only to a registered model name; a weights "
            "file or run folder rebuilds its model from its own metadata"
        )
    if kind == "name":
        model = create_model(str(target), **kwargs)
        if weights is None:
            logger.warning(
                "model %r has no weights: it is untrained and its output is meaningless",
                target,
            )
            file = None
        else:
            file = Path(weights)
            state = read_weights(file)[0]
            _load_state(model, state, file)
    else:
        file = _run_weights(target) if kind == "folder" else target
        model = _rebuild(file)
    if file is not None:
        bad = next((n for n, t in model.state_dict().items()
                    if t.is_floating_point() and not torch.isfinite(t).all()), None)  # fmt: skip
        if bad is not None:
            raise ValueError(f"{file}: the weights hold NaN or infinite values (in {bad})")
    model.untrained = file is None
    model.weights_file = None if file is None else str(file)
    model.domain, model.auto_precision, model.ensemble_group = _shipped_meta(file)
    return model.to(device).eval()


def _shipped_meta(file: Path | None) -> tuple[dict[str, Any] | None, str | None, str]:
    """What a weights file's metadata says of its use: the domain it was trained on
    (``{"description": "48x48 gray faces ...", "size": 48, "channels": 1}``), ``"fp32"``
    when bf16 autocast costs it accuracy (see :mod:`restorekit.hardware`), and the
    flips its self-ensemble averages over (``"hflip"`` when it was trained on mirrors
    only, else ``"dihedral"``; see :mod:`restorekit.inference`)."""
    if file is None or file.suffix.lower() != ".safetensors":
        return None, None, "dihedral"
    meta = read_weights(file)[1]
    domain = meta.get("domain")
    precision = "fp32" if meta.get("auto_precision") == "fp32" else None
    group = "hflip" if meta.get("augment") == "hflip" else "dihedral"
    return (domain if isinstance(domain, dict) else None), precision, group


def restore(
    image: ImageT,
    *,
    model: nn.Module | PathLike,
    weights: PathLike | None = None,
    tile: int | None = None,
    overlap: int = 32,
    ensemble: bool = False,
    precision: str = "auto",
    memory_format: str = "auto",
    device: str | torch.device = "cpu",
    progress: Callable[[int, int], None] | None = None,
    memory_budget: int | str | None = "auto",
) -> ImageT | Tensor:
    """Restore one image (or a batch) with ``model``, returning the same kind of image.

    Kinds of ``image`` and what comes back (``s`` is the model's ``scale``):

    - a path: read with :func:`restorekit.io.read_image`; returns a (C, sH, sW) float32
      tensor in [0, 1].
    - a numpy array (H, W) or (H, W, C), C in 1..4, uint8, uint16 (rescaled from
      their full range) or float in [0, 1]: returns (sH, sW) or (sH, sW, C) of the same
      dtype, rounded for the integer ones.
    - a float tensor (C, H, W) or (B, C, H, W) in [0, 1]: returns the same layout,
      dtype and device.

    Channels: 2 and 4 channels are gray+alpha and RGBA; the alpha is set aside, passed
    through unchanged (bicubic-resized with ``imresize`` and clipped when ``s > 1``) and
    put back. A 1-channel model on RGB restores each channel separately; a 3-channel
    model on gray gets the gray replicated to RGB and returns the mean of its output
    channels. A model whose channel count equals the image's takes it as is, alpha
    included.

    Args:
        image: the image, as above.
        model: an ``nn.Module`` (moved to ``device``, put in eval mode) or anything
            :func:`load_model` accepts.
        weights: a weights file for ``model``: passed to :func:`load_model` with a name,
            or loaded into a module given as ``model``.
        tile: run tiles of this many input pixels a side (bounded memory); None: whole.
        overlap: context around each tile, in input pixels.
        ensemble: average the 8 flips and rotations (8x the time).
        precision: ``"auto"`` (bf16 autocast where the hardware has native bf16, else
            fp32), ``"fp32"`` or ``"bf16"``; see :mod:`restorekit.hardware`.
        memory_format: ``"auto"``, ``"channels_last"`` or ``"contiguous"``.
        device: where the model runs.
        progress: called as ``progress(done, total)`` after each tile.
        memory_budget: without ``tile``, tile anyway when the untiled forward would need
            more than this many bytes (``"auto"``: half the RAM; None: never); see
            :mod:`restorekit.inference`.

    Raises:
        ValueError: an unsupported shape, dtype or channel count, float values outside
            [0, 1] or not finite, ``tile < 1`` or ``overlap < 0``; the errors of
            :func:`load_model` and :func:`restorekit.io.read_image`.
    """
    if tile is not None and (isinstance(tile, bool) or tile < 1):
        raise ValueError(f"tile must be a positive number of pixels or None, got {tile!r}")
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0, got {overlap!r}")
    net = _network(model, weights, device)

    def run(x: Tensor) -> Tensor:  # (B, C, H, W) float32 in [0, 1] -> (B, C, sH, sW)
        options = {"tile": tile, "overlap": overlap, "ensemble": ensemble, "precision": precision,
                   "memory_format": memory_format, "progress": progress,
                   "memory_budget": memory_budget}  # fmt: skip
        return restore_channels(net, x.to(device), **options)

    if isinstance(image, (str, os.PathLike)):
        return run(read_image(image)[None]).cpu()[0]
    if isinstance(image, np.ndarray):
        return _restore_array(run, image)
    if isinstance(image, Tensor):
        return _restore_tensor_image(run, image)
    raise ValueError(
        f"image must be a path, a numpy array or a torch tensor, not {type(image).__name__}"
    )


def restore_volume(
    src: PathLike,
    dst: PathLike,
    *,
    model: nn.Module | PathLike,
    weights: PathLike | None = None,
    device: str | torch.device = "cpu",
    batch: int = 8,
    **options: Any,
) -> Path:
    """Restore every slice of a volume and write it to ``dst`` as NIfTI (``.nii`` or
    ``.nii.gz``): super-resolution in plane, or denoising; returns ``dst``.

    ``src`` is a NIfTI file, or DICOM: one file, or a folder holding one series (its
    voxel grid from the image plane tags; see :func:`restorekit.io.read_nifti_slices`).

    The slices run along the third voxel axis (axial for RAS volumes), every volume of a
    4D file included. Intensities are mapped from the file's [min, max] to [0, 1], as
    :func:`restorekit.io.read_volume` maps them for training, and back after; the output
    is float32. With a ``scale``-``s`` model the in-plane voxels shrink ``s`` times:
    the affine and the header's voxel sizes follow, and the field of view stays the
    same (see :func:`restorekit.io.volumes.write_nifti_slices`).

    Args:
        src: the NIfTI file, DICOM file or DICOM series folder.
        dst: where to write (atomically); ``.nii.gz`` is compressed.
        model, weights, device: as for :func:`restore`.
        batch: slices per forward pass.
        **options: :func:`restore`'s ``tile``, ``overlap``, ``ensemble``, ``precision``,
            ``memory_format`` and ``memory_budget``.

    Raises:
        ValueError: ``src`` is not a readable volume, ``dst`` is not named as NIfTI or
            would replace ``src``; the errors of :func:`restore`.
    """
    source, target = Path(src), Path(dst)
    if volume_name(source) is None:
        raise ValueError(f"{source}: not a NIfTI file, DICOM file or DICOM series folder")
    if target.resolve() == source.resolve():
        raise ValueError(f"{target}: would replace its input; inputs are never overwritten")
    net = _network(model, weights, device)
    volume = read_nifti_slices(source)
    restored = [restore(chunk, model=net, device=device, **options)
                for chunk in volume.slices.split(batch)]  # fmt: skip
    write_nifti_slices(target, torch.cat(restored), volume)
    return target


def _network(model: nn.Module | PathLike, weights: PathLike | None, device: Any) -> nn.Module:
    """``model`` on ``device``: a module (``weights`` loaded into it, if given), or
    anything :func:`load_model` accepts."""
    if not isinstance(model, nn.Module):
        return load_model(model, weights=weights, device=device)
    if weights is not None:
        file = Path(weights)
        state = read_weights(file)[0]
        _load_state(model, state, file)
    return model.to(device)


# ------------------------------------------------------------------------ input kinds


def _restore_array(run: Any, image: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, C) uint8/uint16/float -> the same layout and dtype, ``scale`` x."""
    if image.ndim not in (2, 3) or (image.ndim == 3 and not 1 <= image.shape[2] <= 4):
        raise ValueError(
            f"a numpy image must be (H, W) or (H, W, C) with C in 1..4, got {image.shape}"
        )
    if image.dtype in (np.uint8, np.uint16):
        peak = float(np.iinfo(image.dtype).max)
    elif image.dtype.kind == "f":
        peak = 1.0
    else:
        raise ValueError(f"a numpy image must be uint8, uint16 or float, not {image.dtype}")
    hwc = image[..., None] if image.ndim == 2 else image
    x = torch.from_numpy(np.ascontiguousarray(hwc, dtype=np.float32)).permute(2, 0, 1)[None]
    if peak == 1.0:
        _check_range(x, "numpy image")
    else:
        x = x / peak
    y = run(x)[0].permute(1, 2, 0).cpu().double().numpy()  # (sH, sW, C)
    if peak != 1.0:
        y = np.round(y * peak)  # values are in [0, 1]: no clipping needed after rounding
    out = y.astype(image.dtype)
    return out[..., 0] if image.ndim == 2 else out


def _restore_tensor_image(run: Any, image: Tensor) -> Tensor:
    """(C, H, W) or (B, C, H, W) float in [0, 1] -> the same layout, dtype and device."""
    if image.ndim not in (3, 4) or not image.is_floating_point():
        raise ValueError(
            "a tensor image must be float (C, H, W) or (B, C, H, W) in [0, 1], got "
            f"{tuple(image.shape)} {image.dtype}"
        )
    x = image.detach().float()
    _check_range(x, "tensor image")
    y = run(x[None] if image.ndim == 3 else x)
    y = y.to(image.device, image.dtype)
    return y[0] if image.ndim == 3 else y


def _check_range(x: Tensor, what: str) -> None:
    if not torch.isfinite(x).all():
        raise ValueError(f"the {what} holds NaN or infinite values")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0 or hi > 1:
        raise ValueError(f"the {what} must be in [0, 1], got values in [{lo:g}, {hi:g}]")


# ------------------------------------------------------------------------ loading


def _resolve(name_or_path: PathLike) -> tuple[str, Any] | None:
    """("file", Path) | ("folder", Path) | ("shipped", Path) | ("name", str) | None."""
    text = os.fspath(name_or_path)
    plain = isinstance(name_or_path, str) and "/" not in text and os.sep not in text
    if plain and text in WEIGHTS_ALIASES:
        text = WEIGHTS_ALIASES[text]
    if plain and text in list_weights():
        return "shipped", WEIGHTS_DIR / f"{text}.safetensors"
    if plain and text in list_models():
        return "name", text
    path = Path(text)
    if path.is_dir():
        return "folder", path
    if path.is_file():
        if path.suffix.lower() in TORCH_SUFFIXES:
            raise ValueError(
                f"{path}: a {path.suffix} file holds no model name or arguments; pass the model "
                f"name and weights={path.name!r}"
            )
        return "file", path
    if not plain or path.suffix:
        raise FileNotFoundError(f"{path}: no such weights file or run folder")
    return None


def _run_weights(folder: Path) -> Path:
    """A run folder's ``best.safetensors``, else its latest checkpoint's model weights."""
    best = folder / "best.safetensors"
    if best.is_file():
        return best
    checkpoint = load_checkpoint(folder)
    if checkpoint is None:
        raise FileNotFoundError(
            f"{folder}: no best.safetensors and no 'latest' checkpoint; not a run folder?"
        )
    file = checkpoint.folder / "model.safetensors"
    if not file.is_file():
        raise FileNotFoundError(f"{checkpoint.folder}: the checkpoint has no model.safetensors")
    return file


def _rebuild(file: Path) -> nn.Module:
    """A model rebuilt from a ``save_weights`` file's metadata, with its weights."""
    state, meta = read_weights(file)
    name = meta.get("model_name")
    if not isinstance(name, str):
        raise ValueError(
            f"{file}: no model_name in its metadata (not written by save_weights?); pass "
            "the model name and weights= instead"
        )
    model_kwargs = meta.get("model_kwargs") or {}
    if not isinstance(model_kwargs, dict):
        raise ValueError(f"{file}: model_kwargs metadata is not a mapping: {model_kwargs!r}")
    _check_size(file, name, model_kwargs, state)
    if model_kwargs.get("pretrained"):
        # Checkpoints store every resolved argument; the file's weights replace any
        # ImageNet initialisation, so none is read.
        model_kwargs = {**model_kwargs, "pretrained": False}
    try:
        model = create_model(name, **model_kwargs)
    except ValueError as err:
        raise ValueError(f"{file}: cannot rebuild its model: {err}") from None
    _load_state(model, state, file)
    return model


def _check_size(file: Path, name: str, kwargs: dict[str, Any], state: dict[str, Tensor]) -> None:
    """Refuse metadata that asks for a model far bigger than the tensors in the file.

    Metadata is untrusted: ``filters: 6000`` in a 230 KB file made the loader allocate
    3.8 GB before any shape check. The model is built on the meta device first (no
    memory), and its size compared with what the file holds.
    """
    probe_kwargs = dict(kwargs)
    if "pretrained" in model_signature(name).parameters:
        probe_kwargs["pretrained"] = False  # weights files are not read on the meta device
    try:
        with torch.device("meta"):
            probe = create_model(name, **probe_kwargs)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{file}: cannot rebuild its model: {err}") from None
    except Exception:  # a model that cannot be built on meta: the load below checks it
        return
    wanted = sum(t.numel() for t in probe.state_dict().values())
    held = sum(t.numel() for t in state.values())
    if wanted > 2 * held + 1024:
        raise ValueError(
            f"{file}: its metadata asks for a {name} of {wanted:,} values but the file holds "
            f"{held:,}: the metadata does not describe these weights"
        )


def _load_state(model: nn.Module, state: dict[str, Tensor], file: Path) -> None:
    """``model.load_state_dict(state)`` (after :func:`~restorekit.models.adapt_state`),
    with an error naming the file and the keys."""
    state = adapt_state(model, state)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys {_first(missing)}")
        if unexpected:
            parts.append(f"unexpected keys {_first(unexpected)}")
        name = getattr(model, "model_name", type(model).__name__)
        raise ValueError(f"{file}: weights do not fit model {name!r}: " + "; ".join(parts))
    for key, value in own.items():
        if state[key].shape != value.shape:
            raise ValueError(
                f"{file}: weights do not fit the model: {key} has shape "
                f"{tuple(state[key].shape)} in the file but {tuple(value.shape)} in the model"
            )
    model.load_state_dict(state)


def _first(keys: list[str]) -> str:
    shown = ", ".join(keys[:_MAX_KEYS_SHOWN])
    more = len(keys) - _MAX_KEYS_SHOWN
    return f"{shown} (and {more} more)" if more > 0 else shown
