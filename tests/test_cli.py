"""The `restorekit` command: degrade and downsample, and how it reports user errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from restorekit.cli import run
from restorekit.degrade import imresize
from restorekit.io import read_image, read_image_info


def error_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if "error" in line]


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """Two real photo crops: an 8-bit RGB PNG and a 16-bit gray PNG."""
    from skimage import data

    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(data.astronaut()[:40, :48]).save(folder / "astro.png")
    gray16 = (data.camera()[:36, :44].astype(np.uint16) * 257 + 3).astype(np.uint16)
    Image.fromarray(gray16).save(folder / "camera16.png")
    return folder


def test_degrade_writes_every_image_at_its_bit_depth(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert (
        run(["degrade", str(photos), "--out", str(out), "--name", "gaussian_high", "--seed", "3"])
        == 0
    )
    assert read_image_info(out / "camera16.png").bit_depth == 16
    assert read_image_info(out / "astro.png").bit_depth == 8
    noisy, clean = read_image(out / "astro.png"), read_image(photos / "astro.png")
    assert noisy.shape == clean.shape
    # sigma 0.12 on [0, 1], clipped: the residual is noise of about that size.
    assert 0.08 < float((noisy - clean).std()) < 0.13


def test_degrade_is_seeded_per_file_name(photos: Path, tmp_path: Path) -> None:
    """Same seed, same output, whatever other files the folder holds; another seed differs."""
    run(["degrade", str(photos), "--out", str(tmp_path / "a"), "--seed", "1"])
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "astro.png").write_bytes((photos / "astro.png").read_bytes())
    run(["degrade", str(alone), "--out", str(tmp_path / "b"), "--seed", "1"])
    run(["degrade", str(alone), "--out", str(tmp_path / "c"), "--seed", "2"])
    a, b, c = (read_image(tmp_path / d / "astro.png") for d in "abc")
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_salt_pepper_writes_masks_matching_the_changes(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "sp"
    assert run(["degrade", str(photos), "--out", str(out), "--name", "salt_pepper"]) == 0
    mask = read_image(out / "masks" / "astro.png")
    assert mask.shape[0] == 1
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    assert 0.05 < float(mask.mean()) < 0.15


def test_bad_file_is_reported_and_skipped(
    photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (photos / "broken.png").write_bytes(b"not a png at all")
    out = tmp_path / "out"
    assert run(["degrade", str(photos), "--out", str(out)]) == 2
    lines = error_lines(capsys)
    assert len(lines) == 1
    assert "broken.png" in lines[0]
    assert sorted(p.name for p in out.glob("*.png")) == ["astro.png", "camera16.png"]


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["degrade", "{photos}", "--out", "{out}", "--name", "nope"], "nope"),
        (["degrade", "{tmp}/missing", "--out", "{out}"], "missing"),
        (["degrade", "{photos}", "--out", "{photos}"], "input folder"),
        (["downsample", "--hr-dir", "{photos}", "--lr-dir", "{out}", "--scale", "5"], "--scale"),
        (["downsample", "--hr-dir", "{tmp}/missing", "--lr-dir", "{out}"], "missing"),
        (["degrade", "{photos}"], "--out"),
        (["downsample", "--hr-dir", "{photos}", "--lr-dir", "{out}", "--scale", "x"], "scale"),
    ],
)
def test_user_errors_are_one_line_with_exit_code_2(
    argv: list[str],
    names: str,
    photos: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "out"
    argv = [a.format(photos=photos, out=out, tmp=tmp_path) for a in argv]
    before = sorted(photos.iterdir())
    assert run(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("restorekit: error:")
    assert names in err[0]
    assert not out.exists()
    assert sorted(photos.iterdir()) == before


def test_downsample_modcrops_and_matches_imresize(photos: Path, tmp_path: Path) -> None:
    lr_dir = tmp_path / "lr"
    assert (
        run(["downsample", "--hr-dir", str(photos), "--lr-dir", str(lr_dir), "--scale", "3"]) == 0
    )
    # 40x48 -> modcrop 39x48 -> 13x16; 36x44 -> 36x42 -> 12x14
    lr = read_image(lr_dir / "astro.png")
    assert lr.shape == (3, 13, 16)
    assert read_image(lr_dir / "camera16.png").shape == (1, 12, 14)
    assert read_image_info(lr_dir / "camera16.png").bit_depth == 16
    hr = read_image(photos / "astro.png")[None, :, :39, :48].double()
    expected = imresize(hr, 1 / 3).clamp(0, 1)[0]
    assert float((lr.double() - expected).abs().max()) <= 0.5 / 255 + 1e-9


def test_downsample_bicubic_up_and_gray(photos: Path, tmp_path: Path) -> None:
    lr_dir = tmp_path / "lr"
    argv = ["downsample", "--hr-dir", str(photos), "--lr-dir", str(lr_dir), "--scale", "4"]
    assert run([*argv, "--bicubic-up", "--gray"]) == 0
    up = read_image(lr_dir / "astro.png")
    assert up.shape == (1, 40, 48)  # back at the (modcropped) HR size, one channel


def test_help_is_fast_and_exits_zero() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from restorekit.cli import main; main(['--help'])"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0
    assert "degrade" in result.stdout
    assert "downsample" in result.stdout


def test_models_lists_every_model_with_its_cost(capsys: pytest.CaptureFixture[str]) -> None:
    from restorekit.models import list_models

    assert run(["models", "--size", "64"]) == 0
    out = capsys.readouterr().out
    assert "output about 64x64" in out
    for name in list_models():
        assert f"\n{name} " in out
    # attention_unet: 1,986,874 parameters (derived layer by layer in test_models_unets.py)
    assert "1,986,874" in out


def test_weights_lists_each_shipped_model_with_its_task_and_score(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from restorekit.api import list_weights

    assert run(["weights"]) == 0
    out = capsys.readouterr().out
    for name in list_weights():
        block = out.split(f"{name}\n", 1)[1].split("\n\n")[0]
        assert "  task:   " in block and "  test:   " in block, name
        # under its score, how it was measured: images, crop, degradation, precision
        assert "; crop " in block.split("  test:   ")[1] and "models in " in block, name
    # A face model's card: its domain and its score beside the best classical baseline.
    if "face_attention_unet_low" in list_weights():
        block = out.split("face_attention_unet_low\n", 1)[1]
        assert "domain: 48x48 gray faces" in block.split("\n")[1]
        assert " dB / 0.9" in block and "(best classical: bm3d " in block
        # Its self-ensemble row is its own score, never mistaken for a classical baseline.
        assert " with --ensemble (best classical: bm3d " in block.split("\n")[2]
        assert block.split("\n")[3].strip().startswith("the test split of lfw_faces")
    if "sr_casr_x3" in list_weights():  # the weights' own scale, not the recipe's options
        block = out.split("sr_casr_x3\n", 1)[1]
        assert block.split("\n")[0].endswith("At x3.") and "scale=" not in block.split("\n")[0]


def test_a_card_score_is_read_from_its_first_results_table_only() -> None:
    from restorekit.api import _card_score

    card = """# m

| method | images | PSNR | SSIM |
|---|---|---|---|
| degraded input | 2 | 20.00 ± 1.00 | 0.5000 ± 0.1 |
| m | 2 | 30.00 ± 1.00 | 0.9000 ± 0.1 |
| bm3d(sigma=None) | 2 | 29.00 ± 1.00 | 0.8800 ± 0.1 |

| sigma (of 1) | triplets | gap whole | gap in mask |
|---|---|---|---|
| 0.00-0.06 | 10 | -0.05 | +0.53 |
""".splitlines()
    assert _card_score("m", card) == "30.00 dB / 0.9000 (best classical: bm3d 29.00 / 0.8800)"
    assert _card_score("m", card[4:]) == "see its card"  # no results table: no score


def test_degrade_takes_an_operator_with_parameters(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "p"
    args = ["degrade", str(photos), "--out", str(out), "--name", "gaussian"]
    assert run([*args, "--param", "sigma=0.2", "--param", "clip=false"]) == 0
    noisy, clean = read_image(out / "astro.png"), read_image(photos / "astro.png")
    assert 0.15 < float((noisy - clean).std()) < 0.25  # sigma 0.2, not the default 0.04
    assert run([*args, "--param", "sigmaa=0.2", "--overwrite"]) == 2  # named, one line


def test_degradations_lists_operators_with_parameters_and_presets(capsys) -> None:
    assert run(["degradations"]) == 0
    text = capsys.readouterr().out
    assert "gaussian" in text and "sigma" in text and "gaussian_low" in text
    assert "GaussianNoise(sigma_range=(0.04, 0.04), clip=True)" in text
