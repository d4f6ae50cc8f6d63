"""The shipped photo denoiser on photos it never trained on (issue 10): `restore` on a
folder of colour and gray photos of odd sizes, and one network for every noise level.

Crops of the held-out sklearn photo (china) and camera (the validation split) keep the
test quick; the full tables, BM3D and NLM included, are in the model card. The bounds are
the shipped weights' measured gains less a margin (session 13: china 3.2 / 4.8 / 6.8 dB
and camera 6.2 / 7.9 / 10.4 dB at sigma 15 / 25 / 50 unclipped; level with NLM, below
BM3D, as the card says).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from restorekit.api import list_weights, load_model
from restorekit.cli import run
from restorekit.data import load_examples
from restorekit.degrade import create_degradation
from restorekit.inference import restore_channels
from restorekit.io import read_image
from restorekit.metrics import psnr, psnr_masked

photo_shipped = pytest.mark.skipif("photo_denoise" not in list_weights(), reason="not shipped")

# In-mask dB over the plain-MSE twin, mean of the triplets below: the shipped weights
# measure +1.09 (whole image -0.06) on these two crops, +0.82 on the card's 19 held-out
# photos; issue 10 asks for 1.0.
DEFECT_GAIN = 0.8


def _clean() -> dict[str, torch.Tensor]:
    from skimage import data

    (china,) = [e.image for e in load_examples("sklearn_photos")[1] if e.name == "china"]
    camera = torch.from_numpy(data.camera()).float()[None] / 255
    return {"china": china[:, 101:238, 203:384], "camera": camera[:, 200:323, 150:341]}


def _noisy(clean: torch.Tensor, preset: str, seed: int = 0) -> torch.Tensor:
    op = create_degradation(preset)
    return op(clean[None], generator=torch.Generator().manual_seed(seed)).lq[0]


@photo_shipped
def test_restore_denoises_a_folder_of_colour_and_gray_photos(tmp_path: Path) -> None:
    folder, out = tmp_path / "my_photos", tmp_path / "clean"
    folder.mkdir()
    clean = _clean()
    for name, image in clean.items():
        noisy = _noisy(image, "gaussian_25_8bit")
        array = np.round(noisy.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        Image.fromarray(array[..., 0] if array.shape[2] == 1 else array).save(
            folder / f"{name}.png"
        )
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert run(["restore", str(folder), "--model", "photo_denoise", "--out", str(out)]) == 0
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    for name, image in clean.items():
        noisy, restored = read_image(folder / f"{name}.png"), read_image(out / f"{name}.png")
        assert restored.shape == image.shape  # gray stays gray, odd sizes kept
        gain = float(psnr(restored[None], image[None]) - psnr(noisy[None], image[None]))
        assert gain > 4.0, (name, gain)


@photo_shipped
@pytest.mark.parametrize(("sigma", "least"), [(15, 2.7), (25, 4.2), (50, 6.0)])
def test_one_network_denoises_every_level(sigma: int, least: float) -> None:
    net = load_model("photo_denoise")
    for name, image in _clean().items():
        noisy = _noisy(image, f"gaussian_{sigma}")
        gain = float(psnr(restore_channels(net, noisy[None]), image[None])
                     - psnr(noisy[None].clamp(0, 1), image[None]))  # fmt: skip
        assert gain > least, (name, sigma, gain)


def test_the_masked_loss_keeps_more_of_the_defects_than_plain_mse() -> None:
    masked, plain = load_model("defect_denoise"), load_model("defect_denoise_mse")
    op = create_degradation("defect_noise")
    gains = []
    for image in _clean().values():
        for seed in range(6):
            rgb = image.expand(3, -1, -1)[None]
            out = op(rgb, generator=torch.Generator().manual_seed(seed))
            a, b = restore_channels(masked, out.lq), restore_channels(plain, out.lq)
            gains.append(float(psnr_masked(a, out.gt, out.mask) - psnr_masked(b, out.gt, out.mask)))
    assert sum(gains) / len(gains) > DEFECT_GAIN, gains
