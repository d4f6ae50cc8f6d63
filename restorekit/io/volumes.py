"""Read medical volumes (NIfTI, DICOM, fastMRI ``.h5``) as stacks of slices in [0, 1].

nibabel, pydicom and h5py are imported only when a volume is read (extra
``restorekit[mri]``), so ``import restorekit.io`` stays cheap.

References:
    - DICOM PS3.3 (image plane C.7.6.2, pixel value transformation C.7.6.16.2.9):
      https://dicom.nema.org/medical/dicom/current/output/html/part03.html
    - NIfTI-1: https://nifti.nimh.nih.gov/nifti-1
    - fastMRI (Zbontar et al. 2018): https://arxiv.org/abs/1811.08839
"""

from __future__ import annotations

import gzip
import importlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

from restorekit.utils import atomic_path

logger = logging.getLogger(__name__)


def read_volume(path: str | os.PathLike[str], *, key: str | None = None) -> torch.Tensor:
    """Read a medical volume as a stack of slices, min-max normalised to [0, 1].

    Formats, by path:

    - a folder: one DICOM series (every DICOM file in it, not recursive), sorted along
      the slice normal by ImagePositionPatient, else by InstanceNumber, else by name;
    - ``.dcm`` (or any file with the DICOM preamble): one single- or multi-frame DICOM
      file, frames in stored order;
    - ``.nii`` / ``.nii.gz``: NIfTI, sliced along the last spatial axis (axial for RAS
      volumes); each slice is ``data[:, :, k]`` in stored array order, so H runs along
      the first voxel axis. A 4D file gives its first volume;
    - ``.h5`` / ``.hdf5``: fastMRI, the dataset ``key``, else ``reconstruction_rss``, else
      ``reconstruction_esc``.

    DICOM RescaleSlope/RescaleIntercept are applied per slice (also from the functional
    groups of enhanced multi-frame files), and MONOCHROME1 is inverted so that bright
    means high signal; NIfTI scaling (scl_slope/scl_inter) is applied by nibabel. The
    whole volume is then mapped from [min, max] to [0, 1]; a constant volume gives
    zeros. Non-finite voxels are set to the minimum (logged).

    Args:
        path: A file or a DICOM folder.
        key: The dataset to read from an ``.h5`` file; an error for other formats.

    Returns:
        (S, 1, H, W) float32 in [0, 1], S slices.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ImportError: nibabel, pydicom or h5py is missing (``pip install 'restorekit[mri]'``).
        ValueError: unknown format, unreadable file, missing key (the message lists the
            keys present), or a folder without exactly one DICOM series.

    Example:
        >>> import tempfile, nibabel, numpy as np
        >>> data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)  # (X, Y, Z)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     nibabel.save(nibabel.Nifti1Image(data, np.eye(4)), f"{d}/v.nii.gz")
        ...     v = read_volume(f"{d}/v.nii.gz")
        >>> v.shape, float(v.min()), float(v.max())
        (torch.Size([4, 1, 2, 3]), 0.0, 1.0)
    """
    src = Path(path)
    if not src.exists():
        raise FileNotFoundError(f"{src}: no such file or folder")
    name = src.name.lower()
    is_h5 = name.endswith((".h5", ".hdf5"))
    if key is not None and not is_h5:
        raise ValueError(f"{src}: key={key!r} applies to .h5 files only")
    if src.is_dir():
        vol = _read_dicom_folder(src)
    elif name.endswith((".nii", ".nii.gz")):
        vol = _read_nifti(src)
    elif is_h5:
        vol = _read_h5(src, key)
    elif is_dicom(src):
        vol = _read_dicom_file(src)
    else:
        raise ValueError(
            f"{src}: unknown volume format; expected .nii, .nii.gz, .dcm, .h5 "
            "or a folder of DICOM files"
        )
    return _normalise_volume(vol, src)


# ---------------------------------------------------------------------------- volumes


def _optional(module: str, what: str) -> ModuleType:
    """Import an optional dependency, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"reading {what} needs {module.split('.')[0]}: pip install 'restorekit[mri]'"
        ) from err


def _normalise_volume(vol: np.ndarray, src: Path) -> torch.Tensor:
    """(S, H, W) -> (S, 1, H, W) float32, min-max over the whole volume."""
    return _normalised(vol, src)[0]


def _normalised(vol: np.ndarray, src: Path) -> tuple[torch.Tensor, float, float]:
    """(S, H, W) -> ((S, 1, H, W) float32 in [0, 1], lo, hi): min-max over the whole
    volume, non-finite voxels set to the minimum (logged)."""
    vol = np.asarray(vol, dtype=np.float64)
    finite = np.isfinite(vol)
    if not finite.all():
        if not finite.any():
            raise ValueError(f"{src}: volume holds no finite values")
        logger.warning("%s: %d non-finite voxels set to the minimum", src, (~finite).sum())
        vol = np.where(finite, vol, vol[finite].min())
    lo, hi = float(vol.min()), float(vol.max())
    out = (vol - lo) / (hi - lo) if hi > lo else np.zeros_like(vol)
    return torch.from_numpy(out.astype(np.float32))[:, None], lo, hi


def _read_nifti(src: Path) -> np.ndarray:
    nib = _optional("nibabel", "NIfTI")
    try:
        img = nib.load(str(src))
        shape = img.shape
    except Exception as err:
        raise ValueError(f"{src}: cannot read NIfTI ({err})") from err
    if len(shape) not in (2, 3, 4):
        raise ValueError(f"{src}: {len(shape)}D NIfTI is not supported (2D, 3D or 4D)")
    if len(shape) == 4:
        logger.info("%s: 4D NIfTI with %d volumes; reading the first", src, shape[3])
    try:
        # Slicing the proxy reads (and scales) only the first volume of a 4D file.
        data = np.asarray(img.dataobj[..., 0] if len(shape) == 4 else img.dataobj)
    except Exception as err:
        raise ValueError(f"{src}: cannot read NIfTI data ({err})") from err
    if data.dtype.kind not in "biuf":
        raise ValueError(f"{src}: NIfTI data type {data.dtype} is not supported")
    if data.ndim == 2:
        data = data[..., None]
    return np.moveaxis(data, -1, 0)  # (X, Y, Z) -> (Z, X, Y)


NIFTI_SUFFIXES = (".nii", ".nii.gz")


def nifti_stem(path: str | os.PathLike[str]) -> str | None:
    """``"scan"`` for ``scan.nii`` or ``scan.nii.gz``; None for anything else."""
    name = Path(path).name
    return next((name[: -len(e)] for e in NIFTI_SUFFIXES if name.lower().endswith(e)), None)


@dataclass(frozen=True)
class NiftiSlices:
    """Every 2D slice of a volume read as NIfTI (a NIfTI file, or DICOM turned into
    one) in [0, 1], and what writing them back needs.

    The slices run along the third voxel axis, for every volume of a 4D (or 5D...)
    file; ``lo`` and ``hi`` are the file's intensities that map to 0 and 1.
    """

    slices: torch.Tensor  # (N, 1, X, Y) float32
    lo: float
    hi: float
    shape: tuple[int, ...]  # the data's (X, Y, Z, ...)
    image: Any  # the nibabel image: its header and affine


def volume_name(path: str | os.PathLike[str]) -> tuple[str, str] | None:
    """The stem and suffix of the NIfTI file a volume is restored to, for the volumes
    :func:`read_nifti_slices` reads: ``("scan", ".nii.gz")`` for ``scan.nii.gz``,
    ``("MR1", ".nii.gz")`` for the DICOM file ``MR1.dcm``, ``("series", ".nii.gz")`` for
    a folder ``series/`` of DICOM files; None for anything else."""
    src = Path(path)
    stem = nifti_stem(src)
    if stem is not None:
        return stem, src.name[len(stem) :]
    if src.is_dir():
        return (src.name, ".nii.gz") if _holds_dicom(src) else None
    # An unreadable file is not a volume here; reading it names the file.
    return (src.stem, ".nii.gz") if src.is_file() and _readable_dicom(src) else None


def read_nifti_slices(path: str | os.PathLike[str]) -> NiftiSlices:
    """Read a volume for :func:`write_nifti_slices` to write back, restored: a NIfTI
    file, or DICOM (one file, or a folder holding one series) turned into NIfTI.

    Unlike :func:`read_volume`, which reads the first volume of a 4D file for training,
    this keeps every volume. DICOM's voxel grid becomes the NIfTI affine (RAS, voxel
    axes row, column, slice) from its image plane tags, as DICOM PS3.3 C.7.6.2.1.1
    places each pixel; single-frame images only.
    """
    nib, src = _optional("nibabel", "NIfTI"), Path(path)
    if nifti_stem(src) is None:
        img = _dicom_as_nifti(src)
    else:
        try:
            img = nib.load(str(src))
        except Exception as err:
            raise ValueError(f"{src}: cannot read NIfTI ({err})") from err
    try:
        data = np.asarray(img.dataobj)
    except Exception as err:
        raise ValueError(f"{src}: cannot read NIfTI data ({err})") from err
    if data.ndim < 2 or data.dtype.kind not in "biuf":
        raise ValueError(f"{src}: NIfTI data {data.dtype} {data.shape} is not a real-valued "
                         "image of 2 or more dimensions")  # fmt: skip
    stack = np.moveaxis(data.reshape(*data.shape[:2], -1), -1, 0)  # (N, X, Y)
    slices, lo, hi = _normalised(stack, src)
    return NiftiSlices(slices, lo, hi, tuple(data.shape), img)


def write_nifti_slices(
    path: str | os.PathLike[str], slices: torch.Tensor, source: NiftiSlices
) -> None:
    """Write ``slices`` (N, 1, sX, sY) in [0, 1], restored from ``source``, as NIfTI.

    Intensities go back to the source's range as float32. When the slices are ``s``
    times larger than the source's (super-resolution), the voxels shrink ``s`` times in
    plane: the affine and the header's voxel sizes say so, with voxel centres placed as
    MATLAB ``imresize`` places pixels (the same field of view). The header is otherwise
    the source's. ``.nii.gz`` is gzip-compressed; the write is atomic.
    """
    target = Path(path)
    if nifti_stem(target) is None:
        raise ValueError(f"{target}: a NIfTI file is named .nii or .nii.gz")
    n, x, y = source.slices.shape[0], *source.shape[:2]
    sx, sy = slices.shape[-2:]
    if slices.shape[:2] != (n, 1) or sx % x or sy % y or sx // x != sy // y:
        raise ValueError(f"{target}: {tuple(slices.shape)} slices do not fit "
                         f"{tuple(source.slices.shape)} ones scaled evenly in plane")  # fmt: skip
    scale = sx // x
    stack = slices[:, 0].double().numpy() * (source.hi - source.lo) + source.lo
    data = np.moveaxis(stack, 0, -1).reshape(sx, sy, *source.shape[2:]).astype(np.float32)
    zoom = np.diag([1 / scale, 1 / scale, 1.0, 1.0])
    zoom[:2, 3] = (1 / scale - 1) / 2  # new voxel i sits at old (i + 0.5) / s - 0.5
    affine = source.image.affine @ zoom
    header = source.image.header.copy()
    header.set_data_dtype(np.float32)
    out = type(source.image)(data, affine, header)
    for form in ("qform", "sform"):  # keep the source's codes: the affine means the same
        code = int(header[f"{form}_code"])
        if code:
            getattr(out, f"set_{form}")(affine, code=code)
    raw = out.to_bytes()
    if target.name.lower().endswith(".gz"):
        raw = gzip.compress(raw, compresslevel=6, mtime=0)
    with atomic_path(target) as tmp:
        tmp.write_bytes(raw)


def _read_h5(src: Path, key: str | None) -> np.ndarray:
    h5py = _optional("h5py", "fastMRI .h5 files")
    try:
        f = h5py.File(src, "r")
    except OSError as err:
        raise ValueError(f"{src}: not a readable HDF5 file ({err})") from err
    with f:
        keys = sorted(f.keys())
        if key is None:
            key = next((k for k in ("reconstruction_rss", "reconstruction_esc") if k in f), None)
            if key is None:
                raise ValueError(
                    f"{src}: no 'reconstruction_rss' or 'reconstruction_esc' dataset "
                    f"(keys: {keys}); pass key= to pick one"
                )
        elif key not in f:
            raise ValueError(f"{src}: no dataset {key!r} (keys: {keys})")
        dset = f[key]
        if not isinstance(dset, h5py.Dataset):
            raise ValueError(f"{src}: {key!r} is a group, not a dataset (keys: {keys})")
        data = dset[()]
    if np.iscomplexobj(data) or data.dtype.kind not in "biuf":
        raise ValueError(f"{src}: {key!r} holds {data.dtype} data; expected real images")
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3:
        raise ValueError(f"{src}: {key!r} has shape {data.shape}; expected (slices, H, W)")
    return data


def is_dicom(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is DICOM: named ``.dcm``, or a Part 10 file (a 128-byte preamble,
    then b"DICM"). Raises OSError when it cannot be read."""
    if Path(path).suffix.lower() == ".dcm":
        return True
    with open(path, "rb") as f:
        return f.read(132)[128:] == b"DICM"


def _holds_dicom(folder: Path) -> bool:
    """Whether a file directly inside ``folder`` is DICOM (an unreadable one is not, and
    does not hide the others)."""
    try:
        files = [f for f in folder.iterdir() if f.is_file()]
    except OSError:
        return False
    return any(_readable_dicom(f) for f in files)


def _readable_dicom(path: Path) -> bool:
    try:
        return is_dicom(path)
    except OSError:
        return False


def _dicom_rescale(ds: Any, frame: int) -> tuple[float, float]:
    """Slope and intercept of one frame. Enhanced multi-frame objects keep them in the
    per-frame or shared functional groups (PixelValueTransformationSequence)."""
    for groups, index in (
        ("PerFrameFunctionalGroupsSequence", frame),
        ("SharedFunctionalGroupsSequence", 0),
    ):
        seq = ds.get(groups)
        if seq is not None and len(seq) > index:
            pvt = seq[index].get("PixelValueTransformationSequence")
            if pvt:
                return float(pvt[0].get("RescaleSlope", 1)), float(
                    pvt[0].get("RescaleIntercept", 0)
                )
    slope, intercept = ds.get("RescaleSlope"), ds.get("RescaleIntercept")
    return float(1 if slope in (None, "") else slope), float(intercept or 0)


def _dicom_frames(ds: Any, src: Path) -> np.ndarray:
    """All frames of one dataset as (F, H, W) float64 after rescaling."""
    if int(ds.get("SamplesPerPixel", 1)) != 1:
        raise ValueError(f"{src}: colour DICOM is not supported (gray volumes only)")
    try:
        arr = ds.pixel_array
    except Exception as err:
        raise ValueError(f"{src}: cannot decode DICOM pixel data ({err})") from err
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    arr = np.asarray(arr, dtype=np.float64).reshape(frames, *arr.shape[-2:])
    for i in range(frames):
        slope, intercept = _dicom_rescale(ds, i)
        arr[i] = arr[i] * slope + intercept
    if ds.get("PhotometricInterpretation") == "MONOCHROME1":
        arr = -arr  # MONOCHROME1 shows the lowest value as white
    return arr


def _read_dicom_file(src: Path) -> np.ndarray:
    pydicom = _optional("pydicom", "DICOM")
    try:
        ds = pydicom.dcmread(src)
    except Exception as err:
        raise ValueError(f"{src}: not a readable DICOM file ({err})") from err
    if "PixelData" not in ds:
        raise ValueError(f"{src}: DICOM file without pixel data")
    return _dicom_frames(ds, src)


def _read_dicom_folder(folder: Path) -> np.ndarray:
    return np.concatenate([_dicom_frames(ds, file) for file, ds in _dicom_series(folder)])


def _dicom_series(folder: Path) -> list[tuple[Path, Any]]:
    """The (file, dataset) pairs of the one DICOM series in ``folder``, sorted along
    the slice normal (see :func:`_dicom_sort_key`)."""
    pydicom = _optional("pydicom", "DICOM")
    errors = _optional("pydicom.errors", "DICOM")
    slices = []
    for file in sorted(folder.iterdir()):
        if not file.is_file() or file.name.startswith("."):
            continue
        try:
            ds = pydicom.dcmread(file)
        except errors.InvalidDicomError:
            logger.debug("%s: not DICOM, skipped", file)
            continue
        except Exception as err:
            raise ValueError(f"{file}: not a readable DICOM file ({err})") from err
        if "PixelData" in ds:  # DICOMDIR and other non-image objects are skipped
            slices.append((file, ds))
    if not slices:
        raise ValueError(f"{folder}: no DICOM images in this folder")
    series = {str(ds.get("SeriesInstanceUID", "")) for _, ds in slices}
    if len(series) > 1:
        raise ValueError(f"{folder}: holds {len(series)} DICOM series; give one series per folder")
    if any(int(ds.get("NumberOfFrames", 1) or 1) > 1 for _, ds in slices):
        raise ValueError(f"{folder}: multi-frame files in a series; read each file on its own")
    shapes = {(int(ds.Rows), int(ds.Columns)) for _, ds in slices}
    if len(shapes) > 1:
        raise ValueError(f"{folder}: slices differ in size {sorted(shapes)}")
    slices.sort(key=_dicom_sort_key([ds for _, ds in slices]))
    return slices


def _dicom_as_nifti(src: Path) -> Any:
    """A DICOM file or series folder as a float32 NIfTI image in the rescaled units."""
    nib = _optional("nibabel", "NIfTI")
    if src.is_dir():
        series = _dicom_series(src)
    else:
        pydicom = _optional("pydicom", "DICOM")
        try:
            series = [(src, pydicom.dcmread(src))]
        except Exception as err:
            raise ValueError(f"{src}: not a readable DICOM file ({err})") from err
        if "PixelData" not in series[0][1]:
            raise ValueError(f"{src}: DICOM file without pixel data")
    if int(series[0][1].get("NumberOfFrames", 1) or 1) > 1:
        raise ValueError(f"{src}: multi-frame DICOM; convert it to NIfTI first (e.g. dcm2niix)")
    frames = np.concatenate([_dicom_frames(ds, file) for file, ds in series])  # (S, H, W)
    affine = _dicom_affine([ds for _, ds in series], src)
    image = nib.Nifti1Image(np.moveaxis(frames, 0, -1).astype(np.float32), affine)
    image.header.set_xyzt_units("mm")
    return image


def _dicom_affine(datasets: list[Any], src: Path) -> np.ndarray:
    """The RAS affine of voxel (row, column, slice) for slices sorted along the normal.

    DICOM places pixel (row j, column i) at ImagePositionPatient + i * PixelSpacing[1] *
    (row direction) + j * PixelSpacing[0] * (column direction), in LPS millimetres; the
    slice step is the position difference between neighbours (one slice: the normal
    times SliceThickness, else 1 mm). NIfTI is RAS: x and y change sign.
    """
    first, last = datasets[0], datasets[-1]
    try:
        cosines = np.asarray(first.ImageOrientationPatient, dtype=np.float64)
        spacing = np.asarray(first.PixelSpacing, dtype=np.float64)
        origin = np.asarray(first.ImagePositionPatient, dtype=np.float64)
        end = np.asarray(last.ImagePositionPatient, dtype=np.float64)
    except (AttributeError, ValueError, TypeError) as err:
        raise ValueError(
            f"{src}: DICOM without its image plane (ImageOrientationPatient, "
            f"ImagePositionPatient, PixelSpacing): no voxel grid to write ({err})"
        ) from err
    along_row, along_column = cosines[:3], cosines[3:]
    lps = np.eye(4)
    lps[:3, 0] = along_column * spacing[0]  # the row index runs down a column
    lps[:3, 1] = along_row * spacing[1]
    if len(datasets) > 1:
        lps[:3, 2] = (end - origin) / (len(datasets) - 1)
    else:
        thickness = float(first.get("SliceThickness") or 1.0)
        lps[:3, 2] = np.cross(along_row, along_column) * thickness
    lps[:3, 3] = origin
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def _dicom_sort_key(datasets: list[Any]) -> Callable[[tuple[Path, Any]], Any]:
    """Sort by position along the slice normal, else InstanceNumber, else file name."""
    try:
        orient = np.asarray(datasets[0].ImageOrientationPatient, dtype=np.float64)
        normal = np.cross(orient[:3], orient[3:])
        for ds in datasets:
            np.asarray(ds.ImagePositionPatient, dtype=np.float64)
    except (AttributeError, ValueError, TypeError):
        pass
    else:
        return lambda item: float(normal @ np.asarray(item[1].ImagePositionPatient, float))
    if all(ds.get("InstanceNumber") is not None for ds in datasets):
        return lambda item: int(item[1].InstanceNumber)
    return lambda item: item[0].name
