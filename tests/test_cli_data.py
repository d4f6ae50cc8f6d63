"""`restorekit data list` and `restorekit data prepare`: ready folders that open_dataset reads."""

from __future__ import annotations

import csv as csv_module
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from restorekit.cli import run
from restorekit.data import SyntheticPairs, get_source, open_dataset, read_fer2013
from restorekit.io import read_image, read_image_info, write_image


def test_list_shows_every_source_with_size_and_availability(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESTOREKIT_WALLPAPERS", str(tmp_path))  # none there
    assert run(["data", "list"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line}
    assert "100 gray 48x48" in lines["lfw_faces"] and "available" in lines["lfw_faces"]
    assert "13 RGB/gray" in lines["skimage_photos"]
    assert "1 RGB 500x741" in lines["motorcycle"]
    assert "apt-get install plasma-workspace-wallpapers" in lines["wallpapers"]
    assert lines["mni152"].split()[1] == "mri"


def test_prepare_paired_matches_the_on_the_fly_dataset(tmp_path: Path) -> None:
    out = tmp_path / "faces"
    argv = ["data", "prepare", "lfw_faces", "--out", str(out), "--limit", "10", "--seed", "4"]
    assert run(argv) == 0
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["layout"] == "paired" and meta["count"] == 10
    assert meta["degradation"] == "gaussian_low" and meta["seed"] == 4  # the face default
    every = sorted(name for part in meta["splits"].values() for name in part)
    assert every == [f"lfw_{i:03d}" for i in range(10)]
    assert [len(meta["splits"][s]) for s in ("train", "val", "test")] == [7, 2, 1]
    # The written pair is item i of SyntheticPairs (epoch 0), rounded to 8 bits.
    item = SyntheticPairs(get_source("lfw_faces").load()[:10], "gaussian_low", seed=4)[3]
    lq = read_image(out / "lq" / "lfw_003.png")
    assert torch.allclose(lq, item["lq"].clamp(0, 1), atol=0.5 / 255 + 1e-6)
    ds = open_dataset(out, split="val")
    assert [p.name for p in ds.pairs] == meta["splits"]["val"]
    assert ds[0]["lq"].shape == (1, 48, 48)


def test_prepare_triplets_for_masked_degradations(tmp_path: Path) -> None:
    out = tmp_path / "sp"
    assert run(["data", "prepare", "lfw_faces", "--out", str(out), "--limit", "3",
                "--degradation", "salt_pepper"]) == 0  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == ["dataset.json", "degraded", "gt", "mask"]
    mask = read_image(out / "mask" / "lfw_000.png")
    assert set(mask.unique().tolist()) <= {0.0, 1.0} and 0.03 < float(mask.mean()) < 0.2
    item = open_dataset(out)[0]
    changed = (item["lq"] != item["gt"]).any(0, keepdim=True)
    assert torch.equal(changed, changed & (item["mask"] > 0))


def test_prepare_super_resolution_modcrops_gt_at_16_bits(tmp_path: Path) -> None:
    """MRI slices: 16-bit PNG, gt a multiple of the scale, lq exactly gt / scale."""
    out = tmp_path / "mr"
    assert run(["data", "prepare", "dicom_mr", "--out", str(out), "--degradation", "bicubic_x3",
                "--limit", "3"]) == 0  # fmt: skip
    gt, lq = (
        read_image_info(out / "gt" / "MR2_UNCR.png"),
        read_image_info(out / "lq" / "MR2_UNCR.png"),
    )
    assert (gt.height, gt.width, gt.bit_depth) == (1023, 1023, 16)
    assert (lq.height, lq.width, lq.bit_depth) == (341, 341, 16)
    assert json.loads((out / "dataset.json").read_text())["scale"] == 3


def test_prepare_crop_and_haze_with_real_depth(tmp_path: Path) -> None:
    out = tmp_path / "haze"
    assert run(["data", "prepare", "motorcycle", "--out", str(out), "--crop", "64"]) == 0
    gt, lq = read_image(out / "gt" / "motorcycle.png"), read_image(out / "lq" / "motorcycle.png")
    assert gt.shape == lq.shape == (3, 64, 64)
    assert float((lq - gt).abs().mean()) > 0.02  # hazed
    assert json.loads((out / "dataset.json").read_text())["degradation"] == "haze"


def fer_csv(path: Path) -> Path:
    rows = ["emotion,pixels,Usage"]
    for i, usage in enumerate(["Training"] * 3 + ["PublicTest", "PrivateTest"]):
        pixels = np.random.default_rng(i).integers(0, 256, 2304)
        rows.append(f"{i},{' '.join(map(str, pixels))},{usage}")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_prepare_from_users_fer2013_keeps_its_usage_split(tmp_path: Path) -> None:
    csv = fer_csv(tmp_path / "fer2013.csv")
    out = tmp_path / "fer"
    assert run(["data", "prepare", str(csv), "--out", str(out)]) == 0
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["kind"] == "face" and meta["degradation"] == "gaussian_low"
    assert meta["splits"] == {
        "train": ["fer_00000", "fer_00001", "fer_00002"],
        "val": ["fer_00003"],
        "test": ["fer_00004"],
    }
    gt = read_image(out / "gt" / "fer_00001.png")
    assert torch.equal(gt, read_fer2013(csv)[1].image)  # 8-bit faces are written exactly


def test_prepare_from_fastmri_h5(tmp_path: Path) -> None:
    import h5py

    with h5py.File(tmp_path / "file1.h5", "w") as f:
        f["reconstruction_rss"] = np.random.default_rng(0).random((3, 16, 12)).astype("f4")
    out = tmp_path / "knee"
    assert run(["data", "prepare", str(tmp_path / "file1.h5"), "--out", str(out)]) == 0
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["kind"] == "mri" and meta["degradation"] == "bicubic_x2" and meta["count"] == 3
    assert read_image_info(out / "lq" / "file1_s002.png").height == 8


def test_prepare_refuses_non_empty_and_force_replaces_only_its_own(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    argv = ["data", "prepare", "lfw_faces", "--out", str(out), "--limit", "2"]
    assert run(argv) == 2
    assert run([*argv, "--force"]) == 2  # no dataset.json: not ours to replace
    assert (out / "notes.txt").read_text() == "mine"
    fresh = tmp_path / "fresh"
    assert run(["data", "prepare", "lfw_faces", "--out", str(fresh), "--limit", "3"]) == 0
    (fresh / "notes.txt").write_text("kept")
    assert run(["data", "prepare", "lfw_faces", "--out", str(fresh), "--limit", "2"]) == 2
    assert (
        run(["data", "prepare", "lfw_faces", "--out", str(fresh), "--limit", "2", "--force"]) == 0
    )
    assert sorted(p.name for p in (fresh / "gt").iterdir()) == ["lfw_000.png", "lfw_001.png"]
    assert (fresh / "notes.txt").read_text() == "kept"
    assert json.loads((fresh / "dataset.json").read_text())["count"] == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["nope"], "'nope' is neither a data source"),
        (["lfw_faces", "--degradation", "blur"], "unknown degradation 'blur'"),
        (["wallpapers"], "apt-get install plasma-workspace-wallpapers"),
        (["lfw_faces", "--crop", "64"], "image 'lfw_000'"),
    ],
)
def test_prepare_user_errors_are_one_line(
    argv: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RESTOREKIT_WALLPAPERS", str(tmp_path / "none"))
    assert run(["data", "prepare", *argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len([e for e in err if e.startswith("restorekit: error:")]) == 1
    assert message in err[-1]
    assert "Traceback" not in "\n".join(err)


def test_prepare_from_an_image_folder(tmp_path: Path) -> None:
    for name in ("a", "b"):
        write_image(tmp_path / "photos" / f"{name}.png", torch.rand(3, 20, 24))
    out = tmp_path / "ds"
    argv = [
        "data",
        "prepare",
        str(tmp_path / "photos"),
        "--out",
        str(out),
        "--degradation",
        "defect_noise",
    ]
    assert run(argv) == 0
    assert json.loads((out / "dataset.json").read_text())["layout"] == "triplet"
    assert len(open_dataset(out)) == 2


def test_fer2013_csv_trains_and_evaluates_end_to_end_on_its_own_split(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from restorekit.train.recipe import build_datasets, find_recipe, load_recipe

    rows = ["emotion,pixels,Usage"]
    usages = ["Training"] * 6 + ["PublicTest"] * 2 + ["PrivateTest"] * 2
    for i, usage in enumerate(usages):
        pixels = np.random.default_rng(i).integers(0, 256, 2304)
        rows.append(f"{i % 7},{' '.join(map(str, pixels))},{usage}")
    csv = tmp_path / "fer2013.csv"
    csv.write_text("\n".join(rows) + "\n")
    settings = (f"data.source={csv}", f"run_dir={tmp_path / 'run'}")
    recipe = load_recipe(find_recipe("face_attention_unet_low"), settings, smoke=True)
    train, val = build_datasets(recipe.data, seed=0)
    assert [e.name for e in val.examples] == ["fer_00006"]  # PublicTest (val_limit 1)
    assert {e.split for e in train.examples} == {"train"}
    argv = ["train", "face_attention_unet_low", "--smoke", *settings]
    assert run(argv) == 0
    weights = tmp_path / "run" / "best.safetensors"
    out = tmp_path / "eval"
    assert run(["eval", "--data", str(csv), "--model", str(weights), "--out", str(out),
                "--degradation", "gaussian_low", "--no-report"]) == 0  # fmt: skip
    with open(out / "summary.csv", newline="") as f:
        summary = list(csv_module.DictReader(f))
    assert {r["images"] for r in summary} == {"2"}  # PrivateTest, FER2013's test split
