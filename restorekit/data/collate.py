"""Batch images of different sizes: zero-pad each batch to its largest height and width.

The defect-aware system (SPEC.md D) trains on images of many sizes: each batch is padded at
the bottom and right to its largest image, the original sizes travel with the batch, and
outputs are cropped back with :func:`crop_to_sizes`. For super-resolution pairs the
``gt`` canvas is a multiple of the scale, so the padded ``lq`` is exactly canvas / scale and
the pair stays aligned.

Reference: the padding scheme of the defect-aware seed (SPEC.md D, "variable image sizes").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["crop_to_sizes", "pad_collate"]


def _scale_of(lq: torch.Tensor, gt: torch.Tensor, name: object) -> int:
    (h, w), (gh, gw) = lq.shape[-2:], gt.shape[-2:]
    if gh % h or gw % w or gh // h != gw // w:
        raise ValueError(f"item {name!r}: gt {(gh, gw)} is not an integer multiple of lq {(h, w)}")
    return gh // h


def pad_collate(batch: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Collate dicts with ``lq``, ``gt`` and optional ``mask``, zero-padding to the batch max.

    ``gt`` (and every tensor of the same size as its ``gt``, such as ``mask``) is padded at
    the bottom and right to the batch's largest height and width, rounded up to a multiple
    of the scale; ``lq`` to that size divided by the scale (scale = gt size / lq size, the
    same for every item). Other tensors are stacked, and anything else (``name``) is
    gathered in a list.

    Args:
        batch: dicts with the same keys; ``lq`` (C, h, w) and ``gt`` (C', H, W) tensors.

    Returns:
        The batch dict, with ``lq`` (B, C, Hmax/scale, Wmax/scale), ``gt`` (B, C', Hmax,
        Wmax), and ``sizes``: (B, 2) long, each ``gt``'s original (H, W) (the ``lq`` sizes
        are ``sizes // scale``).

    Raises:
        ValueError: an empty batch, items with different keys, or different scales.

    Example:
        >>> a = {"lq": torch.ones(1, 2, 3), "gt": torch.ones(1, 2, 3), "name": "a"}
        >>> b = {"lq": torch.ones(1, 4, 2), "gt": torch.ones(1, 4, 2), "name": "b"}
        >>> out = pad_collate([a, b])
        >>> out["gt"].shape, out["sizes"].tolist(), out["name"], float(out["gt"][0].sum())
        (torch.Size([2, 1, 4, 3]), [[2, 3], [4, 2]], ['a', 'b'], 6.0)
    """
    if not batch:
        raise ValueError("cannot collate an empty batch")
    keys = set(batch[0])
    for item in batch:
        if set(item) != keys:
            raise ValueError(f"batch items have different keys: {sorted(keys)} and {sorted(item)}")
    if "gt" not in keys or "lq" not in keys:
        raise ValueError(f"pad_collate needs 'lq' and 'gt' in each item, got {sorted(keys)}")
    scales = {_scale_of(item["lq"], item["gt"], item.get("name")) for item in batch}
    if len(scales) > 1:
        raise ValueError(f"a batch mixes scales {sorted(scales)}")
    scale = scales.pop()
    sizes = torch.tensor([tuple(item["gt"].shape[-2:]) for item in batch], dtype=torch.long)
    hmax = -(-int(sizes[:, 0].max()) // scale) * scale  # round up to a multiple of scale
    wmax = -(-int(sizes[:, 1].max()) // scale) * scale
    out: dict[str, Any] = {}
    for key in batch[0]:
        values = [item[key] for item in batch]
        if not all(isinstance(v, torch.Tensor) for v in values):
            out[key] = values
        elif key == "lq":
            out[key] = torch.stack([_pad(v, hmax // scale, wmax // scale) for v in values])
        elif all(
            v.ndim >= 2 and v.shape[-2:] == item["gt"].shape[-2:]
            for v, item in zip(values, batch, strict=True)
        ):
            out[key] = torch.stack([_pad(v, hmax, wmax) for v in values])
        else:
            out[key] = torch.stack(values)
    out["sizes"] = sizes
    return out


def _pad(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    return F.pad(x, (0, w - x.shape[-1], 0, h - x.shape[-2]))


def crop_to_sizes(x: torch.Tensor, sizes: torch.Tensor, *, scale: int = 1) -> list[torch.Tensor]:
    """Undo :func:`pad_collate`: crop each image of a padded batch back to its own size.

    Args:
        x: (B, C, H, W) padded batch (e.g. a model's output at ``gt`` resolution).
        sizes: (B, 2) original (H, W) of each ``gt``, from ``pad_collate``.
        scale: divide ``sizes`` by this first (1 for outputs at ``gt`` size; the SR
            scale to crop ``lq``-sized tensors).

    Returns:
        A list of B tensors, each (C, H_i, W_i).

    Example:
        >>> batch = torch.zeros(2, 1, 4, 3)
        >>> [tuple(t.shape) for t in crop_to_sizes(batch, torch.tensor([[2, 3], [4, 2]]))]
        [(1, 2, 3), (1, 4, 2)]
    """
    if sizes.ndim != 2 or sizes.shape != (x.shape[0], 2):
        raise ValueError(f"sizes must be (B, 2) with B={x.shape[0]}, got {tuple(sizes.shape)}")
    return [
        img[..., : int(h) // scale, : int(w) // scale] for img, (h, w) in zip(x, sizes, strict=True)
    ]
