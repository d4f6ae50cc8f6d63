"""Inference: tiled forward equals untiled, bounded tile sizes, self-ensemble, bf16 path."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from restorekit.inference import restore_tensor, self_ensemble, tiled_forward


class ConvNet(nn.Module):
    """Three 3x3 convs (receptive radius 3) and an optional pixel-shuffle upscale."""

    def __init__(self, scale: int = 1, channels: int = 3) -> None:
        super().__init__()
        self.scale, self.size_multiple = scale, 1
        self.body = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, channels * scale * scale, 3, padding=1), nn.PixelShuffle(scale),
        )  # fmt: skip
        self.largest_input = (0, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        self.largest_input = max(self.largest_input, (h, w))
        return self.body(x)


@pytest.mark.parametrize("scale", [1, 2, 3])
@pytest.mark.parametrize(("tile", "overlap"), [(16, 6), (24, 8), (7, 10)])
def test_tiled_equals_untiled_when_the_halo_covers_the_receptive_field(
    scale: int, tile: int, overlap: int
) -> None:
    torch.manual_seed(0)
    model = ConvNet(scale).eval()
    x = torch.rand(2, 3, 37, 53)
    with torch.no_grad():
        full, tiled = model(x), tiled_forward(model, x, tile=tile, overlap=overlap)
    assert tiled.shape == full.shape
    assert (tiled - full).abs().max() < 1e-4


def test_tiles_bound_the_input_the_model_sees() -> None:
    model = ConvNet().eval()
    with torch.no_grad():
        tiled_forward(model, torch.rand(1, 3, 200, 300), tile=32, overlap=8)
    assert max(model.largest_input) <= 32 + 2 * 8


def test_a_too_small_halo_differs_only_near_the_seams() -> None:
    torch.manual_seed(0)
    model = ConvNet().eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        err = (tiled_forward(model, x, tile=16, overlap=0) - model(x)).abs()[0].amax(0)
    assert err[:, 16:].amax() > 1e-4 or err[16:, :].amax() > 1e-4  # context was cut
    assert err[2:13, 2:13].amax() < 1e-6  # far from every seam it is exact


def test_size_multiple_rounds_tiles_up() -> None:
    model = ConvNet()
    model.size_multiple = 8
    with torch.no_grad():
        tiled_forward(model.eval(), torch.rand(1, 3, 40, 40), tile=10, overlap=3)
    # tile 10 -> 16 and halo 3 -> 8: windows [0,24), [8,40), [24,40) start on multiples of 8
    assert model.largest_input == (32, 32)


def test_self_ensemble_of_an_equivariant_model_is_the_model() -> None:
    x = torch.rand(1, 3, 9, 11)
    double = lambda t: 2 * t  # noqa: E731 - commutes with every flip and rotation
    torch.testing.assert_close(self_ensemble(double, x), 2 * x)


def test_self_ensemble_averages_eight_transforms() -> None:
    torch.manual_seed(0)
    model = ConvNet().eval()
    x = torch.rand(1, 3, 12, 10)
    with torch.no_grad():
        ens = self_ensemble(model, x)
        flipped = model(x.flip(-1)).flip(-1)
    assert ens.shape == x.shape
    assert not torch.allclose(ens, model(x).detach())
    assert not torch.allclose(flipped, model(x).detach())


def test_a_mirror_only_model_is_ensembled_over_its_mirror_alone(tmp_path) -> None:
    from restorekit.api import load_model
    from restorekit.evaluate import Method, evaluate, synthetic_task
    from restorekit.models import create_model
    from restorekit.train.checkpoint import save_weights

    torch.manual_seed(0)
    model = ConvNet().eval()
    x = torch.rand(1, 3, 12, 10)
    with torch.no_grad():
        mirror = (model(x) + model(x.flip(-1)).flip(-1)) / 2
        model.ensemble_group = "hflip"
        torch.testing.assert_close(restore_tensor(model, x, ensemble=True, precision="fp32"),
                                   mirror.clamp(0, 1))  # fmt: skip
    with pytest.raises(ValueError, match="ensemble group must be one of"):
        self_ensemble(model, x, group="rot90")
    # Weights trained with data.augment hflip say so in their metadata; load_model reads it.
    net = create_model("attention_unet", in_channels=1)
    save_weights(tmp_path / "faces.safetensors", net, augment="hflip")
    save_weights(tmp_path / "photos.safetensors", net)
    assert load_model(tmp_path / "faces.safetensors").ensemble_group == "hflip"
    assert load_model(tmp_path / "photos.safetensors").ensemble_group == "dihedral"
    # evaluate scores a Method with ensemble=True through the same path.
    gray = ConvNet(channels=1).eval()
    gray.in_channels = 1
    task = synthetic_task("t", [torch.rand(1, 16, 16)], "gaussian_low", seed=0)
    rows = evaluate([Method("plain", gray), Method("ens", gray, ensemble=True)], [task],
                    precision="fp32").summary()  # fmt: skip
    psnr = {r["method"]: r["psnr"] for r in rows}
    assert psnr["plain"] != psnr["ens"]


def test_restore_tensor_clips_and_runs_in_bf16() -> None:
    torch.manual_seed(0)
    model = ConvNet(scale=2)
    x = torch.rand(1, 3, 20, 24)
    fp32 = restore_tensor(model, x, tile=8, overlap=6, precision="fp32")
    bf16 = restore_tensor(model, x, tile=8, overlap=6, precision="bf16")
    assert fp32.shape == bf16.shape == (1, 3, 40, 48)
    assert fp32.min() >= 0 and fp32.max() <= 1 and bf16.dtype == torch.float32
    assert (fp32 - bf16).abs().mean() < 0.02  # bf16 keeps about 3 significant digits
    assert not torch.equal(fp32, bf16)  # bf16 really ran
    # Memory format changes the layout, not the numbers (up to rounding).
    cl = restore_tensor(model, x, precision="fp32", memory_format="channels_last")
    nchw = restore_tensor(model, x, precision="fp32", memory_format="contiguous")
    assert torch.allclose(cl, nchw, atol=1e-6)


def test_tiles_report_progress() -> None:
    model = ConvNet(scale=1)
    seen: list[tuple[int, int]] = []
    restore_tensor(
        model, torch.rand(1, 3, 20, 24), tile=8, progress=lambda d, t: seen.append((d, t))
    )
    assert seen == [(i, 9) for i in range(1, 10)]  # 3 x 3 tiles


def test_bad_tile_arguments() -> None:
    with pytest.raises(ValueError, match="tile must be positive"):
        tiled_forward(ConvNet(), torch.rand(1, 3, 8, 8), tile=0, overlap=2)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("srcnn", {"scale": 2}), ("edsr_baseline", {"scale": 3, "in_channels": 1, "n_blocks": 2})],
)
def test_registered_sr_models_tile_exactly_on_a_real_image(name: str, kwargs: dict) -> None:
    # Receptive radii in LR pixels: SRCNN 9-5-5 on a bicubic upscale is under 6, EDSR with
    # 2 blocks about 8; overlap 24 gives every output pixel at least 12 of context.
    from skimage import data

    from restorekit.models import create_model

    torch.manual_seed(0)
    model = create_model(name, **kwargs).eval()
    x = torch.as_tensor(data.camera()[100:161, 150:227], dtype=torch.float32)[None, None] / 255
    with torch.no_grad():
        full = model(x)
        tiled = tiled_forward(model, x, tile=24, overlap=24)
    assert tiled.shape == full.shape
    assert (tiled - full).abs().max() < 1e-4
