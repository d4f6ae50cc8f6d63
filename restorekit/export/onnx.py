"""The export itself: ``torch.onnx.export(dynamo=True)`` of a model's export-safe
forward, with rebuild metadata, checked (:mod:`restorekit.export.check`) and written
atomically; a static export when a dynamic one fails."""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from restorekit.export.check import CheckError, _probe_sizes, _Spec, _trace_size, compare
from restorekit.export.runtime import _first_line, _require
from restorekit.models.base import Discriminator, Restorer, set_export_safe
from restorekit.utils import atomic_path, check_positive, make_generator

__all__ = ["DEFAULT_OPSET", "DEFAULT_SIZE", "OnnxExport", "export_onnx"]

logger = logging.getLogger(__name__)

# torchlib writes its translations in opset 18, so 18 needs no version conversion, and
# every current runtime (onnxruntime >= 1.14, TensorRT >= 8.6) reads it.
DEFAULT_OPSET = 18
DEFAULT_SIZE = 256
_PROTOBUF_LIMIT = 2**31 - 1  # one ONNX file holds at most 2 GiB


@dataclass(frozen=True)
class OnnxExport:
    """What :func:`export_onnx` wrote.

    Attributes:
        path: the ONNX file.
        model_name: registry name (``model.model_name``), or the class name.
        kind: ``"restorer"`` or ``"discriminator"``.
        dynamic: True if H and W are dynamic; False if the file accepts only
            ``height`` x ``width`` inputs (the batch size is always free).
        height, width: the input size traced (dynamic) or the only size accepted (static).
        opset: the ONNX opset.
        input_name, output_name: the graph's input and output names.
        max_abs_error: worst |onnx - torch| of the check, or None when not checked.
        static_reason: why the spatial axes are fixed (None when dynamic).
    """

    path: Path
    model_name: str
    kind: str
    dynamic: bool
    height: int
    width: int
    opset: int
    input_name: str
    output_name: str
    max_abs_error: float | None
    static_reason: str | None


def _remainder_scalar(self: Any, other: Any) -> Any:
    """ONNX translation of ``aten.remainder.Scalar`` that accepts a symbolic divisor.

    Python's sign rule (the result takes the divisor's sign): ``Mod`` with ``fmod=0`` for
    integers, ``a - floor(a / b) * b`` for floats, as torchlib's own translation.
    """
    import onnx_ir as ir
    from onnxscript import opset18 as op

    if isinstance(other, (int, float)):
        other = op.Constant(value=ir.tensor(other, dtype=self.dtype))
    else:
        other = op.CastLike(other, self)
    if self.dtype.is_integer():
        return op.Mod(self, other)
    return op.Sub(self, op.Mul(op.Floor(op.Div(self, other)), other))


def _describe(model: nn.Module) -> _Spec:
    """The model's :class:`_Spec`; ValueError for a model this module cannot export."""
    if isinstance(model, Restorer):
        return _Spec("restorer", model.in_channels, model.scale, model.size_multiple, 1)
    if isinstance(model, Discriminator):
        return _Spec("discriminator", model.in_channels, 1, 1, model.min_side)
    raise ValueError(
        f"cannot export {type(model).__name__}: not a restorekit restoration model "
        "(a Restorer) or discriminator"
    )


def _check_path(path: str | os.PathLike[str]) -> Path:
    target = Path(path)
    if target.suffix.lower() != ".onnx":
        raise ValueError(f"{target}: an ONNX file name must end in .onnx")
    if target.is_dir():
        raise ValueError(f"{target}: is a folder, not an .onnx file name")
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(f"{target}: {parent} is not a folder")
            break
    return target


def export_onnx(
    model: nn.Module | str,
    path: str | os.PathLike[str],
    *,
    height: int = DEFAULT_SIZE,
    width: int = DEFAULT_SIZE,
    dynamic: bool = True,
    opset: int = DEFAULT_OPSET,
    check: bool = True,
) -> OnnxExport:
    """Export a restoration model (or a discriminator) to an ONNX file, atomically.

    The model is copied, moved to the CPU in float32 and put in eval mode (dropout off,
    BatchNorm statistics frozen); the caller's model is not changed. Metadata (see
    :func:`read_onnx_metadata`) records the model name and kwargs, scale, size multiple,
    channels, restorekit version and whether H and W are dynamic. The file appears at
    ``path`` only once it is complete and, with ``check``, verified.

    Args:
        model: a model built by ``restorekit.create_model`` (weights loaded), or a
            registered name (built with default arguments and random weights).
        path: the ``.onnx`` file to write; missing folders are created.
        height, width: input size of a static export, and of the fallback when a
            dynamic export is not possible. Dynamic exports trace at a small size chosen
            so that every size-dependent path is the general one (module doc).
        dynamic: make H and W dynamic (one file for every image size). If that fails,
            the export falls back to ``height`` x ``width`` and says why (a warning and
            :attr:`OnnxExport.static_reason`).
        opset: ONNX opset; 18 needs no conversion (:data:`DEFAULT_OPSET`).
        check: run the file with onnxruntime and compare it with PyTorch on seeded
            random images (needs onnxruntime). Without it, nothing verifies that a
            dynamic graph is right at sizes other than the traced one.

    Returns:
        An :class:`OnnxExport` describing the file.

    Raises:
        ValueError: unknown model name, not a restorekit model, a bad ``path``
            (not ``.onnx``, a folder) or bad sizes.
        NotADirectoryError: a parent of ``path`` is a file.
        ImportError: onnx, onnxscript (or, with ``check``, onnxruntime) is missing.
        RuntimeError: the model cannot be exported even at a fixed size, or the
            exported graph disagrees with PyTorch.
    """
    if isinstance(model, str):
        from restorekit.models import create_model

        model = create_model(model)
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module or a registered name, got {model!r}")
    spec = _describe(model)
    target = _check_path(path)
    height, width = check_positive("height", height), check_positive("width", width)
    if min(height, width) < spec.min_side:
        raise ValueError(f"height and width must be at least {spec.min_side} for this model")
    if not isinstance(opset, int) or isinstance(opset, bool) or opset < 18:
        raise ValueError(f"opset must be an integer >= 18, got {opset!r}")
    _require("onnx")
    _require("onnxscript")
    if check:
        _require("onnxruntime")
    n_bytes = sum(t.numel() * 4 for t in (*model.parameters(), *model.buffers()))
    if n_bytes >= _PROTOBUF_LIMIT:
        raise ValueError(f"model has {n_bytes / 2**30:.1f} GiB of weights; ONNX files hold 2")

    # The export-safe path (module doc, 1 and 2) on a copy: the model is left as it was.
    net = set_export_safe(copy.deepcopy(model).to(device="cpu", dtype=torch.float32).eval())
    name = getattr(model, "model_name", type(model).__name__)
    export = _Export(
        graph=net,
        reference=set_export_safe(copy.deepcopy(net), False),
        spec=spec,
        opset=opset,
        check=check,
        metadata={
            "model_name": name,
            "model_kwargs": json.dumps(
                getattr(model, "model_kwargs", {}), sort_keys=True, default=repr
            ),
            "kind": spec.kind,
            "scale": spec.scale,
            "size_multiple": spec.size_multiple,
            "in_channels": spec.in_channels,
            "restorekit_version": _version(),
            "opset": opset,
            "input_name": spec.input_name,
            "output_name": spec.output_name,
            "layout": "(B, C, H, W) float32, values in [0, 1]",
        },
    )

    with atomic_path(target) as tmp:
        size, error, static_reason = None, None, None
        if dynamic:
            trace = _trace_size(spec.size_multiple, spec.min_side)
            try:
                error = export.write(tmp, trace, dynamic=True, probes=_probe_sizes(spec))
                size = trace
            except Exception as err:  # any failure: fall back to a static export
                static_reason = f"dynamic H, W failed: {_first_line(err)}"
                logger.warning(
                    "%s: exported for a fixed %dx%d input only; %s",
                    name,
                    height,
                    width,
                    static_reason,
                )
        else:
            static_reason = "a fixed size was requested (dynamic=False)"
        if size is None:
            try:
                error = export.write(tmp, (height, width), dynamic=False, probes=())
            except CheckError as err:
                raise RuntimeError(
                    f"{name}: the ONNX graph disagrees with PyTorch: {err}"
                ) from None
            except Exception as err:
                raise RuntimeError(f"{name}: ONNX export failed: {_first_line(err)}") from err
            size = (height, width)
    return OnnxExport(
        path=target,
        model_name=name,
        kind=spec.kind,
        dynamic=static_reason is None,
        height=size[0],
        width=size[1],
        opset=opset,
        input_name=spec.input_name,
        output_name=spec.output_name,
        max_abs_error=error,
        static_reason=static_reason,
    )


@dataclass
class _Export:
    """One model's export settings; :meth:`write` exports, saves and checks once."""

    graph: nn.Module  # what is traced
    reference: nn.Module  # what the file is checked against: the model's own forward
    spec: _Spec
    opset: int
    check: bool
    metadata: dict[str, object]

    def write(
        self, path: Path, size: tuple[int, int], *, dynamic: bool, probes: Sequence[tuple[int, int]]
    ) -> float | None:
        """Export at ``size`` to ``path``; return the check's worst error (or None)."""
        spec = self.spec
        # Batch 2: a size-1 example would let the exporter specialise the batch axis.
        example = torch.rand(2, spec.in_channels, *size, generator=make_generator(0))
        # Names (not torch.export.Dim objects): torch.onnx makes them Dim.DYNAMIC and names
        # the ONNX axes after them. Named Dims trip torch 2.13's constraint solver on the
        # always-true guards of the UNets ("inconsistent min=1, max=-oo"); soundness is
        # what the check is for.
        axes = {0: "batch", 2: "height", 3: "width"} if dynamic else {0: "batch"}
        with _quiet_exporter():
            program = torch.onnx.export(
                self.graph,
                (example,),
                dynamo=True,
                input_names=[spec.input_name],
                output_names=[spec.output_name],
                dynamic_shapes={_forward_arg(self.graph): axes},
                opset_version=self.opset,
                custom_translation_table={torch.ops.aten.remainder.Scalar: _remainder_scalar},
                optimize=True,
                verbose=False,
            )
        meta = {**self.metadata, "dynamic_spatial": dynamic}
        meta.update(export_height=size[0], export_width=size[1], min_side=spec.min_side)
        program.model.metadata_props.update(
            {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in meta.items()}
        )
        # One self-contained file: external data would be named after the temporary file.
        program.save(str(path), external_data=False)
        if not self.check:
            return None
        sizes = [(2, *size)] + [(1, *hw) for hw in probes]
        return compare(path, self.reference, spec.in_channels, sizes)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's messages that do not concern restorekit's users.

    torch.onnx logs a warning per torchvision operator it cannot register when torchvision
    is absent (restorekit uses none), and dynamo warns that it traces through the
    ``lru_cache`` of ``imresize``'s matrices: that cache holds pure functions of the sizes,
    so tracing the function is exact, and the check confirms the result.
    """
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Dynamo detected a call to a `functools")
            warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)`")
            yield
    finally:
        registration.setLevel(level)


def _forward_arg(module: nn.Module) -> str:
    """Name of the forward's tensor argument (``dynamic_shapes`` is keyed by it)."""
    import inspect

    return next(iter(inspect.signature(module.forward).parameters))


def _version() -> str:
    from restorekit import __version__

    return __version__
