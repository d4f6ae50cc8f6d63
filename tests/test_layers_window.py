"""restorekit.layers.window: partition, masks, SDPA == reference, Swin block, DeepNorm."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from restorekit.layers import (
    SwinBlock,
    WindowAttention,
    deepnorm_constants,
    deepnorm_init_,
    window_attention_mask,
    window_partition,
    window_reverse,
)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def test_partition_reverse_round_trip_and_window_content() -> None:
    x = torch.rand(2, 8, 12, 3)
    windows = window_partition(x, 4)
    assert windows.shape == (2 * 2 * 3, 4, 4, 3)
    # Row-major per image: the second window of image 0 is rows 0-3, columns 4-7.
    torch.testing.assert_close(windows[1], x[0, :4, 4:8])
    torch.testing.assert_close(windows[6], x[1, :4, :4])
    assert torch.equal(window_reverse(windows, 4, 8, 12), x)


def test_partition_rejects_indivisible_sizes() -> None:
    with pytest.raises(ValueError, match="window_size"):
        window_partition(torch.rand(1, 6, 8, 2), 4)


def test_mask_keeps_real_pixels_away_from_padding() -> None:
    h, w, ws = 5, 6, 4
    mask = window_attention_mask(h, w, ws, 0)
    real = torch.zeros(8, 8, dtype=torch.bool)
    real[:h, :w] = True
    real = window_partition(real[None, :, :, None], ws).flatten(1)  # (nW, N)
    assert mask.shape == (4, 16, 16)
    assert torch.diagonal(mask, dim1=1, dim2=2).all()  # no empty softmax row
    # Real queries see exactly the real keys of their window.
    assert torch.equal(mask & real[:, :, None], real[:, :, None] & real[:, None, :])


def test_mask_is_all_true_without_shift_or_padding() -> None:
    assert window_attention_mask(8, 4, 4, 0).all()
    assert not window_attention_mask(8, 4, 4, 2).all()


@pytest.mark.parametrize("shift_size", [-1, 4])
def test_mask_rejects_bad_shift(shift_size: int) -> None:
    with pytest.raises(ValueError, match="shift_size"):
        window_attention_mask(8, 8, 4, shift_size)


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, 1e-5), (torch.float64, 1e-10)])
@pytest.mark.parametrize("shift_size", [0, 2])
def test_window_attention_sdpa_equals_reference(
    dtype: torch.dtype, tol: float, shift_size: int
) -> None:
    attn = WindowAttention(12, 4, 3).to(dtype).eval()
    with torch.no_grad():  # a bias large enough to matter
        attn.relative_position_bias_table.normal_()
    mask = window_attention_mask(7, 6, 4, shift_size)  # padding and, if shifted, the wrap
    x = torch.randn(2 * mask.shape[0], 16, 12, dtype=dtype)
    torch.testing.assert_close(attn(x, mask), attn.reference(x, mask), atol=tol, rtol=0)
    torch.testing.assert_close(attn(x), attn.reference(x), atol=tol, rtol=0)


def test_relative_position_bias_depends_only_on_offset() -> None:
    attn = WindowAttention(4, 3, 2)
    index = attn.relative_position_index.view(3, 3, 3, 3)  # (qy, qx, ky, kx)
    assert index.max() == 5 * 5 - 1
    assert index[0, 0, 1, 2] == index[1, 0, 2, 2]  # offset (-1, -2)
    assert index[2, 2, 1, 1] == index[1, 1, 0, 0]  # offset (+1, +1)
    assert index[0, 0, 0, 1] != index[0, 1, 0, 0]  # +1 and -1 column offsets differ


def test_window_attention_rejects_mask_not_matching_windows() -> None:
    with pytest.raises(ValueError, match="windows"):
        WindowAttention(8, 4, 2)(torch.rand(3, 16, 8), torch.ones(2, 16, 16, dtype=torch.bool))


@pytest.mark.parametrize("shift_size", [0, 2])
@pytest.mark.parametrize("size", [(5, 7), (8, 8), (1, 1), (9, 4)])
def test_swin_block_keeps_shape_on_any_size(shift_size: int, size: tuple[int, int]) -> None:
    block = SwinBlock(12, 3, 4, shift_size)
    x = torch.randn(2, 12, *size)
    out = block(x)
    assert out.shape == x.shape
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("shift_size", [0, 2])
def test_swin_block_every_parameter_gets_a_gradient(shift_size: int) -> None:
    block = SwinBlock(12, 3, 4, shift_size, deepnorm_alpha=math.sqrt(2))
    block(torch.randn(2, 12, 6, 7)).square().mean().backward()
    for name, p in block.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
        assert torch.isfinite(p.grad).all(), name


def _changed_pixels(block: nn.Module, pixel: tuple[int, int], size: int = 8) -> set:
    """Output pixels that change when one input pixel changes (eval mode, no dropout)."""
    x = torch.randn(1, 12, size, size)
    y = x.clone()
    y[0, :, pixel[0], pixel[1]] += 1.0
    with torch.no_grad():
        diff = (block.eval()(x) - block(y)).abs().amax(dim=1)[0]
    return {tuple(p) for p in (diff > 1e-6).nonzero().tolist()}


def test_w_msa_mixes_only_inside_each_window() -> None:
    changed = _changed_pixels(SwinBlock(12, 3, 4, 0), (1, 2))
    window = {(r, c) for r in range(4) for c in range(4)}
    assert changed == window


def test_sw_msa_mask_blocks_the_roll_wrap_around() -> None:
    block = SwinBlock(12, 3, 4, 2)
    # Pixel (0, 0) is rolled to (6, 6) and shares a window with pixels from rows and
    # columns 6-7 of the original; the mask must keep it with rows and columns 0-1 only.
    assert _changed_pixels(block, (0, 0)) == {(r, c) for r in range(2) for c in range(2)}
    # An interior pixel reaches across the W-MSA window borders (rows/cols 2-5).
    assert _changed_pixels(block, (3, 3)) == {(r, c) for r in range(2, 6) for c in range(2, 6)}


@pytest.mark.parametrize("shift_size", [0, 2])
def test_padding_is_not_attended(shift_size: int) -> None:
    # A 1x1 image is one real token among 15 padding tokens. Attending only to itself,
    # its softmax weight is 1 whatever the relative position bias; attending to padding
    # would make the output depend on the bias table.
    block = SwinBlock(12, 3, 4, shift_size).eval()
    x = torch.randn(2, 12, 1, 1)
    with torch.no_grad():
        before = block(x)
        block.attn.relative_position_bias_table.normal_(std=3.0)
        torch.testing.assert_close(block(x), before)


def test_deepnorm_constants_for_two_blocks() -> None:
    alpha, beta = deepnorm_constants(2)
    assert alpha == pytest.approx(math.sqrt(2))
    assert beta == pytest.approx(0.5)


@pytest.mark.parametrize("n", [0, -1, 1.5, True])
def test_deepnorm_constants_rejects_bad_n(n: object) -> None:
    with pytest.raises(ValueError, match="n_blocks"):
        deepnorm_constants(n)  # type: ignore[arg-type]


def test_deepnorm_alpha_is_a_buffer_that_scales_the_residual() -> None:
    block = SwinBlock(12, 3, 4, 0, deepnorm_alpha=2.0).eval()
    assert block.state_dict()["deepnorm_alpha"] == 2.0
    x = torch.randn(1, 12, 4, 4)
    with torch.no_grad():
        out = block(x)
        block.deepnorm_alpha.fill_(1.0)
        assert not torch.allclose(block(x), out)


def test_deepnorm_init_gains() -> None:
    dim, beta = 96, 0.25
    model = nn.Sequential(SwinBlock(dim, 6, 4, 0), SwinBlock(dim, 6, 4, 2))
    assert deepnorm_init_(model, beta) is model

    def xavier_std(fan_in: int, fan_out: int, gain: float) -> float:
        return gain * math.sqrt(2.0 / (fan_in + fan_out))

    for block in model:
        q, k, v = block.attn.qkv.weight.detach().chunk(3)
        fc1, fc2 = block.mlp[0].weight.detach(), block.mlp[3].weight.detach()
        expected = [
            (q, xavier_std(dim, dim, 1.0)),
            (k, xavier_std(dim, dim, 1.0)),
            (v, xavier_std(dim, dim, beta)),
            (block.attn.proj.weight.detach(), xavier_std(dim, dim, beta)),
            (fc1, xavier_std(dim, 4 * dim, beta)),
            (fc2, xavier_std(4 * dim, dim, beta)),
        ]
        for weight, std in expected:
            assert weight.std().item() == pytest.approx(std, rel=0.05)
            assert abs(weight.mean().item()) < std / 10


def test_deepnorm_init_needs_a_swin_block() -> None:
    with pytest.raises(ValueError, match="SwinBlock"):
        deepnorm_init_(nn.Linear(2, 2), 0.5)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"dim": 10, "num_heads": 3, "window_size": 4, "shift_size": 0}, "num_heads"),
        ({"dim": 12, "num_heads": 3, "window_size": 4, "shift_size": 4}, "shift_size"),
        ({"dim": 12, "num_heads": 3, "window_size": 4, "shift_size": 0, "mlp_ratio": 0}, "mlp"),
    ],
)
def test_swin_block_rejects_bad_arguments(kwargs: dict[str, int], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        SwinBlock(**kwargs)


@pytest.mark.parametrize("shift_size", [0, 2])
@pytest.mark.parametrize("size", [(4, 8), (4, 12), (8, 4), (3, 9)])
def test_swin_block_on_a_map_one_window_high_or_wide(
    shift_size: int, size: tuple[int, int]
) -> None:
    # One window along an axis makes window_partition's permute a no-copy view whose
    # strides a later .view cannot take (a batch-1 crash, found by the ONNX export).
    torch.manual_seed(0)
    block = SwinBlock(12, 2, 4, shift_size).eval()
    x = torch.rand(1, 12, *size)
    with torch.no_grad():
        y = block(x)
        both = block(torch.cat([x, x]))
    assert y.shape == x.shape
    torch.testing.assert_close(both[:1], y)
