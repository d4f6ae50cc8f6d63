"""Users' formats, on tiny data made here: FER2013 CSV, fastMRI .h5, NIfTI and DICOM
folders, RESIDE hazy/clear folders, paired and triplet folders. Mismatches are named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from restorekit.data import (
    detect_layout,
    find_pairs,
    find_reside,
    find_triplets,
    read_fastmri,
    read_fer2013,
    read_image_folder,
    read_slices,
)
from restorekit.io import write_image

# ------------------------------------------------------------------------------ FER2013


def fer_pixels(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(48, 48))


def fer_csv(path: Path, usages: list[str], *, header: str = "emotion,pixels,Usage") -> Path:
    lines = [header]
    for i, usage in enumerate(usages):
        pixels = " ".join(map(str, fer_pixels(i).ravel()))
        fields = {"emotion": str(i % 7), "pixels": pixels, "Usage": usage}
        lines.append(",".join(fields[h.strip()] for h in header.split(",")))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_fer2013_reads_faces_splits_and_labels(tmp_path: Path) -> None:
    csv = fer_csv(tmp_path / "fer2013.csv", ["Training", "Training", "PublicTest", "PrivateTest"])
    faces = read_fer2013(csv)
    assert [f.split for f in faces] == ["train", "train", "val", "test"]
    assert [f.label for f in faces] == [0, 1, 2, 3]
    assert [f.name for f in faces] == ["fer_00000", "fer_00001", "fer_00002", "fer_00003"]
    for i, f in enumerate(faces):
        assert f.image.shape == (1, 48, 48) and f.image.dtype == torch.float32
        # Row-major pixel order, value / 255.
        assert torch.equal(f.image[0], torch.from_numpy(fer_pixels(i) / 255.0).float())
    assert [f.name for f in read_fer2013(csv, split="train")] == ["fer_00000", "fer_00001"]
    assert len(read_fer2013(csv, limit=3)) == 3


def test_fer2013_kaggle_icml_header_and_missing_columns(tmp_path: Path) -> None:
    """icml_face_data.csv: 'emotion, Usage, pixels' with spaces; the Kaggle test file has
    pixels only (no split, no label)."""
    csv = fer_csv(tmp_path / "icml.csv", ["PublicTest"], header="emotion, Usage, pixels")
    assert read_fer2013(csv)[0].split == "val"
    only = tmp_path / "test.csv"
    only.write_text("pixels\n" + " ".join(["0"] * 2304) + "\n")
    face = read_fer2013(only)[0]
    assert face.split is None and face.label is None and float(face.image.max()) == 0


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("0," + " ".join(["1"] * 2303) + ",Training", r"fer\.csv:3: 2303 pixel values"),
        ("0," + " ".join(["300"] * 2304) + ",Training", r"fer\.csv:3: pixel values must be"),
        ("0," + " ".join(["x"] * 2304) + ",Training", r"fer\.csv:3: pixels must be integers"),
        ("0," + " ".join(["1"] * 2304) + ",Validation", r"fer\.csv:3: Usage 'Validation'"),
    ],
)
def test_fer2013_bad_rows_name_file_and_line(tmp_path: Path, row: str, message: str) -> None:
    csv = fer_csv(tmp_path / "fer.csv", ["Training"])
    csv.write_text(csv.read_text() + row + "\n")
    with pytest.raises(ValueError, match=message):
        read_fer2013(csv)


def test_fer2013_without_pixels_column(tmp_path: Path) -> None:
    bad = tmp_path / "x.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="no 'pixels' column"):
        read_fer2013(bad)
    with pytest.raises(FileNotFoundError, match=r"nope\.csv"):
        read_fer2013(tmp_path / "nope.csv")


# ------------------------------------------------------------------------------ volumes


def fastmri_h5(path: Path, key: str = "reconstruction_rss", slices: int = 4) -> np.ndarray:
    """A tiny file in fastMRI's layout: k-space plus a magnitude reconstruction."""
    import h5py

    rng = np.random.default_rng(len(path.name))
    vol = rng.random((slices, 10, 8)).astype(np.float32) * 3e-4  # fastMRI's tiny scale
    with h5py.File(path, "w") as f:
        f["kspace"] = rng.random((slices, 10, 8)).astype(np.complex64)
        f[key] = vol
        f.attrs["acquisition"] = "CORPD_FBK"
    return vol


def test_fastmri_slices_from_rss_and_esc(tmp_path: Path) -> None:
    vol = fastmri_h5(tmp_path / "file1000001.h5")
    slices = read_fastmri(tmp_path / "file1000001.h5")
    assert [s.name for s in slices] == [f"file1000001_s{k:03d}" for k in range(4)]
    stacked = torch.stack([s.image for s in slices])
    expected = (vol - vol.min()) / (vol.max() - vol.min())  # one min-max per volume
    assert torch.allclose(stacked[:, 0], torch.from_numpy(expected), atol=1e-6)
    esc = fastmri_h5(tmp_path / "esc.h5", key="reconstruction_esc", slices=2)
    assert len(read_fastmri(tmp_path / "esc.h5")) == len(esc)


def test_fastmri_folder_recursive_and_errors(tmp_path: Path) -> None:
    (tmp_path / "val").mkdir()
    fastmri_h5(tmp_path / "a.h5", slices=2)
    fastmri_h5(tmp_path / "val" / "b.h5", slices=3)
    names = [s.name for s in read_fastmri(tmp_path)]
    assert names == ["a_s000", "a_s001", "val_b_s000", "val_b_s001", "val_b_s002"]
    with pytest.raises(ValueError, match=r"no dataset 'recon' \(keys: \['kspace'"):
        read_fastmri(tmp_path / "a.h5", key="recon")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=r"no \.h5 files"):
        read_fastmri(empty)


def test_a_folder_of_volumes_is_split_by_volume_and_trains_and_scores_so(tmp_path: Path) -> None:
    # Issue 12: test slices must never neighbour training slices.
    from restorekit.evaluate import held_out
    from restorekit.train.recipe import build_datasets, find_recipe, load_recipe

    (tmp_path / "knees").mkdir()
    for i in range(6):
        fastmri_h5(tmp_path / "knees" / f"file{i}.h5", slices=3)
    slices = read_fastmri(tmp_path / "knees")
    split_of: dict[str, set] = {}
    for s in slices:
        split_of.setdefault(s.name.rsplit("_s", 1)[0], set()).add(s.split)
    assert all(len(parts) == 1 for parts in split_of.values())  # one split per volume
    parts = sorted(p for (p,) in split_of.values())
    assert parts == ["test", "train", "train", "train", "train", "val"]
    test_volumes = {e.name.rsplit("_s", 1)[0] for e in held_out(slices)}
    assert [v for v, (p,) in split_of.items() if p == "test"] == sorted(test_volumes)
    recipe = load_recipe(find_recipe("sr_edsr"), (f"data.source={tmp_path / 'knees'}",
                                                  "data.mix={}", "data.crop=6"))  # fmt: skip
    train, val = build_datasets(recipe.data, seed=0)
    assert {e.split for e in train.examples} == {"train"}
    assert {e.split for e in val.examples} == {"val"}
    assert len(read_fastmri(tmp_path / "knees" / "file0.h5")) == 3  # one volume: no split
    assert {e.split for e in read_fastmri(tmp_path / "knees" / "file0.h5")} == {None}


def test_nifti_folder_and_blank_slices(tmp_path: Path) -> None:
    import nibabel

    data = np.zeros((6, 5, 4), dtype=np.float32)
    data[1:5, 1:4, 1:3] = np.arange(24, dtype=np.float32).reshape(4, 3, 2) + 1
    nibabel.save(nibabel.Nifti1Image(data, np.eye(4)), tmp_path / "brain.nii.gz")
    nibabel.save(nibabel.Nifti1Image(data[..., :2], np.eye(4)), tmp_path / "b.nii")
    slices = read_slices(tmp_path)
    assert [s.name for s in slices][:3] == ["b_s000", "b_s001", "brain_s000"]
    assert len(slices) == 6 and all(s.image.shape == (1, 6, 5) for s in slices)
    kept = read_slices(tmp_path / "brain.nii.gz", min_foreground=0.1)
    assert [s.name for s in kept] == ["brain_s001", "brain_s002"]  # z = 0 and 3 are empty


def dicom(path: Path, frame: np.ndarray, *, z: float, series: str = "1.2.3.4") -> None:
    """A minimal one-frame MR DICOM file (Explicit VR Little Endian, uint16)."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = f"{series}.{int(z)}"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
    ds.SeriesInstanceUID, ds.Modality = series, "MR"
    ds.Rows, ds.Columns = frame.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.ImagePositionPatient = [0.0, 0.0, z]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.PixelData = frame.astype("<u2").tobytes()
    ds.save_as(path, enforce_file_format=True)


def test_dicom_series_folders(tmp_path: Path) -> None:
    """A folder of series folders: each series is one volume, slices sorted by position."""
    pytest.importorskip("pydicom")
    for series, n in (("knee", 3), ("head", 2)):
        (tmp_path / series).mkdir()
        for k in range(n):  # written in reverse position order, named without suffix
            dicom(tmp_path / series / f"IM{k}", np.full((6, 4), 100 * (n - k)), z=float(n - k))
    slices = read_slices(tmp_path)
    assert [s.name for s in slices] == [
        "head_s000",
        "head_s001",
        "knee_s000",
        "knee_s001",
        "knee_s002",
    ]
    knee = [float(s.image.mean()) for s in slices[2:]]
    assert knee == sorted(knee)  # sorted along the slice normal: 100, 200, 300 -> 0, 0.5, 1
    one = read_slices(tmp_path / "knee")
    assert [s.name for s in one] == ["knee_s000", "knee_s001", "knee_s002"]


def test_slices_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing"):
        read_slices(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match=r"no NIfTI, DICOM or \.h5 volumes"):
        read_slices(tmp_path)


# ------------------------------------------------------------------------------ folders


def img(path: Path, h: int = 8, w: int = 8, value: float | None = None, c: int = 3) -> None:
    x = torch.rand(c, h, w) if value is None else torch.full((c, h, w), value)
    write_image(path, x)


def test_reside_hazy_matched_to_clear_by_id(tmp_path: Path) -> None:
    """ITS names (ID_k_beta) and OTS/SOTS names (ID_A_beta), jpg hazy with png clear."""
    for cid in ("1", "0025"):
        img(tmp_path / "clear" / f"{cid}.png")
    for hazy in ("1_1_0.90179.png", "1_2_0.81.png", "0025_0.8_0.1.jpg"):
        img(tmp_path / "hazy" / hazy)
    pairs = find_reside(tmp_path)
    assert [(p.name, p.gt.name) for p in pairs] == [
        ("0025_0.8_0.1", "0025.png"),
        ("1_1_0.90179", "1.png"),
        ("1_2_0.81", "1.png"),
    ]
    assert detect_layout(tmp_path) == "reside"


def test_reside_reports_unmatched_both_ways(tmp_path: Path) -> None:
    img(tmp_path / "GT" / "7.png")
    img(tmp_path / "GT" / "8.png")
    img(tmp_path / "hazy" / "7_1_0.1.png")
    img(tmp_path / "hazy" / "9_1_0.1.png")
    with pytest.raises(ValueError, match=r"2 files without a partner") as err:
        find_reside(tmp_path)
    assert "hazy/9_1_0.1.png has no GT/9.*" in str(err.value)
    assert "GT/8.png has no hazy image" in str(err.value)


def test_reside_size_mismatch_is_named(tmp_path: Path) -> None:
    img(tmp_path / "clear" / "3.png", 8, 8)
    img(tmp_path / "hazy" / "3_1_0.2.png", 8, 6)
    with pytest.raises(ValueError, match=r"3_1_0\.2: lq 8x6, gt 8x8"):
        find_reside(tmp_path)


def test_paired_folders_match_by_stem_and_infer_scale(tmp_path: Path) -> None:
    for name in ("b", "a"):
        img(tmp_path / "gt" / f"{name}.png", 8, 12)
        img(tmp_path / "lq" / f"{name}.png", 4, 6)
    pairs = find_pairs(tmp_path)
    assert [p.name for p in pairs] == ["a", "b"]
    assert all(p.lq.parent.name == "lq" and p.mask is None for p in pairs)
    assert detect_layout(tmp_path) == "paired"


def test_paired_unmatched_are_listed_with_count(tmp_path: Path) -> None:
    img(tmp_path / "gt" / "keep.png")
    img(tmp_path / "lq" / "keep.png")
    for i in range(7):
        img(tmp_path / "lq" / f"orphan{i}.png")
    with pytest.raises(ValueError, match="7 files without a partner") as err:
        find_pairs(tmp_path)
    msg = str(err.value)
    assert "lq/orphan0.png has no gt/orphan0.*" in msg
    assert "and 2 more" in msg  # five named, then the count of the rest


def test_paired_size_mismatch_and_duplicate_stems(tmp_path: Path) -> None:
    img(tmp_path / "gt" / "a.png", 8, 8)
    img(tmp_path / "lq" / "a.png", 4, 4)
    img(tmp_path / "gt" / "b.png", 8, 8)
    img(tmp_path / "lq" / "b.png", 8, 8)  # scale 1, while the set's scale is 2
    with pytest.raises(ValueError, match=r"sizes disagree \(scale 2\): b: lq 8x8, gt 8x8"):
        find_pairs(tmp_path)
    assert len(find_pairs(tmp_path, check_sizes=False)) == 2
    img(tmp_path / "gt" / "a.jpg", 8, 8)
    with pytest.raises(ValueError, match=r"a\.jpg and a\.png share the name 'a'"):
        find_pairs(tmp_path)


def test_triplets_need_all_three(tmp_path: Path) -> None:
    for name in ("x", "y"):
        img(tmp_path / "gt" / f"{name}.png")
        img(tmp_path / "degraded" / f"{name}.png")
    img(tmp_path / "mask" / "x.png", c=1)
    assert detect_layout(tmp_path) == "triplet"
    with pytest.raises(ValueError, match=r"degraded/y.png has no mask/y\.\*"):
        find_triplets(tmp_path)
    img(tmp_path / "mask" / "y.png", 4, 4, c=1)
    with pytest.raises(ValueError, match="y: mask 4x4, gt 8x8"):
        find_triplets(tmp_path)
    img(tmp_path / "mask" / "y.png", c=1)
    triplets = find_triplets(tmp_path)
    assert [(t.name, t.mask.name) for t in triplets] == [("x", "x.png"), ("y", "y.png")]


def test_missing_folders_and_unknown_layout(tmp_path: Path) -> None:
    img(tmp_path / "gt" / "a.png")
    with pytest.raises(FileNotFoundError, match="lq"):
        find_pairs(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a dataset folder"):
        detect_layout(tmp_path)


def test_image_folder_is_file_backed(tmp_path: Path) -> None:
    img(tmp_path / "b.png", value=0.5, c=1)
    write_image(tmp_path / "a.png", torch.rand(4, 5, 6))  # RGBA: alpha is dropped
    examples = read_image_folder(tmp_path)
    assert [e.name for e in examples] == ["a", "b"]
    assert isinstance(examples[0].data, Path)
    assert examples[0].image.shape == (3, 5, 6)
    assert torch.allclose(examples[1].image, torch.full((1, 8, 8), 128 / 255))


def test_formats_and_layouts_are_registries_tried_in_order(tmp_path: Path) -> None:
    from restorekit.data.datasets import LAYOUTS, detect_layout
    from restorekit.data.formats import FORMATS

    assert FORMATS.names() == ["fer2013_csv", "image", "image_folder", "volumes"]
    assert LAYOUTS.names() == ["triplet", "paired", "reside"]  # triplet before paired
    for sub in ("degraded", "mask", "gt", "lq"):
        (tmp_path / sub).mkdir()
    assert detect_layout(tmp_path) == "triplet"  # it also has lq/ + gt/
