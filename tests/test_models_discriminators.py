"""Discriminators: the conditional PatchGAN (SPEC.md B) and the VGG-style critic (SPEC.md C)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from restorekit.layers import AttentionGate
from restorekit.models import create_model
from restorekit.models.base import Restorer
from restorekit.models.discriminators import PatchGANDiscriminator, VGGDiscriminator

# ---------------------------------------------------------------- patchgan


def test_patchgan_per_patch_logits_on_faces_and_odd_sizes() -> None:
    model = create_model("patchgan").eval()
    assert isinstance(model, nn.Module) and not isinstance(model, Restorer)
    assert model.conditional and model.in_channels == 2
    with torch.no_grad():
        assert model(torch.rand(3, 2, 48, 48)).shape == (3, 1, 6, 6)
        assert model(torch.rand(1, 2, 37, 53)).shape == (1, 1, 4, 6)
    assert model.output_size(48, 48) == (6, 6) and model.output_size(37, 53) == (4, 6)
    rgb = PatchGANDiscriminator(image_channels=3, n_layers=2).eval()
    with torch.no_grad():
        assert rgb(torch.rand(1, 6, 20, 23)).shape == (1, 1, *rgb.output_size(20, 23))


@pytest.mark.parametrize("n_layers", [2, 3])
def test_patchgan_receptive_field_formula(n_layers: int) -> None:
    """One logit sees exactly a 5 * 2**n - 4 square, placed at stride 2**n.

    The support of d logit[i, j] / d input, unioned over a batch of random inputs (eval
    mode: no batch coupling through BatchNorm; several samples because max-pooling routes
    each sample's gradient through one pixel per window) is that square.
    """
    torch.manual_seed(0)
    model = PatchGANDiscriminator(n_layers=n_layers, widths=(8,) * n_layers).eval()
    rf, stride = model.receptive_field, 2**n_layers
    assert rf == {2: 16, 3: 36}[n_layers]
    x = torch.rand(16, 2, 8 * stride, 8 * stride, requires_grad=True)
    i, j = 4, 3
    model(x)[:, 0, i, j].sum().backward()
    rows = x.grad.abs().sum(dim=(0, 1, 3)).nonzero().flatten()
    cols = x.grad.abs().sum(dim=(0, 1, 2)).nonzero().flatten()
    offset = -2 * (stride - 1)  # the 3x3 convs' zero padding shifts the field left/up
    assert (rows.min().item(), rows.max().item()) == (
        stride * i + offset,
        stride * i + offset + rf - 1,
    )
    assert (cols.min().item(), cols.max().item()) == (
        stride * j + offset,
        stride * j + offset + rf - 1,
    )


def test_patchgan_attention_follows_the_seed() -> None:
    model = PatchGANDiscriminator()
    # The seed gates its first and third encoder blocks (32 and 128 channels).
    gated = [b.gate.w_x[0].in_channels if b.gate is not None else None for b in model.blocks]
    assert gated == [32, None, 128]
    none = PatchGANDiscriminator(attention_blocks=())
    assert not any(isinstance(m, AttentionGate) for m in none.modules())


def test_patchgan_gradients_and_round_trip(check_gradients, round_trip) -> None:
    torch.manual_seed(0)
    model = create_model("patchgan", widths=(8, 16, 16), attention_blocks=(1, 2))
    check_gradients(model, torch.rand(2, 2, 24, 24))
    round_trip(model, torch.rand(1, 2, 16, 24))


def test_patchgan_widths_and_n_layers() -> None:
    assert [b.conv[0].out_channels for b in PatchGANDiscriminator(n_layers=4).blocks] == [
        32, 64, 128, 256
    ]  # fmt: skip
    assert PatchGANDiscriminator(widths=(8, 8)).n_layers == 2
    with pytest.raises(ValueError, match="n_layers"):
        PatchGANDiscriminator(widths=(8, 8), n_layers=3)
    # The seed's pattern (gate every other block from the first) for any depth.
    gated = [b.gate is not None for b in PatchGANDiscriminator(n_layers=4).blocks]
    assert gated == [True, False, True, False]
    with pytest.raises(ValueError, match="attention_blocks"):
        PatchGANDiscriminator(n_layers=2, attention_blocks=(0, 2))
    with pytest.raises(ValueError, match="widths"):
        PatchGANDiscriminator(widths=())
    with pytest.raises(ValueError, match=r"cat\(noisy, image\)"):
        PatchGANDiscriminator()(torch.rand(1, 1, 48, 48))
    with pytest.raises(ValueError, match="smaller"):
        PatchGANDiscriminator()(torch.rand(1, 2, 7, 48))


# ---------------------------------------------------------------- vgg_discriminator


def test_vgg_discriminator_one_logit_for_any_size() -> None:
    model = create_model("vgg_discriminator").eval()
    assert not model.conditional and not isinstance(model, Restorer)
    with torch.no_grad():
        assert model(torch.rand(2, 1, 32, 32)).shape == (2, 1)
        assert model(torch.rand(1, 1, 48, 80)).shape == (1, 1)
        # Four stride-2 convs: the feature map is 1/16 of the input, 512 channels.
        assert model.features(torch.rand(1, 1, 48, 80)).shape == (1, 512, 3, 5)


def test_vgg_discriminator_layers_follow_srgan() -> None:
    convs = [m for m in VGGDiscriminator(base=8).features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8, 8, 16, 16, 32, 32, 64, 64]
    assert [c.stride[0] for c in convs] == [1, 2, 1, 2, 1, 2, 1, 2]
    acts = [m for m in VGGDiscriminator(base=8).modules() if isinstance(m, nn.LeakyReLU)]
    assert len(acts) == 9 and all(a.negative_slope == 0.2 for a in acts)


def test_vgg_discriminator_gradients_and_round_trip(check_gradients, round_trip) -> None:
    torch.manual_seed(0)
    model = create_model("vgg_discriminator", in_channels=3, base=8)
    check_gradients(model, torch.rand(2, 3, 32, 24))
    round_trip(model, torch.rand(1, 3, 40, 36))


def test_vgg_discriminator_bad_arguments() -> None:
    with pytest.raises(ValueError, match="base"):
        VGGDiscriminator(base=0)
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        VGGDiscriminator()(torch.rand(1, 3, 32, 32))
