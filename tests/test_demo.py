"""The main job (`make demo`): real bundled images, every preset, a reproducible table."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from restorekit.demo import run_demo


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    run_demo(out, seed=0)
    return out


def rows(out: Path) -> list[dict[str, str]]:
    with open(out / "table.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_demo_writes_images_and_tables(demo_dir: Path) -> None:
    table = rows(demo_dir)
    assert len(table) == len(list((demo_dir / "degraded").glob("*.png"))) == 16
    assert (demo_dir / "table.md").read_text().count("\n| ") == 16 + 1  # rows + header
    assert all(r["protocol"] for r in table)


def test_demo_scores_are_what_the_noise_levels_imply(demo_dir: Path) -> None:
    by_key = {(r["image"], r["degradation"]): float(r["psnr"]) for r in rows(demo_dir)}
    # sigma 0.04: 20*log10(1/0.04) = 27.96 dB before clipping; clipping only helps a little.
    assert 27.5 < by_key[("camera", "gaussian_low")] < 28.8
    # sigma 0.12 -> 18.42 dB before clipping.
    assert 18.0 < by_key[("camera", "gaussian_high")] < 19.6
    assert by_key[("astronaut", "bicubic_x2")] > by_key[("astronaut", "bicubic_x4")]


def test_demo_reproduces_exactly(demo_dir: Path, tmp_path: Path) -> None:
    run_demo(tmp_path, seed=0)
    assert (tmp_path / "table.csv").read_text() == (demo_dir / "table.csv").read_text()
