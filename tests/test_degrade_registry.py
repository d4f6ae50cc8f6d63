"""Degradations as parametrised, composable operators (issue 15): presets are parameter
sets, specs round-trip, Compose chains operators, and the sampled values come back."""

from __future__ import annotations

import pytest
import torch

from restorekit.degrade import (
    DEGRADATIONS,
    Bicubic,
    Compose,
    GaussianNoise,
    Haze,
    SaltPepper,
    create_degradation,
    imresize,
    list_degradations,
    parse_spec,
)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_every_degrade_module_registers_an_operator() -> None:
    assert DEGRADATIONS.silent_modules() == []
    assert set(list_degradations(kind="operator")) == {
        "bicubic", "gaussian", "haze", "painted_damage", "poisson_gaussian", "rician",
        "salt_pepper", "surface_defects",
    }  # fmt: skip


@pytest.mark.parametrize("name", list_degradations(kind="preset"))
def test_presets_are_parameter_sets_of_an_operator(name: str) -> None:
    preset = DEGRADATIONS.get(name)
    op = create_degradation(name)
    again = create_degradation(preset.operator, **preset.params)
    assert type(op) is type(again) and repr(op) == repr(again)
    assert op.spec == name and preset.description  # named, and says what it is


def test_parameters_take_a_value_or_a_range_and_override_presets() -> None:
    op = create_degradation("gaussian", sigma=(0.0, 0.2))
    assert isinstance(op, GaussianNoise) and op.sigma_range == (0.0, 0.2) and op.clip
    assert create_degradation("gaussian_15", clip=True).clip  # a preset, one value changed
    assert create_degradation("gaussian_15", clip=True).sigma_range == (15 / 255, 15 / 255)
    with pytest.raises(ValueError, match=r"degradation 'gaussian': .*'sigmaa'"):
        create_degradation("gaussian", sigmaa=0.1)
    with pytest.raises(ValueError, match=r"unknown degradation 'nope'; choose one of: bicubic"):
        create_degradation("nope")
    with pytest.raises(ValueError, match=r"sigma must be .* lo <= hi"):
        create_degradation("gaussian:sigma=[0.3, 0.1]")


def test_a_spec_string_round_trips() -> None:
    spec = "bicubic:scale=3 + gaussian:sigma=[0.0, 0.1],clip=false"
    assert parse_spec(spec) == [
        ("bicubic", {"scale": 3}), ("gaussian", {"sigma": [0.0, 0.1], "clip": False}),
    ]  # fmt: skip
    op = create_degradation(spec)
    rebuilt = create_degradation(op.spec)
    assert (
        repr(rebuilt)
        == repr(op)
        == ("Bicubic(scale=3) + GaussianNoise(sigma_range=(0, 0.1), clip=False)")
    )


def test_compose_downscales_then_adds_noise_and_returns_what_it_sampled() -> None:
    x = torch.rand(2, 1, 24, 36, generator=gen(0))
    op = Compose(Bicubic(4), GaussianNoise((0.05, 0.1), clip=False))
    assert op.scale == 4
    out = op(x, generator=gen(1))
    assert out.lq.shape == (2, 1, 6, 9) and out.mask is None
    sigma = out.params["1.sigma"]
    assert sigma.shape == (2,) and ((sigma >= 0.05) & (sigma <= 0.1)).all()
    # The same as the two steps by hand, with the same generator.
    g = gen(1)
    noisy = GaussianNoise((0.05, 0.1), clip=False)(imresize(x, 0.25), generator=g)
    torch.testing.assert_close(out.lq, noisy.lq)
    torch.testing.assert_close(out.params["1.sigma"], noisy.params["sigma"])


def test_compose_keeps_a_mask_at_the_output_size() -> None:
    out = Compose(SaltPepper(0.2), Bicubic(2))(torch.rand(1, 1, 16, 16), generator=gen(0))
    assert out.mask is not None and out.mask.shape == (1, 1, 8, 8)
    assert 0 < out.mask.mean() < 1


def test_operators_return_their_sampled_values() -> None:
    x = torch.rand(3, 3, 16, 16, generator=gen(0))
    assert set(create_degradation("gaussian_face_blind")(x, generator=gen(1)).params) == {"sigma"}
    assert set(create_degradation("salt_pepper")(x, generator=gen(1)).params) == {"amount"}
    haze = create_degradation("haze")(x, generator=gen(1))
    assert set(haze.params) == {"beta", "airlight"} and haze.params["beta"].shape == (3,)
    assert dict(create_degradation("bicubic_x2")(x, generator=gen(1)).params) == {}


def test_auxiliary_inputs_are_declared_and_reach_their_step() -> None:
    assert Haze.inputs == ("depth",) and GaussianNoise.inputs == ()
    op = create_degradation("haze:beta=0.1,airlight=1.0 + gaussian:sigma=0")
    assert op.inputs == ("depth",)
    x = torch.rand(1, 3, 16, 16, generator=gen(0))
    near = op(x, generator=gen(1), depth=torch.zeros(1, 1, 16, 16)).lq
    torch.testing.assert_close(near, x)  # depth 0: no haze, and sigma 0: no noise
