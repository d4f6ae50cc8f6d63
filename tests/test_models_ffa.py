"""FFA-Net (SPEC.md A): the official architecture, the light variant, the EA and PAR switches."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from restorekit.api import load_model
from restorekit.data import SyntheticPairs, pad_collate
from restorekit.layers import EfficientAttention, ProgressiveAttentionRefinement
from restorekit.losses import LOSSES, LossInputs
from restorekit.models import create_model
from restorekit.models.ffa import FFA, convert_official_state_dict
from restorekit.models.summary import count_parameters
from restorekit.train.trainer import LossTerm, Stage, Trainer, TrainOptions


def n_params(name: str, **kwargs: object) -> int:
    with torch.device("meta"):  # no memory, no init cost
        return count_parameters(create_model(name, **kwargs))


# ------------------------------------------------------------------ parameter counts


def test_paper_size_has_the_official_parameter_count() -> None:
    # Reference: BENCHMARKS.md "FFA-Net has 4.46 M parameters" (Qin et al. 2020, G=3, B=19).
    # Exact figure from the official FFA.py layer list, all convs with bias:
    #   conv3x3 64->64: 36_864 + 64 = 36_928
    #   CA (64 -> 8 -> 64, 1x1): 520 + 576 = 1_096;  PA (64 -> 8 -> 1): 520 + 9 = 529
    #   block = 2 convs + CA + PA = 75_481;  group = 19 blocks + conv = 1_471_067
    #   pre conv 3->64: 1_792;  fusion CA (192 -> 4 -> 192): 772 + 960 = 1_732;  PA: 529
    #   post: conv 64->64 36_928 + conv 64->3 1_731 = 38_659
    #   3 * 1_471_067 + 1_792 + 1_732 + 529 + 38_659 = 4_455_913
    assert n_params("ffa") == 4_455_913
    assert round(n_params("ffa") / 1e6, 2) == 4.46


def test_light_variant_has_five_blocks_per_group() -> None:
    # Reference: BENCHMARKS.md "the 5-blocks-per-group variant 1.29 M" (seeds/000).
    #   3 * (5 * 75_481 + 36_928) + 1_792 + 1_732 + 529 + 38_659 = 1_285_711
    assert n_params("ffa_light") == 1_285_711
    assert round(n_params("ffa_light") / 1e6, 2) == 1.29
    with torch.device("meta"):
        model = create_model("ffa_light")
    assert [len(g.blocks) for g in model.groups] == [5, 5, 5]


def test_switches_change_the_architecture_by_their_own_layers_only() -> None:
    plain = n_params("ffa")
    # PAR: a 3x3 conv 1 -> 1 (10 parameters) in groups 2 and 3 and in the fusion.
    assert n_params("ffa", progressive_refinement=True) == plain + 3 * 10
    # EA: keys, queries, values and reprojection, four 1x1 convs 64 -> 64.
    assert n_params("ffa", efficient_attention=True) == plain + 4 * (64 * 64 + 64)
    with torch.device("meta"):
        both = create_model("ffa", efficient_attention=True, progressive_refinement=True)
    pars = [m for m in both.modules() if isinstance(m, ProgressiveAttentionRefinement)]
    assert len(pars) == 3  # groups 2, 3 and the fusion; group 1 only starts the chain
    assert sum(isinstance(m, EfficientAttention) for m in both.modules()) == 1


# ------------------------------------------------------------------ the official structure


class _OfficialFFA(nn.Module):
    """FFA-Net as the official FFA.py lays it out (G = 3), with its module names."""

    def __init__(self, blocks: int, dim: int) -> None:
        super().__init__()

        def conv(cin: int, cout: int) -> nn.Conv2d:
            return nn.Conv2d(cin, cout, 3, padding=1)

        def pa_layer(c: int) -> nn.Module:
            layer = nn.Module()
            layer.pa = nn.Sequential(
                nn.Conv2d(c, c // 8, 1), nn.ReLU(), nn.Conv2d(c // 8, 1, 1), nn.Sigmoid()
            )
            return layer

        def block() -> nn.Module:
            b = nn.Module()
            b.conv1, b.conv2 = conv(dim, dim), conv(dim, dim)
            b.calayer = nn.Module()
            b.calayer.ca = nn.Sequential(
                nn.Conv2d(dim, dim // 8, 1), nn.ReLU(), nn.Conv2d(dim // 8, dim, 1), nn.Sigmoid()
            )
            b.palayer = pa_layer(dim)
            return b

        self.pre = nn.Sequential(conv(3, dim))
        for g in (1, 2, 3):
            group = nn.Module()
            group.gp = nn.Sequential(*(block() for _ in range(blocks)), conv(dim, dim))
            setattr(self, f"g{g}", group)
        self.ca = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(3 * dim, dim // 16, 1),
            nn.ReLU(),
            nn.Conv2d(dim // 16, 3 * dim, 1),
            nn.Sigmoid(),
        )
        self.palayer = pa_layer(dim)
        self.post = nn.Sequential(conv(dim, dim), conv(dim, 3))
        self.dim = dim

    def forward(self, x1: torch.Tensor) -> torch.Tensor:
        def run_block(b: nn.Module, x: torch.Tensor) -> torch.Tensor:
            res = torch.relu(b.conv1(x)) + x
            res = b.conv2(res)
            res = res * b.calayer.ca(res.mean(dim=(2, 3), keepdim=True))
            res = res * b.palayer.pa(res)
            return res + x

        x = self.pre(x1)
        outs = []
        for g in (self.g1, self.g2, self.g3):
            res = x
            for b in g.gp[:-1]:
                res = run_block(b, res)
            x = g.gp[-1](res) + x
            outs.append(x)
        w = self.ca(torch.cat(outs, dim=1)).view(-1, 3, self.dim)[:, :, :, None, None]
        out = w[:, 0] * outs[0] + w[:, 1] * outs[1] + w[:, 2] * outs[2]
        out = out * self.palayer.pa(out)
        return self.post(out) + x1


def test_switches_off_is_the_official_network_and_loads_its_weights() -> None:
    torch.manual_seed(0)
    official = _OfficialFFA(blocks=2, dim=32).eval()
    state = {f"module.{k}": v for k, v in official.state_dict().items()}  # as DataParallel saves
    ours = FFA(blocks=2, channels=32).eval()
    ours.load_state_dict(convert_official_state_dict(state), strict=True)
    x = torch.rand(2, 3, 13, 17)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), official(x), rtol=1e-5, atol=1e-5)


def test_convert_rejects_foreign_keys() -> None:
    with pytest.raises(ValueError, match="not a weight of the official FFA-Net"):
        convert_official_state_dict({"encoder.0.weight": torch.zeros(1)})


# ------------------------------------------------------------------ EA and PAR


def _plain_weights_for(model: FFA, plain: FFA) -> dict[str, torch.Tensor]:
    """The plain model's weights under the switched model's names (new layers kept)."""
    source = plain.state_dict()
    out = {}
    for key, value in model.state_dict().items():
        plain_key = key.replace(".pa.pa.", ".pa.").replace("fusion_pa.pa.", "fusion_pa.")
        out[key] = source.get(plain_key, value)
    return out


@pytest.mark.parametrize(
    "switches",
    [
        {"progressive_refinement": True},
        {"efficient_attention": True},
        {"efficient_attention": True, "progressive_refinement": True},
    ],
)
def test_fresh_switches_start_as_plain_ffa_and_are_wired_in(switches: dict) -> None:
    torch.manual_seed(0)
    plain = FFA(blocks=2, channels=16).eval()
    nn.init.normal_(plain.tail[1].weight, std=0.1)  # a trained tail: the output depends on it
    model = FFA(blocks=2, channels=16, **switches).eval()
    model.load_state_dict(_plain_weights_for(model, plain), strict=True)
    x = torch.rand(1, 3, 12, 10)
    with torch.no_grad():
        # Zero-initialised refining convs and EA projection: the plain network exactly.
        torch.testing.assert_close(model(x), plain(x))
        for module in model.modules():  # now make every new layer do something
            if isinstance(module, ProgressiveAttentionRefinement):
                nn.init.constant_(module.refine.weight, 0.5)
            if isinstance(module, EfficientAttention):
                nn.init.normal_(module.reprojection.weight, std=0.5)
        assert not torch.allclose(model(x), plain(x), atol=1e-4)


def test_progressive_refinement_chains_the_groups_maps() -> None:
    """Group 1's attention reaches the fusion through the refining convs, not otherwise."""
    torch.manual_seed(0)
    model = FFA(groups=3, blocks=1, channels=16, progressive_refinement=True).eval()
    x = torch.rand(1, 3, 9, 11)
    seen: dict[str, torch.Tensor | None] = {}

    def remember(name: str):  # forward hook keeping the previous-stage map a PAR was given
        def hook(module: nn.Module, args: tuple, out: tuple) -> None:
            seen[name] = args[1]

        return hook

    assert not isinstance(model.groups[0].blocks[-1].pa, ProgressiveAttentionRefinement)
    for g in (1, 2):
        model.groups[g].blocks[-1].pa.register_forward_hook(remember(f"group{g}"))
    model.fusion_pa.register_forward_hook(remember("fusion"))
    with torch.no_grad():
        model(x)
    assert set(seen) == {"group1", "group2", "fusion"}
    assert all(v is not None and v.shape == (1, 1, 9, 11) for v in seen.values())


def test_all_parameters_learn_with_both_switches_on() -> None:
    torch.manual_seed(0)
    model = create_model(
        "ffa", groups=3, blocks=1, channels=16, efficient_attention=True,
        progressive_refinement=True,
    )  # fmt: skip
    y = model(torch.rand(2, 3, 11, 9))
    assert torch.isfinite(y).all()
    (y * torch.randn_like(y)).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} gets no gradient"


# ------------------------------------------------------------------ scattering output


def test_scattering_output_swaps_the_last_conv_for_a_transmission_map_and_an_airlight() -> None:
    # tail.1 becomes 64 -> 1 (log 1/t): 64*9 + 1 = 577 instead of 64*9*3 + 3 = 1_731;
    # the airlight is a linear layer 64 -> 3 on the pooled features: 195.
    assert n_params("ffa_light", output="scattering") == 1_285_711 - 1_731 + 577 + 195


def test_fresh_scattering_network_returns_its_input_then_learns_transmission_and_airlight() -> None:
    torch.manual_seed(0)
    model = FFA(groups=2, blocks=1, channels=16, efficient_attention=True, output="scattering")
    x = torch.rand(2, 3, 11, 13)
    y = model(x)
    torch.testing.assert_close(y, x, rtol=0, atol=1e-6)
    loss = (model(x) - 0.5 * x).abs().mean()  # a step toward "dehaze": 1/t moves off 1
    loss.backward()
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    model.zero_grad()
    (model(x) * torch.randn_like(x)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    for p in (model.tail[1].weight, model.airlight.weight):  # 1/t and A, after one step
        assert p.grad.abs().sum() > 0


def test_scattering_output_inverts_the_haze_model_it_is_given() -> None:
    """I = J t + A (1 - t): log(1/t) and A give J back; past the clamp, t is held at 0.05."""
    from restorekit.models.ffa import _unscatter

    torch.manual_seed(0)
    clear = torch.rand(2, 3, 6, 7)
    airlight = torch.tensor([[0.9, 0.85, 0.8], [0.7, 0.7, 0.75]])
    t = torch.rand(2, 1, 6, 7) * 0.8 + 0.15
    hazy = clear * t + airlight[:, :, None, None] * (1 - t)
    torch.testing.assert_close(_unscatter(hazy, torch.log(1 / t), airlight), clear)
    far = _unscatter(hazy, torch.full_like(t, 10.0), airlight)  # 1/t = e^10 asked, 20 given
    a = airlight[:, :, None, None]
    torch.testing.assert_close(far, a + (hazy - a) * 20)


def test_deadzone_returns_a_faintly_hazy_reading_exactly_and_shifts_the_rest() -> None:
    """log(1/t) within the dead zone gives the input back; beyond it, log(1/t) - deadzone."""

    def net(deadzone: float, log_inv_t: float) -> FFA:
        model = FFA(groups=1, blocks=1, channels=8, output="scattering", deadzone=deadzone)
        nn.init.constant_(model.tail[1].bias, log_inv_t)  # weights are zero: a uniform map
        return model.eval()

    x = torch.rand(1, 3, 9, 10)
    with torch.no_grad():
        assert torch.equal(net(0.1, 0.08)(x), x)
        assert torch.equal(net(0.1, -0.08)(x), x)  # brightening (t > 1) as well
        assert not torch.allclose(net(0.0, 0.08)(x), x)
        torch.testing.assert_close(net(0.1, 0.3)(x), net(0.0, 0.2)(x))


def test_fresh_airlight_is_a_light_grey() -> None:
    model = FFA(groups=1, blocks=1, channels=8, output="scattering")
    pooled = torch.randn(2, 8)
    torch.testing.assert_close(torch.sigmoid(model.airlight(pooled)), torch.full((2, 3), 0.9))


def test_dcp_guide_adds_its_conv_and_with_scattering_a_gain() -> None:
    # The cue (DCP's log(1/t) and its airlight: 1 + 3 maps) -> C through a 3x3 conv:
    # 4*9*64 + 64 = 2_368; the scattering output adds the gain conv, C -> 1: 64*9 + 1.
    assert n_params("ffa_light", guide="dcp") == 1_285_711 + 2_368
    scattering = n_params("ffa_light", output="scattering")
    assert n_params("ffa_light", output="scattering", guide="dcp") == scattering + 2_368 + 577


@pytest.mark.parametrize("output", ["residual", "scattering"])
def test_a_fresh_dcp_guide_loads_unguided_weights_and_computes_the_same(output: str) -> None:
    torch.manual_seed(0)
    plain = FFA(groups=2, blocks=1, channels=8, output=output)
    with torch.no_grad():  # a trained-looking network, not the identity
        plain.tail[1].weight.normal_(0, 0.1)
    guided = FFA(groups=2, blocks=1, channels=8, output=output, guide="dcp")
    missing, unexpected = guided.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected
    assert sorted(missing) == ["guide.bias", "guide.weight"] + (
        ["guide_gain.bias", "guide_gain.weight"] if output == "scattering" else []
    )
    x = torch.rand(2, 3, 20, 24) * 0.5 + 0.4
    torch.testing.assert_close(guided(x), plain(x), rtol=0, atol=0)
    (guided(x) * torch.randn_like(x)).sum().backward()
    assert guided.guide.weight.grad.abs().sum() > 0
    if output == "scattering":
        assert guided.guide_gain.weight.grad.abs().sum() > 0


def test_a_fresh_global_gain_loads_plain_weights_computes_the_same_then_scales() -> None:
    torch.manual_seed(0)
    plain = FFA(groups=2, blocks=1, channels=8)
    with torch.no_grad():  # a trained-looking network, not the identity
        plain.tail[1].weight.normal_(0, 0.1)
    gained = FFA(groups=2, blocks=1, channels=8, global_gain=True)
    missing, unexpected = gained.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("global_gain.") for k in missing)
    # 4 stride-2 convs 6-16-32-32-64 (in and residual) and a 64-64-1 MLP
    assert count_parameters(gained) - count_parameters(plain) == (
        6 * 9 * 16 + 16 + 16 * 9 * 32 + 32 + 32 * 9 * 32 + 32 + 32 * 9 * 64 + 64 + 64 * 65 + 65
    )
    x = torch.rand(2, 3, 20, 24) * 0.5 + 0.4
    torch.testing.assert_close(gained(x), plain(x), rtol=0, atol=0)  # the gain starts at 1
    (gained(x) * torch.randn_like(x)).sum().backward()
    assert gained.global_gain.mlp[2].weight.grad.abs().sum() > 0  # the zero layer learns first
    residual = plain(x) - x
    with torch.no_grad():  # gain 3 sigmoid(b) per image, the same over its pixels
        gained.global_gain.mlp[2].bias.fill_(0.0)
        torch.testing.assert_close(gained(x) - x, 1.5 * residual, rtol=1e-5, atol=1e-6)
        gained.global_gain.mlp[2].bias.fill_(-30.0)
        torch.testing.assert_close(gained(x), x, rtol=0, atol=1e-6)  # gain 0: the input


def test_dcp_guide_gain_adds_the_dark_channel_priors_log_inverse_transmission() -> None:
    """At gain 1 and a fresh tail, the network's log(1/t) is DCP's (t clamped at 0.05-1);
    a gain conv that varies over the image scales it per pixel."""
    from restorekit.layers.haze import dcp_transmission

    torch.manual_seed(0)
    model = FFA(groups=1, blocks=1, channels=8, output="scattering", guide="dcp").train()
    with torch.no_grad():
        model.guide_gain.bias.fill_(1.0)
    x = torch.rand(1, 3, 40, 36) * 0.1
    x[..., 18:] += 0.8  # a dark half (little haze to DCP), a bright grey one (much)
    model(x)
    _, t = dcp_transmission(x)
    expected = -torch.log(t.clamp(0.05, 1.0))
    torch.testing.assert_close(model.aux_outputs["log_inv_t"], expected)
    assert expected.std() > 0.01  # a map, not a constant
    with torch.no_grad():  # weights on the features: the gain differs from pixel to pixel
        model.guide_gain.weight.normal_(0, 0.1)
    model(x)
    ratio = model.aux_outputs["log_inv_t"][expected > 0.1] / expected[expected > 0.1]
    assert ratio.std() > 0.01


def test_weights_with_the_older_scalar_dcp_gain_load_as_a_uniform_gain(tmp_path) -> None:
    from restorekit.api import load_model
    from restorekit.models import create_model
    from restorekit.train.checkpoint import save_weights

    torch.manual_seed(0)
    kwargs = dict(groups=1, blocks=1, channels=8, output="scattering", guide="dcp")
    model = create_model("ffa_light", **kwargs)
    with torch.no_grad():
        model.guide_gain.bias.fill_(0.7)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("guide_gain.")}
    old = create_model("ffa_light", **kwargs)  # as git 61613d6 saved it: one scalar
    old.load_state_dict(state, strict=False)
    del old.guide_gain
    old.register_parameter("guide_gain", torch.nn.Parameter(torch.tensor(0.7)))
    save_weights(tmp_path / "old.safetensors", old)
    loaded = load_model(tmp_path / "old.safetensors")
    x = torch.rand(1, 3, 24, 20)
    torch.testing.assert_close(loaded(x), model.eval()(x))


# ------------------------------------------------------------------ shapes, modes, errors


@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("name", ["ffa", "ffa_light"])
def test_odd_sizes_both_channel_counts_deterministic_in_eval(name: str, in_channels: int) -> None:
    torch.manual_seed(0)
    model = create_model(
        name, blocks=1, channels=16, in_channels=in_channels, efficient_attention=True,
        progressive_refinement=True,
    ).eval()  # fmt: skip
    assert model.scale == 1 and model.size_multiple == 1
    x = torch.rand(2, in_channels, 13, 17)
    with torch.no_grad():
        y1, y2 = model(x), model(x)
    assert y1.shape == x.shape
    assert torch.isfinite(y1).all()
    torch.testing.assert_close(y1, y2, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"in_channels": 2}, "in_channels must be 1 or 3"),
        ({"groups": 0}, "groups must be a positive integer"),
        ({"blocks": 2.5}, "blocks must be a positive integer"),
        ({"output": "additive"}, "output must be residual or scattering"),
        ({"guide": "depth"}, "guide must be none or dcp"),
        ({"deadzone": 0.05}, "deadzone must be 0 unless output='scattering'"),
        ({"deadzone": -0.1, "output": "scattering"}, "deadzone must be >= 0, got -0.1"),
        (
            {"global_gain": True, "output": "scattering"},
            "global_gain must be False unless output='residual'",
        ),
    ],
)
def test_bad_arguments_are_value_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create_model("ffa", **kwargs)


def test_load_model_reads_an_official_checkpoint_file_as_the_official_code_saves_it(
    tmp_path: Path,
) -> None:
    # The official train.py saves {"step", "max_psnr", "max_ssim", "ssims", "psnrs",
    # "model": net.state_dict()} from a DataParallel net, as its_train_ffa_3_19.pk.
    torch.manual_seed(1)
    official = _OfficialFFA(blocks=2, dim=32).eval()
    state = {f"module.{k}": v for k, v in official.state_dict().items()}
    file = tmp_path / "its_train_ffa_3_19.pk"
    torch.save({"step": 500000, "max_psnr": 36.39, "max_ssim": 0.9886, "ssims": [0.98],
                "psnrs": [36.0], "model": state}, file)  # fmt: skip
    ours = load_model("ffa", weights=file, blocks=2, channels=32)
    x = torch.rand(1, 3, 16, 20)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), official(x), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="holds no model name"):
        load_model(file)


@pytest.mark.parametrize("switches", [(False, False), (True, True)])
def test_a_fresh_network_returns_its_input(switches: tuple[bool, bool]) -> None:
    # Zero last conv (and zero EA / PAR projections): a clear image is not harmed before
    # training has learned anything, and every ablation variant starts from the same map.
    torch.manual_seed(0)
    ea, par = switches
    net = FFA(groups=2, blocks=1, channels=16, efficient_attention=ea, progressive_refinement=par)
    x = torch.rand(2, 3, 24, 20)
    with torch.no_grad():
        assert torch.equal(net(x), x)


def test_scattering_loss_term_trains_transmission_and_airlight_through_the_trainer(
    tmp_path: Path,
) -> None:
    photos = [torch.rand(3, 24, 24, generator=torch.Generator().manual_seed(i)) for i in range(4)]
    data = SyntheticPairs(photos, "haze_dense", seed=0, crop=16)
    batch = pad_collate([data[i] for i in range(4)])

    def trained(*terms: LossTerm) -> FFA:
        torch.manual_seed(0)
        model = FFA(groups=1, blocks=1, channels=8, output="scattering")
        stage = Stage(steps=60, lr=1e-2, losses=terms)
        options = TrainOptions(stages=(stage,), progress=False, batch_size=4, val_every=60)
        Trainer(model, data, data, options, tmp_path / str(len(terms))).fit()
        return model

    def scattering_term(model: FFA) -> float:
        model.eval()
        model(batch["lq"])
        assert model.aux_outputs == {}  # only a training forward leaves its maps
        model.train()
        with torch.no_grad():
            model(batch["lq"])
        targets = {k: batch[k] for k in ("transmission", "airlight")}
        inputs = LossInputs(batch["gt"], batch["gt"], batch["lq"], targets=targets,
                            maps=model.aux_outputs)  # fmt: skip
        return LOSSES["scattering"](inputs).item()

    image_only = scattering_term(trained(LossTerm("l1")))
    supervised = scattering_term(trained(LossTerm("l1"), LossTerm("scattering", 10.0)))
    assert supervised < 0.9 * image_only  # 0.39 against 0.45 when written
