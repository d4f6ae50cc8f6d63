"""ONNX export of restorekit models, checked against PyTorch, with rebuild metadata.

ONNX: https://onnx.ai/onnx/ ; PyTorch's exporter: https://pytorch.org/docs/stable/onnx.html
(``torch.onnx.export(..., dynamo=True)``: ``torch.export`` captures the graph, onnxscript's
torchlib translates it).

An exported restoration model takes ``lq``, (B, in_channels, H, W) float32 in [0, 1], and
returns ``restored``, (B, in_channels, scale*H, scale*W) float32 (about [0, 1]; not
clipped), exactly like the PyTorch model in eval mode. Discriminators take ``image`` and
return ``logits``. The batch axis is always dynamic; H and W are dynamic unless the export
says otherwise (:attr:`OnnxExport.dynamic`, and the ``dynamic_spatial`` metadata).

Why the dynamo exporter and not the TorchScript one (``dynamo=False``): the tracer runs
Python once at the example size and keeps no record of shape arithmetic done outside
tensors, so SRCNN's bicubic ``imresize`` (its interpolation matrices are built from the
input size) became a constant and an export at 40x52 returned a 160x208 image for any
input. ``torch.export`` keeps such sizes symbolic. Three things still need care, and this
module handles them:

1. Guards. Python ``if`` on a size (``Restorer.forward``'s "pad only if needed" and
   "reflect unless too small", ``SwinBlock``'s "mask only if padded or shifted") is
   decided at the example size, and torch 2.13's exporter does not keep every such guard,
   so the graph could silently be right only at sizes like the example. The export
   therefore pads with mirrored gather indices computed in the graph (:class:`_Exported`,
   the same values as :func:`restorekit.models.base.pad_to_multiple`, with no branch), and
   traces at a size (:func:`_trace_size`) that takes the general path of the remaining
   branches: not a multiple of ``size_multiple``, and an odd number of multiples, so
   window grids need padding and masks.
2. Attention. torchlib translates ``scaled_dot_product_attention`` only for 4-D inputs;
   ``WindowAttention``'s are 5-D (B, windows, heads, N, d), so the export uses
   ``WindowAttention.reference``, the same computation written out.
3. ``remainder`` by a symbolic size (``imresize``'s mirrored tap indices): torchlib's
   translation converts the divisor with ``int()``, which fails when it is a graph value;
   :func:`_remainder_scalar` translates it with ONNX ``Mod``.

Every export is then checked with onnxruntime against PyTorch: at the example size and, for
dynamic exports, at sizes that take the other branches (an exact multiple with even window
grids, and an image smaller than its padding). A dynamic export that fails to export or
fails the check is redone at a fixed ``height`` x ``width``, with a logged warning and the
reason in :attr:`OnnxExport.static_reason`, rather than written with a graph that may be
wrong at other sizes.

onnx, onnxscript and onnxruntime are imported on first use: ``pip install
'restorekit[onnx]'``.
"""

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
from torch import Tensor, nn

from restorekit.layers.window import WindowAttention
from restorekit.models.base import Discriminator, Restorer
from restorekit.utils import atomic_path, check_positive, make_generator

__all__ = [
    "DEFAULT_OPSET",
    "OnnxExport",
    "export_onnx",
    "read_onnx_metadata",
    "run_onnx",
]

logger = logging.getLogger(__name__)

# torchlib writes its translations in opset 18, so 18 needs no version conversion, and
# every current runtime (onnxruntime >= 1.14, TensorRT >= 8.6) reads it.
DEFAULT_OPSET = 18
DEFAULT_SIZE = 256
# Largest |onnx - torch| accepted by the check, relative to max(1, max |torch|). float32
# kernels differ by about 1e-6 on these networks; a wrong branch or padding is far larger.
CHECK_TOLERANCE = 1e-3
_PROTOBUF_LIMIT = 2**31 - 1  # one ONNX file holds at most 2 GiB
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


def _require(module: str) -> Any:
    """Import an optional dependency, or raise ImportError naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"ONNX export needs the {module!r} package: {_INSTALL_HINT} ({err})"
        ) from None


def _mirror_indices(n: int, padded: int) -> tuple[Tensor, Tensor]:
    """Source rows for padding a side of ``n`` to ``padded``: (reflect, replicate).

    Written with tensor arithmetic only, so under ``torch.export`` ``n`` stays symbolic
    and no Python branch fixes the result to the example size. ``reflect`` holds negative
    values exactly when reflection is impossible (padding >= n), which is how
    :class:`_Exported` picks replication, as ``pad_to_multiple`` does.
    """
    i = torch.arange(padded)
    reflect = (n - 1) - ((n - 1) - i).abs()
    replicate = i - (i - (n - 1)).clamp(min=0)
    return reflect, replicate


class _Exported(nn.Module):
    """``Restorer.forward`` without Python branches on the input size (module doc, 1).

    Pads H and W to multiples of ``size_multiple`` by gathering mirrored rows and columns
    (reflection, or replication when the image is smaller than the padding), runs
    ``restore`` and crops to ``scale`` x the input size. Same values as the model's own
    forward; the channel check is left to the ONNX input shape.
    """

    def __init__(self, net: Restorer) -> None:
        super().__init__()
        self.net = net

    def forward(self, lq: Tensor) -> Tensor:
        h, w = lq.shape[-2:]
        m, s = self.net.size_multiple, self.net.scale
        if m > 1:  # a constant of the model, not of the input: this branch is sound
            # m * ceil(n / m) rather than n + (-n) % m: the same number, but halving it
            # simplifies symbolically, which keeps the exporter's shape algebra small.
            reflect_h, replicate_h = _mirror_indices(h, (h + m - 1) // m * m)
            reflect_w, replicate_w = _mirror_indices(w, (w + m - 1) // m * m)
            # One mode for both axes, as pad_to_multiple: reflect only if both can.
            can_reflect = (reflect_h.min() >= 0) & (reflect_w.min() >= 0)
            rows = torch.where(can_reflect, reflect_h, replicate_h)
            cols = torch.where(can_reflect, reflect_w, replicate_w)
            lq = lq.index_select(2, rows).index_select(3, cols)
        return self.net.restore(lq)[..., : h * s, : w * s]


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


def _side(multiple: int, at_least: int, extra: int = 0) -> int:
    """A side >= ``at_least`` that pads to an odd number (+ ``extra``) of ``multiple``s."""
    k = -(-(at_least + multiple // 2) // multiple)
    k += 1 - k % 2 + extra
    return k * multiple - multiple // 2


def _trace_size(multiple: int, min_side: int = 1) -> tuple[int, int]:
    """Example input size for a dynamic export (module doc, 1).

    Not a multiple of ``multiple`` (so padding is traced), padding to an odd number of
    multiples (so a window grid over the padded map needs padding and masks), H != W (so
    no axis stands in for the other), and small, so tracing and checking are quick.
    """
    at_least = max(24, min_side)
    return _side(multiple, at_least), _side(multiple, at_least, extra=2)


def _probe_sizes(spec: _Spec) -> list[tuple[int, int]]:
    """Sizes at which a dynamic export is checked, besides the traced one.

    An exact multiple with even multiple counts (no padding; window grids that need
    none), and for padding models an image smaller than its padding (replication). Taller
    than wide: PyTorch's own ``SwinBlock`` fails at batch 1 on a map one window high and
    several wide (a ``view`` of a non-contiguous tensor), and the reference must run.
    """
    m = spec.size_multiple
    if m == 1:
        side = max(spec.min_side, 3)
        return [(8 * side, 4 * side), (side, side + 2)]
    return [(8 * m, 4 * m), (max(1, m // 2 - 1), 2 * m + 1)]


@dataclass(frozen=True)
class _Spec:
    """What the export needs to know of a model (:func:`_describe`)."""

    kind: str  # "restorer" or "discriminator"
    in_channels: int
    scale: int
    size_multiple: int
    min_side: int  # smallest H, W the model accepts

    @property
    def input_name(self) -> str:
        return "lq" if self.kind == "restorer" else "image"

    @property
    def output_name(self) -> str:
        return "restored" if self.kind == "restorer" else "logits"


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

    net = copy.deepcopy(model).to(device="cpu", dtype=torch.float32).eval()
    for module in net.modules():
        if isinstance(module, WindowAttention):  # module doc, 2
            module.forward = module.reference
    name = getattr(model, "model_name", type(model).__name__)
    export = _Export(
        graph=_Exported(net).eval() if spec.kind == "restorer" else net,
        reference=net,
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
            except _CheckError as err:
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


class _CheckError(Exception):
    """The exported graph disagrees with PyTorch."""


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
        return _compare(path, self.reference, spec.in_channels, sizes)


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


def _compare(
    path: Path, reference: nn.Module, in_channels: int, sizes: Sequence[tuple[int, int, int]]
) -> float:
    """Worst |onnx - torch| over seeded random inputs of ``sizes``; _CheckError if off."""
    session = _session(path)
    gen = make_generator(0)
    worst = 0.0
    for b, h, w in sizes:
        x = torch.rand(b, in_channels, h, w, generator=gen)
        with torch.no_grad():
            expected = reference(x)
        got = run_onnx(session, x)
        if got.shape != expected.shape:
            raise _CheckError(
                f"at {h}x{w} the output is {tuple(got.shape)}, not {tuple(expected.shape)}"
            )
        error = float((got - expected).abs().max())
        limit = CHECK_TOLERANCE * max(1.0, float(expected.abs().max()))
        if not error <= limit:  # also catches NaN
            raise _CheckError(f"at {h}x{w} max |onnx - torch| = {error:.3g} > {limit:.3g}")
        worst = max(worst, error)
    return worst


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


def _version() -> str:
    from restorekit import __version__

    return __version__
