"""Surface defects (SPEC.md D): drawn into the scene, kept in the ground truth, then noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from restorekit.cli import run
from restorekit.data import SyntheticPairs, open_dataset
from restorekit.data.sources import Example
from restorekit.degrade import Compose, SurfaceDefects, crack_mask, create_degradation
from restorekit.io import read_image, write_image


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_defects_change_the_scene_inside_their_mask_only() -> None:
    x = torch.rand(4, 3, 64, 64, generator=gen(0)) * 0.5 + 0.25  # room to brighten or darken
    out = SurfaceDefects()(x, generator=gen(1))
    assert out.gt is not None and torch.equal(out.gt, out.lq)  # the drawn scene is the truth
    changed = (out.gt - x).abs().amax(dim=1, keepdim=True) > 1e-6
    # Stains fade over a one-pixel soft edge; nothing changes farther from a defect.
    near = torch.nn.functional.max_pool2d(out.mask, 3, stride=1, padding=1).bool()
    assert (changed <= near).all()
    assert (out.mask.flatten(1).sum(1) > 0).all()  # at least one defect per image
    # The defects are visible: a mean change of several grey levels inside the mask.
    inside = (out.gt - x).abs().mean(dim=1, keepdim=True)[out.mask.bool()]
    assert inside.mean() > 0.05


def test_defects_keep_the_surface_texture() -> None:
    # A defect shifts the brightness rather than painting a flat colour: over a textured
    # surface, the texture stays visible inside the defect (grain modulates the shift).
    x = torch.rand(1, 1, 96, 96, generator=gen(2)) * 0.4 + 0.3
    op = SurfaceDefects(n_scratches=(3, 3), n_cracks=(0, 0), n_spots=(0, 0), n_stains=(0, 0),
                        scratch_width=(2.5, 2.5))  # fmt: skip
    out = op(x, generator=gen(3))
    m = out.mask.bool()
    corr = np.corrcoef(x[m].numpy(), out.gt[m].numpy())[0, 1]
    assert corr > 0.5


def test_composed_with_noise_the_input_is_noisy_and_the_truth_keeps_the_defects() -> None:
    op = create_degradation("defect_noise")
    assert isinstance(op, Compose) and op.spec == "defect_noise"
    x = torch.full((2, 3, 48, 48), 0.5)
    out = op(x, generator=gen(4))
    assert out.gt is not None and out.mask is not None
    noise = (out.lq - out.gt).std().item()
    assert 0.015 < noise < 0.25
    assert (out.gt != x).any()
    with pytest.raises(ValueError, match="is a composition"):
        create_degradation("defect_noise", contrast=(0.1, 0.2))


def test_synthetic_pairs_use_the_drawn_scene_as_ground_truth() -> None:
    ex = Example("flat", torch.full((3, 64, 64), 0.5))
    item = SyntheticPairs([ex], create_degradation("defect_noise"), seed=0, crop=None)[0]
    inside = item["mask"].bool()[0]
    assert inside.any()
    changed = (item["gt"] != 0.5).any(dim=0)
    assert changed[inside].float().mean() > 0.9  # the defects are in the truth
    assert changed[~inside].float().mean() < 0.1  # and little else (stain edges)


def test_reproducible_and_free_of_global_randomness() -> None:
    x = torch.rand(2, 3, 40, 40, generator=gen(5))
    torch.manual_seed(0)
    before = torch.get_rng_state()
    a, b = (SurfaceDefects()(x, generator=gen(6)) for _ in range(2))
    assert torch.equal(a.gt, b.gt) and torch.equal(a.mask, b.mask)
    assert torch.equal(before, torch.get_rng_state())


def test_cracks_branch_and_stay_thin() -> None:
    m = crack_mask(128, 128, generator=gen(7), n=1, branches=2, width_range=(1.0, 1.0))
    assert 0 < m.mean() < 0.05
    assert m.shape == (1, 1, 128, 128)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="n_cracks"):
        SurfaceDefects(n_cracks=(2, 1))
    with pytest.raises(ValueError, match="nothing to draw"):
        SurfaceDefects(n_scratches=(0, 0), n_cracks=(0, 0), n_spots=(0, 0), n_stains=(0, 0))
    with pytest.raises(ValueError, match="contrast"):
        SurfaceDefects(contrast=(0.5, 0.2))


def test_degrade_cli_writes_a_triplet_folder(tmp_path: Path) -> None:
    write_image(tmp_path / "in" / "a.png", torch.rand(3, 40, 48, generator=gen(8)))
    out = tmp_path / "out"
    assert run(["degrade", str(tmp_path / "in"), "--out", str(out), "--name", "defect_noise"]) == 0
    assert (out / "masks" / "a.png").is_file() and (out / "gt" / "a.png").is_file()
    original = read_image(tmp_path / "in" / "a.png")
    assert not torch.equal(read_image(out / "gt" / "a.png"), original)  # defects drawn in


def test_prepare_makes_triplets_whose_truth_holds_the_defects(tmp_path: Path) -> None:
    write_image(tmp_path / "photos" / "a.png", torch.full((3, 40, 48), 0.5))
    out = tmp_path / "ds"
    argv = ["data", "prepare", str(tmp_path / "photos"), "--out", str(out),
            "--degradation", "defect_noise"]  # fmt: skip
    assert run(argv) == 0
    (item,) = list(open_dataset(out))
    assert item["mask"].sum() > 0 and (item["gt"] != 0.5).any()
