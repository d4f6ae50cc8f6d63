"""`restorekit restore`: folders and files in, restored images out, inputs never touched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from restorekit.api import restore
from restorekit.cli import run
from restorekit.io import read_image, read_image_info
from restorekit.models import create_model
from restorekit.train.checkpoint import save_weights


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("restorekit: error:")]


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """Real photo crops: 8-bit RGB, 16-bit gray and 8-bit RGBA PNGs."""
    from skimage import data

    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(data.astronaut()[:20, :24]).save(folder / "astro.png")
    gray16 = (data.camera()[:18, :22].astype(np.uint16) * 257 + 3).astype(np.uint16)
    Image.fromarray(gray16).save(folder / "camera16.png")
    rgba = np.dstack([data.coffee()[:16, :14], np.full((16, 14), 77, np.uint8)])
    Image.fromarray(rgba).save(folder / "coffee_rgba.png")
    return folder


@pytest.fixture
def weights(tiny_sr_weights: Path) -> Path:
    return tiny_sr_weights


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_restores_a_folder_with_one_corrupt_file(
    photos: Path, weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (photos / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    before = snapshot(photos)
    out = tmp_path / "out"
    assert run(["restore", str(photos), "--model", str(weights), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    errors = error_lines(captured.err)
    assert len(errors) == 1, errors
    assert "broken.png" in errors[0]
    assert sorted(p.name for p in out.iterdir()) == ["astro.png", "camera16.png", "coffee_rgba.png"]
    summary = captured.out.strip().splitlines()[-1]
    assert "restored 3 of 4 images" in summary
    assert "srcnn" in summary
    assert str(weights) in summary
    assert "no tiling" in summary
    assert "ensemble off" in summary
    assert snapshot(photos) == before
    # Each output is the API's restoration of its input, quantised to its bit depth.
    astro = read_image(out / "astro.png")
    assert astro.shape == (3, 40, 48)
    expected = restore(photos / "astro.png", model=weights)
    assert float((astro - expected).abs().max()) <= 0.5 / 255 + 1e-6
    coffee = read_image(out / "coffee_rgba.png")
    assert coffee.shape == (4, 32, 28)
    assert torch.allclose(coffee[3], torch.full((32, 28), 77 / 255))  # alpha passed through


def test_keeps_16_bit_as_16_bit(photos: Path, weights: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = ["restore", str(photos / "camera16.png"), str(photos / "astro.png")]
    assert run([*argv, "--model", str(weights), "--out", str(out), "--suffix", "_x2"]) == 0
    info = read_image_info(out / "camera16_x2.png")
    assert (info.bit_depth, info.channels, info.height, info.width) == (16, 1, 36, 44)
    assert read_image_info(out / "astro_x2.png").bit_depth == 8
    restored = read_image(out / "camera16_x2.png")
    expected = restore(photos / "camera16.png", model=weights)
    assert float((restored - expected).abs().max()) <= 0.5 / 65535 + 1e-6


def test_tile_and_ensemble_settings_are_used_and_reported(
    photos: Path, weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    small = tmp_path / "small.png"
    Image.open(photos / "astro.png").crop((0, 0, 20, 10)).save(small)  # two 10x10 tiles
    out = tmp_path / "out"
    argv = ["restore", str(small), "--model", str(weights), "--out", str(out)]
    assert run([*argv, "--tile", "10", "--overlap", "4", "--ensemble"]) == 0
    assert "tile 10, overlap 4, ensemble on" in capsys.readouterr().out
    expected = restore(small, model=weights, tile=10, overlap=4, ensemble=True)
    assert float((read_image(out / "small.png") - expected).abs().max()) <= 0.5 / 255 + 1e-6
    assert float((restore(small, model=weights) - expected).abs().max()) > 1 / 255  # not a no-op


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["{photos}", "--model", "{w}", "--out", "{photos}"], "astro.png would replace the input"),
        (["{photos}", "--model", "no_such_model", "--out", "{out}"], "no_such_model"),
        (["{photos}", "--model", "{tmp}/nope.safetensors", "--out", "{out}"], "nope.safetensors"),
        (["{photos}", "--model", "srcnn", "--weights", "{tmp}/gone.pth", "--out", "{out}"], "gone"),
        (["{photos}", "--model", "{w}", "--weights", "{w}", "--out", "{out}"], "weights="),
        (["{photos}", "--model", "{w}", "--out", "{out}", "--tile", "0"], "--tile 0"),
        (["{photos}", "{tmp}/absent.png", "--model", "{w}", "--out", "{out}"], "absent.png"),
        (["{photos}", "--out", "{out}"], "--model"),
    ],
)
def test_user_errors_are_one_line_and_write_nothing(
    argv: list[str],
    names: str,
    photos: Path,
    weights: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "out"
    argv = [a.format(photos=photos, out=out, tmp=tmp_path, w=weights) for a in argv]
    before = snapshot(photos)
    assert run(["restore", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("restorekit: error:")
    assert names in err[0]
    assert not out.exists()
    assert snapshot(photos) == before


def test_an_output_over_an_explicit_input_file_is_refused(
    photos: Path, weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Out elsewhere, but one input file lives where its own output would go."""
    other = photos.parent / "other"
    other.mkdir()
    (other / "astro.png").write_bytes((photos / "astro.png").read_bytes())
    before = snapshot(other)
    argv = ["restore", str(other / "astro.png"), "--model", str(weights), "--out", str(other)]
    assert run(argv) == 2
    assert "never overwritten" in capsys.readouterr().err
    assert snapshot(other) == before
    # With a suffix the output is a new file beside the input, which stays as it was.
    assert run([*argv, "--suffix", "_sr"]) == 0
    assert snapshot(other)["astro.png"] == before["astro.png"]
    assert read_image(other / "astro_sr.png").shape == (3, 40, 48)


def test_two_inputs_with_one_output_name_are_refused(
    photos: Path, weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Image.open(photos / "astro.png").save(photos / "astro.bmp")
    out = tmp_path / "out"
    assert run(["restore", str(photos), "--model", str(weights), "--out", str(out)]) == 2
    assert "both be written to" in capsys.readouterr().err
    assert not out.exists()


def test_tiled_restore_reports_tiles_and_the_precision_in_plain_lines(
    photos: Path, weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["restore", str(photos / "astro.png"), "--model", str(weights), "--out",
            str(tmp_path / "out"), "--tile", "5", "--overlap", "2",
            "--precision", "fp32"]  # fmt: skip
    assert run(argv) == 0
    captured = capsys.readouterr()
    lines = [ln for ln in captured.err.splitlines() if ": tile " in ln]
    assert lines[-1] == "astro.png: tile 20/20" and len(lines) == 10  # 4 x 5 tiles, every 2nd
    assert "\r" not in captured.err
    assert "fp32, " in captured.out  # the summary says how it ran
    assert run([*argv[:-2], "--precision", "fp16"]) == 2
    assert "precision must be one of auto, fp32, bf16" in capsys.readouterr().err


def test_a_model_far_from_its_domain_says_so_once_and_still_runs(
    photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from restorekit.api import load_model

    torch.manual_seed(0)
    model = create_model("srcnn", scale=2, filters=(8, 4))
    file = tmp_path / "faces.safetensors"
    domain = {"description": "8x8 gray faces", "size": 8, "channels": 1}
    save_weights(file, model, domain=domain)
    assert load_model(file).domain == domain
    argv = ["restore", str(photos), "--model", str(file), "--out", str(tmp_path / "out")]
    assert run(argv) == 0
    notes = [ln for ln in capsys.readouterr().err.splitlines() if "restorekit: note:" in ln]
    assert len(notes) == 1  # once per run, for the first image outside the domain
    assert "trained on 8x8 gray faces; this image is 24x20 colour" in notes[0]
    assert len(list((tmp_path / "out").iterdir())) == 3  # every image still restored


@pytest.mark.parametrize(
    ("device", "message"),
    [("bogus", "unknown device 'bogus'"), ("cuda", "no CUDA device here"), ("cuda:7", "CUDA")],
)
def test_a_device_this_machine_lacks_is_one_line_and_exit_2(
    device: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if device.startswith("cuda") and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    image = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(image)
    assert run(["restore", str(image), "--model", "median", "--out", str(tmp_path / "o"),
                "--device", device]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "o").exists()
