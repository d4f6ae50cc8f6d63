"""MATLAB-exact bicubic ``imresize``, checked without MATLAB.

(a) exact weights derived by hand from MATLAB's documented formulas, (b) properties,
(c) an independent plain-Python loop implementation of the same formulas, (d) a MATLAB
output published on Stack Overflow. See the docstring of ``restorekit.degrade.resize``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from restorekit.degrade import Degraded, create_degradation, list_degradations
from restorekit.degrade.resize import Bicubic, cubic, imresize

# ---------------------------------------------------------------------------------------
# (a) Hand-derived weights.
#
# MATLAB's recipe for one axis (1-based coordinates), for output pixel x:
#   u = x / s + 0.5 * (1 - 1/s)                  where the output pixel sits in the input
#   kernel h(t) = s * cubic(s * t), width 4 / s  when s < 1 (antialiasing), else cubic, 4
#   taps j = floor(u - width/2) + 0 .. ceil(width) + 1, weights h(u - j) / sum of them
#   out-of-range j mirrored with the edge repeated: 0 -> 1, -1 -> 2, n+1 -> n, n+2 -> n-1
# Keys' cubic (a = -0.5) at the distances that occur below:
#   cubic(1/4) = 111/128, cubic(3/4) = 29/128, cubic(5/4) = -9/128, cubic(7/4) = -3/128;
#   cubic(1/3) = 7/9, cubic(2/3) = 1/3, cubic(1) = 0, cubic(4/3) = -2/27, cubic(5/3) = -1/27;
#   cubic(k/8) for k = 1, 3, .., 15 = (987, 745, 399, 93, -49, -75, -45, -7) / 1024.
# (Each from 1.5|t|^3 - 2.5|t|^2 + 1 or -0.5|t|^3 + 2.5|t|^2 - 4|t| + 2.)
#
# x2 downscale, n = 8 -> 4 (s = 1/2, width 8, 10 taps): u = 2x - 0.5 = 1.5, 3.5, 5.5, 7.5.
#   h(u - j) = cubic((u - j)/2) / 2 at u - j = +-0.5, +-1.5, +-2.5, +-3.5
#   = 111/256, 29/256, -9/256, -3/256 (h(+-4.5) = 0); these 8 sum to 1 already.
#   x = 1, u = 1.5: j = -2..5 -> 1-based inputs 3, 2, 1 | 1, 2, 3, 4, 5 with weights
#   -3, -9, 29 | 111, 111, 29, -9, -3 (/256): input 1 gets 29 + 111 = 140, input 2 gets
#   -9 + 111 = 102, input 3 gets -3 + 29 = 26, input 4 gets -9, input 5 gets -3.
#   x = 2, u = 3.5: j = 0..7 -> j = 0 folds onto input 1 beside j = 1: -3 - 9 = -12, then
#   29, 111, 111, 29, -9, -3. x = 3, 4 mirror x = 2, 1.
X2_DOWN_8 = (
    np.array(
        [
            [140, 102, 26, -9, -3, 0, 0, 0],
            [-12, 29, 111, 111, 29, -9, -3, 0],
            [0, -3, -9, 29, 111, 111, 29, -12],
            [0, 0, 0, -3, -9, 26, 102, 140],
        ]
    )
    / 256
)
# x2 upscale, n = 4 -> 8 (s = 2: plain kernel, width 4, 6 taps): u = x/2 + 0.25.
#   x = 1, u = 0.75: j = -1, 0, 1, 2 at distances 1.75, 0.75, -0.25, -1.25 -> weights
#   -3, 29, 111, -9 (/128); j = -1 -> input 2 and j = 0 -> input 1: input 1 = 29 + 111 = 140,
#   input 2 = -3 - 9 = -12. x = 2, u = 1.25: j = 0..3 -> -9, 111, 29, -3; j = 0 -> 1:
#   input 1 = 102. x = 3, u = 1.75: j = 0..3 -> -3, 29, 111, -9; input 1 = 26.
#   x = 4, u = 2.25: j = 1..4 -> -9, 111, 29, -3 (no fold). x = 5..8 mirror x = 4..1.
X2_UP_4 = (
    np.array(
        [
            [140, -12, 0, 0],
            [102, 29, -3, 0],
            [26, 111, -9, 0],
            [-9, 111, 29, -3],
            [-3, 29, 111, -9],
            [0, -9, 111, 26],
            [0, -3, 29, 102],
            [0, 0, -12, 140],
        ]
    )
    / 128
)
# x3 downscale, n = 9 -> 3 (s = 1/3, width 12, 14 taps): u = 3x - 1 = 2, 5, 8.
#   h(d) = cubic(d/3)/3 at d = 0, +-1, .., +-5: 27, 21, 9, 0, -2, -1 (/81); they sum to 1.
#   x = 1, u = 2: j = -3..7; j = 0, -1, -2, -3 fold onto inputs 1, 2, 3, 4:
#   input 1 = 21 (j=1) + 9 (j=0) = 30, input 2 = 27 + 0 = 27, input 3 = 21 - 2 = 19,
#   input 4 = 9 - 1 = 8, input 5 = 0, input 6 = -2, input 7 = -1.
#   x = 2, u = 5: j = 0..10; j = 0 -> 1 and j = 10 -> 9, each adding -1 to the -2 there.
X3_DOWN_9 = (
    np.array(
        [
            [30, 27, 19, 8, 0, -2, -1, 0, 0],
            [-3, 0, 9, 21, 27, 21, 9, 0, -3],
            [0, 0, -1, -2, 0, 8, 19, 27, 30],
        ]
    )
    / 81
)
# x4 downscale, n = 8 -> 2 (s = 1/4, width 16, 18 taps): u = 4x - 1.5 = 2.5, 6.5.
#   h(d) = cubic(d/4)/4 at |d| = 0.5, 1.5, .., 7.5: 987, 745, 399, 93, -49, -75, -45, -7
#   (/4096); the 16 sum to 1. x = 1, u = 2.5: j = -5..10 with j = 2, 3 nearest (987).
#   Left fold: j = 0, -1, -2, -3, -4, -5 -> inputs 1..6; right fold: j = 9 -> 8, 10 -> 7.
#   input 1 = 745 (j=1) + 399 (j=0) = 1144, input 2 = 987 + 93 = 1080,
#   input 3 = 987 - 49 = 938, input 4 = 745 - 75 = 670, input 5 = 399 - 45 = 354,
#   input 6 = 93 - 7 = 86, input 7 = -49 (j=7) - 7 (j=10) = -56,
#   input 8 = -75 (j=8) - 45 (j=9) = -120. x = 2 is the mirror image.
X4_DOWN_8 = (
    np.array(
        [
            [1144, 1080, 938, 670, 354, 86, -56, -120],
            [-120, -56, 86, 354, 670, 938, 1080, 1144],
        ]
    )
    / 4096
)


def _measured_weights(n: int, scale: float) -> np.ndarray:
    """imresize's (out, n) weight matrix along W, read off by resizing one-hot rows."""
    one_hot = torch.eye(n, dtype=torch.float64).reshape(n, 1, 1, n)
    out = imresize(one_hot, scale)  # (n, 1, h, out); input k gives column k
    return out[:, 0, 0, :].T.numpy()


@pytest.mark.parametrize(
    ("n", "scale", "expected"),
    [(8, 1 / 2, X2_DOWN_8), (4, 2.0, X2_UP_4), (9, 1 / 3, X3_DOWN_9), (8, 1 / 4, X4_DOWN_8)],
    ids=["x2-down", "x2-up", "x3-down", "x4-down"],
)
def test_weights_match_hand_derivation(n: int, scale: float, expected: np.ndarray) -> None:
    np.testing.assert_allclose(_measured_weights(n, scale), expected, rtol=0, atol=1e-12)


def test_hand_weights_hold_along_rows_too() -> None:
    """The same one-hot test along H (columns of a (n, 1) image) gives the same weights."""
    one_hot = torch.eye(9, dtype=torch.float64).reshape(9, 1, 9, 1)
    got = imresize(one_hot, 1 / 3)[:, 0, :, 0].T.numpy()
    np.testing.assert_allclose(got, X3_DOWN_9, rtol=0, atol=1e-12)


def test_cubic_kernel_values() -> None:
    t = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, -0.5, -1.5, 2.5, -3.0], dtype=torch.float64)
    expected = [1.0, 0.5625, 0.0, -0.0625, 0.0, 0.5625, -0.0625, 0.0, 0.0]
    assert cubic(t).tolist() == expected


# ---------------------------------------------------------------------------------------
# (b) Properties.

SCALES = (1 / 2, 1 / 3, 1 / 4, 2.0, 3.0, 0.7, 1.3)


@pytest.mark.parametrize("scale", [*SCALES, 0.37, 1 / 8])
def test_constant_image_stays_constant(scale: float) -> None:
    x = torch.full((1, 2, 17, 23), 0.3125, dtype=torch.float64)
    y = imresize(x, scale)
    torch.testing.assert_close(y, torch.full_like(y, 0.3125), rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("scale", "size"),
    [(1 / 3, (6, 8)), (1 / 2, (9, 12)), (1 / 4, (5, 6)), (2.0, (34, 46)), (0.7, (12, 17))],
)
def test_output_size_is_ceil_of_input_times_scale(scale: float, size: tuple[int, int]) -> None:
    assert imresize(torch.rand(1, 1, 17, 23), scale).shape[-2:] == size


def test_size_argument_and_per_axis_scale() -> None:
    x = torch.rand(2, 3, 17, 23, dtype=torch.float64)
    assert imresize(x, size=(5, 40)).shape == (2, 3, 5, 40)
    assert imresize(x, (0.5, 2.0)).shape == (2, 3, 9, 46)
    # size = ceil(in * scale) with the same per-axis scales gives the same result.
    torch.testing.assert_close(imresize(x, size=(34, 46)), imresize(x, 2.0), rtol=0, atol=1e-14)


def test_no_clipping_overshoot_is_kept() -> None:
    step = torch.cat([torch.zeros(8), torch.ones(8)]).reshape(1, 1, 1, 16).double()
    for scale in (2.0, 1 / 2):
        y = imresize(step, scale)
        assert y.min() < -0.01
        assert y.max() > 1.01


@pytest.mark.parametrize("scale", [2.0, 3.0, 1.3])
def test_linear_ramp_stays_linear_away_from_borders(scale: float) -> None:
    """Keys' kernel reproduces linear functions; f = 2i + 3j (1-based) is sampled at u."""
    h, w = 12, 15
    i = torch.arange(1, h + 1, dtype=torch.float64)[:, None]
    j = torch.arange(1, w + 1, dtype=torch.float64)[None, :]
    y = imresize((2 * i + 3 * j)[None, None], scale)[0, 0]
    u_i = torch.arange(1, y.shape[0] + 1, dtype=torch.float64) / scale + 0.5 * (1 - 1 / scale)
    u_j = torch.arange(1, y.shape[1] + 1, dtype=torch.float64) / scale + 0.5 * (1 - 1 / scale)
    rows = (u_i >= 3) & (u_i <= h - 2)  # taps within 2 pixels stay inside: no folding
    cols = (u_j >= 3) & (u_j <= w - 2)
    expected = 2 * u_i[rows][:, None] + 3 * u_j[cols][None, :]
    torch.testing.assert_close(y[rows][:, cols], expected, rtol=0, atol=1e-12)
    assert rows.sum() >= 8 and cols.sum() >= 10


# ---------------------------------------------------------------------------------------
# (c) An independent implementation: plain Python loops straight from MATLAB's formulas.


def _ref_cubic(t: float) -> float:
    a = abs(t)
    if a <= 1:
        return 1.5 * a**3 - 2.5 * a**2 + 1
    if a <= 2:
        return -0.5 * a**3 + 2.5 * a**2 - 4 * a + 2
    return 0.0


def _ref_resize_1d(v: list[float], n_out: int, scale: float, antialias: bool) -> list[float]:
    n = len(v)
    stretch = scale < 1 and antialias
    width = 4 / scale if stretch else 4.0
    out = []
    for x in range(1, n_out + 1):
        u = x / scale + 0.5 * (1 - 1 / scale)
        first = math.floor(u - width / 2)
        taps = [first + p for p in range(math.ceil(width) + 2)]
        weights = [
            scale * _ref_cubic(scale * (u - j)) if stretch else _ref_cubic(u - j) for j in taps
        ]
        total = sum(weights)
        acc = 0.0
        for j, wj in zip(taps, weights, strict=True):
            k = j
            while not 1 <= k <= n:  # reflect about the outer edges of pixels 1 and n
                k = 1 - k if k < 1 else 2 * n + 1 - k
            acc += (wj / total) * v[k - 1]
        out.append(acc)
    return out


def _ref_imresize(
    img: np.ndarray, out_hw: tuple[int, int], scales: tuple[float, float], antialias: bool
) -> np.ndarray:
    a = img.astype(np.float64)
    order = [0, 1] if scales[0] <= scales[1] else [1, 0]  # smallest scale first
    for axis in order:
        if axis == 0:
            cols = [
                _ref_resize_1d(list(a[:, c]), out_hw[0], scales[0], antialias)
                for c in range(a.shape[1])
            ]
            a = np.array(cols).T
        else:
            rows = [
                _ref_resize_1d(list(a[r, :]), out_hw[1], scales[1], antialias)
                for r in range(a.shape[0])
            ]
            a = np.array(rows)
    return a


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("shape", [(11, 14), (16, 9)])
def test_matches_independent_loop_implementation(scale: float, shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(round(scale * 1000) + shape[0])
    img = rng.random(shape)
    out_hw = (math.ceil(shape[0] * scale), math.ceil(shape[1] * scale))
    expected = _ref_imresize(img, out_hw, (scale, scale), antialias=True)
    got = imresize(torch.from_numpy(img)[None, None], scale)[0, 0].numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize(
    ("in_hw", "out_hw", "antialias"),
    [((12, 10), (7, 20), True), ((8, 12), (10, 3), True), ((13, 11), (5, 4), False)],
)
def test_matches_independent_loop_implementation_for_sizes(
    in_hw: tuple[int, int], out_hw: tuple[int, int], antialias: bool
) -> None:
    """Different per-axis scales (either axis first) and the no-antialiasing path."""
    img = np.random.default_rng(7).random((3, *in_hw))
    scales = (out_hw[0] / in_hw[0], out_hw[1] / in_hw[1])
    got = imresize(torch.from_numpy(img), size=out_hw, antialiasing=antialias).numpy()
    for c in range(3):
        expected = _ref_imresize(img[c], out_hw, scales, antialias)
        np.testing.assert_allclose(got[c], expected, rtol=0, atol=1e-10)


# ---------------------------------------------------------------------------------------
# (d) A published MATLAB output.


def test_matches_matlab_output_published_on_stack_overflow() -> None:
    """MATLAB's ``imresize([0 0 1 1 0], [1 10])`` (default bicubic), as printed in the
    question https://stackoverflow.com/questions/17380407 (2013): values to 4 decimals.

    The 10th printed value, -0.0703, comes from the edge-replicating boundary rule of that
    MATLAB release (index 7 -> 5); current MATLAB mirrors (7 -> 4, symmetric padding), which
    restorekit follows, giving -0.0703125 - 0.0234375 = -0.09375 there. The other nine
    values do not depend on that rule.
    """
    matlab = [0, -0.0234, -0.0703, 0.2031, 0.7969, 1.0938, 1.0938, 0.7969, 0.2031]
    m = torch.tensor([0.0, 0.0, 1.0, 1.0, 0.0], dtype=torch.float64).reshape(1, 1, 1, 5)
    y = imresize(m, size=(1, 10))[0, 0, 0]
    np.testing.assert_allclose(y[:9].numpy(), matlab, rtol=0, atol=5.1e-5)
    assert y[9].item() == pytest.approx(-0.09375, abs=1e-14)


# ---------------------------------------------------------------------------------------
# Use in practice: round trips, gradients, batches, dtypes, devices, errors.


def test_downscale_then_upscale_of_smooth_image_is_close() -> None:
    i = torch.linspace(0, 1, 64, dtype=torch.float64)[:, None]
    j = torch.linspace(0, 1, 64, dtype=torch.float64)[None, :]
    x = (0.5 + 0.3 * torch.sin(2 * math.pi * i) * torch.cos(math.pi * j))[None, None]
    for scale in (2, 4):
        back = imresize(imresize(x, 1 / scale), float(scale))
        assert back.shape == x.shape
        err = (back - x).abs()
        # the interior is near-exact; the borders lose more (the mirror bends the sine)
        assert err[..., 8:-8, 8:-8].max() < 1e-3
        assert err.max() < 0.05
        assert err.mean() < 2e-3


def test_gradients_flow() -> None:
    x = torch.rand(1, 2, 6, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: imresize(t, 1 / 2), (x,))
    assert torch.autograd.gradcheck(lambda t: imresize(t, 1.5), (x,))


@pytest.mark.parametrize("channels", [1, 3])
def test_batch_resizes_each_image_alike(channels: int) -> None:
    x = torch.rand(4, channels, 20, 18)
    y = imresize(x, 1 / 3)
    assert y.shape == (4, channels, 7, 6)
    for b in range(4):
        torch.testing.assert_close(y[b], imresize(x[b], 1 / 3), rtol=0, atol=1e-6)
    # channels do not mix: resizing one channel alone gives the same result
    torch.testing.assert_close(y[:, :1], imresize(x[:, :1], 1 / 3), rtol=0, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_low_precision_dtypes_keep_dtype_and_agree_with_float64(dtype: torch.dtype) -> None:
    x64 = torch.rand(2, 3, 24, 20, dtype=torch.float64)
    y = imresize(x64.to(dtype), 1 / 4)
    assert y.dtype == dtype
    ref = imresize(x64.to(dtype).double(), 1 / 4)
    tol = 1e-6 if dtype == torch.float32 else 1e-2
    torch.testing.assert_close(y.double(), ref, rtol=0, atol=tol)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu() -> None:
    x = torch.rand(2, 3, 31, 17, dtype=torch.float64)
    y = imresize(x.cuda(), 1 / 3)
    assert y.device.type == "cuda"
    torch.testing.assert_close(y.cpu(), imresize(x, 1 / 3), rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "exactly one of scale and size"),
        ({"scale": 0.5, "size": (4, 4)}, "exactly one of scale and size"),
        ({"scale": 0.0}, "scale"),
        ({"scale": -2.0}, "scale"),
        ({"scale": float("nan")}, "scale"),
        ({"scale": (0.5, 0.5, 0.5)}, "scale"),
        ({"size": (0, 4)}, "size"),
        ({"size": 4}, "size"),
        ({"size": (2.5, 4)}, "size"),
    ],
)
def test_bad_arguments_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        imresize(torch.rand(1, 1, 8, 8), **kwargs)


@pytest.mark.parametrize("bad", [torch.zeros(1, 1, 8, 8, dtype=torch.uint8), torch.rand(8)])
def test_bad_input_raises(bad: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="x must be a float tensor"):
        imresize(bad, 0.5)


# ---------------------------------------------------------------------------------------
# The module twin and its presets.


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_presets_downscale_by_their_factor(scale: int) -> None:
    assert f"bicubic_x{scale}" in list_degradations()
    op = create_degradation(f"bicubic_x{scale}")
    assert isinstance(op, Bicubic) and op.scale == scale
    x = torch.rand(2, 3, 12 * scale, 5 * scale)
    out = op(x, generator=torch.Generator().manual_seed(0))
    assert isinstance(out, Degraded) and out.mask is None
    assert out.lq.shape == (2, 3, 12, 5)
    assert torch.equal(out.lq, imresize(x, 1 / scale))


@pytest.mark.parametrize("bad", [0, -2, 2.5, True])
def test_bicubic_rejects_bad_scale(bad: object) -> None:
    with pytest.raises(ValueError, match="scale"):
        Bicubic(bad)  # type: ignore[arg-type]


def test_a_resize_first_run_on_the_meta_device_does_not_poison_the_cache() -> None:
    # restore's memory probe runs models on the meta device; a pre-upsampling SR model
    # resized there first, and the cached matrices were then meta tensors for everyone.
    with torch.device("meta"):
        assert imresize(torch.zeros(1, 1, 11, 13, device="meta"), 2.0).shape == (1, 1, 22, 26)
    x = torch.rand(1, 1, 11, 13)
    assert torch.isfinite(imresize(x, 2.0)).all()
