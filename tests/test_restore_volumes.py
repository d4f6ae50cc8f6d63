"""NIfTI volumes restored slice by slice and written back (`restorekit restore scan.nii.gz`):
intensities in the file's own units, the finer grid after super-resolution described by
the affine and the voxel sizes over the same field of view, inputs never touched."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from restorekit.api import restore, restore_volume
from restorekit.cli import run
from restorekit.io import read_nifti_slices, write_nifti_slices

# A scanner-like affine: 2 x 2 x 3 mm voxels, x flipped, y-z rotated (cos 0.8), origin moved.
AFFINE = np.array([[-2.0, 0, 0, 90], [0, 1.6, -1.8, -120], [0, 1.2, 2.4, -60], [0, 0, 0, 1]])


def nifti(path: Path, shape: tuple[int, ...], *, dtype=np.int16) -> Path:
    """A volume of real intensities (a smooth blob and noise, 0..~1200) saved at ``path``."""
    rng = np.random.default_rng(0)
    x, y = np.meshgrid(np.linspace(-1, 1, shape[0]), np.linspace(-1, 1, shape[1]), indexing="ij")
    blob = 1000 * np.exp(-(x**2 + y**2) * 3)
    data = blob.reshape(*shape[:2], *([1] * (len(shape) - 2))) + rng.uniform(0, 200, shape)
    image = nib.Nifti1Image(data.astype(dtype), AFFINE)
    image.header.set_xyzt_units("mm", "sec")
    nib.save(image, path)
    return path


@pytest.mark.parametrize("shape", [(12, 10, 5), (12, 10, 4, 3)])
def test_slices_written_back_unchanged_give_the_volume_back(tmp_path: Path, shape) -> None:
    src = nifti(tmp_path / "scan.nii.gz", shape)
    volume = read_nifti_slices(src)
    n = int(np.prod(shape[2:]))
    assert volume.slices.shape == (n, 1, 12, 10)  # every volume of a 4D file
    assert float(volume.slices.min()) == 0 and float(volume.slices.max()) == 1
    write_nifti_slices(tmp_path / "back.nii.gz", volume.slices, volume)
    before, after = nib.load(src), nib.load(tmp_path / "back.nii.gz")
    assert after.shape == shape and after.get_data_dtype() == np.float32
    np.testing.assert_allclose(np.asarray(after.dataobj), np.asarray(before.dataobj), atol=1e-3)
    np.testing.assert_allclose(after.affine, before.affine, atol=1e-5)
    assert after.header.get_zooms() == before.header.get_zooms()
    assert after.header.get_xyzt_units() == ("mm", "sec")
    assert int(after.header["sform_code"]) == int(before.header["sform_code"]) > 0


def test_super_resolved_slices_describe_a_finer_grid_over_the_same_field(tmp_path: Path) -> None:
    src = nifti(tmp_path / "scan.nii", (12, 10, 5))
    volume = read_nifti_slices(src)
    up = volume.slices.repeat_interleave(2, -1).repeat_interleave(2, -2)
    write_nifti_slices(tmp_path / "x2.nii", up, volume)
    out = nib.load(tmp_path / "x2.nii")
    assert out.shape == (24, 20, 5)
    assert out.header.get_zooms()[:3] == pytest.approx((1.0, 1.0, 3.0), abs=1e-4)
    # Voxel i of the x2 grid is centred at old voxel (i + 0.5) / 2 - 0.5 (MATLAB imresize's
    # pixel centres), so the outer faces of the first and last voxels stay where they were.
    for old, new in [((-0.5, -0.5, 0), (-0.5, -0.5, 0)), ((11.5, 9.5, 4), (23.5, 19.5, 4))]:
        np.testing.assert_allclose(out.affine @ [*new, 1], AFFINE @ [*old, 1], atol=1e-9)
    np.testing.assert_allclose(out.affine @ [0, 0, 0, 1], AFFINE @ [-0.25, -0.25, 0, 1])
    # Nearest-neighbour upsampling: each 2x2 block holds its source voxel's intensity.
    np.testing.assert_allclose(
        np.asarray(out.dataobj)[::2, ::2], np.asarray(nib.load(src).dataobj), atol=1e-3
    )


def test_slices_that_do_not_fit_the_source_are_refused(tmp_path: Path) -> None:
    volume = read_nifti_slices(nifti(tmp_path / "scan.nii", (12, 10, 5)))
    with pytest.raises(ValueError, match=r"bad\.nii: .* do not fit"):
        write_nifti_slices(tmp_path / "bad.nii", torch.zeros(5, 1, 24, 30), volume)
    assert not (tmp_path / "bad.nii").exists()


def test_restore_volume_is_restore_on_each_normalised_slice(
    tmp_path: Path, tiny_sr_weights: Path
) -> None:
    src = nifti(tmp_path / "scan.nii.gz", (12, 10, 3, 2))
    out = restore_volume(src, tmp_path / "sr.nii.gz", model=tiny_sr_weights, batch=4)
    volume = read_nifti_slices(src)
    expected = restore(volume.slices, model=tiny_sr_weights).numpy()[:, 0]  # (6, 24, 20) in [0, 1]
    data = np.asarray(nib.load(out).dataobj)
    assert data.shape == (24, 20, 3, 2)
    got = (np.moveaxis(data.reshape(24, 20, 6), -1, 0) - volume.lo) / (volume.hi - volume.lo)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    with pytest.raises(ValueError, match="would replace its input"):
        restore_volume(src, src, model=tiny_sr_weights)
    with pytest.raises(ValueError, match="not a NIfTI file"):
        restore_volume(tmp_path / "scan.png", tmp_path / "o.png", model=tiny_sr_weights)


def test_cli_restores_volumes_beside_images_and_reports_a_broken_one(
    tmp_path: Path, tiny_sr_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "scans"
    folder.mkdir()
    nifti(folder / "brain.nii.gz", (12, 10, 2))
    (folder / "broken.nii").write_bytes(b"not a NIfTI file")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    out = tmp_path / "out"
    argv = [
        "restore",
        str(folder),
        "--model",
        str(tiny_sr_weights),
        "--out",
        str(out),
        "--suffix",
        "_x2",
    ]
    assert run(argv) == 2
    captured = capsys.readouterr()
    errors = [ln for ln in captured.err.splitlines() if ln.startswith("restorekit: error:")]
    assert len(errors) == 1 and "broken.nii" in errors[0]
    assert "restored 1 of 2 volumes" in captured.out
    assert sorted(p.name for p in out.iterdir()) == ["brain_x2.nii.gz"]
    assert nib.load(out / "brain_x2.nii.gz").shape == (24, 20, 2)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    # The output is there now: a second run refuses to replace it unless told to.
    assert run([*argv[:-2], "--suffix", "_x2", str(folder / "brain.nii.gz")]) == 2
    assert "already exists" in capsys.readouterr().err


def test_cli_restores_a_dicom_file_and_a_series_folder_to_nifti(
    tmp_path: Path, tiny_sr_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pydicom
    from pydicom.data import get_testdata_file

    from restorekit.io import ImageReadError, read_image

    # MR_small.dcm's 128-byte preamble holds a TIFF header: it once read as a corrupt TIFF.
    dicom = Path(get_testdata_file("MR_small.dcm"))
    with pytest.raises(ImageReadError, match=r"MR_small\.dcm: a DICOM file, not an image"):
        read_image(dicom)
    series = tmp_path / "series"
    series.mkdir()
    (series / "IM1").write_bytes(dicom.read_bytes())
    out, model = tmp_path / "out", str(tiny_sr_weights)
    assert run(["restore", str(dicom), str(series), "--model", model, "--out", str(out)]) == 0
    assert "restored 2 of 2 volumes" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["MR_small.nii.gz", "series.nii.gz"]
    ds = pydicom.dcmread(dicom)
    half = [float(v) / 2 for v in ds.PixelSpacing]
    for name in ("MR_small.nii.gz", "series.nii.gz"):
        image = nib.load(out / name)
        assert image.shape == (2 * ds.Rows, 2 * ds.Columns, 1)
        assert image.header.get_zooms() == pytest.approx((*half, float(ds.SliceThickness)))
