"""PSNR / SSIM / rgb_to_y: parity with scikit-image on real photos, conventions, checks, gradients.

The photos are the ones shipped inside the scikit-image wheel (nothing downloads), halved
to keep the suite fast; the degraded partners are made here with a fixed seed.
"""

from __future__ import annotations

import functools
import math
import zlib

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage import data as skdata
from skimage.metrics import peak_signal_noise_ratio as sk_psnr
from skimage.metrics import structural_similarity as sk_ssim
from skimage.util import img_as_float64

from restorekit import metrics
from restorekit.metrics import (
    PSNR,
    SSIM,
    SSIM_VARIANTS,
    colour_cast,
    edge_gap,
    opponent_psnr,
    psnr,
    rgb_to_y,
    ssim,
)

# The requirement is 1e-5; both sides compute in float64, so agreement is far tighter and a
# tighter bound catches subtler mistakes (sample instead of population covariance moves
# SSIM by ~3e-4 on these photos, a 13-tap window by ~2e-3).
SSIM_ATOL = 1e-10
PSNR_RTOL = 1e-10

# (photo, degradation): gray and colour photos, noise and blur.
PAIRS = [
    ("astronaut", "noise"),
    ("chelsea", "blur"),
    ("coffee", "noise"),
    ("rocket", "blur"),
    ("camera", "noise"),
    ("moon", "blur"),
    ("coins", "noise"),
]
PAIR_IDS = [f"{p}-{d}" for p, d in PAIRS]


@functools.cache
def _photo(name: str) -> np.ndarray:
    """A shipped skimage photo as float64 in [0, 1], (H, W) or (H, W, 3), halved."""
    img = img_as_float64(getattr(skdata, name)())
    return np.ascontiguousarray(img[::2, ::2])


@functools.cache
def _pair(name: str, degradation: str) -> tuple[np.ndarray, np.ndarray]:
    """(degraded, clean) float64 arrays in [0, 1]: a realistic restoration-output pair."""
    clean = _photo(name)
    rng = np.random.default_rng(zlib.crc32(f"{name}-{degradation}".encode()))
    if degradation == "noise":
        out = clean + rng.normal(0.0, 0.08, clean.shape)
    else:
        sigma = (1.5, 1.5, 0.0) if clean.ndim == 3 else 1.5
        out = ndimage.gaussian_filter(clean, sigma) + rng.normal(0.0, 0.01, clean.shape)
    return np.clip(out, 0.0, 1.0), clean


def _t(img: np.ndarray) -> torch.Tensor:
    """(H, W) or (H, W, C) array -> (1, C, H, W) tensor, dtype kept."""
    t = torch.from_numpy(np.ascontiguousarray(img))
    return (t[None] if t.ndim == 2 else t.permute(2, 0, 1))[None]


def _crop(img: np.ndarray, border: int) -> np.ndarray:
    return img[border : img.shape[0] - border, border : img.shape[1] - border] if border else img


def _sk_ssim_wang(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    return sk_ssim(
        a,
        b,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=data_range,
        channel_axis=2 if a.ndim == 3 else None,
    )


def _y_255(img: np.ndarray) -> np.ndarray:
    """MATLAB rgb2ycbcr luma in [16, 235], written from the formula independently."""
    return 16.0 + img @ np.array([65.481, 128.553, 24.966])


# --- parity with scikit-image -------------------------------------------------------------


@pytest.mark.parametrize(("name", "degradation"), PAIRS, ids=PAIR_IDS)
@pytest.mark.parametrize("crop_border", [0, 4])
def test_psnr_matches_skimage(name: str, degradation: str, crop_border: int) -> None:
    pred, target = _pair(name, degradation)
    expected = sk_psnr(_crop(target, crop_border), _crop(pred, crop_border), data_range=1.0)
    got = psnr(_t(pred), _t(target), crop_border=crop_border)
    assert got.shape == (1,)
    assert got.dtype == torch.float64
    assert got.item() == pytest.approx(expected, rel=PSNR_RTOL)


@pytest.mark.parametrize(("name", "degradation"), PAIRS, ids=PAIR_IDS)
@pytest.mark.parametrize("crop_border", [0, 4])
def test_ssim_wang2004_matches_skimage(name: str, degradation: str, crop_border: int) -> None:
    pred, target = _pair(name, degradation)
    expected = _sk_ssim_wang(_crop(pred, crop_border), _crop(target, crop_border), 1.0)
    got = ssim(_t(pred), _t(target), crop_border=crop_border)
    assert got.shape == (1,)
    assert got.dtype == torch.float64
    assert abs(got.item() - expected) < SSIM_ATOL


@pytest.mark.parametrize(("name", "degradation"), PAIRS, ids=PAIR_IDS)
def test_ssim_fastmri_matches_skimage_defaults(name: str, degradation: str) -> None:
    """fastMRI calls skimage's defaults with the target's maximum as the data range."""
    pred, target = _pair(name, degradation)
    peak = float(target.max())
    expected = sk_ssim(pred, target, data_range=peak, channel_axis=2 if target.ndim == 3 else None)
    got = ssim(_t(pred), _t(target), data_range=peak, variant="fastmri")
    assert abs(got.item() - expected) < SSIM_ATOL


@pytest.mark.parametrize("name", ["astronaut", "coffee", "rocket"])
@pytest.mark.parametrize("crop_border", [0, 3])
def test_y_channel_matches_skimage_on_independent_luma(name: str, crop_border: int) -> None:
    """The SR protocol: Y of rgb2ycbcr, border cropped, scored with L = 255 on [16, 235]."""
    pred, target = _pair(name, "blur")
    y_pred, y_target = _crop(_y_255(pred), crop_border), _crop(_y_255(target), crop_border)
    kw = {"crop_border": crop_border, "y_channel": True}
    got_ssim = ssim(_t(pred), _t(target), **kw).item()
    got_psnr = psnr(_t(pred), _t(target), **kw).item()
    assert abs(got_ssim - _sk_ssim_wang(y_pred, y_target, 255.0)) < SSIM_ATOL
    assert got_psnr == pytest.approx(sk_psnr(y_target, y_pred, data_range=255.0), rel=PSNR_RTOL)
    # Y is a real change of protocol, not a no-op: RGB scores differ.
    assert abs(psnr(_t(pred), _t(target), crop_border=crop_border).item() - got_psnr) > 0.01


def test_uint8_inputs_match_skimage() -> None:
    pred, target = (np.round(a * 255).astype(np.uint8) for a in _pair("chelsea", "noise"))
    got_ssim = ssim(_t(pred), _t(target), data_range=255).item()
    got_psnr = psnr(_t(pred), _t(target), data_range=255).item()
    assert abs(got_ssim - _sk_ssim_wang(pred, target, 255)) < SSIM_ATOL
    assert got_psnr == pytest.approx(sk_psnr(target, pred, data_range=255), rel=PSNR_RTOL)


# --- rgb_to_y -----------------------------------------------------------------------------


def test_rgb_to_y_golden_pixels() -> None:
    # white, black, pure red, pure green, pure blue, mid gray; Y by hand on the 0-255 scale
    rgb = torch.tensor(
        [[1, 1, 1], [0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0.5, 0.5, 0.5]],
        dtype=torch.float64,
    ).T.reshape(1, 3, 1, 6)
    expected_255 = torch.tensor(
        [235.0, 16.0, 16 + 65.481, 16 + 128.553, 16 + 24.966, 16 + 219.0 / 2],
        dtype=torch.float64,
    ).reshape(1, 1, 1, 6)
    torch.testing.assert_close(rgb_to_y(rgb), expected_255 / 255, rtol=0, atol=1e-14)
    torch.testing.assert_close(
        rgb_to_y(rgb * 255, data_range=255), expected_255, rtol=0, atol=1e-12
    )


def test_rgb_to_y_shapes_and_dtypes() -> None:
    x = torch.rand(2, 4, 3, 5, 6)
    assert rgb_to_y(x).shape == (2, 4, 1, 5, 6)
    assert rgb_to_y(x[0, 0]).shape == (1, 5, 6)
    assert rgb_to_y(x).dtype == torch.float32
    assert rgb_to_y(torch.zeros(1, 3, 2, 2, dtype=torch.uint8)).is_floating_point()
    for bad in (torch.rand(1, 4, 5, 5), torch.rand(5, 5)):
        with pytest.raises(ValueError, match="x must have shape"):
            rgb_to_y(bad)
    with pytest.raises(ValueError, match="data_range"):
        rgb_to_y(torch.rand(1, 3, 2, 2), data_range=0)


def test_y_channel_on_gray_uses_the_image_as_is() -> None:
    pred, target = (_t(a) for a in _pair("camera", "noise"))
    for metric in (psnr, ssim):
        assert torch.equal(metric(pred, target, y_channel=True), metric(pred, target))


@pytest.mark.parametrize("channels", [2, 4])
def test_y_channel_rejects_other_channel_counts(channels: int) -> None:
    x = torch.rand(1, channels, 16, 16)
    for metric in (psnr, ssim):
        with pytest.raises(ValueError, match="y_channel"):
            metric(x, x, y_channel=True)


# --- batch, scale, dtype, module twins ---------------------------------------------------


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Three colour pairs cropped to one size, stacked into (3, 3, 96, 112)."""
    preds, targets = [], []
    for name, degradation in [("astronaut", "noise"), ("chelsea", "blur"), ("coffee", "noise")]:
        pred, target = _pair(name, degradation)
        preds.append(_t(pred[:96, :112]))
        targets.append(_t(target[:96, :112]))
    return torch.cat(preds), torch.cat(targets)


@pytest.mark.parametrize("variant", SSIM_VARIANTS)
def test_batch_equals_per_image(variant: str) -> None:
    pred, target = _batch()
    kw = {"crop_border": 2, "y_channel": False}
    whole_ssim = ssim(pred, target, variant=variant, **kw)
    whole_psnr = psnr(pred, target, **kw)
    assert whole_ssim.shape == whole_psnr.shape == (3,)
    for i in range(3):
        one_ssim = ssim(pred[i : i + 1], target[i : i + 1], variant=variant, **kw)
        one_psnr = psnr(pred[i : i + 1], target[i : i + 1], **kw)
        torch.testing.assert_close(whole_ssim[i : i + 1], one_ssim, rtol=0, atol=1e-14)
        torch.testing.assert_close(whole_psnr[i : i + 1], one_psnr, rtol=1e-14, atol=0)
    assert len(set(whole_ssim.tolist())) == 3  # the images really differ


@pytest.mark.parametrize("y_channel", [False, True])
def test_data_range_255_equals_scaled_unit_range(y_channel: bool) -> None:
    pred, target = _batch()
    for metric, kwargs in ((psnr, {}), (ssim, {}), (ssim, {"variant": "fastmri"})):
        unit = metric(pred, target, y_channel=y_channel, **kwargs)
        eight_bit = metric(pred * 255, target * 255, data_range=255, y_channel=y_channel, **kwargs)
        torch.testing.assert_close(eight_bit, unit, rtol=1e-12, atol=1e-12)


def test_low_precision_inputs_are_scored_in_float64() -> None:
    pred, target = _batch()
    for dtype in (torch.float32, torch.bfloat16):
        p, t = pred.to(dtype), target.to(dtype)
        for metric in (psnr, ssim):
            got = metric(p, t)
            assert got.dtype == torch.float64
            # Exactly the float64 score of the rounded values: no low-precision arithmetic.
            assert torch.equal(got, metric(p.double(), t.double()))


def test_module_twins_equal_functions() -> None:
    pred, target = _batch()
    kw = {"data_range": 1.0, "crop_border": 3, "y_channel": True}
    assert torch.equal(PSNR(**kw)(pred, target), psnr(pred, target, **kw))
    for variant in SSIM_VARIANTS:
        module = SSIM(variant=variant, **kw)
        assert torch.equal(module(pred, target), ssim(pred, target, variant=variant, **kw))
        assert f"variant={variant!r}" in repr(module)
    assert "crop_border=3" in repr(PSNR(**kw))


def test_identical_images_give_inf_psnr_and_unit_ssim() -> None:
    pred, _ = _batch()
    assert torch.isinf(psnr(pred, pred)).all()
    assert (psnr(pred, pred) > 0).all()
    for variant in SSIM_VARIANTS:
        torch.testing.assert_close(
            ssim(pred, pred.clone(), variant=variant),
            torch.ones(3, dtype=torch.float64),
            rtol=0,
            atol=1e-12,
        )


def test_ssim_is_below_one_and_orders_degradations() -> None:
    _, target = _batch()
    gen = torch.Generator().manual_seed(0)
    mild = target + 0.02 * torch.randn(target.shape, generator=gen, dtype=target.dtype)
    strong = target + 0.2 * torch.randn(target.shape, generator=gen, dtype=target.dtype)
    assert (ssim(mild, target) < 1).all()
    assert (ssim(strong, target) < ssim(mild, target)).all()
    assert (psnr(strong, target) < psnr(mild, target)).all()


@pytest.mark.parametrize("tile_bytes", [1, 10**12])
def test_cpu_tiling_does_not_change_scores(monkeypatch, tile_bytes: int) -> None:
    """One output row per tile, or the whole image in one, give the default's scores."""
    pred, target = _batch()
    default = [ssim(pred, target, variant=v) for v in SSIM_VARIANTS]
    monkeypatch.setattr(metrics, "_TILE_BYTES", tile_bytes)
    for variant, want in zip(SSIM_VARIANTS, default, strict=True):
        torch.testing.assert_close(ssim(pred, target, variant=variant), want, rtol=0, atol=1e-14)


# --- gradients (the metrics double as losses) -------------------------------------------


@pytest.mark.parametrize("variant", SSIM_VARIANTS)
def test_ssim_gradcheck(variant: str) -> None:
    gen = torch.Generator().manual_seed(1)
    pred = torch.rand(1, 2, 12, 13, generator=gen, dtype=torch.float64, requires_grad=True)
    target = torch.rand(1, 2, 12, 13, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda p, t: ssim(p, t, variant=variant), (pred, target))


def test_psnr_gradcheck() -> None:
    gen = torch.Generator().manual_seed(2)
    pred = torch.rand(2, 3, 5, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    target = torch.rand(2, 3, 5, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda p, t: psnr(p, t, crop_border=1, y_channel=True), (pred, target)
    )


def test_gradient_reaches_float32_prediction() -> None:
    pred = torch.rand(1, 3, 16, 16, requires_grad=True)
    (1 - ssim(pred, torch.rand(1, 3, 16, 16))).sum().backward()
    assert pred.grad is not None
    assert pred.grad.dtype == torch.float32
    assert pred.grad.abs().sum() > 0


# --- input checks -------------------------------------------------------------------------


@pytest.mark.parametrize("metric", [psnr, ssim])
def test_input_checks(metric) -> None:
    x = torch.rand(1, 1, 32, 32)
    with pytest.raises(ValueError, match="same shape"):
        metric(x, torch.rand(1, 1, 32, 31))
    with pytest.raises(ValueError, match=r"pred must be \(H, W\), \(C, H, W\) or"):
        metric(x[0, 0, 0], x[0, 0, 0])
    with pytest.raises(ValueError, match=r"pred must be \(H, W\), \(C, H, W\) or"):
        metric(x[None], x[None])
    with pytest.raises(ValueError, match=r"target must be a torch\.Tensor"):
        metric(x, x.numpy())
    for bad in (0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="data_range"):
            metric(x, x, data_range=bad)
    with pytest.raises(ValueError, match="crop_border"):
        metric(x, x, crop_border=-1)
    with pytest.raises(ValueError, match="crop_border=16 leaves 0x0"):
        metric(x, x, crop_border=16)


@pytest.mark.parametrize("metric", [psnr, ssim])
def test_one_image_may_come_as_hw_or_chw_and_scores_as_a_number(metric) -> None:
    # Issue 14: `restore(path)` returns (C, H, W); the metrics took only (B, C, H, W).
    x, y = torch.rand(2, 24, 24, generator=torch.Generator().manual_seed(0)).unbind(0)
    batched = metric(x[None, None], y[None, None])
    assert batched.shape == (1,)
    for a, b in ((x, y), (x[None], y[None])):
        one = metric(a, b)
        assert one.shape == () and float(one) == float(batched[0])


def test_ssim_crop_must_leave_the_window() -> None:
    x = torch.rand(1, 1, 20, 30)
    assert ssim(x, x, crop_border=4).shape == (1,)  # 12x22 >= 11x11
    with pytest.raises(ValueError, match=r"crop_border=5 leaves 10x20 .* 11x11 window"):
        ssim(x, x, crop_border=5)
    assert ssim(x, x, crop_border=6, variant="fastmri").shape == (1,)  # 8x18 >= 7x7
    with pytest.raises(ValueError, match="7x7 window"):
        ssim(x, x, crop_border=7, variant="fastmri")
    assert psnr(x, x, crop_border=9).shape == (1,)  # 2x12 pixels are enough for PSNR


def test_unknown_variant_lists_the_choices() -> None:
    x = torch.rand(1, 1, 16, 16)
    with pytest.raises(ValueError, match=r"variant must be one of \['wang2004', 'fastmri'\]"):
        ssim(x, x, variant="gaussian")
    with pytest.raises(ValueError, match="variant"):
        SSIM(variant="gaussian")


def test_modules_validate_options_at_construction() -> None:
    for cls in (PSNR, SSIM):
        with pytest.raises(ValueError, match="data_range"):
            cls(data_range=0)
        with pytest.raises(ValueError, match="crop_border"):
            cls(crop_border=-2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu() -> None:
    pred, target = _batch()
    for metric in (psnr, ssim):
        got = metric(pred.cuda().float(), target.cuda().float(), crop_border=2)
        assert got.device.type == "cuda"
        want = metric(pred.float(), target.float(), crop_border=2)
        torch.testing.assert_close(got.cpu(), want, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------- dehazing diagnostics


def test_edge_gap_matches_a_numpy_reference_and_finds_the_worst_side() -> None:
    rng = np.random.default_rng(0)
    target = rng.random((2, 3, 30, 40))
    pred = target + rng.normal(0, 0.02, target.shape)
    pred[1, :, :, :6] += 0.2  # image 1: a dark/bright band on its left side

    def reference(p: np.ndarray, t: np.ndarray, w: int = 6) -> float:
        err = np.abs(p - t)
        sides = [err[:, :w], err[:, -w:], err[:, :, :w], err[:, :, -w:]]
        return max(s.mean() for s in sides) - err[:, w:-w, w:-w].mean()

    got = edge_gap(torch.from_numpy(pred), torch.from_numpy(target))
    want = [reference(pred[i], target[i]) for i in range(2)]
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)
    assert abs(want[0]) < 0.005 and want[1] > 0.15
    with pytest.raises(ValueError, match="edge_gap needs"):
        edge_gap(torch.zeros(1, 1, 12, 12), torch.zeros(1, 1, 12, 12))


def test_colour_cast_is_the_largest_channel_mean_drift() -> None:
    rng = np.random.default_rng(1)
    target = rng.random((3, 16, 16))
    pred = target.copy()
    pred[2] *= 0.9  # less blue: the brown cast of the old ffa_light
    want = np.abs(pred.mean(axis=(1, 2)) - target.mean(axis=(1, 2))).max()
    got = colour_cast(torch.from_numpy(pred), torch.from_numpy(target))
    assert got.ndim == 0 and float(got) == pytest.approx(want, rel=1e-12)
    assert float(colour_cast(torch.from_numpy(target), torch.from_numpy(target))) == 0.0
    assert float(colour_cast(torch.from_numpy(pred * 255), torch.from_numpy(target * 255),
                             data_range=255.0)) == pytest.approx(want, rel=1e-12)  # fmt: skip


@pytest.mark.parametrize("name", ["astronaut", "coffee"])
def test_opponent_psnr_is_skimage_psnr_of_the_rotated_channels(name: str) -> None:
    noisy, clean = _pair(name, "noise")
    # The opponent basis written out independently: luma, red-green, yellow-blue, unit rows.
    basis = np.array([[1, 1, 1], [1, -1, 0], [1, 1, -2]]) / np.sqrt([[3], [2], [6]])
    rot_noisy, rot_clean = noisy @ basis.T, clean @ basis.T
    # skimage's PSNR of each part, with the data range (peak) of the RGB image, 1.
    luma = sk_psnr(rot_clean[..., 0], rot_noisy[..., 0], data_range=1.0)
    chroma = sk_psnr(rot_clean[..., 1:], rot_noisy[..., 1:], data_range=1.0)
    got_luma, got_chroma = opponent_psnr(_t(noisy), _t(clean))
    assert float(got_luma[0]) == pytest.approx(luma, rel=PSNR_RTOL)
    assert float(got_chroma[0]) == pytest.approx(chroma, rel=PSNR_RTOL)
    # Orthonormal: the parts recombine into the RGB PSNR.
    whole = -10 * np.log10((10 ** (-luma / 10) + 2 * 10 ** (-chroma / 10)) / 3)
    assert float(psnr(_t(noisy), _t(clean))[0]) == pytest.approx(whole, rel=PSNR_RTOL)


def test_opponent_psnr_tells_a_tint_from_a_brightness_change() -> None:
    clean = torch.from_numpy(_photo("coffee")).permute(2, 0, 1)
    brighter, tinted = clean + 0.05, clean * torch.tensor([1.1, 0.9, 1.0]).view(3, 1, 1)
    luma, chroma = opponent_psnr(brighter, clean)
    assert luma.ndim == 0 and float(chroma) > 200  # no chroma error (rounding only)
    luma, chroma = opponent_psnr(tinted, clean)
    assert float(chroma) < float(luma) - 8  # redder, less green: a red-green error
    with pytest.raises(ValueError, match="needs RGB"):
        opponent_psnr(clean[:1], clean[:1])


def test_luma_and_chroma_columns_are_nan_where_there_is_no_colour_to_split() -> None:
    gray, rgb = torch.rand(1, 1, 16, 16), torch.rand(1, 3, 16, 16)
    for name in ("psnr_luma", "psnr_chroma"):
        fn = metrics.METRICS[name].fn
        assert math.isnan(float(fn(gray, gray * 0.9)[0]))
        assert math.isnan(float(fn(rgb, rgb * 0.9, y_channel=True)[0]))
        assert math.isfinite(float(fn(rgb, rgb * 0.9)[0]))
