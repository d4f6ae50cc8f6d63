"""pad_collate: zero-pad to the batch's largest image, keep the sizes, stay aligned for SR."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from restorekit.data import crop_to_sizes, pad_collate


def item(h: int, w: int, *, scale: int = 1, c: int = 3, mask: bool = False, name: str = "x"):
    gt = torch.rand(c, h, w) + 0.1  # never 0, so padding is told apart from content
    out = {"lq": gt[:, ::scale, ::scale].clone(), "gt": gt, "name": name}
    if mask:
        out["mask"] = torch.ones(1, h, w)
    return out


def test_pads_with_zeros_and_returns_original_sizes() -> None:
    batch = [item(5, 9, mask=True, name="a"), item(8, 4, mask=True, name="b")]
    out = pad_collate(batch)
    assert out["gt"].shape == out["lq"].shape == (2, 3, 8, 9)
    assert out["mask"].shape == (2, 1, 8, 9)
    assert out["sizes"].dtype == torch.long
    assert out["sizes"].tolist() == [[5, 9], [8, 4]]
    assert out["name"] == ["a", "b"]
    for i, b in enumerate(batch):
        h, w = b["gt"].shape[-2:]
        assert torch.equal(out["gt"][i, :, :h, :w], b["gt"])
        assert torch.equal(out["mask"][i, :, :h, :w], b["mask"])
        # Everything outside the image is zero, in every padded tensor.
        for key in ("gt", "lq", "mask"):
            padded = out[key][i].clone()
            padded[:, :h, :w] = 0
            assert not padded.any()


def test_super_resolution_pads_lq_and_gt_consistently() -> None:
    """gt canvas is a multiple of the scale; lq canvas is exactly gt canvas / scale, and
    each lq's content sits where its gt's content does (point-sampled stand-in)."""
    batch = [item(12, 8, scale=4), item(8, 20, scale=4)]
    out = pad_collate(batch)
    assert out["gt"].shape == (2, 3, 12, 20)
    assert out["lq"].shape == (2, 3, 3, 5)
    assert torch.equal(out["gt"][:, :, ::4, ::4], out["lq"])
    assert (out["sizes"] // 4).tolist() == [[3, 2], [2, 5]]
    lq_back = crop_to_sizes(out["lq"], out["sizes"], scale=4)
    assert [tuple(t.shape) for t in lq_back] == [(3, 3, 2), (3, 2, 5)]


def test_crop_to_sizes_undoes_the_padding() -> None:
    batch = [item(5, 9), item(8, 4), item(8, 9)]
    out = pad_collate(batch)
    for back, b in zip(crop_to_sizes(out["gt"], out["sizes"]), batch, strict=True):
        assert torch.equal(back, b["gt"])


def test_same_size_batch_equals_default_stack() -> None:
    batch = [item(6, 6), item(6, 6)]
    out = pad_collate(batch)
    assert torch.equal(out["gt"], torch.stack([b["gt"] for b in batch]))


def test_works_as_dataloader_collate_fn() -> None:
    data = [item(4 + i, 7 - i, name=str(i)) for i in range(4)]
    loader = DataLoader(data, batch_size=2, collate_fn=pad_collate)
    batches = list(loader)
    assert [tuple(b["gt"].shape) for b in batches] == [(2, 3, 5, 7), (2, 3, 7, 5)]


def test_errors() -> None:
    with pytest.raises(ValueError, match="empty"):
        pad_collate([])
    with pytest.raises(ValueError, match="mixes scales"):
        pad_collate([item(8, 8, scale=2), item(8, 8, scale=4)])
    with pytest.raises(ValueError, match="different keys"):
        pad_collate([item(4, 4, mask=True), item(4, 4)])
    bad = {"lq": torch.zeros(1, 3, 3), "gt": torch.zeros(1, 8, 8), "name": "odd"}
    with pytest.raises(ValueError, match=r"'odd'.*not an integer multiple"):
        pad_collate([bad])
