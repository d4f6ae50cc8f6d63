"""`restorekit eval`: models and baselines on data x degradations, tables and a report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from restorekit.cli import run
from restorekit.models import create_model
from restorekit.train.checkpoint import save_weights


@pytest.fixture
def faces(tmp_path: Path) -> Path:
    """Ten real gray crops (scikit-image's camera), enough for a 70/20/10 test split of 1."""
    from skimage import data

    folder = tmp_path / "faces"
    folder.mkdir()
    cam = data.camera()
    for i in range(10):
        Image.fromarray(cam[i * 40 : i * 40 + 32, 100:132]).save(folder / f"f{i}.png")
    return folder


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    net = create_model("attention_unet", in_channels=1, widths=(4, 8))
    path = tmp_path / "unet.safetensors"
    save_weights(path, net)
    return path


def test_eval_writes_tables_and_report_and_reproduces(
    faces: Path, weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["eval", "--data", str(faces), "--degradation", "salt_pepper",
            "--degradation", "gaussian_low", "--model", str(weights), "--baseline", "median",
            "--baseline", "gaussian:sigma=0.8", "--all-images"]  # fmt: skip
    assert run([*argv, "--out", str(tmp_path / "a")]) == 0
    printed = capsys.readouterr().out
    assert (
        "faces / salt_pepper  [all 10 images of faces; gray; crop 0; data range 1; seed 0: "
        in printed
    )
    assert "median(size=3)" in printed and "gaussian(sigma=0.8" in printed
    summary = json.loads((tmp_path / "a" / "results.json").read_text())["summary"]
    assert {r["method"] for r in summary} == {
        "degraded input", "unet", "median(size=3)", "gaussian(sigma=0.8, truncate=4.0)"
    }  # fmt: skip
    assert all(r["images"] == 10 for r in summary)
    assert next(r for r in summary if r["method"] == "median(size=3)")["note"] == (
        "classical baseline"
    )
    # the median beats the salt-and-pepper input by far (BENCHMARKS.md: 15.3 -> 29.1 dB)
    sp = {r["method"]: r["psnr"] for r in summary if r["degradation"] == "salt_pepper"}
    assert sp["median(size=3)"] > sp["degraded input"] + 8
    assert (tmp_path / "a" / "report.html").stat().st_size > 10_000

    assert run([*argv, "--out", str(tmp_path / "b"), "--no-report"]) == 0
    for name in ("results.json", "results.csv", "summary.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert not (tmp_path / "b" / "report.html").exists()


def test_a_users_folder_is_scored_whole_and_a_source_on_its_test_split(
    faces: Path, weights: Path, tmp_path: Path
) -> None:
    # Issue 14: a folder of a few images failed ("needs at least one image") when cut
    # down to the 10% test split; a user's own folder was never trained on.
    assert run(["eval", "--data", str(faces), "--model", str(weights), "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "results.json").read_text())["summary"]
    assert {r["images"] for r in summary} == {10}
    assert summary[0]["protocol"].startswith("all 10 images of faces; gray")
    assert summary[0]["degradation"] == "gaussian_25"  # photo folders' default preset
    argv = ["eval", "--data", str(faces), "--model", str(weights), "--split", "test"]
    assert run([*argv, "--out", str(tmp_path / "t")]) == 0
    summary = json.loads((tmp_path / "t" / "results.json").read_text())["summary"]
    assert {r["images"] for r in summary} == {1}  # the 10% test part of 10 images
    assert (
        "the test split of faces (1 of 10 images, the 70/20/10 split by seed 0)"
        in (summary[0]["protocol"])
    )
    argv = ["eval", "--data", "lfw_faces", "--baseline", "median", "--degradation", "salt_pepper"]
    assert run([*argv, "--out", str(tmp_path / "s")]) == 0
    summary = json.loads((tmp_path / "s" / "results.json").read_text())["summary"]
    assert {r["images"] for r in summary} == {10}  # a registered source: its test split


def test_weights_with_nan_are_refused_naming_the_file(
    faces: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    net = create_model("attention_unet", in_channels=1, widths=(4, 8))
    with torch.no_grad():
        net.head.weight.fill_(float("nan"))
    save_weights(tmp_path / "nan.safetensors", net)
    argv = ["eval", "--data", str(faces), "--model", str(tmp_path / "nan.safetensors")]
    assert run([*argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nan.safetensors: the weights hold NaN" in err[0]
    assert not (tmp_path / "o" / "results.json").exists()


def test_a_model_that_returns_nan_is_an_error_not_a_score(faces: Path) -> None:
    # Issue 14: such a model scored PSNR inf, SSIM inf, exit 0.
    from restorekit.evaluate import Method, NonFiniteOutputError, evaluate, tasks_for

    class Broken(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.full_like(x, float("nan"))

    tasks = tasks_for(str(faces), ["gaussian_low"])
    with pytest.raises(NonFiniteOutputError, match="method 'broken' gave NaN or infinite"):
        evaluate([Method("broken", Broken())], tasks)


def test_an_unreadable_image_is_skipped_and_counted(
    faces: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    (faces / "f3.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    Image.fromarray(np.full((2, 3), 128, np.uint8)).save(faces / "tiny.png")
    argv = ["eval", "--data", str(faces), "--baseline", "median", "--out", str(tmp_path / "o")]
    assert run(argv) == 0
    captured = capsys.readouterr()
    assert "skipped 1 unreadable: f3" in captured.out
    summary = json.loads((tmp_path / "o" / "results.json").read_text())
    row = next(r for r in summary["summary"] if r["method"] == "median(size=3)")
    assert row["images"] == 10 and row["skipped"] == 1  # 9 good + the tiny one; f3 skipped
    tiny = [s for s in summary["images"] if s["image"] == "tiny"]
    assert tiny and all(s["ssim"] != s["ssim"] for s in tiny)  # NaN: undefined
    assert "tiny is 2x3, too small after the crop for ssim: NaN" in caplog.text


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--baseline", "median:size"], "expected key=value"),
        (["--baseline", "sharpen"], "unknown baseline 'sharpen'"),
        (["--model", "no_such_model"], "no_such_model"),
        ([], "name at least one --model or --baseline"),
        (["--baseline", "median", "--data", "no_such_source"], "no_such_source"),
        (
            ["--baseline", "median", "--metric", "sharpness"],
            "--metric 'sharpness' is not one of: psnr, ssim, psnr_mask",
        ),
    ],
)
def test_eval_errors_are_one_line(
    faces: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    code = run(["eval", "--data", str(faces), "--out", str(tmp_path / "o"), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0]
    assert not (tmp_path / "o").exists()


def test_eval_scores_the_metrics_named(
    faces: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["eval", "--data", str(faces), "--baseline", "median", "--degradation",
            "gaussian_low", "--metric", "psnr", "--metric", "colour_cast", "--no-report",
            "--out", str(tmp_path / "o")]  # fmt: skip
    assert run(argv) == 0
    row = json.loads((tmp_path / "o" / "results.json").read_text())["summary"][0]
    assert "psnr" in row and "colour_cast" in row and "ssim" not in row
    assert "cast" in capsys.readouterr().out  # the printed table has its column


def test_eval_on_a_prepared_folder_refuses_a_degradation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for i in range(3):
        for sub in ("lq", "gt"):
            (tmp_path / "set" / sub).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(
                tmp_path / "set" / sub / f"{i}.png"
            )
    argv = [
        "eval",
        "--data",
        str(tmp_path / "set"),
        "--baseline",
        "median",
        "--out",
        str(tmp_path / "o"),
    ]
    assert run([*argv, "--degradation", "gaussian_low"]) == 2
    assert "holds prepared pairs" in capsys.readouterr().err
