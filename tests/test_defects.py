"""Defect masks and painting: determinism, binary non-empty masks, shapes, the twin."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from scipy import ndimage

from restorekit.degrade import Degraded, create_degradation
from restorekit.degrade.defects import (
    DefectMasks,
    Defects,
    apply_defects,
    blob_mask,
    blotch_mask,
    defect_mask,
    defect_masks,
    scratch_mask,
)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def is_binary(m: torch.Tensor) -> bool:
    return bool(((m == 0) | (m == 1)).all())


# ---------------------------------------------------------------- masks


def test_defect_mask_deterministic_by_seed() -> None:
    a = defect_mask(96, 128, generator=gen(0))
    assert torch.equal(a, defect_mask(96, 128, generator=gen(0)))
    assert not torch.equal(a, defect_mask(96, 128, generator=gen(1)))


@pytest.mark.parametrize("seed", range(6))
def test_defect_mask_binary_non_empty_sensible_coverage(seed: int) -> None:
    m = defect_mask(96, 128, generator=gen(seed))
    assert m.shape == (1, 1, 96, 128) and m.dtype == torch.float32
    assert is_binary(m)
    assert 0.002 < m.mean().item() < 0.25


def test_defect_masks_union_and_kinds() -> None:
    m = defect_masks(64, 64, generator=gen(3), n_scratches=2, n_blotches=1, n_blobs=3)
    assert isinstance(m, DefectMasks)
    for kind in m:
        assert kind.shape == (1, 1, 64, 64) and is_binary(kind) and kind.sum() > 0
    union = m.union()
    assert torch.equal(union.bool(), m.scratches.bool() | m.blotches.bool() | m.blobs.bool())


@pytest.mark.parametrize("fn", [scratch_mask, blotch_mask, blob_mask])
def test_zero_defects_give_an_empty_mask_and_one_gives_pixels(
    fn: Callable[..., torch.Tensor],
) -> None:
    assert fn(40, 50, generator=gen(0), n=0).sum() == 0
    for seed in range(5):  # the centre pixel is always inside, whatever the size
        assert fn(40, 50, generator=gen(seed), n=1).sum() > 0


def test_scratches_are_connected_thin_lines() -> None:
    h = w = 96
    for seed in range(8):
        m = scratch_mask(h, w, generator=gen(seed), n=1, width_range=(1.0, 1.0))[0, 0]
        _, parts = ndimage.label(m.numpy(), structure=[[1, 1, 1]] * 3)
        assert parts == 1  # width 1 never breaks the line
        # Thin: at most about two pixels per pixel of length (length <= 0.8 diagonal).
        assert m.sum() <= 2 * 0.8 * math.hypot(h, w)


def test_wider_scratches_contain_thinner_ones() -> None:
    thin = scratch_mask(80, 80, generator=gen(4), n=2, width_range=(1.0, 1.0))
    thick = scratch_mask(80, 80, generator=gen(4), n=2, width_range=(5.0, 5.0))
    assert thick.sum() > 2 * thin.sum()
    assert (thick >= thin).all()  # same curves, only the width differs


def test_straight_and_bent_scratches_differ() -> None:
    straight = scratch_mask(80, 80, generator=gen(2), n=1, bend=0.0, length_range=(0.8, 0.8))
    bent = scratch_mask(80, 80, generator=gen(2), n=1, bend=0.5, length_range=(0.8, 0.8))
    assert not torch.equal(straight, bent)


def test_blotch_size_follows_radius() -> None:
    r = 10.0  # radius_range 0.1 of a 100-pixel side
    for seed in range(5):
        m = blotch_mask(100, 100, generator=gen(seed), n=1, radius_range=(0.1, 0.1))
        # Inside the noisy ellipse of semi-axes <= r * (1 + roughness), plus a pixel.
        assert 0 < m.sum() <= math.pi * (1.5 * r + 1) ** 2


def test_blob_is_a_round_disc() -> None:
    r = 0.2 * 64
    for seed in range(4):  # seeds whose blob is not clipped by the border
        m = blob_mask(64, 64, generator=gen(seed), n=1, radius_range=(0.2, 0.2))[0, 0]
        ys, xs = torch.nonzero(m, as_tuple=True)
        cy, cx = ys.float().mean(), xs.float().mean()
        assert r < cy < 63 - r and r < cx < 63 - r
        assert m.sum() == pytest.approx(math.pi * r * r, rel=0.02)
        dist = torch.sqrt((ys - cy) ** 2 + (xs - cx) ** 2)
        assert r - 1 <= dist.max() <= r


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": -1}, "n must"),
        ({"width_range": (0.5, 2.0)}, "width_range"),
        ({"length_range": (0.5, 0.2)}, "length_range"),
        ({"bend": -0.1}, "bend"),
    ],
)
def test_scratch_mask_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        scratch_mask(32, 32, generator=gen(0), **kwargs)


def test_other_masks_reject_bad_arguments() -> None:
    with pytest.raises(ValueError, match="h and w"):
        blob_mask(0, 32, generator=gen(0))
    with pytest.raises(ValueError, match="roughness"):
        blotch_mask(32, 32, generator=gen(0), roughness=1.0)


# ---------------------------------------------------------------- painting


def test_apply_defects_changes_exactly_the_masked_pixels() -> None:
    x = torch.full((2, 3, 64, 64), 0.5)
    m = defect_masks(64, 64, generator=gen(0), n_scratches=3, n_blotches=2, n_blobs=4)
    y = apply_defects(x, m, generator=gen(1))
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    changed = (y != x).any(dim=1, keepdim=True)
    assert torch.equal(changed, m.union().bool().expand_as(changed))


def test_apply_defects_paints_each_kind_its_way() -> None:
    white = torch.ones(4, 3, 64, 64)
    m = defect_masks(64, 64, generator=gen(2), n_scratches=3, n_blotches=2, n_blobs=4)
    y = apply_defects(white, m, generator=gen(3))
    only_blob = (m.blobs > 0) & (m.scratches == 0) & (m.blotches == 0)
    only_stain = (m.blotches > 0) & (m.scratches == 0) & (m.blobs == 0)
    assert only_blob.any() and only_stain.any()
    blobs = y.permute(1, 0, 2, 3)[:, only_blob[:, 0].expand(4, -1, -1)]
    assert blobs.max() < 0.3  # dark spots
    stain = y.permute(1, 0, 2, 3)[:, only_stain[:, 0].expand(4, -1, -1)]
    assert (stain[0] > stain[2]).all() and stain.mean() < 0.9  # brownish: red over blue
    # Scratches are one grey per image, brighter or darker than a mid-grey background.
    grey = torch.full((8, 1, 64, 64), 0.5)
    y = apply_defects(grey, m, generator=gen(4))
    only_scratch = ((m.scratches > 0) & (m.blotches == 0) & (m.blobs == 0))[0, 0]
    signs = torch.sign(y[:, 0, only_scratch] - 0.5)
    assert (signs == signs[:, :1]).all()
    assert {-1.0, 1.0} <= set(signs[:, 0].tolist())  # both kinds over 8 images


def test_apply_defects_grey_images_and_bad_masks() -> None:
    x = torch.full((1, 1, 32, 32), 0.5)
    m = defect_masks(32, 32, generator=gen(0))
    y = apply_defects(x, m, generator=gen(0))
    assert y.shape == (1, 1, 32, 32)
    bad = DefectMasks(m.scratches, m.blotches, torch.zeros(1, 1, 16, 32))
    with pytest.raises(ValueError, match=r"masks\.blobs"):
        apply_defects(x, bad, generator=gen(0))
    with pytest.raises(ValueError, match="scratch_opacity"):
        apply_defects(x, m, generator=gen(0), scratch_opacity=(0.5, 1.5))


# ---------------------------------------------------------------- the twin


def test_twin_one_mask_per_image_deterministic() -> None:
    x = torch.rand(3, 3, 48, 64, generator=gen(9)) * 0.8 + 0.1
    op = Defects()
    out = op(x, generator=gen(0))
    assert isinstance(out, Degraded)
    assert out.lq.shape == x.shape and out.mask.shape == (3, 1, 48, 64)
    assert is_binary(out.mask) and (out.mask.flatten(1).sum(1) > 0).all()
    assert not torch.equal(out.mask[0], out.mask[1])
    outside = ~out.mask.bool().expand_as(x)
    assert torch.equal(out.lq[outside], x[outside])
    again = op(x, generator=gen(0))
    assert torch.equal(out.lq, again.lq) and torch.equal(out.mask, again.mask)
    assert not torch.equal(out.mask, op(x, generator=gen(1)).mask)


def test_twin_rejects_bad_counts() -> None:
    with pytest.raises(ValueError, match="n_blobs"):
        Defects(n_blobs=(3, 1))
    with pytest.raises(ValueError, match="scratch_width"):
        Defects(scratch_width=(0.5, 1.0))


def test_painted_damage_runs_on_a_batch_without_global_rng() -> None:
    op = create_degradation("painted_damage")
    assert isinstance(op, Defects) and "n_scratches=(1, 4)" in repr(op)
    torch.manual_seed(0)
    before = torch.get_rng_state()
    out = op(torch.rand(2, 3, 40, 40, generator=gen(0)), generator=gen(0))
    assert torch.equal(before, torch.get_rng_state())
    assert out.lq.shape == (2, 3, 40, 40) and out.mask.shape == (2, 1, 40, 40)
