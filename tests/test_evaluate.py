"""Evaluation: methods x tasks, the protocol each table states, reproducibility, files."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torch import nn

from restorekit.data import Example
from restorekit.degrade import imresize
from restorekit.evaluate import (
    INPUT,
    Method,
    evaluate,
    folder_task,
    held_out,
    synthetic_task,
    tasks_for,
    validation_part,
)
from restorekit.io import write_image
from restorekit.report import write_report


class Identity(nn.Module):
    scale, size_multiple = 1, 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Bicubic(nn.Module):
    size_multiple = 1

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return imresize(x, self.scale)


@pytest.fixture(scope="module")
def photos() -> list[Example]:
    from skimage import data

    crops = [data.astronaut()[:60, :64], data.coffee()[100:160, 200:264], data.chelsea()[:60, :64]]
    return [
        Example(f"photo{i}", torch.from_numpy(c.copy()).permute(2, 0, 1).float() / 255)
        for i, c in enumerate(crops)
    ]


def test_identity_scores_equal_the_input_row_and_skimage(photos: list[Example]) -> None:
    task = synthetic_task("photos", photos, "gaussian_low", seed=3)
    results = evaluate([Method("identity", Identity())], [task])
    by = {(s.method, s.image): s for s in results.scores}
    for ex in photos:  # the identity restores nothing: it scores what the input scores
        same, ref = by[("identity", ex.name)], by[(INPUT, ex.name)]
        assert (same.psnr, same.ssim) == (ref.psnr, ref.ssim)
    # Independent reference: skimage on the same pair, RGB, data range 1.
    item = task.pairs[0]
    lq = item["lq"].clamp(0, 1).permute(1, 2, 0).double().numpy()
    gt = item["gt"].permute(1, 2, 0).double().numpy()
    want_psnr = peak_signal_noise_ratio(gt, lq, data_range=1.0)
    want_ssim = structural_similarity(
        gt, lq, data_range=1.0, channel_axis=2, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False,
    )  # fmt: skip
    got = by[(INPUT, photos[0].name)]
    assert got.psnr == pytest.approx(want_psnr, abs=1e-6)
    assert got.ssim == pytest.approx(want_ssim, abs=1e-5)
    assert results.protocols[("photos", "gaussian_low")].color == "RGB"


def test_sr_is_scored_on_y_with_crop_scale_and_only_at_its_scale(photos: list[Example]) -> None:
    tasks = [synthetic_task("photos", photos, f"bicubic_x{s}") for s in (2, 4)]
    bicubics = [Method("bicubic x2", Bicubic(2)), Method("bicubic x4", Bicubic(4))]
    results = evaluate(bicubics, tasks, precision="fp32")  # the reference is exact
    methods = {(s.degradation, s.method) for s in results.scores}
    assert methods == {("bicubic_x2", "bicubic x2"), ("bicubic_x4", "bicubic x4")}  # no INPUT
    protocol = results.protocols[("photos", "bicubic_x4")]
    assert (protocol.color, protocol.crop_border) == ("Y (MATLAB rgb2ycbcr, float)", 4)
    assert "MATLAB imresize" in protocol.describe()

    # Reference: MATLAB rgb2ycbcr luma and PSNR written out in numpy, crop 4.
    item = tasks[1].pairs[0]
    up = imresize(item["lq"][None].double(), 4)[0].clamp(0, 1).numpy()
    gt = item["gt"].double().numpy()

    def luma(x: np.ndarray) -> np.ndarray:
        return (16 + 65.481 * x[0] + 128.553 * x[1] + 24.966 * x[2])[4:-4, 4:-4] / 255

    mse = np.mean((luma(up) - luma(gt)) ** 2)
    score = next(s for s in results.scores if s.degradation == "bicubic_x4")
    assert score.psnr == pytest.approx(10 * math.log10(1 / mse), abs=1e-6)


def test_two_runs_give_identical_numbers(photos: list[Example], tmp_path: Path) -> None:
    def run(out: Path) -> str:
        tasks = [synthetic_task("photos", photos, d, seed=7) for d in ("salt_pepper", "haze")]
        evaluate([Method("identity", Identity())], tasks).write(out)
        return (out / "results.json").read_text()

    assert run(tmp_path / "a") == run(tmp_path / "b")
    other = evaluate([], [synthetic_task("photos", photos, "salt_pepper", seed=8)])
    first = json.loads(run(tmp_path / "a"))["images"][0]
    assert other.scores[0].psnr != first["psnr"]  # the seed matters


def test_written_tables_hold_the_protocol_and_per_image_values(
    photos: list[Example], tmp_path: Path
) -> None:
    task = synthetic_task("photos", photos, "gaussian_high", seed=0)
    results = evaluate([Method("identity", Identity(), note="no-op")], [task], limit=2)
    results.write(tmp_path)
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert len(rows) == 4 and {r["method"] for r in rows} == {INPUT, "identity"}
    summary = list(csv.DictReader((tmp_path / "summary.csv").open()))
    assert summary[1]["note"] == "no-op" and summary[1]["images"] == "2"
    assert "GaussianNoise(sigma_range=(0.12, 0.12), clip=True)" in summary[0]["protocol"]
    assert "seed 0" in summary[0]["protocol"] and "crop 0" in summary[0]["protocol"]
    mean = np.mean([float(r["psnr"]) for r in rows if r["method"] == "identity"])
    assert float(summary[1]["psnr"]) == pytest.approx(mean, abs=1e-5)
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["protocols"][0]["seed"] == 0 and len(data["images"]) == 4
    assert data["protocols"][0]["degradation"] == "gaussian_high"  # the preset's name
    assert data["protocols"][0]["degraded_by"].startswith("GaussianNoise(")


class RedOnly(nn.Module):
    """An RGB "model" whose output is its red channel in all three: it shows which
    channels the evaluation fed it."""

    scale, size_multiple, in_channels = 1, 1, 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[1] == 3
        return x[:, :1].expand(-1, 3, -1, -1) * 0.5


def test_gray_and_rgb_models_are_adapted_as_restore_does(photos: list[Example]) -> None:
    # An RGB model on gray: the gray image repeated to RGB, the output averaged back.
    task = synthetic_task("gray", photos, "gaussian_low", channels=1)
    results = evaluate([Method("rgb", RedOnly())], [task], keep=len(photos))
    for example in results.examples[("gray", "gaussian_low")]:
        assert example["rgb"].shape[1] == 1
        torch.testing.assert_close(example["rgb"], example["lq"] * 0.5)
    # A gray model on RGB: each channel restored alone.
    half = Identity()
    half.in_channels = 1
    half.forward = lambda x: x * 0.5  # type: ignore[method-assign]
    task = synthetic_task("photos", photos, "gaussian_low")
    results = evaluate([Method("gray", half)], [task], keep=1)
    example = results.examples[("photos", "gaussian_low")][0]
    torch.testing.assert_close(example["gray"], example["lq"].clamp(0, 1) * 0.5)


def test_a_channel_mismatch_names_the_method(photos: list[Example]) -> None:
    two = Identity()
    two.in_channels = 2
    with pytest.raises(ValueError, match="method 'two' takes 2-channel images"):
        evaluate([Method("two", two)], [synthetic_task("photos", photos, "gaussian_low")])
    with pytest.raises(ValueError, match="unique"):
        evaluate([Method("a", Identity()), Method("a", Identity())], [])


def test_folder_task_uses_the_prepared_pairs(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(0)
    for i in range(10):
        gt = torch.rand(1, 16, 16, generator=gen)
        write_image(tmp_path / "gt" / f"{i}.png", gt)
        write_image(tmp_path / "lq" / f"{i}.png", (gt + 0.05).clamp(0, 1))
    task = folder_task(tmp_path, split="test")
    results = evaluate([Method("identity", Identity())], [task])
    assert task.degradation == "as prepared" and len(task.pairs) == 1
    assert results.protocols[(tmp_path.name, "as prepared")].seed is None
    assert "fixed pairs" in results.summary()[0]["protocol"]


def test_held_out_prefers_the_sources_own_test_split() -> None:
    examples = [Example(str(i), torch.zeros(1, 2, 2)) for i in range(20)]
    assert len(held_out(examples)) == 2
    examples[5] = Example("5", torch.zeros(1, 2, 2), split="test")
    assert [e.name for e in held_out(examples)] == ["5"]


def test_the_val_split_is_what_training_validates_on() -> None:
    from restorekit.train.recipe import DataSpec, build_datasets

    _, val = build_datasets(DataSpec(source="skimage_photos", degradation="haze_light"), seed=0)
    (task,) = tasks_for("skimage_photos", ["haze_light"], split="val")
    names = sorted(p["name"] for p in task.pairs)
    assert names == sorted(e.name for e in val.examples)
    (test,) = tasks_for("skimage_photos", ["haze_light"], split="test")
    assert not set(names) & {p["name"] for p in test.pairs}
    assert "the validation split of skimage_photos" in task.images
    examples = [Example(str(i), torch.zeros(1, 2, 2)) for i in range(20)]
    examples[7] = Example("7", torch.zeros(1, 2, 2), split="val")
    assert [e.name for e in validation_part(examples)] == ["7"]  # a source's own split


def test_report_is_self_contained_and_links_its_figures(
    photos: list[Example], tmp_path: Path
) -> None:
    tasks = [synthetic_task("photos", photos, d) for d in ("gaussian_low", "gaussian_high")]
    tasks.append(synthetic_task("photos", photos, "bicubic_x2"))
    results = evaluate([Method("identity", Identity()), Method("bicubic", Bicubic(2))], tasks)
    md, page = write_report(results, tmp_path, title="T")
    text, html = md.read_text(), page.read_text()
    for link in re.findall(r"\]\((figures/[^)]+\.png)\)", text):
        assert (tmp_path / link).read_bytes().startswith(b"\x89PNG")
    # three comparison grids and one PSNR-per-degradation plot (photos has 3 degradations)
    assert len(list((tmp_path / "figures").glob("*.png"))) == 4
    assert "Protocol: Y (MATLAB rgb2ycbcr, float); crop 2" in text
    assert "| identity | 3 |" in text
    sources = re.findall(r"src='([^']*)'", html)
    assert len(sources) == 4 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "<td>bicubic</td>" in html and "http" not in html


def test_report_bolds_the_best_says_when_psnr_and_ssim_disagree_and_plots_only_lines(
    tmp_path: Path,
) -> None:
    from restorekit.evaluate import Protocol, Results, Score

    results = Results(notes={"a": "", "b": "", "one_level": ""})
    protocol = Protocol("gray", 0, 1.0, 0, "noise", None)
    for degradation in ("low", "high"):
        results.protocols[("faces", degradation)] = protocol
        for method, psnr, ssim in (("a", 30.0, 0.90), ("b", 29.0, 0.95)):
            for image in ("x", "y"):
                results.scores.append(
                    Score("faces", degradation, method, image, {"psnr": psnr, "ssim": ssim})
                )
    results.scores.append(Score("faces", "low", "one_level", "x", {"psnr": 10.0, "ssim": 0.1}))
    md, page = write_report(results, tmp_path)
    text = md.read_text()
    assert "| a | 2 | **30.00 ± 0.00** | 0.9000 ± 0.0000 |" in text
    assert "| b | 2 | 29.00 ± 0.00 | **0.9500 ± 0.0000** |" in text
    assert "a has the best PSNR but b the best SSIM" in text
    assert "<td><b>30.00 ± 0.00</b></td>" in page.read_text()
    from restorekit.report import _series

    rows = results.summary()
    assert [m for m, _, _ in _series(rows, ["low", "high"])] == ["a", "b"]  # not one_level


def test_several_seeds_average_per_image_and_give_the_standard_error(
    photos: list[Example],
) -> None:
    from restorekit.evaluate import tasks_for

    tasks = [synthetic_task("photos", photos, "gaussian_low", seed=s) for s in (0, 1, 2)]
    assert tasks_for("lfw_faces", ["gaussian_low"], seed=[3, 4])[1].seed == 4
    results = evaluate([], tasks, keep=1)
    (row,) = results.summary()
    assert (row["images"], row["seeds"]) == (3, 3)
    per_image = {}
    for s in results.scores:
        per_image.setdefault(s.image, []).append(s.psnr)
    means = np.array([np.mean(v) for v in per_image.values()])
    assert row["psnr"] == pytest.approx(means.mean(), abs=1e-9)
    assert row["psnr_se"] == pytest.approx(means.std(ddof=1) / np.sqrt(3), abs=1e-9)
    protocol = results.protocols[("photos", "gaussian_low")].describe()
    assert "seeds 0, 1, 2 (mean over seeds per image)" in protocol
    assert len(results.examples[("photos", "gaussian_low")]) == 1  # figures: first seed only
    # One image: no standard error to give.
    (single,) = evaluate([], [synthetic_task("p", photos[:1], "gaussian_low")]).summary()
    assert math.isnan(single["psnr_se"])


def test_progress_writes_no_carriage_returns_into_a_log(
    photos: list[Example], capsys: pytest.CaptureFixture[str]
) -> None:
    evaluate([], [synthetic_task("photos", photos, "gaussian_low")], progress=True)
    assert "\r" not in capsys.readouterr().err  # stderr is not a terminal here


def test_the_protocol_says_how_models_and_baselines_really_ran(photos: list[Example]) -> None:
    from restorekit.baselines import create_baseline
    from restorekit.evaluate import format_mean_se

    task = synthetic_task("photos", photos[:1], "gaussian_low")
    median = Method("median", create_baseline("median"))
    auto = evaluate([median], [task]).protocols[("photos", "gaussian_low")].describe()
    assert "baselines in fp32, NCHW (a classical baseline: always fp32)" in auto
    forced = evaluate([median], [task], precision="bf16").protocols[("photos", "gaussian_low")]
    assert "baselines in bf16 autocast" in forced.describe()  # explicit wins, and says so
    assert format_mean_se(33.3412, 0.1234, 2) == "33.34 ± 0.12"
    assert format_mean_se(33.3412, math.nan, 2) == "33.34"
    assert format_mean_se(math.inf, math.nan, 2) == "inf"


def test_the_protocol_names_a_model_that_ran_in_another_precision(
    photos: list[Example],
) -> None:
    # Weights shipped with auto_precision fp32 run in fp32 under `auto` where the others
    # take bf16: the table must say which model that was, not "models in fp32" unnamed.
    task = synthetic_task("photos", photos[:1], "gaussian_low", seed=0)
    plain, careful = Identity(), Identity()
    careful.auto_precision = "fp32"
    methods = [Method("a", plain), Method("b", Identity()), Method("careful", careful)]
    (row, *_) = evaluate(methods, [task], precision="auto").summary()
    assert "careful in fp32" in row["protocol"]  # whatever the others took on this CPU
    assert row["protocol"].count("models in") == 1
    (row, *_) = evaluate(methods, [task], precision="fp32").summary()
    assert "models in fp32" in row["protocol"] and "careful" not in row["protocol"]
