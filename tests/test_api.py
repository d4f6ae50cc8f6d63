"""restorekit.api: load_model from every source, and restore on every kind of image."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import restorekit
from restorekit.api import list_weights, load_model, restore
from restorekit.degrade import imresize
from restorekit.inference import restore_tensor
from restorekit.io import write_image
from restorekit.models import create_model
from restorekit.train.checkpoint import save_checkpoint, save_weights


def tiny_sr(seed: int = 0, **kwargs: object) -> nn.Module:
    """A 2x SRCNN with random (not default-initialised) weights, so a load is visible."""
    torch.manual_seed(seed)
    model = create_model("srcnn", scale=2, filters=(8, 4), **kwargs)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.1)
    return model


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


_RAN: list[str] = []


def _record(tag: str) -> str:
    _RAN.append(tag)
    return tag


class _Evil:
    """Unpickling this calls _record: a weights_only load must refuse it first."""

    def __reduce__(self) -> tuple:
        return (_record, ("unpickled",))


# ----------------------------------------------------------------------------- load_model


def test_load_model_rebuilds_from_a_safetensors_file_alone(tmp_path: Path) -> None:
    model = tiny_sr(in_channels=3)
    save_weights(tmp_path / "m.safetensors", model)
    loaded = load_model(tmp_path / "m.safetensors")
    assert type(loaded) is type(model)
    assert loaded.model_kwargs == {  # every resolved argument, not just those passed
        "scale": 2, "filters": [8, 4], "in_channels": 3, "kernel_sizes": [9, 5, 5],
        "padding_mode": "replicate", "pre_upsampled": False,
    }  # fmt: skip
    assert loaded.in_channels == 3
    assert same_weights(loaded, model)
    assert not loaded.training
    assert loaded.untrained is False
    assert loaded.weights_file == str(tmp_path / "m.safetensors")


def test_metadata_asking_for_a_huge_model_is_refused_before_allocating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 14: `filters: 6000` in a 230 KB file took 3.8 GB before its shape check.
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in tiny_sr().state_dict().items()}
    meta = {"model_name": '"srcnn"', "model_kwargs": '{"scale": 2, "filters": [6000, 6000]}'}
    save_file(state, str(tmp_path / "huge.safetensors"), metadata=meta)
    import restorekit.api as api

    devices: list[str] = []
    real = api.create_model

    def spy(name: str, **kwargs: object) -> nn.Module:
        devices.append(torch.empty(0).device.type)  # the default device it is built on
        return real(name, **kwargs)

    monkeypatch.setattr(api, "create_model", spy)
    with pytest.raises(ValueError, match=r"huge\.safetensors: its metadata asks for a srcnn"):
        load_model(tmp_path / "huge.safetensors")
    assert devices == ["meta"]  # only the probe was built, on the meta device


def test_load_model_from_a_run_folder_prefers_best(tmp_path: Path) -> None:
    run = tmp_path / "run"
    latest = tiny_sr(seed=1)
    save_checkpoint(run, step=3, modules={"model": latest}, state={"x": 1})
    assert same_weights(load_model(run), latest)  # no best yet: the latest checkpoint
    best = tiny_sr(seed=2)
    save_weights(run / "best.safetensors", best)
    assert same_weights(load_model(run), best)


def test_load_model_refuses_a_folder_without_weights(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"best\.safetensors"):
        load_model(tmp_path)


def test_load_model_name_with_pth_weights(tmp_path: Path) -> None:
    model = tiny_sr()
    for key in ("state_dict", "params", None):
        file = tmp_path / f"{key}.pth"
        torch.save(model.state_dict() if key is None else {key: model.state_dict()}, file)
        loaded = load_model("srcnn", weights=file, scale=2, filters=(8, 4))
        assert same_weights(loaded, model), key
        assert loaded.untrained is False


def test_pth_weights_are_never_unpickled(tmp_path: Path) -> None:
    file = tmp_path / "evil.pth"
    torch.save({"state_dict": tiny_sr().state_dict(), "extra": _Evil()}, file)
    _RAN.clear()
    with pytest.raises(ValueError, match=r"evil\.pth"):
        load_model("srcnn", weights=file, scale=2, filters=(8, 4))
    assert _RAN == []


def test_safetensors_weights_for_a_name(tmp_path: Path) -> None:
    model = tiny_sr()
    save_weights(tmp_path / "w.safetensors", model)
    assert same_weights(
        load_model("srcnn", weights=tmp_path / "w.safetensors", scale=2, filters=(8, 4)), model
    )


def test_mismatched_weights_name_the_file_and_keys(tmp_path: Path) -> None:
    file = tmp_path / "sr.safetensors"
    save_weights(file, tiny_sr())
    with pytest.raises(ValueError, match=r"sr\.safetensors.*missing keys encoders\.0.*unexpected"):
        load_model("attention_unet", weights=file, widths=(4, 8))
    with pytest.raises(ValueError, match=r"sr\.safetensors.*body\.0\.weight has shape"):
        load_model("srcnn", weights=file, scale=2, filters=(16, 4))


def test_registered_name_without_weights_is_untrained(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="restorekit.api"):
        model = load_model("srcnn", scale=2, filters=(8, 4))
    assert model.untrained is True
    assert model.weights_file is None
    assert "untrained" in caplog.text
    assert not model.training


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        (("no_such_model",), {}, ValueError, "no_such_model.*srcnn"),
        (("missing/model.safetensors",), {}, FileNotFoundError, "model.safetensors"),
        (("srcnn",), {"weights": "missing.pth"}, FileNotFoundError, "missing.pth"),
        (("srcnn",), {"bogus": 1}, ValueError, "bogus"),
    ],
)
def test_load_model_errors(args: tuple, kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        load_model(*args, **kwargs)


def test_options_with_a_weights_file_are_refused(tmp_path: Path) -> None:
    save_weights(tmp_path / "m.safetensors", tiny_sr())
    with pytest.raises(ValueError, match="filters="):
        load_model(tmp_path / "m.safetensors", filters=(8, 4))
    torch.save(tiny_sr().state_dict(), tmp_path / "m.pth")
    with pytest.raises(ValueError, match="model name"):  # a .pth alone cannot rebuild
        load_model(tmp_path / "m.pth")


def test_shipped_weights_are_listed_and_loadable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import restorekit.api as api

    monkeypatch.setattr(api, "WEIGHTS_DIR", tmp_path / "absent")
    assert list_weights() == []
    monkeypatch.setattr(api, "WEIGHTS_DIR", tmp_path)
    model = tiny_sr()
    save_weights(tmp_path / "sr_tiny_x2.safetensors", model)
    assert list_weights() == ["sr_tiny_x2"]
    assert same_weights(load_model("sr_tiny_x2"), model)


def test_package_reexports_are_lazy_and_work() -> None:
    assert restorekit.restore is restore
    assert restorekit.load_model is load_model
    assert restorekit.create_model is create_model
    assert "srcnn" in restorekit.list_models()


# ----------------------------------------------------------------------------- restore


def test_restore_a_path_returns_a_tensor(tmp_path: Path) -> None:
    x = torch.rand(3, 10, 12)
    write_image(tmp_path / "x.png", x)
    model = tiny_sr(in_channels=3)
    y = restore(tmp_path / "x.png", model=model)
    assert isinstance(y, torch.Tensor)
    assert y.shape == (3, 20, 24)
    assert y.dtype == torch.float32
    expected = restore_tensor(model, torch.round(x * 255)[None] / 255)[0]
    assert torch.allclose(y, expected, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_restore_numpy_keeps_kind_dtype_and_layout(dtype: type) -> None:
    peak = 1.0 if dtype is np.float32 else float(np.iinfo(dtype).max)
    rng = np.random.default_rng(0)
    gray = (rng.random((9, 11)) * peak).astype(dtype)
    model = tiny_sr()
    y = restore(gray, model=model)
    assert isinstance(y, np.ndarray)
    assert y.shape == (18, 22)
    assert y.dtype == dtype
    x = torch.from_numpy(gray.astype(np.float32) / peak)[None, None]
    expected = restore_tensor(model, x)[0, 0].double().numpy() * peak
    tolerance = 1e-6 if dtype is np.float32 else 0.5 + 1e-3  # rounding to integers
    assert np.abs(y.astype(np.float64) - expected).max() <= tolerance
    rgb = restore((rng.random((9, 11, 3)) * peak).astype(dtype), model=model)
    assert rgb.shape == (18, 22, 3)
    assert rgb.dtype == dtype


def test_restore_tensor_keeps_layout_and_dtype() -> None:
    model = tiny_sr(in_channels=3)
    x = torch.rand(2, 3, 8, 9, dtype=torch.float64)
    y = restore(x, model=model)
    assert y.shape == (2, 3, 16, 18)
    assert y.dtype == torch.float64
    single = restore(x[1].float(), model=model)
    assert single.shape == (3, 16, 18)
    assert torch.allclose(single.double(), y[1], atol=1e-6)


def test_tiled_equals_untiled_when_the_receptive_field_fits() -> None:
    """SRCNN 9-5-5 at 2x after bicubic: radius about 2 + 8 / 2 input pixels < 16 / 2."""
    model = tiny_sr(in_channels=3)
    x = torch.rand(3, 37, 45)
    whole = restore(x, model=model)
    tiled = restore(x, model=model, tile=16, overlap=16)
    assert tiled.shape == whole.shape == (3, 74, 90)
    assert float((tiled - whole).abs().max()) < 1e-4
    # The test can fail: with no overlap the tile borders show.
    seams = restore(x, model=model, tile=16, overlap=0)
    assert float((seams - whole).abs().max()) > 1e-3


def test_peak_bytes_counts_the_live_tensors_on_the_meta_device() -> None:
    from restorekit.inference import peak_bytes

    with torch.device("meta"):
        conv = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 2, 1))
    # input 3x64x64 and the first conv's 8x64x64 output live together; ReLU's output
    # (8x64x64) is made before the conv output is freed: 4 bytes per value.
    assert peak_bytes(conv, (1, 3, 64, 64)) == 4 * 64 * 64 * (3 + 8 + 8)
    assert peak_bytes(conv, (1, 3, 128, 128)) == 4 * peak_bytes(conv, (1, 3, 64, 64))


def test_restore_tiles_by_itself_past_the_memory_budget_with_the_same_output(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Issue 14: a 4000x3000 image through the face U-Net took over 12 GB untiled.
    model = tiny_sr(in_channels=3)
    x = torch.rand(3, 150, 140)
    whole = restore(x, model=model, memory_budget=None)
    with caplog.at_level(logging.INFO, logger="restorekit.inference"):
        auto = restore(x, model=model, overlap=16, memory_budget=2_000_000)
    assert "tiles of 64 px with a 16 px halo" in caplog.text
    assert float((auto - whole).abs().max()) < 1e-4  # the halo covers the receptive field
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="restorekit.inference"):
        restore(x, model=model)  # the default budget, half the RAM: no tiling
    assert "tiles of" not in caplog.text


def test_rgba_keeps_its_alpha() -> None:
    rng = np.random.default_rng(1)
    rgba = (rng.random((10, 12, 4)) * 255).astype(np.uint8)
    model = tiny_sr(in_channels=3)
    y = restore(rgba, model=model)
    assert y.shape == (20, 24, 4)
    alpha = torch.from_numpy(rgba[..., 3].astype(np.float64) / 255)[None, None]
    expected = imresize(alpha, 2).clamp(0, 1)[0, 0].numpy() * 255
    assert np.abs(y[..., 3] - expected).max() <= 0.5 + 1e-6
    colour = restore(rgba[..., :3], model=model)
    np.testing.assert_array_equal(y[..., :3], colour)  # alpha does not touch the colour
    # At scale 1 the alpha comes back exactly.
    same = restore(rgba, model=create_model("attention_unet", in_channels=3, widths=(4, 8)))
    np.testing.assert_array_equal(same[..., 3], rgba[..., 3])


def test_gray_model_on_rgb_restores_each_channel() -> None:
    model = tiny_sr()  # in_channels=1
    x = torch.rand(3, 11, 13)
    y = restore(x, model=model)
    assert y.shape == (3, 22, 26)
    for c in range(3):
        alone = restore(x[c : c + 1], model=model)
        assert torch.allclose(y[c : c + 1], alone, atol=1e-6), c


def test_rgb_model_on_gray_returns_the_channel_mean() -> None:
    model = tiny_sr(in_channels=3)
    gray = torch.rand(1, 11, 13)
    y = restore(gray, model=model)
    assert y.shape == (1, 22, 26)
    expected = restore(gray.expand(3, -1, -1).clone(), model=model).mean(0, keepdim=True)
    assert torch.allclose(y, expected, atol=1e-6)


def test_restore_loads_a_model_by_path(tmp_path: Path) -> None:
    model = tiny_sr()
    save_weights(tmp_path / "m.safetensors", model)
    x = torch.rand(1, 6, 7)
    by_path = restore(x, model=tmp_path / "m.safetensors")
    assert torch.allclose(by_path, restore(x, model=model), atol=1e-6)


@pytest.mark.parametrize(
    ("image", "kwargs", "match"),
    [
        (np.zeros((4, 4), dtype=np.int32), {}, "int32"),
        (np.zeros((4, 4, 5), dtype=np.uint8), {}, "C in 1..4"),
        (torch.full((1, 4, 4), 2.0), {}, r"\[0, 1\]"),
        (torch.zeros(1, 4, 4, dtype=torch.uint8), {}, "float"),
        (torch.zeros(1, 4, 4), {"tile": 0}, "tile"),
        ([[0.0]], {}, "list"),
    ],
)
def test_restore_refuses_bad_inputs(image: object, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        restore(image, model=tiny_sr(), **kwargs)


def test_a_baseline_name_loads_like_a_model_and_restores() -> None:
    from restorekit.baselines import create_baseline

    median = load_model("median", size=5)
    assert median.describe() == "median(size=5)" and not median.untrained
    x = torch.rand(1, 3, 20, 24)
    torch.testing.assert_close(
        restore(x, model="median"), restore(x, model=create_baseline("median"))
    )
    with pytest.raises(ValueError, match="has no weights"):
        load_model("median", weights="w.safetensors")


def test_a_baseline_keeps_the_alpha_of_an_rgba_image_aside() -> None:
    rgba = torch.rand(4, 18, 22)
    out = restore(rgba, model="median")
    assert out.shape == rgba.shape and torch.equal(out[3], rgba[3])
    torch.testing.assert_close(out[:3], restore(rgba[:3], model="median"))


def test_the_old_sr_edsr_name_loads_the_x2_weights() -> None:
    if "sr_edsr_x2" not in list_weights():
        pytest.skip("sr_edsr_x2 is not shipped")
    assert "sr_edsr" not in list_weights()  # listed once, under its new name
    assert load_model("sr_edsr").weights_file.endswith("sr_edsr_x2.safetensors")


def test_weights_saved_with_only_the_passed_arguments_still_load(tmp_path: Path) -> None:
    # Files written before checkpoints stored every resolved argument (issue 15).
    from safetensors.torch import save_file

    model = tiny_sr(in_channels=3)
    meta = {
        "model_name": '"srcnn"',
        "model_kwargs": '{"scale": 2, "filters": [8, 4], "in_channels": 3}',
    }
    save_file(dict(model.state_dict()), str(tmp_path / "old.safetensors"), metadata=meta)
    loaded = load_model(tmp_path / "old.safetensors")
    assert loaded.model_kwargs["kernel_sizes"] == (9, 5, 5)  # the defaults filled in
    assert same_weights(loaded, model)


def test_a_cards_protocol_is_cut_to_what_its_score_needs() -> None:
    from restorekit.api import _brief_protocol

    # The first Protocol line of sr_casr_x3.md as ship_weights wrote it (stop 21).
    line = (
        "Protocol: the test split of mri (26 of 213 images, its own split); gray; crop 3; "
        "data range 1; seed 0: Bicubic(scale=3); outputs clipped to [0,1], float (not "
        "quantised); LR by MATLAB imresize (antialiased bicubic, a = -0.5), "
        "restorekit.degrade.imresize; models in bf16 autocast, channels_last (auto: AMD EPYC "
        "has AVX512-BF16), baselines in fp32, NCHW (a classical baseline: always fp32)."
    )
    assert _brief_protocol(["| a | b |", line]) == (
        "the test split of mri (26 of 213 images, its own split); gray; crop 3; "
        "Bicubic(scale=3); models in bf16 autocast"
    )
    # Several seeds, and a degradation with '; ' inside its parentheses (ffa_light.md).
    haze = (
        "Protocol: all 1 images of motorcycle; RGB; crop 0; data range 1; seeds 0, 1, 2 (mean "
        "over seeds per image): Haze(depth_prior='random'; far-end transmission 0.09..1.00); "
        "outputs clipped to [0,1]; models in fp32, NCHW."
    )
    assert _brief_protocol([haze]) == (
        "all 1 images of motorcycle; RGB; crop 0; Haze(depth_prior='random'; far-end "
        "transmission 0.09..1.00); models in fp32"
    )
    assert _brief_protocol(["no protocol here"]) == ""
