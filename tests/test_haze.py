"""Haze: the scattering model, transmission, depth priors, real disparity, the twin."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from restorekit.degrade import Degraded, create_degradation
from restorekit.degrade.haze import (
    Haze,
    dark_channel_depth,
    disparity_to_depth,
    haze,
    random_depth,
    transmission,
    vertical_gradient_depth,
)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def image(b: int = 2, c: int = 3, h: int = 32, w: int = 40, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, c, h, w, generator=gen(seed))


def ramp_depth(h: int = 32, w: int = 40, top: float = 1.0) -> torch.Tensor:
    return torch.linspace(top, 0.0, h).view(1, 1, h, 1).expand(1, 1, h, w).contiguous()


@pytest.fixture(scope="module")
def motorcycle_disparity() -> np.ndarray:
    skdata = pytest.importorskip("skimage.data")
    _, _, disparity = skdata.stereo_motorcycle()  # shipped in the wheel: no download
    return disparity


# ---------------------------------------------------------------- the model


def test_beta_zero_is_the_identity() -> None:
    x = image()
    assert torch.equal(haze(x, ramp_depth() * 50, beta=0.0, airlight=0.8), x)


def test_large_depth_tends_to_the_airlight() -> None:
    x = image()
    far = torch.full((1, 1, 32, 40), 1e3)
    assert torch.allclose(haze(x, far, beta=1.0, airlight=0.8), torch.full_like(x, 0.8))
    a = torch.tensor([0.7, 1.0])
    y = haze(x, far, beta=1.0, airlight=a)
    assert torch.allclose(y, a.view(2, 1, 1, 1).expand_as(x))
    colour = torch.tensor([[0.9, 0.8, 0.7], [1.0, 1.0, 0.6]])
    y = haze(x, far, beta=1.0, airlight=colour)
    assert torch.allclose(y, colour.view(2, 3, 1, 1).expand_as(x))


def test_haze_matches_the_formula() -> None:
    x = image(1, 3, 8, 8).double()
    d = torch.rand(1, 1, 8, 8, generator=gen(1), dtype=torch.float64) * 5
    beta, a = 0.3, 0.9
    t = np.exp(-beta * d.numpy())
    expected = x.numpy() * t + a * (1 - t)
    np.testing.assert_allclose(haze(x, d, beta=beta, airlight=a).numpy(), expected, rtol=1e-12)


def test_transmission_range_and_monotone_in_depth() -> None:
    d = torch.linspace(0, 100, 1001).view(1, 1, 1, -1)
    t = transmission(d, 0.1)
    assert t[..., 0].item() == 1.0
    assert (t > 0).all() and (t <= 1).all()
    assert (t[..., 1:] < t[..., :-1]).all()
    # One beta per image, one shared depth map.
    t2 = transmission(d, torch.tensor([0.0, 0.1]))
    assert t2.shape == (2, 1, 1, 1001)
    assert (t2[0] == 1).all() and torch.allclose(t2[1], t[0])


def test_output_stays_in_unit_range() -> None:
    x = image(4, 3, 32, 40)
    d = torch.rand(4, 1, 32, 40, generator=gen(2)) * 30
    for a in (0.0, 0.7, 1.0):
        y = haze(x, d, beta=torch.tensor([0.04, 0.1, 0.2, 1.0]), airlight=a)
        assert y.min() >= 0 and y.max() <= 1


def test_per_image_beta_and_shared_depth() -> None:
    x = image()
    y = haze(x, ramp_depth(), beta=torch.tensor([0.0, 2.0]), airlight=1.0)
    assert torch.equal(y[0], x[0])
    assert not torch.equal(y[1], x[1])


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_depth_raises(bad: float) -> None:
    d = ramp_depth()
    d[0, 0, 3, 4] = bad
    with pytest.raises(ValueError, match="non-finite"):
        haze(image(), d, beta=0.1, airlight=1.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"depth": -ramp_depth() - 1}, "depth must be >= 0"),
        ({"depth": torch.ones(1, 2, 32, 40)}, "one channel"),
        ({"depth": torch.ones(1, 1, 16, 40)}, "depth must be"),
        ({"beta": -0.1}, "beta"),
        ({"beta": torch.tensor([0.1, 0.1, 0.1])}, "beta"),
        ({"airlight": torch.ones(2, 4)}, "airlight"),
        ({"airlight": float("nan")}, "airlight"),
    ],
)
def test_bad_arguments_raise(kwargs: dict, match: str) -> None:
    args = {"depth": ramp_depth(), "beta": 0.1, "airlight": 1.0} | kwargs
    depth = args.pop("depth")
    with pytest.raises(ValueError, match=match):
        haze(image(), depth, **args)


# ---------------------------------------------------------------- depth priors


def test_vertical_gradient_far_at_top_near_at_bottom_and_smooth() -> None:
    x = image(3, 3, 50, 20)
    d = vertical_gradient_depth(x, near=0.2, far=0.9)
    assert d.shape == (3, 1, 50, 20)
    col = d[0, 0, :, 0]
    assert col[0].item() == pytest.approx(0.9) and col[-1].item() == pytest.approx(0.2)
    assert (col[1:] <= col[:-1]).all()  # never nearer higher up
    assert (d == d[..., :1]).all()  # constant along rows
    assert (col[:-1] - col[1:]).max() <= 0.7 / 49 + 1e-6  # no jumps
    sky = vertical_gradient_depth(x, horizon=0.4)[0, 0, :, 0]
    assert (sky[:20] == 1).all() and sky[20:].max() < 1 and sky[-1] == 0


def test_vertical_gradient_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="near"):
        vertical_gradient_depth(image(), near=0.8, far=0.5)
    with pytest.raises(ValueError, match="horizon"):
        vertical_gradient_depth(image(), horizon=1.0)


def test_dark_channel_prior_puts_bright_grey_areas_farther() -> None:
    x = torch.zeros(1, 3, 64, 64)
    x[..., :, :32] = torch.tensor([0.85, 0.85, 0.85]).view(3, 1, 1)  # bright and grey
    x[..., :, 32:] = torch.tensor([0.9, 0.15, 0.1]).view(3, 1, 1)  # bright but saturated
    d = dark_channel_depth(x, patch=5, smooth=9)
    assert d.shape == (1, 1, 64, 64)
    assert d.min() == 0 and d.max() == 1
    assert d[..., :, :16].mean() > 0.9 and d[..., :, 48:].mean() < 0.1
    # Smooth: the unit step of the input becomes a ramp of small steps.
    assert (d[..., 1:] - d[..., :-1]).abs().max() < 0.1


def test_dark_channel_prior_on_flat_image_is_zero() -> None:
    d = dark_channel_depth(torch.full((2, 1, 20, 20), 0.3))
    assert torch.equal(d, torch.zeros(2, 1, 20, 20))


# ---------------------------------------------------------------- real disparity


def test_disparity_to_depth_on_the_skimage_motorcycle(motorcycle_disparity: np.ndarray) -> None:
    disp = motorcycle_disparity
    invalid = ~np.isfinite(disp) | (disp <= 0)
    assert invalid.any(), "the Middlebury disparity has holes marked non-finite"
    depth = disparity_to_depth(disp)
    assert depth.shape == (1, 1, *disp.shape)
    d = depth[0, 0].numpy()
    assert np.isfinite(d).all() and d.min() > 0 and d.max() == 1
    assert (d[invalid] == 1).all()
    # Depth is proportional to 1 / disparity: depth * disparity is one constant, the
    # smallest valid disparity (the farthest point is at depth 1).
    valid = ~invalid
    np.testing.assert_allclose(d[valid] * disp[valid], disp[valid].min(), rtol=1e-5)
    # The filled map is a valid haze depth.
    hazy = haze(torch.full((1, 3, *disp.shape), 0.5), depth * 12, beta=0.1, airlight=1.0)
    assert torch.isfinite(hazy).all()


def test_disparity_background_fill_uses_neighbouring_far_depth(
    motorcycle_disparity: np.ndarray,
) -> None:
    disp = motorcycle_disparity
    invalid = ~np.isfinite(disp)
    d = disparity_to_depth(disp, fill="background")[0, 0].numpy()
    far = disparity_to_depth(disp)[0, 0].numpy()
    assert np.isfinite(d).all() and d.min() > 0 and d.max() <= 1
    assert np.array_equal(d[~invalid], far[~invalid])
    # Holes take local depths, not all the far end.
    assert d[invalid].mean() < 0.9
    # A hole between a near and a far pixel takes the far one's depth.
    row = torch.tensor([[10.0, float("nan"), 40.0, float("inf"), 20.0]])
    out = disparity_to_depth(row, fill="background").flatten().tolist()
    assert out == pytest.approx([1.0, 1.0, 0.25, 0.5, 0.5])


def test_disparity_to_depth_rejects_unusable_input() -> None:
    with pytest.raises(ValueError, match="no finite value"):
        disparity_to_depth(torch.full((4, 4), float("nan")))
    with pytest.raises(ValueError, match="disparity must be"):
        disparity_to_depth(torch.ones(3, 4, 4))
    with pytest.raises(ValueError, match="fill"):
        disparity_to_depth(torch.ones(4, 4), fill="mean")  # type: ignore[arg-type]


# ---------------------------------------------------------------- the twin


def test_twin_deterministic_by_seed_and_in_range() -> None:
    x = image(4)
    op = Haze()
    a = op(x, generator=gen(0))
    assert isinstance(a, Degraded) and a.mask is None
    assert torch.equal(a.lq, op(x, generator=gen(0)).lq)
    assert not torch.equal(a.lq, op(x, generator=gen(1)).lq)
    assert a.lq.min() >= 0 and a.lq.max() <= 1


def test_twin_depth_scale_sets_far_end_transmission() -> None:
    x = torch.zeros(1, 3, 8, 8)
    ones = torch.ones(1, 1, 8, 8)
    op = Haze(beta=0.1, airlight=1.0, depth_scale=12.0)
    y = op(x, generator=gen(0), depth=ones).lq
    assert torch.allclose(y, torch.full_like(y, 1 - math.exp(-1.2)))
    # The default ranges give visible haze at the far end: t in about [0.09, 0.62].
    default = Haze()
    t_far = [math.exp(-b * default.depth_scale) for b in default.beta_range]
    assert 0.5 < t_far[0] < 0.7 and 0.05 < t_far[1] < 0.15


def test_twin_uses_given_depth_and_both_priors() -> None:
    x = image(2, 3, 48, 48)
    near = Haze()(x, generator=gen(0), depth=torch.zeros(1, 1, 48, 48)).lq
    assert torch.allclose(near, x)  # depth 0: nothing between camera and scene
    vert = Haze(depth_prior="vertical")(x, generator=gen(0)).lq
    dark = Haze(depth_prior="dark_channel")(x, generator=gen(0)).lq
    assert not torch.equal(vert, dark)
    # Vertical prior: the bottom row is at depth 0, so it stays clear.
    assert torch.allclose(vert[..., -1, :], x[..., -1, :])
    bad = torch.ones(1, 1, 48, 48)
    bad[..., 0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        Haze()(x, generator=gen(0), depth=bad)


def test_twin_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="depth_prior"):
        Haze(depth_prior="midas")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"airlight must be .* <= 1.0"):
        Haze(airlight=(0.8, 1.2))
    with pytest.raises(ValueError, match="depth_scale"):
        Haze(depth_scale=0.0)
    with pytest.raises(ValueError, match=r"beta must be .* lo <= hi"):
        Haze(beta=(0.2, 0.1))


def test_haze_preset_runs_on_a_batch_without_global_rng() -> None:
    op = create_degradation("haze")
    assert isinstance(op, Haze) and "depth_scale=12.0" in repr(op)
    torch.manual_seed(0)
    before = torch.get_rng_state()
    out = op(image(3, 3, 40, 40), generator=gen(0))
    assert torch.equal(before, torch.get_rng_state())
    assert out.lq.shape == (3, 3, 40, 40)


# ------------------------------------------------------- random depth, tinted airlight


def test_random_depth_is_reproducible_varied_and_in_range() -> None:
    x = torch.zeros(16, 3, 40, 56)
    a, b = random_depth(x, generator=gen(3)), random_depth(x, generator=gen(3))
    assert torch.equal(a, b) and a.shape == (16, 1, 40, 56)
    assert a.min() >= 0 and a.max() <= 1
    assert not torch.equal(a, random_depth(x, generator=gen(4)))
    # One field per image, not a shared one: some nearly at one depth, some spanning many.
    assert not torch.equal(a[0], a[1])
    spans = a.flatten(1).amax(1) - a.flatten(1).amin(1)
    assert spans.max() > 0.5 and spans.min() < 0.3


def test_random_depth_has_no_fixed_orientation() -> None:
    # The vertical prior makes every bottom row clear; random fields put the far end
    # sometimes at the bottom, so a network cannot learn haze from a pixel's row.
    d = random_depth(torch.zeros(200, 1, 64, 64), generator=gen(0))
    bottom_farther = (d[:, 0, -1].mean(1) > d[:, 0, 0].mean(1)).float().mean()
    assert 0.05 < float(bottom_farther) < 0.5
    # Smooth away from object edges: most neighbouring pixels differ by little.
    steps = (d[..., 1:, :] - d[..., :-1, :]).abs()
    assert float((steps < 0.05).float().mean()) > 0.95


def test_random_prior_draws_from_the_generator_only() -> None:
    op = Haze(beta=0.1, airlight=0.9, depth_prior="random")
    x = image(2, 3, 32, 32)
    torch.manual_seed(0)
    before = torch.get_rng_state()
    one, two = (op(x, generator=gen(5)).lq for _ in range(2))
    assert torch.equal(one, two) and torch.equal(before, torch.get_rng_state())
    assert not torch.equal(one, op(x, generator=gen(6)).lq)


def test_tint_gives_each_channel_its_own_airlight() -> None:
    x = torch.zeros(4, 3, 8, 8)
    far = torch.full((1, 1, 8, 8), 100.0)  # transmission ~0: the output is the airlight
    out = Haze(beta=1.0, airlight=0.8, tint=0.1, depth_scale=1.0)(x, generator=gen(0), depth=far)
    tint = out.params["tint"]
    assert tint.shape == (4, 3) and tint.abs().max() <= 0.1 and tint.abs().min() > 0
    expected = (0.8 + tint).clamp(0, 1).float()
    torch.testing.assert_close(out.lq.mean(dim=(2, 3)), expected, atol=1e-5, rtol=0)
    grey = Haze(beta=1.0, airlight=0.8, depth_scale=1.0)(x, generator=gen(0), depth=far)
    assert "tint" not in grey.params and torch.allclose(grey.lq, torch.full_like(x, 0.8))
    with pytest.raises(ValueError, match="tint"):
        Haze(tint=1.5)


def test_haze_wide_preset_spans_clear_to_dense() -> None:
    op = create_degradation("haze_wide")
    assert isinstance(op, Haze) and op.depth_prior == "random" and op.tint > 0
    lo, hi = op.far_transmission
    assert hi == 1.0 and 0.05 < lo < 0.15  # exp(-12 * 0.2) = 0.09
    assert "far-end transmission 0.09..1.00" in repr(op) and "drawn uniformly" in repr(op)
    t = torch.exp(-op(torch.rand(400, 3, 4, 4), generator=gen(0)).params["beta"] * 12)
    assert 0.25 < float((t > 0.7).float().mean()) < 0.4  # uniform in transmission


def test_clear_fraction_leaves_that_share_of_samples_unhazed() -> None:
    op = create_degradation("haze_wide", clear_fraction=0.25)
    x = torch.rand(400, 3, 8, 8, generator=gen(1))
    out = op(x, generator=gen(2))
    clear = out.params["beta"] == 0
    assert 0.18 < float(clear.float().mean()) < 0.32
    assert torch.equal(out.lq[clear], x[clear]) and "clear_fraction=0.25" in repr(op)
    with pytest.raises(ValueError, match="clear_fraction"):
        Haze(clear_fraction=1.0)


def test_haze_targets_are_the_transmission_and_airlight_it_made_the_haze_with() -> None:
    x = torch.rand(3, 3, 16, 12, generator=gen(3))
    out = create_degradation("haze_wide")(x, generator=gen(4))  # random depth, tinted
    t, a = out.targets["transmission"], out.targets["airlight"]
    assert t.shape == (3, 1, 16, 12) and a.shape == (3, 3)
    assert t.dtype == a.dtype == torch.float32
    remade = x * t + a[:, :, None, None] * (1 - t)  # I = J t + A (1 - t)
    torch.testing.assert_close(remade, out.lq, atol=1e-6, rtol=0)
    beta = out.params["beta"]
    assert bool(((t == 1).flatten(1).all(1) == (beta == 0)).all())  # clear only when beta 0
    grey = Haze(beta=0.1, airlight=(0.7, 0.9))(x[:, :1], generator=gen(5))  # one channel
    assert grey.targets["airlight"].shape == (3, 1)
    torch.testing.assert_close(grey.targets["airlight"][:, 0], grey.params["airlight"].float())


def test_compose_passes_the_haze_targets_on() -> None:
    x = torch.rand(2, 3, 8, 8, generator=gen(6))
    out = create_degradation("haze_light + gaussian:sigma=0.01")(x, generator=gen(7))
    assert sorted(out.targets) == ["airlight", "transmission"]
    assert not create_degradation("gaussian_25")(x, generator=gen(7)).targets
