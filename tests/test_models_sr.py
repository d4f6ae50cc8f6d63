"""Super-resolution models (SPEC.md C): SRCNN, DRRN, EDSR (full, baseline), RDN, CASR."""

from __future__ import annotations

import math

import pytest
import torch

from restorekit.degrade import imresize
from restorekit.layers import SwinBlock
from restorekit.models import MODELS, create_model, model_entry
from restorekit.models.summary import count_parameters

# The registry's tiny configurations, so that every scale and channel count runs in a
# fraction of a second; the SR models are the restorers that upscale.
SR_MODELS = tuple(e.name for e in MODELS.entries() if e.scales != (1,))
SMALL = {name: dict(model_entry(name).tiny) for name in SR_MODELS}


def n_params(name: str, **kwargs: object) -> int:
    with torch.device("meta"):  # the big ones cost neither memory nor init time
        return count_parameters(create_model(name, **kwargs))


# ------------------------------------------------------------------ parameter counts


def test_srcnn_955_on_one_channel_has_57k_parameters() -> None:
    # Reference: Dong et al. TPAMI 2015 and BENCHMARKS.md, "SRCNN about 57 K" (9-5-5, 64/32).
    #   9*9*1*64 + 64 = 5_248;  5*5*64*32 + 32 = 51_232;  5*5*32*1 + 1 = 801  -> 57_281
    assert n_params("srcnn", in_channels=1) == 57_281


def test_drrn_b1u25_has_the_papers_297k_convolution_weights() -> None:
    # Reference: Tai et al. CVPR 2017, "DRRN B1U25 ... 297K" (BENCHMARKS.md: DRRN 297 K).
    # Bias-free convs (official Caffe model): 3*3*1*128 + 2*3*3*128*128 (shared by the 25
    # units) + 3*3*128*1 = 297_216. Per-unit BatchNorm (2 per unit + 1 before the output,
    # 256 parameters each) adds 51 * 256 = 13_056, which the paper's count leaves out.
    assert n_params("drrn", in_channels=1, batch_norm=False) == 297_216
    assert round(297_216 / 1e6, 3) == 0.297
    assert n_params("drrn", in_channels=1) == 297_216 + 13_056
    with torch.device("meta"):
        model = create_model("drrn")
    conv_weights = sum(p.numel() for n, p in model.named_parameters() if "conv" in n)
    assert conv_weights == 297_216


def test_edsr_parameter_counts() -> None:
    # Reference: Lim et al. CVPRW 2017 (Table 1) and BENCHMARKS.md: baseline 1.37 M (x2),
    # EDSR 43 M (x4). Baseline x2 RGB: head 1_792 + 16 blocks * 73_856 + body conv 36_928
    # + x2 upsampler conv 64->256 147_712 + tail 64->3 1_731 = 1_369_859 (the frozen
    # mean shift is not a parameter). Full x4: 7_168 + 32 * 1_180_160 + 590_080
    # + 2 * 2_360_320 + 6_915 = 43_089_923.
    assert n_params("edsr_baseline", scale=2, in_channels=3) == 1_369_859
    assert n_params("edsr", scale=4, in_channels=3) == 43_089_923
    assert round(43_089_923 / 1e6) == 43


def test_rdn_x4_rgb_has_22_27m_parameters() -> None:
    # Reference: Zhang et al. CVPR 2018 and BENCHMARKS.md, RDN 22.3 M (22.27 M) at x4.
    # SFE1 1_792 + SFE2 36_928 + 16 RDBs * 1_364_544 (8 dense convs 36_864 * (1..8) + 8 * 64
    # biases, 1x1 fusion 576->64 36_928) + GFF 65_600 + 36_928 + UPNet (two conv 64->256
    # 147_712 each, conv 64->3 1_731) = 22_271_107.
    assert n_params("rdn", scale=4, in_channels=3) == 22_271_107
    assert round(22_271_107 / 1e6, 2) == 22.27


def test_casr_parameter_count() -> None:
    # No published count; from the layer list at x4, one channel:
    #   head 1_280; AFEB = AHPF 129 + SE(128, /4) 8_352 + RDB(128, 32, 6) 400_704 = 409_185,
    #   x20 = 8_183_700; GFF 2560->128 327_808 + 3x3 147_584;
    #   SAB: embed 128->96 (6x6) 442_464 + 2 Swin blocks * 112_134 + un-embed 96->4608
    #   446_976 + two 3x3 convs 295_168 = 1_408_876; x4 upsampler 1_180_672; tail 1_153.
    assert n_params("casr", scale=4) == 11_251_073


# ------------------------------------------------------------------ shapes, modes, errors


@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("name", SR_MODELS)
def test_odd_sizes_every_scale_both_channel_counts(name: str, scale: int, in_channels: int) -> None:
    torch.manual_seed(0)
    model = create_model(name, scale=scale, in_channels=in_channels, **SMALL[name]).eval()
    assert model.scale == scale and model.in_channels == in_channels
    x = torch.rand(2, in_channels, 13, 17)
    with torch.no_grad():
        y1, y2 = model(x), model(x)
    assert y1.shape == (2, in_channels, 13 * scale, 17 * scale)
    assert torch.isfinite(y1).all()
    torch.testing.assert_close(y1, y2, rtol=0, atol=0)  # eval mode is deterministic


@pytest.mark.parametrize("name", SR_MODELS)
def test_every_parameter_learns(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, scale=2, **SMALL[name]).train()
    x = torch.rand(2, model.in_channels, 12, 14)
    y = model(x)
    (y * torch.randn_like(y)).sum().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname


@pytest.mark.parametrize("name", SR_MODELS)
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scale": 1}, "scale must be 2, 3 or 4"),
        ({"scale": 8}, "scale must be 2, 3 or 4"),
        ({"scale": True}, "scale must be 2, 3 or 4"),
        ({"in_channels": 2}, "in_channels must be 1 or 3"),
    ],
)
def test_bad_scale_or_channels_is_a_value_error(name: str, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create_model(name, **{**SMALL[name], **kwargs})


def test_default_channels_follow_each_paper() -> None:
    with torch.device("meta"):
        channels = {name: create_model(name).in_channels for name in SR_MODELS}
    assert channels == {
        "srcnn": 1, "drrn": 1, "casr": 1, "edsr": 3, "edsr_baseline": 3, "rdn": 3,
        "drrn_small": 1, "casr_small": 1, "rdn_small": 3,
    }  # fmt: skip


# ------------------------------------------------------------------ pre-upsampling


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("name", ["srcnn", "drrn"])
def test_pre_upsampling_is_the_network_on_the_bicubic_image(name: str, scale: int) -> None:
    torch.manual_seed(0)
    on_lr = create_model(name, scale=scale, **SMALL[name]).eval()
    on_hr = create_model(name, scale=scale, pre_upsampled=True, **SMALL[name]).eval()
    on_hr.load_state_dict(on_lr.state_dict(), strict=True)
    assert (on_lr.scale, on_hr.scale) == (scale, 1)
    assert on_lr.upscale == on_hr.upscale == scale
    lr = torch.rand(1, 1, 13, 17)
    with torch.no_grad():
        torch.testing.assert_close(on_lr(lr), on_hr(imresize(lr, scale)), rtol=0, atol=0)
        assert on_hr(torch.rand(1, 1, 13, 17)).shape == (1, 1, 13, 17)


def test_srcnn_keeps_constant_images_constant_with_replicate_padding() -> None:
    model = create_model("srcnn", pre_upsampled=True)
    with torch.no_grad():
        for conv in (m for m in model.modules() if isinstance(m, torch.nn.Conv2d)):
            conv.weight.fill_(1.0 / conv.weight[0].numel())  # a mean filter, every channel
            conv.bias.zero_()
        y = model(torch.full((1, 1, 11, 11), 0.5))
    torch.testing.assert_close(y, torch.full_like(y, 0.5))  # no dark frame at the border


# ------------------------------------------------------------------ EDSR mean shift


def test_edsr_mean_shift_is_a_fixed_buffer_outside_checkpoints() -> None:
    model = create_model("edsr_baseline", scale=2, n_blocks=1, n_feats=8)
    with torch.no_grad():
        for conv in (m for m in model.modules() if isinstance(m, torch.nn.Conv2d)):
            conv.weight.zero_()
            conv.bias.zero_()
        y = model(torch.rand(1, 3, 5, 6))
    mean = torch.tensor([0.4488, 0.4371, 0.4040]).view(1, 3, 1, 1)
    torch.testing.assert_close(y, mean.expand_as(y))  # a zero network returns the mean
    assert not any("mean" in k for k in model.state_dict())
    gray = create_model("edsr_baseline", in_channels=1, n_blocks=1, n_feats=8)
    assert gray.pixel_mean.flatten().tolist() == pytest.approx([0.43683], abs=1e-5)
    assert create_model("edsr", in_channels=1, pixel_mean=(0.2,), **SMALL["edsr"]).pixel_mean == 0.2
    with pytest.raises(ValueError, match="pixel_mean needs 3"):
        create_model("edsr", pixel_mean=(0.5,), **SMALL["edsr"])


# ------------------------------------------------------------------ CASR


def test_casr_sab_follows_the_seed() -> None:
    with torch.device("meta"):
        model = create_model("casr")
    assert len(model.blocks) == 20 and model.size_multiple == 6
    blocks = [m for m in model.modules() if isinstance(m, SwinBlock)]
    assert [b.shift_size for b in blocks] == [0, 2]  # W-MSA then SW-MSA, window 4
    assert all(b.window_size == 4 and b.attn.num_heads == 6 for b in blocks)
    assert model.sab.embed.out_channels == 96 and model.sab.embed.stride == (6, 6)
    assert all(b.mlp[2].p == 0.1 and b.attn.proj_drop.p == 0.1 for b in blocks)


def test_casr_deepnorm_constants_come_from_two_blocks() -> None:
    torch.manual_seed(0)
    model = create_model("casr", **{**SMALL["casr"], "embed_dim": 96, "num_heads": 6})
    alpha, beta = (2 * 2) ** 0.25, (8 * 2) ** -0.25  # N = 2 Swin blocks
    assert (model.sab.deepnorm_alpha, model.sab.deepnorm_beta) == pytest.approx((alpha, beta))
    for block in model.sab.swin:
        assert block.deepnorm_alpha.item() == pytest.approx(math.sqrt(2))
        # Xavier-normal with gain beta = 0.5: std = 0.5 * sqrt(2 / (96 + 96)) for the output
        # projection (9_216 samples: the estimate is within a few percent).
        expected = 0.5 * math.sqrt(2 / (96 + 96))
        assert block.attn.proj.weight.std().item() == pytest.approx(expected, rel=0.06)


@pytest.mark.parametrize(("name", "scale"), [("casr", 2), ("casr", 4), ("casr_small", 3)])
def test_a_fresh_casr_returns_its_bicubic_upsampled_input(name: str, scale: int) -> None:
    # Issue 12: before the fix, a fresh paper-size CASR mapped [0, 1] to outputs with a
    # standard deviation of 1,400-3,600. Now the AFEB branches are scaled by 0.1 and the
    # last conv of the residual over bicubic starts at zero.
    torch.manual_seed(0)
    model = create_model(name, scale=scale).eval()
    x = torch.rand(1, 1, 24, 30)
    with torch.no_grad():
        y = model(x)
        features = model.head(x)
        for block in model.blocks:
            features = block(features)
    up = torch.nn.functional.interpolate(x, scale_factor=scale, mode="bicubic")
    assert (y - up).abs().max() < 1e-5
    assert features.abs().max() < 50  # 20 blocks grow the features a few times, not 1e3
    with_tail = _with_random_tail(model)
    with torch.no_grad():
        assert 0.0 < (with_tail(x) - up).std() < 2.0  # a sane start for any tail weights


def _with_random_tail(model: torch.nn.Module) -> torch.nn.Module:
    """CASR as after some training: its zero-initialised last conv made random again."""
    torch.nn.init.kaiming_uniform_(model.tail[-1].weight, a=math.sqrt(5))
    return model


def test_casr_set_deepnorm_alpha_changes_the_residual_and_is_saved() -> None:
    torch.manual_seed(0)
    model = _with_random_tail(create_model("casr", scale=2, **SMALL["casr"]).eval())
    x = torch.rand(1, 1, 13, 17)
    with torch.no_grad():
        before = model(x)
        model.set_deepnorm_alpha(1.0)
        after = model(x)
    assert all(b.deepnorm_alpha.item() == 1.0 for b in model.sab.swin)
    assert not torch.allclose(before, after)
    saved = model.state_dict()
    assert [saved[f"sab.swin.{i}.deepnorm_alpha"].item() for i in (0, 1)] == [1.0, 1.0]
    rebuilt = create_model("casr", scale=2, **SMALL["casr"])
    rebuilt.load_state_dict(saved)
    assert rebuilt.sab.swin[0].deepnorm_alpha.item() == 1.0
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="DeepNorm alpha"):
            model.set_deepnorm_alpha(bad)


def test_casr_dropout_acts_in_training_only() -> None:
    torch.manual_seed(0)
    model = _with_random_tail(create_model("casr", scale=2, **SMALL["casr"]))
    x = torch.rand(1, 1, 12, 12)
    with torch.no_grad():
        assert not torch.equal(model.train()(x), model(x))  # dropout 0.1 in the SAB
        torch.testing.assert_close(model.eval()(x), model(x), rtol=0, atol=0)
