"""restorekit.layers.attention: shapes, gradients, gate ranges, EA fused == reference, PAR."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from restorekit.layers import (
    SCSE,
    AttentionGate,
    ChannelAttention,
    EfficientAttention,
    PixelAttention,
    ProgressiveAttentionRefinement,
)

C = 16
# Single-input layers; odd, non-square sizes catch reshape and pooling mistakes.
SINGLE: dict[str, Callable[[], nn.Module]] = {
    "ca": lambda: ChannelAttention(C, reduction=8),
    "pa": lambda: PixelAttention(C),
    "scse": lambda: SCSE(C, reduction=4),
    "ea": lambda: EfficientAttention(C, key_channels=8, value_channels=12, heads=2),
}


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize("name", SINGLE)
@pytest.mark.parametrize("size", [(5, 7), (1, 1), (9, 4)])
def test_shape_kept_on_odd_sizes(name: str, size: tuple[int, int]) -> None:
    x = torch.rand(2, C, *size)
    assert SINGLE[name]()(x).shape == x.shape


@pytest.mark.parametrize("name", SINGLE)
def test_every_parameter_gets_a_finite_gradient(name: str) -> None:
    layer = SINGLE[name]()
    # Per-sample channel offsets vary the pooled vectors, so no tiny bottleneck ReLU is dead.
    out = layer(torch.randn(8, C, 5, 7) + torch.randn(8, C, 1, 1))
    out.square().mean().backward()
    assert torch.isfinite(out).all()
    for pname, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname
        assert torch.isfinite(p.grad).all(), pname


def test_channel_attention_scales_each_channel_by_one_weight_in_0_1() -> None:
    layer = ChannelAttention(C, reduction=16)
    x = torch.rand(2, C, 5, 7) + 0.1
    ratio = layer(x) / x
    assert ((ratio > 0) & (ratio < 1)).all()
    # One weight per (batch, channel): constant over the pixels, equal to `attention`.
    torch.testing.assert_close(ratio, ratio[..., :1, :1].expand_as(ratio))
    torch.testing.assert_close(ratio[..., :1, :1], layer.attention(x))


def test_channel_attention_bottleneck_never_empty() -> None:
    layer = ChannelAttention(4, reduction=16)  # 4 // 16 == 0 -> one hidden channel
    assert layer.body[1].out_channels == 1
    assert layer(torch.rand(1, 4, 3, 3)).shape == (1, 4, 3, 3)


def test_pixel_attention_scales_each_pixel_by_one_weight_in_0_1() -> None:
    layer = PixelAttention(C)
    x = torch.rand(2, C, 5, 7) + 0.1
    ratio = layer(x) / x
    assert ((ratio > 0) & (ratio < 1)).all()
    # Shared by all channels and equal to sigmoid(logits).
    torch.testing.assert_close(ratio, ratio[:, :1].expand_as(ratio))
    torch.testing.assert_close(ratio[:, :1], torch.sigmoid(layer.logits(x)))


def test_scse_is_sum_of_channel_and_spatial_gates() -> None:
    layer = SCSE(C, reduction=4)
    x = torch.rand(2, C, 5, 7) + 0.1
    ratio = layer(x) / x
    assert ((ratio > 0) & (ratio < 2)).all()
    torch.testing.assert_close(ratio, layer.cse.attention(x) + layer.sse(x))


def test_attention_gate_scales_skip_by_coefficients_in_0_1() -> None:
    gate = AttentionGate(8, C, 4)
    g, x = torch.rand(2, 8, 6, 6), torch.rand(2, C, 6, 6) + 0.1
    out = gate(g, x)
    alpha = gate.coefficients(g, x)
    assert alpha.shape == (2, 1, 6, 6)
    assert ((alpha > 0) & (alpha < 1)).all()
    torch.testing.assert_close(out, x * alpha)
    out.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in gate.parameters())


def test_attention_gate_resamples_a_coarser_gate() -> None:
    gate = AttentionGate(8, C, 4).eval()
    g, x = torch.rand(1, 8, 3, 4), torch.rand(1, C, 7, 9)
    assert gate(g, x).shape == x.shape
    # A gate already at x's size is used as is.
    g_up = nn.functional.interpolate(g, size=(7, 9), mode="bilinear", align_corners=False)
    torch.testing.assert_close(gate(g, x), gate(g_up, x))


@pytest.mark.parametrize("heads", [1, 2, 4])
@pytest.mark.parametrize("size", [(1, 1), (5, 3), (8, 11)])
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, 1e-5), (torch.float64, 1e-10)])
def test_efficient_attention_fused_equals_reference(
    heads: int, size: tuple[int, int], dtype: torch.dtype, tol: float
) -> None:
    layer = EfficientAttention(C, key_channels=8, value_channels=12, heads=heads).to(dtype)
    x = torch.randn(2, C, *size, dtype=dtype)
    torch.testing.assert_close(layer(x), layer.reference(x), atol=tol, rtol=0)


def test_efficient_attention_matches_softmax_normalised_dot_product() -> None:
    # Shen et al.'s identity: with rho_q / rho_k softmaxes, out = rho_q(Q)^T (rho_k(K) V^T)
    # equals (rho_q(Q)^T rho_k(K)) V^T, an N x N "attention" applied to the values.
    layer = EfficientAttention(C, heads=1).double()
    x = torch.randn(1, C, 4, 5, dtype=torch.float64)
    k = layer.keys(x).flatten(2)[0].softmax(dim=1)
    q = layer.queries(x).flatten(2)[0].softmax(dim=0)
    v = layer.values(x).flatten(2)[0]
    pairwise = q.T @ k  # (N, N): each row sums to 1
    torch.testing.assert_close(pairwise.sum(dim=1), torch.ones(20, dtype=torch.float64))
    expected = x + layer.reprojection((v @ pairwise.T).reshape(1, C, 4, 5))
    torch.testing.assert_close(layer(x), expected, atol=1e-10, rtol=0)


def test_efficient_attention_gradcheck_float64() -> None:
    layer = EfficientAttention(4, key_channels=4, value_channels=2, heads=2).double()
    x = torch.randn(1, 4, 3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"heads": 3}, "key_channels"),
        ({"key_channels": 8, "value_channels": 6, "heads": 4}, "value_channels"),
        ({"heads": 0}, "heads"),
        ({"value_channels": 0}, "value_channels"),
    ],
)
def test_efficient_attention_rejects_bad_arguments(kwargs: dict[str, int], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        EfficientAttention(C, **kwargs)


@pytest.mark.parametrize("factory", [ChannelAttention, PixelAttention, SCSE])
def test_reduction_must_be_positive(factory: Callable[..., nn.Module]) -> None:
    with pytest.raises(ValueError, match="reduction"):
        factory(C, reduction=0)


def test_par_without_previous_map_is_plain_pixel_attention() -> None:
    par = ProgressiveAttentionRefinement(C)
    pa = PixelAttention(C)
    pa.load_state_dict(par.pa.state_dict())
    x = torch.rand(2, C, 5, 7)
    out, logits = par(x)
    torch.testing.assert_close(out, pa(x))
    torch.testing.assert_close(logits, pa.logits(x))


def test_par_refines_with_the_previous_logits() -> None:
    par = ProgressiveAttentionRefinement(C)
    x, prev = torch.rand(2, C, 5, 7), torch.randn(2, 1, 5, 7)
    # Fresh: the refining conv is zero, so the previous map has no effect yet.
    torch.testing.assert_close(par(x, prev)[0], par(x)[0])
    with torch.no_grad():
        par.refine.weight.normal_()
        par.refine.bias.fill_(0.3)
    out, logits = par(x, prev)
    torch.testing.assert_close(logits, par.pa.logits(x) + par.refine(prev))
    torch.testing.assert_close(out, x * torch.sigmoid(logits))
    # A previous map of another size is resized to the features' size.
    assert par(x, torch.randn(2, 1, 3, 4))[1].shape == (2, 1, 5, 7)


def test_par_chain_trains_every_parameter() -> None:
    stages = nn.ModuleList(ProgressiveAttentionRefinement(C) for _ in range(3))
    x, logits = torch.randn(1, C, 5, 7), None
    for stage in stages:
        x, logits = stage(x, logits)
    x.sum().backward()
    for name, p in stages.named_parameters():
        if name.startswith("0.refine"):  # the first stage has no previous map to refine
            assert p.grad is None, name
        else:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
