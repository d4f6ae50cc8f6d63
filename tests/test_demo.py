"""The main job (`make demo`): the four systems and the baselines on bundled real images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from restorekit.demo import run_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("demo")
    run_demo(out, seed=0, quick=True)
    summary = json.loads((out / "results.json").read_text())["summary"]
    return out, {(r["dataset"], r["degradation"], r["method"]): r for r in summary}


def test_every_system_is_scored_with_a_model_and_a_baseline(demo: tuple[Path, dict]) -> None:
    _, rows = demo
    tasks = {(d, g) for d, g, _ in rows}
    assert tasks == {
        ("lfw_faces", "gaussian_low"), ("lfw_faces", "gaussian_high"),
        ("lfw_faces", "salt_pepper"), ("camera", "gaussian_15"), ("camera", "gaussian_25"),
        ("camera", "gaussian_50"), ("motorcycle", "haze_light"),
        ("motorcycle", "haze_dense"), ("mri", "bicubic_x2"),
        ("mri", "bicubic_x3"), ("mri", "bicubic_x4"), ("photos", "defect_noise"),
    }  # fmt: skip
    methods = {m for _, _, m in rows}
    for dataset in ("lfw_faces", "motorcycle", "mri", "photos"):  # the four systems
        notes = {
            r["note"] for (d, _, m), r in rows.items() if d == dataset and m != "degraded input"
        }
        assert "classical baseline" in notes, dataset
        assert notes - {"classical baseline"}, f"{dataset}: no model"  # shipped or untrained
    assert "median(size=3)" in methods and any(m.startswith("dcp(") for m in methods)
    assert {"bicubic(scale=2)", "bicubic(scale=3)", "bicubic(scale=4)"} <= methods
    # Every MRI scale has a shipped model and no untrained SR row (issue 12).
    for scale in (2, 3, 4):
        mri = {m for d, g, m in rows if d == "mri" and g == f"bicubic_x{scale}"}
        assert any(m.endswith(f"_x{scale}") for m in mri), mri
        assert not any("untrained" in m for m in mri), mri


def test_models_without_shipped_weights_say_so(demo: tuple[Path, dict]) -> None:
    from restorekit.api import list_weights

    out, rows = demo
    shipped = set(list_weights())
    for (_, _, method), row in rows.items():
        if "(untrained)" in method:
            assert row["note"] == "untrained: random init"
        elif row["note"].startswith("shipped weights"):
            assert method in shipped
    report = (out / "report.md").read_text()
    if any("(untrained)" in m for _, _, m in rows):
        assert "untrained networks (random weights)" in report


def test_the_denoiser_rows_use_the_shipped_weights(demo: tuple[Path, dict]) -> None:
    # Issue 10: the photo and defect rows show the shipped denoisers, not untrained ones.
    from restorekit.api import list_weights

    _, rows = demo
    shipped = set(list_weights())
    assert "photo_denoise" in shipped
    for dataset, model in (("camera", "photo_denoise"), ("photos", "defect_denoise"),
                           ("photos", "defect_denoise_mse")):  # fmt: skip
        if model in shipped:
            assert any(d == dataset and m == model for d, _, m in rows), model
            assert not any(m == f"{model} (untrained)" for _, _, m in rows), model


def test_the_baselines_do_what_the_literature_says(demo: tuple[Path, dict]) -> None:
    _, rows = demo

    def psnr(dataset: str, degradation: str, method: str) -> float:
        return rows[(dataset, degradation, method)]["psnr"]

    # Salt-and-pepper: the median is the classical answer (BENCHMARKS.md: +14 dB on Set12).
    sp_in = psnr("lfw_faces", "salt_pepper", "degraded input")
    assert psnr("lfw_faces", "salt_pepper", "median(size=3)") > sp_in + 10
    # Each noise level costs the input PSNR; sigma 15/25/50 on 8-bit scale.
    levels = [psnr("camera", f"gaussian_{s}", "degraded input") for s in (15, 25, 50)]
    assert levels == sorted(levels, reverse=True)
    assert abs(levels[1] - 20.17) < 0.8  # 20 log10(255/25) = 20.17 dB, unclipped
    dcp = next(m for d, _, m in rows if d == "motorcycle" and m.startswith("dcp("))
    dense_in = psnr("motorcycle", "haze_dense", "degraded input")
    assert psnr("motorcycle", "haze_dense", dcp) > dense_in + 1, (
        dense_in,
        psnr("motorcycle", "haze_dense", dcp),
    )


def test_the_report_holds_tables_figures_and_protocols(demo: tuple[Path, dict]) -> None:
    out, _ = demo
    html = (out / "report.html").read_text()
    md = (out / "report.md").read_text()
    assert html.count("<table>") == 12 and html.count("data:image/png;base64,") >= 12
    assert "Protocol: gray; crop 2; data range 1; seed 0: Bicubic(scale=2)" in md
    assert "MATLAB imresize" in md and "clip=True" in md
    assert len(list((out / "figures").glob("*.png"))) >= 10


def test_the_demo_refuses_at_once_naming_the_extra_when_a_package_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Issue 14: on a default install the demo failed four times in a row, the last after
    # about 3 minutes of work.
    import importlib.util

    from restorekit.cli import run

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pywt" else real(name, *a)
    )
    assert run(["demo", "--quick", "--out", str(tmp_path / "demo")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "PyWavelets is not installed" in err[0]
    assert "pip install 'restorekit[demo]'" in err[0]
    assert not (tmp_path / "demo").exists()  # nothing was done
