"""Paired crops across scales, flips/rotations, modcrop, channels, and 70/20/10 splits."""

from __future__ import annotations

import pytest
import torch

from restorekit.data import (
    SyntheticPairs,
    dihedral,
    modcrop,
    paired_random_crop,
    random_dihedral,
    split_indices,
    to_channels,
)
from restorekit.degrade import imresize


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("scale", [1, 2, 3, 4])
def test_crop_stays_aligned_across_scales(scale: int) -> None:
    """Every seed: the gt crop is scale x the lq crop, at scale x its offset (checked on
    the content: lq is a point-sampled gt, so the crop's samples must coincide)."""
    h, w = 7 * scale, 9 * scale
    gt = torch.arange(float(3 * h * w)).reshape(3, h, w)
    lq = gt[:, ::scale, ::scale]
    mask = (gt[:1] % 5 == 0).float()
    size = 4 * scale
    offsets = set()
    for seed in range(30):
        lq_c, gt_c, mask_c = paired_random_crop(
            lq, gt, size=size, scale=scale, mask=mask, generator=gen(seed)
        )
        assert lq_c.shape == (3, 4, 4) and gt_c.shape == (3, size, size)
        assert torch.equal(gt_c[:, ::scale, ::scale], lq_c)
        assert torch.equal(mask_c, (gt_c[:1] % 5 == 0).float())
        offsets.add(int(gt_c[0, 0, 0]))
    assert len(offsets) > 5  # the offset really is random


def test_crop_on_real_bicubic_pair_matches_downscaled_crop() -> None:
    """With the real x2 bicubic, the lq crop equals the downscale of the gt crop away
    from the crop border (where the kernel sees the same pixels)."""
    from skimage import data

    gt = torch.as_tensor(data.camera()[:64, :64], dtype=torch.float64)[None] / 255
    lq = imresize(gt[None], 0.5)[0]
    lq_c, gt_c, _ = paired_random_crop(lq, gt, size=32, scale=2, generator=gen(3))
    redone = imresize(gt_c[None], 0.5)[0]
    assert torch.allclose(redone[:, 3:-3, 3:-3], lq_c[:, 3:-3, 3:-3], atol=1e-12)


def test_crop_errors() -> None:
    gt, lq = torch.zeros(1, 8, 8), torch.zeros(1, 4, 4)
    with pytest.raises(ValueError, match="multiple of the scale"):
        paired_random_crop(lq, gt, size=5, scale=2, generator=gen(0))
    with pytest.raises(ValueError, match="lq"):
        paired_random_crop(torch.zeros(1, 3, 4), gt, size=4, scale=2, generator=gen(0))
    whole = paired_random_crop(lq, gt, size=8, scale=2, generator=gen(0))[1]
    assert whole.shape == gt.shape  # a crop as large as the image is the image
    with pytest.raises(ValueError, match="cannot take a 5x5 crop"):
        paired_random_crop(lq, gt, size=10, scale=2, generator=gen(0))


def test_dihedral_gives_eight_distinct_transforms_and_inverses() -> None:
    x = torch.arange(6.0).reshape(1, 2, 3)
    outs = [dihedral(x, k) for k in range(8)]
    assert len({tuple(o.flatten().tolist()) + tuple(o.shape) for o in outs}) == 8
    assert torch.equal(outs[0], x)
    # Rotations by 90 degrees swap H and W.
    assert [tuple(o.shape[-2:]) for o in outs[:4]] == [(2, 3), (3, 2), (2, 3), (3, 2)]
    # rot90 k times then 4 - k times is the identity.
    for k in range(4):
        assert torch.equal(dihedral(dihedral(x, k), (4 - k) % 4), x)
    with pytest.raises(ValueError):
        dihedral(x, 8)


def test_random_dihedral_applies_one_transform_to_all() -> None:
    a = torch.rand(3, 5, 7)
    mask = (a[:1] > 0.5).float()
    seen = set()
    for seed in range(40):
        x, m = random_dihedral(a, mask, generator=gen(seed))
        assert torch.equal(m, (x[:1] > 0.5).float())
        seen.add(tuple(x.flatten()[:3].tolist()) + tuple(x.shape))
    assert len(seen) == 8


def test_hflip_draws_only_the_identity_and_the_mirror() -> None:
    a = torch.rand(1, 5, 7)
    seen = {random_dihedral(a, generator=gen(s), group="hflip")[0] for s in range(40)}
    assert {tuple(x.flatten().tolist()) for x in seen} == {
        tuple(a.flatten().tolist()),
        tuple(a.flip(-1).flatten().tolist()),
    }
    # A dataset told "hflip" keeps faces upright: every crop is the image or its mirror.
    face = torch.rand(1, 8, 8)
    pairs = SyntheticPairs([face], "gaussian_low", seed=0, augment="hflip", repeat=30)
    gts = [pairs[i]["gt"] for i in range(30)]
    assert all(torch.equal(g, face) or torch.equal(g, face.flip(-1)) for g in gts)
    assert any(torch.equal(g, face.flip(-1)) for g in gts)
    with pytest.raises(ValueError, match=r"augment must be true, false or one of .*hflip"):
        SyntheticPairs([face], "gaussian_low", seed=0, augment="rotate")


def test_modcrop_and_channels() -> None:
    assert modcrop(torch.zeros(1, 13, 10), 4).shape == (1, 12, 8)
    with pytest.raises(ValueError, match="smaller than the scale"):
        modcrop(torch.zeros(1, 3, 10), 4)
    rgb = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1).expand(3, 2, 2)
    assert torch.allclose(to_channels(rgb, 1), torch.full((1, 2, 2), 0.298936021293775))
    assert torch.equal(to_channels(torch.ones(1, 2, 2), 3), torch.ones(3, 2, 2))
    with pytest.raises(ValueError, match="cannot convert 2 channels"):
        to_channels(torch.ones(2, 2, 2), 3)


@pytest.mark.parametrize("n", [0, 1, 2, 10, 11, 99, 1000])
def test_split_is_disjoint_covering_and_sized(n: int) -> None:
    train, val, test = split_indices(n, seed=4)
    assert sorted(train + val + test) == list(range(n))
    assert len(train) + len(val) + len(test) == n
    for part, frac in ((train, 0.7), (val, 0.2), (test, 0.1)):
        assert abs(len(part) - frac * n) < 1  # largest-remainder rounding
        assert part == sorted(part)


def test_split_is_deterministic_by_seed() -> None:
    assert split_indices(50, seed=1) == split_indices(50, seed=1)
    assert split_indices(50, seed=1) != split_indices(50, seed=2)
    a, b = split_indices(10, seed=0, fractions=(0.5, 0.5))
    assert len(a) == len(b) == 5


@pytest.mark.parametrize("fractions", [(0.7, 0.2), (0.7, 0.4, -0.1), ()])
def test_split_rejects_bad_fractions(fractions: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="fractions"):
        split_indices(10, seed=0, fractions=fractions)


def test_photometric_jitter_shifts_by_reflection_and_changes_levels_within_bounds() -> None:
    from restorekit.data.transforms import photometric_jitter

    x = torch.rand(1, 12, 10, generator=torch.Generator().manual_seed(0)) * 0.5 + 0.25
    y, _ = photometric_jitter(x, generator=torch.Generator().manual_seed(3), brightness=0,
                              contrast=0)  # fmt: skip
    # A pure shift: some translate of x by at most 2 px matches y in the interior.
    found = any(
        torch.equal(y[..., 2:-2, 2:-2], x[..., 2 - dy : 10 - dy, 2 - dx : 8 - dx])
        for dy in range(-2, 3)
        for dx in range(-2, 3)
    )
    assert found
    flat = torch.full((1, 6, 6), 0.5)
    for seed in range(20):
        z, _ = photometric_jitter(flat, generator=torch.Generator().manual_seed(seed))
        assert z.std() < 1e-6 and abs(float(z.mean()) - 0.5) <= 0.1 + 1e-6  # brightness only
    a, _ = photometric_jitter(x, generator=torch.Generator().manual_seed(5))
    b, _ = photometric_jitter(x, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="contrast"):
        photometric_jitter(x, generator=torch.Generator(), contrast=1.5)


def test_jittered_pairs_stay_exact_pairs() -> None:
    from restorekit.data import SyntheticPairs
    from restorekit.degrade import imresize

    photo = torch.rand(1, 32, 32, generator=torch.Generator().manual_seed(1))
    item = SyntheticPairs([photo], "bicubic_x2", seed=0, crop=16, jitter=True)[0]
    assert not any(torch.equal(item["gt"], photo[..., i : i + 16, j : j + 16])
                   for i in range(17) for j in range(17))  # fmt: skip
    assert torch.allclose(
        item["lq"], imresize(item["gt"][None].double(), 0.5)[0].float(), atol=1e-6
    )
