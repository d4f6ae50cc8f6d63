"""What every restoration model shares (its scale, its size multiple, pad-and-crop), and
the discriminators' interface.

A restoration network subclasses :class:`Restorer`, sets ``scale`` (1 for denoising and
dehazing, 2/3/4 for super-resolution), ``size_multiple`` (what its downsamplings or windows
need) and ``in_channels``, and implements :meth:`Restorer.restore` on inputs whose height
and width are multiples of ``size_multiple``. ``forward`` accepts any size: it pads with
reflection (replication when the image is smaller than the pad), restores, and crops the
output back to ``scale`` times the input size, as NAFNet and Restormer do.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from types import MappingProxyType

import torch
from torch import nn

from restorekit import utils
from restorekit.layers.window import WindowAttention


def pad_to_multiple(x: torch.Tensor, multiple: int, *, always: bool = False) -> torch.Tensor:
    """Pad (B, C, H, W) at the bottom and right so H and W are multiples of ``multiple``.

    Reflection keeps image statistics at the border; replication is used when the image
    is too small to reflect (reflect needs pad < size), for both axes alike. The rows and
    columns are gathered by indices computed with tensor arithmetic, so the same code
    serves ONNX export: with ``always`` there is no Python branch on the size (an image
    that needs no padding is gathered as it is), and ``torch.export`` keeps it general.

    >>> pad_to_multiple(torch.zeros(1, 1, 5, 8), 4).shape
    torch.Size([1, 1, 8, 8])
    >>> pad_to_multiple(torch.arange(10.0).view(1, 1, 5, 2), 5)[0, 0, 0]  # 2 < 3: replicated
    tensor([0., 1., 1., 1., 1.])
    """
    h, w = x.shape[-2:]
    if multiple == 1 or (not always and h % multiple == 0 and w % multiple == 0):
        return x
    # m * ceil(n / m) rather than n + (-n) % m: the same number, but it simplifies
    # symbolically, which keeps the exporter's shape algebra small.
    reflect_h, replicate_h = _mirror_indices(h, (h + multiple - 1) // multiple * multiple, x)
    reflect_w, replicate_w = _mirror_indices(w, (w + multiple - 1) // multiple * multiple, x)
    can_reflect = (reflect_h.min() >= 0) & (reflect_w.min() >= 0)
    rows = torch.where(can_reflect, reflect_h, replicate_h)
    cols = torch.where(can_reflect, reflect_w, replicate_w)
    return x.index_select(-2, rows).index_select(-1, cols)


def _mirror_indices(n: int, padded: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Source rows for padding a side of ``n`` to ``padded``: (reflect, replicate).

    ``reflect`` holds negative values exactly when reflection is impossible (padding >=
    n), which is how :func:`pad_to_multiple` picks replication.
    """
    i = torch.arange(padded, device=like.device)
    reflect = (n - 1) - ((n - 1) - i).abs()
    replicate = i - (i - (n - 1)).clamp(min=0)
    return reflect, replicate


class Restorer(nn.Module):
    """Base of every restoration network: any input size in, ``scale`` x that size out.

    Attributes:
        scale: output size / input size (1 for denoising and dehazing).
        size_multiple: height and width that :meth:`restore` needs to divide.
        in_channels: 1 (gray) or 3 (RGB); the output has the same number of channels.
        prefers_channels_last: what ``memory_format="auto"`` picks (restorekit.hardware):
            True (channels_last in every precision, measured faster for every shipped
            architecture), or ``"bf16"`` (only under bf16 autocast).
        export_safe: ``forward`` without Python branches on the input size, for
            ``torch.export`` (see :func:`set_export_safe`); the same values.
        aux_outputs: maps the last training forward computed beside the output, for
            loss terms of kind ``"auxiliary"`` (restorekit.losses), name -> tensor with
            the batch first; empty for most networks and in eval mode (the scattering
            FFA-Net's ``log_inv_t`` (B, 1, H, W) and ``airlight`` (B, C)).
    """

    scale: int = 1
    size_multiple: int = 1
    in_channels: int = 3
    prefers_channels_last: bool | str = True
    export_safe: bool = False
    aux_outputs: Mapping[str, torch.Tensor] = MappingProxyType({})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Restore (B, in_channels, H, W) -> (B, in_channels, scale*H, scale*W)."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"{type(self).__name__} expects (B, {self.in_channels}, H, W) input, "
                f"got {tuple(x.shape)}"
            )
        h, w = x.shape[-2:]
        y = self.restore(pad_to_multiple(x, self.size_multiple, always=self.export_safe))
        return y[..., : h * self.scale, : w * self.scale]

    def restore(self, x: torch.Tensor) -> torch.Tensor:
        """The network proper, on inputs whose sides divide ``size_multiple``."""
        raise NotImplementedError

    def adapt_state_dict(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``state`` in this model's key layout: a model whose published checkpoints use
        other names (the official FFA-Net's), or whose own layout changed, converts them
        here; the default keeps it. Loaders call it through ``models.adapt_state``."""
        return state

    def on_stage(self, **options: object) -> None:
        """Called by the trainer when a stage starts, with the stage's ``model_options``;
        a model that has options to switch (CASR's DeepNorm lambda) overrides it."""
        if options:
            raise ValueError(f"{type(self).__name__} takes no stage options, got {options}")


def set_export_safe(model: nn.Module, value: bool = True) -> nn.Module:
    """Switch every module of ``model`` that has an export-safe path to it: a
    :class:`Restorer` pads without branches, a ``WindowAttention`` writes its attention
    out (the exporter translates ``scaled_dot_product_attention`` for 4-D inputs only).
    Same values either way; returns ``model``."""
    for module in model.modules():
        if isinstance(module, (Restorer, WindowAttention)):
            module.export_safe = value
    return model


class Discriminator(nn.Module):
    """Base of the GAN critics: an image (or ``cat(lq, image)``) in, logits out.

    Attributes:
        conditional: whether the trainer feeds ``cat(lq, image)`` (True) or the image alone.
        in_channels: channels of the input it takes (twice the image's when conditional).
        min_side: the smallest height and width it accepts.
    """

    conditional: bool = False
    in_channels: int = 1

    @property
    def min_side(self) -> int:
        raise NotImplementedError


def with_defaults(cls: type, defaults: dict[str, object]) -> inspect.Signature:
    """``cls``'s keyword signature with some defaults replaced: the signature of a named
    configuration (``casr_small``) that forwards to ``cls``, so ``inspect`` and the
    checkpoints see every argument without the list being written twice."""
    sig = inspect.signature(cls)
    params = [p.replace(default=defaults.get(p.name, p.default)) for p in sig.parameters.values()]
    return sig.replace(parameters=params, return_annotation=cls.__name__)


def check_choice(name: str, value: object, choices: tuple[int, ...]) -> None:
    """Raise ValueError unless the integer argument ``name`` is one of ``choices``.

    >>> check_choice("scale", 5, (2, 3, 4))
    Traceback (most recent call last):
    ...
    ValueError: scale must be 2, 3 or 4, got 5
    """
    if isinstance(value, bool) or value not in choices:
        *head, last = map(str, choices)
        allowed = f"{', '.join(head)} or {last}" if head else last
        raise ValueError(f"{name} must be {allowed}, got {value!r}")


def check_positive(**values: object) -> None:
    """Raise ValueError naming the first argument that is not a positive integer."""
    for name, value in values.items():
        utils.check_positive(name, value)
