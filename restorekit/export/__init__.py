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
   therefore switches the model to its export-safe path
   (:func:`restorekit.models.base.set_export_safe`: ``pad_to_multiple`` gathers mirrored
   indices computed in the graph, with no branch, the same values), and
   traces at a size (:func:`_trace_size`) that takes the general path of the remaining
   branches: not a multiple of ``size_multiple``, and an odd number of multiples, so
   window grids need padding and masks.
2. Attention. torchlib translates ``scaled_dot_product_attention`` only for 4-D inputs;
   ``WindowAttention``'s are 5-D (B, windows, heads, N, d), so its export-safe path is
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

The package: ``onnx.py`` exports (and translates the one operator torchlib cannot),
``check.py`` picks the sizes traced and checked and compares the file with PyTorch,
``runtime.py`` reads and runs exported files.
"""

from restorekit.export.check import CHECK_TOLERANCE
from restorekit.export.onnx import DEFAULT_OPSET, DEFAULT_SIZE, OnnxExport, export_onnx
from restorekit.export.runtime import read_onnx_metadata, run_onnx

__all__ = [
    "CHECK_TOLERANCE",
    "DEFAULT_OPSET",
    "DEFAULT_SIZE",
    "OnnxExport",
    "export_onnx",
    "read_onnx_metadata",
    "run_onnx",
]
