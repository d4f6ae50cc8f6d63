"""Classical baselines: numerics against independent references, restoration of real photos,
the registry, and the model contract (shapes, dtypes, batches, ``restore_tensor``).

References: ``scipy.ndimage`` for the median (mode 'reflect', the symmetric border
``d c b a | a b c d``) and the Gaussian (same ``truncate``, mode 'reflect'), a direct
``skimage.restoration.denoise_nl_means`` call for NLM, ``imresize`` for bicubic, and a
plain-loop guided filter written here from He et al.'s Algorithm 1.
"""

from __future__ import annotations

import inspect
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy import ndimage

from restorekit.baselines import (
    BM3D,
    NLM,
    Baseline,
    Bicubic,
    Gaussian,
    Median,
    create_baseline,
    dark_channel,
    dehaze_dcp,
    guided_filter,
    list_baselines,
)
from restorekit.degrade import disparity_to_depth, gaussian_noise, haze, imresize, salt_pepper
from restorekit.inference import restore_tensor
from restorekit.metrics import psnr

skdata = pytest.importorskip("skimage.data")  # the photos ship in the wheel: no download

FAST = ("median", "gaussian", "nlm", "bicubic", "dcp")  # bm3d takes ~1 s an image: own tests


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def image(b: int = 2, c: int = 3, h: int = 17, w: int = 23, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, c, h, w, generator=gen(seed), dtype=torch.float64)


def to_tensor(arr: np.ndarray) -> torch.Tensor:
    """An 8-bit (H, W) or (H, W, 3) photo as a (1, C, H, W) float64 tensor in [0, 1]."""
    t = torch.from_numpy(arr).double() / 255
    return t[None, None] if t.ndim == 2 else t.permute(2, 0, 1)[None]


@pytest.fixture(scope="module")
def camera() -> torch.Tensor:
    return to_tensor(skdata.camera())  # (1, 1, 512, 512)


@pytest.fixture(scope="module")
def motorcycle() -> tuple[torch.Tensor, torch.Tensor]:
    """The Middlebury motorcycle at half size with its true depth (from the disparity)."""
    left, _, disparity = skdata.stereo_motorcycle()
    clear = imresize(to_tensor(left), 0.5).clamp(0, 1)  # (1, 3, 250, 371)
    depth = disparity_to_depth(disparity, fill="background").double()
    return clear, imresize(depth, 0.5).clamp(min=0)


# ---------------------------------------------------------------- registry


def test_list_baselines_names_every_baseline() -> None:
    assert list_baselines() == ["bicubic", "bm3d", "dcp", "gaussian", "median", "nlm"]


@pytest.mark.parametrize("name", FAST)
def test_created_baselines_record_name_and_every_argument(name: str) -> None:
    model = create_baseline(name)
    assert isinstance(model, Baseline) and model.baseline_name == name
    assert list(model.parameters()) == [] and model.size_multiple == 1
    defaults = {k: p.default for k, p in inspect.signature(type(model).__init__).parameters.items()}
    defaults.pop("self")
    assert model.baseline_kwargs == defaults  # defaults included, for the result table
    text = model.describe()
    assert text.startswith(f"{name}(")
    for key, value in defaults.items():
        assert f"{key}={value!r}" in text and f"{key}={value!r}" in repr(model)


def test_describe_states_given_arguments() -> None:
    assert create_baseline("median", size=5).describe() == "median(size=5)"
    assert create_baseline("bicubic", scale=3).scale == 3
    assert create_baseline("dcp", radius=30).baseline_kwargs["radius"] == 30


def test_unknown_name_raises_listing_valid_names() -> None:
    with pytest.raises(ValueError, match=r"'wiener'.*bicubic, bm3d, dcp, gaussian, median, nlm"):
        create_baseline("wiener")


def test_unknown_argument_raises_naming_it_and_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"sigma.*'median'.*valid: size"):
        create_baseline("median", sigma=1.0)
    with pytest.raises(ValueError, match=r"beta.*valid: patch, omega, t0"):
        create_baseline("dcp", beta=1.0)


@pytest.mark.parametrize(
    ("name", "kwargs", "key"),
    [
        ("median", {"size": 4}, "size"),
        ("median", {"size": 0}, "size"),
        ("gaussian", {"sigma": 0.0}, "sigma"),
        ("nlm", {"patch_size": 0}, "patch_size"),
        ("nlm", {"h": -0.1}, "h"),
        ("bicubic", {"scale": 5}, "scale"),
        ("bicubic", {"scale": True}, "scale"),
        ("dcp", {"patch": 14}, "patch"),
        ("dcp", {"omega": 0.0}, "omega"),
        ("dcp", {"t0": 1.5}, "t0"),
        ("dcp", {"radius": -1}, "radius"),
        ("dcp", {"eps": -1e-3}, "eps"),
    ],
)
def test_bad_values_raise_naming_the_argument(name: str, kwargs: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        create_baseline(name, **kwargs)


@pytest.mark.parametrize(
    "bad", [torch.rand(2, 2, 8, 8), torch.rand(3, 8, 8), torch.zeros(1, 1, 8, 8, dtype=torch.int64)]
)
def test_bad_inputs_raise(bad: torch.Tensor) -> None:
    for name in FAST:
        with pytest.raises(ValueError, match="x must"):
            create_baseline(name)(bad)


# ---------------------------------------------------------------- the model contract


@pytest.mark.parametrize("name", FAST)
@pytest.mark.parametrize("c", [1, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_shape_dtype_and_batch_independence(name: str, c: int, dtype: torch.dtype) -> None:
    model = create_baseline(name)
    x = image(2, c, 17, 23).to(dtype)  # odd sizes
    y = model(x)
    s = model.scale
    assert y.shape == (2, c, 17 * s, 23 * s) and y.dtype == dtype and y.device == x.device
    assert torch.isfinite(y).all()
    # Each image is restored on its own: no statistics leak across the batch (batched
    # convolutions may differ in the last bit, hence the dtype's default tolerance).
    torch.testing.assert_close(y[1:], model(x[1:]))


@pytest.mark.parametrize("name", FAST)
def test_restore_tensor_runs_baselines_like_models(name: str) -> None:
    model = create_baseline(name)
    x = image(1, 3, 20, 28).float()
    y = restore_tensor(model, x)
    assert y.shape == (1, 3, 20 * model.scale, 28 * model.scale) and y.dtype == torch.float32
    torch.testing.assert_close(y, model(x).clamp(0, 1))


@pytest.mark.parametrize("model", [Median(size=5), Gaussian(sigma=1.0), Bicubic(scale=2)])
def test_tiled_restore_equals_untiled_for_local_baselines(model: Baseline) -> None:
    # Receptive-field radius: 2 (median 5), 4 (Gaussian, truncate 4), 2 (bicubic): the
    # tiles' overlap of 8 gives every output pixel >= 4 pixels of real context.
    x = image(1, 3, 30, 37).float()
    tiled = restore_tensor(model, x, tile=12, overlap=8)
    torch.testing.assert_close(tiled, restore_tensor(model, x), atol=1e-6, rtol=0)


# ---------------------------------------------------------------- numerics vs references


@pytest.mark.parametrize("size", [3, 5])
@pytest.mark.parametrize("hw", [(20, 31), (3, 2)])  # the second is smaller than the window
def test_median_matches_scipy_reflect(size: int, hw: tuple[int, int]) -> None:
    x = image(2, 3, *hw)
    y = Median(size=size)(x).numpy()
    for b in range(2):
        for c in range(3):
            ref = ndimage.median_filter(x[b, c].numpy(), size=size, mode="reflect")
            np.testing.assert_array_equal(y[b, c], ref)


@pytest.mark.parametrize("sigma", [0.7, 1.5, 3.0])
@pytest.mark.parametrize("hw", [(20, 31), (3, 4)])  # the second is smaller than the kernel
def test_gaussian_matches_scipy(sigma: float, hw: tuple[int, int]) -> None:
    x = image(1, 3, *hw)
    y = Gaussian(sigma=sigma, truncate=4.0)(x).numpy()
    for c in range(3):
        ref = ndimage.gaussian_filter(x[0, c].numpy(), sigma, mode="reflect", truncate=4.0)
        np.testing.assert_allclose(y[0, c], ref, rtol=0, atol=1e-12)
    y32 = Gaussian(sigma=sigma)(x.float()).double().numpy()
    np.testing.assert_allclose(y32, y, rtol=0, atol=1e-6)


def test_nlm_matches_a_direct_skimage_call(camera: torch.Tensor) -> None:
    from skimage.restoration import denoise_nl_means, estimate_sigma

    clean = camera[..., 100:148, 200:248]
    noisy = gaussian_noise(clean, 0.1, generator=gen(3))
    img = noisy[0, 0].numpy()
    est = estimate_sigma(img)
    ref = denoise_nl_means(img, patch_size=5, patch_distance=6, h=0.6 * est, sigma=est)
    y = NLM()(noisy)
    np.testing.assert_allclose(y[0, 0].numpy(), ref, rtol=0, atol=1e-12)
    assert psnr(y, clean).item() > psnr(noisy, clean).item() + 3

    rgb = to_tensor(skdata.astronaut()[200:232, 200:240])
    rgb_noisy = gaussian_noise(rgb, 0.08, generator=gen(4))
    arr = rgb_noisy[0].permute(1, 2, 0).numpy()
    kw = {"patch_size": 3, "patch_distance": 4, "fast_mode": False}
    ref = denoise_nl_means(arr, h=0.8 * 0.08, sigma=0.08, channel_axis=-1, **kw)
    y = NLM(sigma=0.08, **kw)(rgb_noisy)
    np.testing.assert_allclose(y[0].permute(1, 2, 0).numpy(), ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_equals_imresize(scale: int) -> None:
    x = image(2, 3, 17, 23)
    assert torch.equal(Bicubic(scale=scale)(x), imresize(x, scale))


def box_mean_loops(a: np.ndarray, r: int) -> np.ndarray:
    """Window sums divided by window counts, the window clipped to the image."""
    h, w = a.shape
    out = np.zeros_like(a)
    for y in range(h):
        for x in range(w):
            total, count = 0.0, 0
            for v in range(max(0, y - r), min(h, y + r + 1)):
                for u in range(max(0, x - r), min(w, x + r + 1)):
                    total += a[v, u]
                    count += 1
            out[y, x] = total / count
    return out


def guided_filter_loops(guide: np.ndarray, src: np.ndarray, r: int, eps: float) -> np.ndarray:
    """He et al., ECCV 2010, Algorithm 1, line by line."""
    mean_i, mean_p = box_mean_loops(guide, r), box_mean_loops(src, r)
    var_i = box_mean_loops(guide * guide, r) - mean_i**2
    cov_ip = box_mean_loops(guide * src, r) - mean_i * mean_p
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return box_mean_loops(a, r) * guide + box_mean_loops(b, r)


@pytest.mark.parametrize("radius", [1, 2, 5])  # 5: windows wider than the 7 x 9 image
@pytest.mark.parametrize("eps", [1e-2, 1e-4])
def test_guided_filter_matches_plain_loops(radius: int, eps: float) -> None:
    guide = image(1, 1, 7, 9, seed=1)
    src = image(1, 1, 7, 9, seed=2)
    ref = guided_filter_loops(guide[0, 0].numpy(), src[0, 0].numpy(), radius, eps)
    out = guided_filter(guide, src, radius=radius, eps=eps)
    np.testing.assert_allclose(out[0, 0].numpy(), ref, rtol=0, atol=1e-12)


def test_guided_filter_properties() -> None:
    g = image(2, 1, 16, 20)
    # eps -> 0 with the guide as input: a -> 1, b -> 0, so q -> the input.
    torch.testing.assert_close(guided_filter(g, g, radius=3, eps=1e-12), g, atol=1e-6, rtol=0)
    # Radius 0 leaves the input alone (one-pixel windows have no variance).
    p = image(2, 3, 16, 20, seed=5)
    torch.testing.assert_close(guided_filter(g, p, radius=0, eps=1e-4), p)
    # Several channels share the guide: the same as one channel at a time.
    channels = [guided_filter(g, p[:, i : i + 1], radius=2, eps=1e-3) for i in range(3)]
    per_channel = torch.cat(channels, dim=1)
    torch.testing.assert_close(guided_filter(g, p, radius=2, eps=1e-3), per_channel)


def test_dark_channel_matches_scipy_minimum_filter() -> None:
    # A min over the window clipped to the image equals a min over an edge-replicated
    # window: replication adds no new values ('nearest').
    x = image(2, 3, 19, 26)
    ref = ndimage.minimum_filter(x.amin(1).numpy(), size=(1, 7, 7), mode="nearest")
    np.testing.assert_array_equal(dark_channel(x, patch=7)[:, 0].numpy(), ref)


def test_airlight_is_the_brightest_of_the_haziest_pixels() -> None:
    # 100 x 100 pixels: the top 0.1 % of the dark channel are 10 pixels. A grey 3 x 3 block
    # gives the single highest dark value (0.85) but is dim; a tinted 5 x 5 block gives 9
    # pixels of dark value 0.81 and is brighter. He et al. pick the brightest candidate.
    x = image(1, 3, 100, 100) * 0.5
    x[..., 10:13, 10:13] = 0.85
    x[..., 60:65, 60:65] = torch.tensor([0.81, 1.0, 1.0], dtype=x.dtype).view(1, 3, 1, 1)
    out = dehaze_dcp(x, patch=3, radius=0)
    torch.testing.assert_close(out.airlight, torch.tensor([[0.81, 1.0, 1.0]], dtype=x.dtype))


def test_dcp_transmission_reads_uniform_haze_over_a_dark_channel_free_scene() -> None:
    # A scene whose every 3x3 patch holds a black pixel (its dark channel is 0) and one
    # block of the airlight's colour (0.9, 0.8, 0.85), under haze of transmission 0.6:
    # the block gives the airlight, and elsewhere t = 1 - omega (1 - 0.6) exactly.
    from restorekit.layers.haze import dcp_transmission

    clear = image(1, 3, 40, 40) * 0.5 + 0.5
    clear[..., ::2, ::2] = 0.0
    a = torch.tensor([0.9, 0.8, 0.85], dtype=clear.dtype).view(1, 3, 1, 1)
    clear[..., 30:, 30:] = a
    hazy = clear * 0.6 + a * 0.4
    airlight, t = dcp_transmission(hazy, patch=3, omega=0.95, radius=0)
    torch.testing.assert_close(airlight, a.view(1, 3))
    torch.testing.assert_close(t[..., :27, :27], torch.full_like(t[..., :27, :27], 1 - 0.95 * 0.4))


# ---------------------------------------------------------------- restoration of real photos


def test_median_removes_salt_and_pepper(camera: torch.Tensor) -> None:
    noisy, _ = salt_pepper(camera, 0.1, generator=gen(0))
    before, after = psnr(noisy, camera).item(), psnr(Median()(noisy), camera).item()
    assert before < 16 and after > before + 12  # about 14.8 -> 29.6 dB


@pytest.mark.parametrize("gray", [False, True])
def test_dcp_dehazes_a_photo_with_true_depth(
    motorcycle: tuple[torch.Tensor, torch.Tensor], gray: bool
) -> None:
    clear, depth = motorcycle
    if gray:
        clear = clear.mean(1, keepdim=True)
    airlight = torch.tensor([[0.9]] if gray else [[0.95, 0.9, 0.8]], dtype=torch.float64)
    hazy = haze(clear, depth, beta=2.0, airlight=airlight)  # far end: t = 0.14
    out = dehaze_dcp(hazy.float())
    gain = psnr(out.image, clear).item() - psnr(hazy, clear).item()
    assert gain > 4  # about +5.1 dB (RGB) and +5.5 dB (grey)
    torch.testing.assert_close(out.airlight.double(), airlight, atol=0.04, rtol=0)
    # The guided-filter refinement is worth something: radius 0 skips it.
    coarse = dehaze_dcp(hazy.float(), radius=0).image
    assert psnr(out.image, clear).item() > psnr(coarse, clear).item() + 1
    # The module is the function.
    assert torch.equal(create_baseline("dcp")(hazy.float()), out.image)


# ---------------------------------------------------------------- bm3d (optional package)


def test_importing_baselines_imports_no_heavy_package() -> None:
    code = (
        "import sys, restorekit.baselines; "
        "print([m for m in ('bm3d', 'skimage', 'scipy') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_bm3d_missing_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "bm3d", None)  # makes `import bm3d` raise ImportError
    with pytest.raises(ImportError, match=r"pip install 'restorekit\[bm3d\]'"):
        create_baseline("bm3d")


def test_bm3d_denoises_gaussian_noise(camera: torch.Tensor) -> None:
    pytest.importorskip("bm3d")
    clean = camera[..., 200:264, 200:264]
    noisy = gaussian_noise(clean, 0.1, generator=gen(1), clip=False)
    before = psnr(noisy, clean).item()  # about 20 dB
    assert psnr(BM3D(sigma=0.1)(noisy), clean).item() > before + 5
    assert psnr(BM3D()(noisy), clean).item() > before + 5  # sigma estimated


def test_bm3d_contract_on_tiny_and_colour_images() -> None:
    pytest.importorskip("bm3d")
    model = create_baseline("bm3d", sigma=0.05)
    x = image(2, 1, 9, 13).float()  # below bm3d's minimum side: mirrored up and back
    y = model(x)
    assert y.shape == x.shape and y.dtype == torch.float32
    # Each image on its own (bm3d's float32 FFTs may differ in the last bit run to run).
    torch.testing.assert_close(y[1:], model(x[1:]), rtol=0, atol=1e-6)
    x = image(1, 3, 17, 23)
    y = restore_tensor(model, x.float())
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert model.describe() == "bm3d(sigma=0.05, profile='np')"


def test_the_dcp_module_and_function_share_their_defaults() -> None:
    # The paper's settings are written in three signatures (the baseline, its function,
    # and the estimate FFA's guide shares); they must not drift apart.
    import inspect

    from restorekit.baselines import DCP, dehaze_dcp
    from restorekit.layers.haze import dcp_transmission

    def defaults(fn: object) -> dict:
        params = inspect.signature(fn).parameters.values()
        return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}

    assert defaults(DCP.__init__) == defaults(dehaze_dcp)
    estimate = {k: v for k, v in defaults(dehaze_dcp).items() if k != "t0"}  # t0: J's floor
    assert defaults(dcp_transmission) == estimate
    assert create_baseline("dcp").baseline_kwargs == defaults(dehaze_dcp)


def test_every_baseline_module_registers_a_baseline() -> None:
    from restorekit.baselines import BASELINES

    assert BASELINES.silent_modules() == []
    assert all(e.paper for e in BASELINES.entries())
    assert [create_baseline(n).baseline_name for n in BASELINES.names()] == BASELINES.names()
