"""Users' own files, read into the same :class:`~restorekit.data.sources.Example` records.

Each format is registered in :data:`FORMATS` (which paths it takes, the kind of data, its
reader); :func:`restorekit.data.load_examples` tries them in order. A new format is a
reader and one ``FORMATS.add`` here.

- :func:`read_fer2013`: the FER2013 CSV (``emotion,pixels,Usage``); Usage maps to
  train/val/test;
- :func:`read_slices` / :func:`read_fastmri`: NIfTI, DICOM (file or series folder) and
  fastMRI ``.h5`` volumes, slice by slice;
- :func:`read_image_folder`: a folder of images.

References:
    - FER2013 (Goodfellow et al. 2013, "Challenges in Representation Learning"):
      https://arxiv.org/abs/1307.0414
    - fastMRI (Zbontar et al. 2018): https://arxiv.org/abs/1811.08839
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from restorekit.data.sources import FACE_SIZE, VOLUME_SUFFIXES, Example, foreground_fraction
from restorekit.io import IMAGE_SUFFIXES, is_dicom, list_images, read_volume
from restorekit.registry import Registry

logger = logging.getLogger(__name__)

__all__ = ["FORMATS", "Format", "read_fastmri", "read_fer2013", "read_image_folder", "read_slices"]


_FER_SPLITS = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}


def read_fer2013(
    path: str | os.PathLike[str], *, split: str | None = None, limit: int | None = None
) -> list[Example]:
    """Read the FER2013 CSV: 48x48 gray faces with their emotion and split.

    Columns are found by name in the header (``emotion``, ``pixels``, ``Usage``, in any
    order, surrounding spaces ignored, as in the Kaggle ``icml_face_data.csv``). ``pixels``
    holds 2304 space-separated 8-bit values, row by row. ``Usage`` maps Training -> train,
    PublicTest -> val, PrivateTest -> test; without that column ``split`` is ``None``, and
    without ``emotion`` the label is. Examples are named ``fer_<row>`` (row from 0).

    Args:
        path: The CSV file.
        split: Keep only ``"train"``, ``"val"`` or ``"test"`` rows; ``None`` keeps all.
        limit: Stop after this many examples (after the split filter).

    Returns:
        Examples with (1, 48, 48) float32 images in [0, 1] (value / 255).

    Raises:
        FileNotFoundError: no such file.
        ValueError: no ``pixels`` column, or a bad row (the message names file and line).

    Example:
        >>> import tempfile, pathlib
        >>> row = " ".join(["255"] * 2304)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     f = pathlib.Path(d, "fer.csv")
        ...     _ = f.write_text(f"emotion,pixels,Usage\\n3,{row},PublicTest\\n")
        ...     ex = read_fer2013(f)[0]
        >>> ex.name, ex.split, ex.label, tuple(ex.image.shape), float(ex.image.max())
        ('fer_00000', 'val', 3, (1, 48, 48), 1.0)
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"{file}: no such file")
    if split is not None and split not in _FER_SPLITS.values():
        raise ValueError(f"split must be 'train', 'val' or 'test', not {split!r}")
    out: list[Example] = []
    with open(file, newline="") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        if "pixels" not in header:
            raise ValueError(f"{file}: no 'pixels' column in the header {header}")
        col = {
            name: header.index(name) for name in ("emotion", "pixels", "Usage") if name in header
        }
        for row, fields in enumerate(reader):
            line = row + 2  # 1-based, after the header
            if not fields:
                continue
            ex = _fer_row(fields, col, row, f"{file}:{line}")
            if split is None or ex.split == split:
                out.append(ex)
                if limit is not None and len(out) >= limit:
                    break
    if not out:
        raise ValueError(f"{file}: no FER2013 rows" + (f" with split {split!r}" if split else ""))
    return out


def _fer_row(fields: list[str], col: dict[str, int], row: int, where: str) -> Example:
    if len(fields) <= max(col.values()):
        raise ValueError(f"{where}: {len(fields)} fields, expected {len(col)}")
    try:
        values = np.array(fields[col["pixels"]].split(), dtype=np.int64)
    except ValueError:
        raise ValueError(f"{where}: pixels must be integers 0-255") from None
    if values.size != FACE_SIZE * FACE_SIZE:
        raise ValueError(f"{where}: {values.size} pixel values, expected {FACE_SIZE * FACE_SIZE}")
    if values.min() < 0 or values.max() > 255:
        raise ValueError(f"{where}: pixel values must be in 0-255")
    usage = fields[col["Usage"]].strip() if "Usage" in col else None
    if usage is not None and usage not in _FER_SPLITS:
        raise ValueError(f"{where}: Usage {usage!r} is not one of {sorted(_FER_SPLITS)}")
    label = None
    if "emotion" in col:
        try:
            label = int(fields[col["emotion"]])
        except ValueError:
            raise ValueError(
                f"{where}: emotion {fields[col['emotion']]!r} is not an integer"
            ) from None
    image = torch.from_numpy(values.astype(np.float32) / 255.0).reshape(1, FACE_SIZE, FACE_SIZE)
    return Example(f"fer_{row:05d}", image, split=_FER_SPLITS.get(usage or ""), label=label)


def read_slices(
    path: str | os.PathLike[str], *, key: str | None = None, min_foreground: float = 0.0
) -> list[Example]:
    """Read every slice of medical volumes as gray images.

    ``path`` is a volume file (``.nii``, ``.nii.gz``, ``.dcm``, fastMRI ``.h5``), or a
    folder. In a folder, each NIfTI/``.h5`` file is a volume, each sub-folder is searched
    the same way, and DICOM files directly inside form one series (see
    :func:`restorekit.io.read_volume`). Each volume is normalised to [0, 1] on its own.

    Args:
        path: A volume file or a folder.
        key: The ``.h5`` dataset (default ``reconstruction_rss``, else ``reconstruction_esc``).
        min_foreground: Leave out slices where fewer than this fraction of pixels exceed
            0.05 (empty slices at the edge of a volume); 0 keeps every slice.

    Returns:
        Examples named ``<volume>_s<k>`` (the volume's path below ``path``, ``/`` -> ``_``),
        each (1, H, W) float32 in [0, 1], in volume then slice order. With three volumes
        or more, each slice's ``split`` is its volume's (:func:`volume_splits`), so
        training, validation and test never share a volume.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: no volume found, or an unreadable one (the message names it).

    Example:
        >>> import tempfile, h5py, numpy as np
        >>> with tempfile.TemporaryDirectory() as d:
        ...     with h5py.File(f"{d}/knee.h5", "w") as f:
        ...         f["reconstruction_rss"] = np.random.rand(3, 8, 6).astype("f4")
        ...     [(e.name, tuple(e.image.shape)) for e in read_slices(d)][:2]
        [('knee_s000', (1, 8, 6)), ('knee_s001', (1, 8, 6))]
    """
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such file or folder")
    volumes = [root] if root.is_file() else list(_volumes_in(root))
    if not volumes:
        raise ValueError(f"{root}: no NIfTI, DICOM or .h5 volumes found")
    out: list[Example] = []
    splits = volume_splits(len(volumes))
    for vol_path, split in zip(volumes, splits, strict=True):
        vol = read_volume(vol_path, key=key if _is_h5(vol_path) else None)
        stem = _volume_stem(vol_path, root)
        fg = foreground_fraction(vol)
        out.extend(
            Example(f"{stem}_s{k:03d}", vol[k], split=split)
            for k in range(vol.shape[0])
            if fg[k] >= min_foreground
        )
    if not out:
        raise ValueError(f"{root}: every slice is below min_foreground={min_foreground}")
    return out


def volume_splits(n: int, *, seed: int = 0) -> list[str | None]:
    """The split of each of ``n`` volumes, so that slices are split by volume.

    Three volumes or more: a seeded draw of about 10% test and 20% validation, at least
    one volume each, the rest training. Fewer: ``None`` each (the slices are then split
    at random, and neighbouring slices may fall on both sides: logged).

    >>> volume_splits(10)
    ['train', 'val', 'train', 'train', 'test', 'train', 'train', 'val', 'train', 'train']
    """
    if n < 3:
        if n:
            logger.warning("%d volume(s): split by slice, not by volume (3 or more needed)", n)
        return [None] * n
    n_test, n_val = max(1, round(0.1 * n)), max(1, round(0.2 * n))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    splits: list[str | None] = ["train"] * n
    for rank, i in enumerate(order):
        if rank < n_test:
            splits[i] = "test"
        elif rank < n_test + n_val:
            splits[i] = "val"
    return splits


def read_fastmri(path: str | os.PathLike[str], *, key: str | None = None) -> list[Example]:
    """Slices of fastMRI ``.h5`` files: one file, or every ``.h5`` in a folder (recursive).

    The dataset is ``key``, else ``reconstruction_rss``, else ``reconstruction_esc`` (the
    magnitude images; k-space is not read). See :func:`read_slices` for names and range.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: not an ``.h5`` file, no ``.h5`` in the folder, or a missing key (the
            message lists the keys present).
    """
    root = Path(path)
    if root.is_file() and not _is_h5(root):
        raise ValueError(f"{root}: not a fastMRI .h5 file")
    if root.is_dir() and not any(_is_h5(p) for p in root.rglob("*")):
        raise ValueError(f"{root}: no .h5 files in this folder")
    return read_slices(root, key=key)


def read_image_folder(folder: str | os.PathLike[str]) -> list[Example]:
    """The images of a folder (not recursive) as file-backed Examples named by their stem.

    Raises:
        FileNotFoundError: no such folder.
        ValueError: no images in it, or two files with one stem (``a.png``, ``a.jpg``).
    """
    files = list_images(folder)
    if not files:
        raise ValueError(f"{folder}: no images found")
    stems: dict[str, Path] = {}
    for f in files:
        if f.stem in stems:
            raise ValueError(
                f"{folder}: {stems[f.stem].name} and {f.name} share the name {f.stem!r}"
            )
        stems[f.stem] = f
    return [Example(f.stem, f) for f in files]


def _is_h5(p: Path) -> bool:
    return p.name.lower().endswith((".h5", ".hdf5"))


def _volumes_in(folder: Path) -> Iterator[Path]:
    entries = sorted(e for e in folder.iterdir() if not e.name.startswith("."))
    files = [e for e in entries if e.is_file()]
    yield from (f for f in files if f.name.lower().endswith(VOLUME_SUFFIXES))
    if any(is_dicom(f) for f in files if not f.name.lower().endswith(VOLUME_SUFFIXES)):
        yield folder
    for sub in entries:
        if sub.is_dir():
            yield from _volumes_in(sub)


def _volume_stem(vol_path: Path, root: Path) -> str:
    rel = vol_path.relative_to(root) if vol_path != root else Path(vol_path.name)
    text = rel.as_posix()
    if text == ".":
        text = root.name
    for suffix in (*VOLUME_SUFFIXES, ".dcm"):
        if text.lower().endswith(suffix):
            text = text[: -len(suffix)]
            break
    return text.replace("/", "_")


# ------------------------------------------------------------------------- the formats


@dataclass(frozen=True)
class Format:
    """A kind of user file or folder: the paths it takes, its data kind, its reader."""

    kind: str  # face, photo, mri or haze (restorekit.data.KINDS)
    matches: Callable[[Path], bool]
    read: Callable[[Path], list[Example]]


def _is_image(p: Path) -> bool:
    return p.name.lower().endswith(IMAGE_SUFFIXES)


FORMATS: Registry[Format] = Registry("data format", ordered=True)
"""User data formats, in the order they are tried: the first whose ``matches`` takes the
path reads it (volumes last: any other file, or a folder without images)."""

FORMATS.add(
    "fer2013_csv",
    Format("face", lambda p: p.is_file() and p.suffix.lower() == ".csv", read_fer2013),
    paper="FER2013 (Goodfellow et al. 2013), https://arxiv.org/abs/1307.0414",
)
FORMATS.add(
    "image",
    Format("photo", lambda p: p.is_file() and _is_image(p), lambda p: [Example(p.stem, p)]),
    paper="one image file",
)
FORMATS.add(
    "image_folder",
    Format("photo", lambda p: p.is_dir() and any(map(_is_image, p.iterdir())), read_image_folder),
    paper="a folder of images",
)
FORMATS.add(
    "volumes",
    Format("mri", lambda p: True, read_slices),
    paper="NIfTI, DICOM or fastMRI .h5 volumes (Zbontar et al. 2018), slice by slice",
)
