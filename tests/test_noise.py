"""Gaussian, Poisson-Gaussian, Rician and salt-and-pepper noise: determinism, moments,
clipping, masks, presets."""

from __future__ import annotations

import pytest
import torch

from restorekit.degrade import Degraded, create_degradation, list_degradations
from restorekit.degrade.noise import (
    FACE_NOISE_SIGMA,
    GaussianNoise,
    SaltPepper,
    gaussian_noise,
    poisson_gaussian_noise,
    rician_noise,
    salt_pepper,
)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def textured(b: int = 2, c: int = 3, h: int = 64, w: int = 64) -> torch.Tensor:
    """Random image with no value at 0 or 1, so any salt or pepper hit changes a pixel."""
    return 0.1 + 0.8 * torch.rand(b, c, h, w, generator=gen(123))


# ---------------------------------------------------------------- gaussian_noise


def test_gaussian_same_seed_same_noise_different_seed_different() -> None:
    x = textured()
    a = gaussian_noise(x, 0.1, generator=gen(0))
    b = gaussian_noise(x, 0.1, generator=gen(0))
    c = gaussian_noise(x, 0.1, generator=gen(1))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_gaussian_unclipped_moments_on_mid_grey() -> None:
    sigma = 0.1
    x = torch.full((1, 1, 512, 512), 0.5)
    n = gaussian_noise(x, sigma, generator=gen(0), clip=False) - x
    assert abs(n.std().item() - sigma) < 0.02 * sigma
    # Standard error of the mean is sigma / 512; allow five of them.
    assert abs(n.mean().item()) < 5 * sigma / 512


def test_gaussian_clip_keeps_unit_range_and_unclipped_leaves_it() -> None:
    x = textured()
    y = gaussian_noise(x, 0.5, generator=gen(0), clip=True)
    assert y.min() == 0 and y.max() == 1  # the clip is active, and bounds hold
    z = gaussian_noise(x, 0.5, generator=gen(0), clip=False)
    assert z.min() < 0 and z.max() > 1
    assert torch.equal(y, z.clamp(0, 1))  # same noise, only the clip differs


def test_gaussian_per_image_sigma_tensor() -> None:
    x = torch.full((3, 1, 256, 256), 0.5)
    sigma = torch.tensor([0.0, 0.02, 0.08])
    n = gaussian_noise(x, sigma, generator=gen(0), clip=False) - x
    stds = n.flatten(1).std(dim=1)
    assert stds[0] == 0
    assert torch.allclose(stds[1:], sigma[1:], rtol=0.03)


def test_gaussian_keeps_dtype_and_shape() -> None:
    x = textured().double()
    y = gaussian_noise(x, 0.1, generator=gen(0))
    assert y.dtype == torch.float64 and y.shape == x.shape


@pytest.mark.parametrize(
    ("sigma", "match"),
    [(-0.1, "sigma"), (float("nan"), "sigma"), (torch.tensor([0.1, 0.2, 0.3]), "sigma")],
)
def test_gaussian_bad_sigma_raises(sigma: float | torch.Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        gaussian_noise(textured(), sigma, generator=gen(0))


def test_gaussian_bad_image_raises() -> None:
    with pytest.raises(ValueError, match="x must be"):
        gaussian_noise(torch.rand(3, 8, 8), 0.1, generator=gen(0))
    with pytest.raises(ValueError, match="x must be"):
        gaussian_noise(torch.zeros(1, 1, 8, 8, dtype=torch.uint8), 0.1, generator=gen(0))


def test_gaussian_does_not_touch_the_global_rng() -> None:
    torch.manual_seed(0)
    before = torch.get_rng_state()
    GaussianNoise((0.01, 0.2))(textured(), generator=gen(0))
    assert torch.equal(before, torch.get_rng_state())


def test_gaussian_twin_samples_one_sigma_per_image_in_range() -> None:
    x = torch.full((6, 1, 128, 128), 0.5)
    out = GaussianNoise((0.02, 0.2), clip=False)(x, generator=gen(0))
    assert isinstance(out, Degraded) and out.mask is None
    stds = (out.lq - x).flatten(1).std(dim=1)
    assert (stds > 0.02 * 0.97).all() and (stds < 0.2 * 1.03).all()
    assert stds.max() - stds.min() > 0.01  # not one sigma for the whole batch
    again = GaussianNoise((0.02, 0.2), clip=False)(x, generator=gen(0))
    assert torch.equal(out.lq, again.lq)


def test_gaussian_twin_rejects_bad_range() -> None:
    with pytest.raises(ValueError, match=r"sigma must be .* lo <= hi"):
        GaussianNoise((0.2, 0.1))
    with pytest.raises(ValueError, match=r"sigma must be .* lo <= hi"):
        GaussianNoise((-0.1, 0.1))


# ---------------------------------------------------------------- presets


def test_face_noise_reading() -> None:
    assert set(FACE_NOISE_SIGMA) == {"low", "high"}
    assert FACE_NOISE_SIGMA["low"] == pytest.approx(0.2 * 0.2)  # std 0.2 x factor 0.2
    assert FACE_NOISE_SIGMA["high"] == pytest.approx(0.4 * 0.3)  # std 0.4 x factor 0.3


@pytest.mark.parametrize(
    ("name", "sigma", "clip"),
    [
        ("gaussian_low", 0.04, True),
        ("gaussian_high", 0.12, True),
        ("gaussian_15", 15 / 255, False),
        ("gaussian_25", 25 / 255, False),
        ("gaussian_50", 50 / 255, False),
    ],
)
def test_gaussian_presets(name: str, sigma: float, clip: bool) -> None:
    op = create_degradation(name)
    assert isinstance(op, GaussianNoise)
    assert op.sigma_range == pytest.approx((sigma, sigma)) and op.clip is clip
    assert f"clip={clip}" in repr(op)
    x = torch.full((2, 1, 128, 128), 0.5)
    lq = op(x, generator=gen(0)).lq
    assert lq.shape == x.shape
    assert abs((lq - x).std().item() - sigma) < 0.03 * sigma  # 0.5 +- 0.2 barely clips


def test_salt_pepper_preset() -> None:
    assert {"gaussian_low", "gaussian_high", "salt_pepper"} <= set(list_degradations())
    op = create_degradation("salt_pepper")
    assert isinstance(op, SaltPepper) and op.amount_range == (0.1, 0.1)
    out = op(textured(4, 1, 48, 48), generator=gen(0))
    assert out.lq.shape == (4, 1, 48, 48) and out.mask.shape == (4, 1, 48, 48)
    assert abs(out.mask.mean().item() - 0.1) < 0.02


# ---------------------------------------------------------------- salt_pepper


def test_salt_pepper_flip_rate_and_salt_share() -> None:
    x = textured(2, 3, 256, 256)
    for ratio in (0.5, 0.3):
        y, mask = salt_pepper(x, 0.1, salt_ratio=ratio, generator=gen(0))
        # 131072 Bernoulli(0.1) draws: the std of the rate is 0.0008.
        assert abs(mask.mean().item() - 0.1) < 0.005
        hit = mask.bool().expand_as(y)
        salt_share = (y[hit] == 1).float().mean().item()
        assert abs(salt_share - ratio) < 0.02


def test_salt_pepper_mask_marks_exactly_the_changed_pixels_in_all_channels() -> None:
    x = textured(2, 3, 64, 64)
    y, mask = salt_pepper(x, 0.2, generator=gen(0))
    assert mask.shape == (2, 1, 64, 64) and mask.dtype == x.dtype
    assert set(mask.unique().tolist()) == {0.0, 1.0}
    changed = y != x
    # Every channel of a corrupted pixel changes, and nothing else does.
    assert torch.equal(changed.all(dim=1, keepdim=True), mask.bool())
    assert torch.equal(changed.any(dim=1, keepdim=True), mask.bool())
    hit = mask.bool()[:, 0]
    assert torch.equal(y[:, 0][hit], y[:, 1][hit]) and torch.equal(y[:, 0][hit], y[:, 2][hit])
    assert set(y[:, 0][hit].unique().tolist()) == {0.0, 1.0}


def test_salt_pepper_deterministic_by_seed() -> None:
    x = textured()
    a, ma = salt_pepper(x, 0.1, generator=gen(5))
    b, mb = salt_pepper(x, 0.1, generator=gen(5))
    c, _ = salt_pepper(x, 0.1, generator=gen(6))
    assert torch.equal(a, b) and torch.equal(ma, mb)
    assert not torch.equal(a, c)


def test_salt_pepper_extremes_and_per_image_amount() -> None:
    x = textured(2, 1, 64, 64)
    y, mask = salt_pepper(x, 0.0, generator=gen(0))
    assert torch.equal(y, x) and mask.sum() == 0
    y, mask = salt_pepper(x, 1.0, generator=gen(0))
    assert mask.all() and set(y.unique().tolist()) == {0.0, 1.0}
    _, mask = salt_pepper(x, torch.tensor([0.0, 0.5]), generator=gen(0))
    assert mask[0].sum() == 0 and abs(mask[1].mean().item() - 0.5) < 0.05


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"amount": 1.5}, "amount"), ({"amount": 0.1, "salt_ratio": 1.2}, "salt_ratio")],
)
def test_salt_pepper_bad_arguments_raise(kwargs: dict, match: str) -> None:
    amount = kwargs.pop("amount")
    with pytest.raises(ValueError, match=match):
        salt_pepper(textured(), amount, generator=gen(0), **kwargs)


def test_salt_pepper_twin_returns_mask_and_samples_amount_per_image() -> None:
    x = textured(4, 3, 96, 96)
    out = SaltPepper((0.0, 0.5))(x, generator=gen(0))
    assert isinstance(out, Degraded) and out.mask.shape == (4, 1, 96, 96)
    assert torch.equal(out.mask.bool(), (out.lq != x).any(dim=1, keepdim=True))
    rates = out.mask.flatten(1).mean(dim=1)
    assert rates.max() - rates.min() > 0.02
    with pytest.raises(ValueError, match=r"amount must be .* <= 1.0"):
        SaltPepper((0.2, 1.5))


# ------------------------------------------------- 8-bit noisy images, sensor noise


@pytest.mark.parametrize("level", [15, 25, 50])
def test_8bit_presets_clip_then_round_to_grey_levels(level: int) -> None:
    op = create_degradation(f"gaussian_{level}_8bit")
    x = torch.rand(2, 3, 32, 32, generator=gen(0))
    y = op(x, generator=gen(1)).lq
    assert y.min() >= 0 and y.max() <= 1
    torch.testing.assert_close(y * 255, torch.round(y * 255), atol=1e-4, rtol=0)
    # The same noise as the unclipped preset, then clipped and rounded.
    raw = create_degradation(f"gaussian_{level}")(x, generator=gen(1)).lq
    torch.testing.assert_close(y, torch.round(raw.clamp(0, 1) * 255) / 255, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="quantize=True needs clip=True"):
        create_degradation("gaussian", clip=False, quantize=True)


def test_poisson_gaussian_variance_grows_with_the_signal() -> None:
    levels = torch.tensor([0.05, 0.3, 0.8]).view(3, 1, 1, 1).expand(3, 1, 128, 128)
    y = poisson_gaussian_noise(levels, 0.01, 0.02, generator=gen(2), clip=False)
    var = (y - levels).flatten(1).var(1)
    expected = 0.01 * torch.tensor([0.05, 0.3, 0.8]) + 0.02**2
    torch.testing.assert_close(var, expected, rtol=0.05, atol=0)
    op = create_degradation("poisson_gaussian", gain=(0.0, 0.02), sigma=0.01)
    out = op(torch.rand(4, 3, 16, 16, generator=gen(3)), generator=gen(4))
    assert set(out.params) == {"gain", "sigma"} and (out.params["gain"] <= 0.02).all()
    assert out.lq.min() >= 0 and out.lq.max() <= 1


def test_rician_moments_match_scipy_rice() -> None:
    # The Rice distribution of |v + s (N1 + i N2)|, from scipy (an independent reference):
    #   import scipy.stats as st
    #   r = st.rice(b=0.05 / 0.03, scale=0.03); r.mean(), r.std()  # 0.060036, 0.026375
    #   r = st.rice(b=0.5 / 0.03, scale=0.03); r.mean(), r.std()   # 0.500901, 0.029973
    levels = torch.tensor([0.05, 0.5], dtype=torch.float64).view(2, 1, 1, 1).expand(2, 1, 256, 256)
    y = rician_noise(levels, 0.03, generator=gen(5)).flatten(1)
    torch.testing.assert_close(y.mean(1), torch.tensor([0.060036, 0.500901], dtype=torch.float64),
                               rtol=0, atol=3e-4)  # fmt: skip
    torch.testing.assert_close(y.std(1), torch.tensor([0.026375, 0.029973], dtype=torch.float64),
                               rtol=0.02, atol=0)  # fmt: skip


def test_rician_in_the_scene_is_the_new_truth_and_a_later_resize_sees_it() -> None:
    x = textured(c=1, h=48, w=48)
    plain = create_degradation("rician", sigma=0.02)(x, generator=gen(0))
    assert plain.gt is None and not torch.equal(plain.lq, x)
    op = create_degradation("rician:sigma=[0.01,0.03],scene=true + bicubic:scale=3")
    out = op(x, generator=gen(0))
    assert out.gt is not None and out.gt.shape == x.shape and out.lq.shape == (2, 1, 16, 16)
    same = create_degradation("rician", sigma=(0.01, 0.03), scene=True)(x, generator=gen(0))
    assert torch.equal(out.gt, same.lq) and torch.equal(same.gt, same.lq)
    from restorekit.degrade.resize import imresize

    torch.testing.assert_close(out.lq, imresize(out.gt, scale=1 / 3))
    assert ((out.params["0.sigma"] >= 0.01) & (out.params["0.sigma"] <= 0.03)).all()
