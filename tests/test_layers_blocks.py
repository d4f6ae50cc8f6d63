"""restorekit.layers.blocks: shapes, gradients, AHPF properties, upsampler sizes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import nn

from restorekit.layers import AHPF, RDB, ConvBlock, ResBlock, Upsampler

# name -> (factory, input channels, output channels, spatial scale)
BLOCKS: dict[str, tuple[Callable[[], nn.Module], int, int, int]] = {
    "conv": (lambda: ConvBlock(3, 8), 3, 8, 1),
    "conv_nobn": (lambda: ConvBlock(3, 8, batch_norm=False), 3, 8, 1),
    "res": (lambda: ResBlock(8, res_scale=0.1, kernel_size=5), 8, 8, 1),
    "rdb": (lambda: RDB(8, 4, 3), 8, 8, 1),
    "ahpf": (lambda: AHPF(8), 8, 8, 1),
    "up2": (lambda: Upsampler(2, 8), 8, 8, 2),
    "up3": (lambda: Upsampler(3, 8, out_channels=1), 8, 1, 3),
    "up4": (lambda: Upsampler(4, 8, out_channels=3), 8, 3, 4),
}


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize("name", BLOCKS)
@pytest.mark.parametrize("size", [(5, 7), (1, 1), (9, 4)])
def test_output_shape_on_odd_sizes(name: str, size: tuple[int, int]) -> None:
    factory, cin, cout, scale = BLOCKS[name]
    out = factory()(torch.randn(2, cin, *size))
    assert out.shape == (2, cout, size[0] * scale, size[1] * scale)


@pytest.mark.parametrize("name", BLOCKS)
def test_every_parameter_gets_a_finite_gradient(name: str) -> None:
    factory, cin, _, _ = BLOCKS[name]
    block = factory()
    out = block(torch.randn(2, cin, 5, 7))
    out.square().mean().backward()
    assert torch.isfinite(out).all()
    for pname, p in block.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname
        assert torch.isfinite(p.grad).all(), pname


def test_conv_block_bias_only_without_batch_norm() -> None:
    with_bn, without = ConvBlock(3, 8), ConvBlock(3, 8, batch_norm=False)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in with_bn) == 2
    assert all(m.bias is None for m in with_bn if isinstance(m, nn.Conv2d))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in without)
    assert all(m.bias is not None for m in without if isinstance(m, nn.Conv2d))


def test_res_block_scales_only_the_residual() -> None:
    block = ResBlock(4, res_scale=0.5)
    x = torch.randn(1, 4, 6, 5)
    torch.testing.assert_close(block(x), x + 0.5 * block.body(x))
    block.res_scale = 0.0
    torch.testing.assert_close(block(x), x)


def test_rdb_layers_see_all_earlier_features() -> None:
    block = RDB(8, 4, 3)
    assert [layer[0].in_channels for layer in block.layers] == [8, 12, 16]
    assert block.fusion.in_channels == 8 + 3 * 4
    nn.init.zeros_(block.fusion.weight)
    nn.init.zeros_(block.fusion.bias)
    x = torch.randn(1, 8, 5, 5)
    torch.testing.assert_close(block(x), x)  # the local residual


@pytest.mark.parametrize("value", [0.0, 0.37, 1.0])
def test_ahpf_constant_image_gives_zero_everywhere(value: float) -> None:
    out = AHPF(3)(torch.full((2, 3, 5, 6), value))
    assert out.abs().max() < 1e-6  # borders included: replicate padding


def test_ahpf_at_one_ninth_is_x_minus_its_3x3_mean() -> None:
    layer = AHPF(2).double()
    with torch.no_grad():
        layer.alpha.fill_(1 / 9)  # the float32 initial value, rounded, is off by 3e-9
    x = torch.rand(1, 2, 6, 7, dtype=torch.float64)
    # Independent reference: scipy's 3x3 box filter with edge replication ('nearest').
    mean = ndimage.uniform_filter(x.numpy(), size=(1, 1, 3, 3), mode="nearest")
    expected = np.maximum(x.numpy() - mean, 0.0)
    np.testing.assert_allclose(layer(x).detach().numpy(), expected, atol=1e-12)


def test_ahpf_alpha_zero_passes_the_image_and_bias_thresholds() -> None:
    layer = AHPF(2)
    x = torch.rand(1, 2, 4, 4)
    with torch.no_grad():
        layer.alpha.zero_()
        torch.testing.assert_close(layer(x), x)  # x >= 0, so ReLU(x) == x
        layer.bias.copy_(torch.tensor([-0.5, 0.2]))
        torch.testing.assert_close(layer(x)[0, 0], (x[0, 0] - 0.5).clamp_min(0))
        torch.testing.assert_close(layer(x)[0, 1], x[0, 1] + 0.2)


def test_ahpf_has_one_alpha_and_a_bias_per_channel() -> None:
    layer = AHPF(5)
    assert layer.alpha.shape == ()
    assert layer.alpha.item() == pytest.approx(1 / 9)
    assert layer.bias.shape == (5,)


def test_ahpf_gradcheck_float64() -> None:
    layer = AHPF(2).double()
    with torch.no_grad():
        layer.bias.fill_(0.05)  # keep values away from the ReLU's kink
    x = torch.rand(1, 2, 4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,))


def test_upsampler_uses_two_x2_stages_for_x4() -> None:
    shuffles = [m.upscale_factor for m in Upsampler(4, 8) if isinstance(m, nn.PixelShuffle)]
    assert shuffles == [2, 2]


@pytest.mark.parametrize("scale", [1, 5, 8, 2.0, True])
def test_upsampler_rejects_other_scales(scale: object) -> None:
    with pytest.raises(ValueError, match="scale"):
        Upsampler(scale, 8)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("factory", "name"),
    [
        (lambda: ConvBlock(0, 8), "in_ch"),
        (lambda: ResBlock(8, kernel_size=4), "kernel_size"),
        (lambda: RDB(8, 0, 3), "growth"),
        (lambda: AHPF(0), "channels"),
        (lambda: Upsampler(2, 8, out_channels=0), "out_channels"),
    ],
)
def test_bad_arguments_name_the_argument(factory: Callable[[], nn.Module], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        factory()
