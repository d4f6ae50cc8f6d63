"""Clean images to train and evaluate on, from sources installed offline.

Installed sources (nothing is ever downloaded; see ``SOURCES`` and ``restorekit data list``):

- ``skimage_photos``: the photos and textures inside the scikit-image wheel;
- ``sklearn_photos``: the two photos inside the scikit-learn wheel;
- ``wallpapers``: the real photos of the apt package ``plasma-workspace-wallpapers``
  (a DIV2K-like pool of 2560x1600 photos; optional);
- ``lomiri_photos``: the 13 real photos of the apt packages ``lomiri-wallpapers-20.04`` and
  ``lomiri-wallpapers-16.04`` (2-6k pixels wide; optional); restorekit holds them out of
  its photo training, as held-out test photos for the denoisers;
- ``gcompris_photos``: the real photos inside the Qt resource bundles of the apt package
  ``gcompris-qt-data`` (wildlife, monuments, animals; 106 photos, 1-2k pixels wide;
  optional), a training pool;
- ``lfw_faces``: scikit-image's LFW face crops (25x25) resized to the face task's 48x48 gray;
- ``mni152``: axial slices of nilearn's MNI152 T1 template (read with nibabel);
- ``dicom_mr``: the MR images of pydicom's test data (pydicom-data);
- ``motorcycle``: the skimage Middlebury motorcycle with depth from its true disparity, for haze.

Users' own files are read into the same :class:`Example` records by ``formats.py``.

References:
    - scikit-image data: https://scikit-image.org/docs/stable/api/skimage.data.html
    - LFW (Huang et al. 2007): http://vis-www.cs.umass.edu/lfw/
    - MNI152 2009a (Fonov et al. 2011): https://doi.org/10.1016/j.neuroimage.2010.07.033
    - Middlebury 2014 stereo (Scharstein et al. 2014):
      https://vision.middlebury.edu/stereo/data/scenes2014/
"""

from __future__ import annotations

import importlib.util
import io
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from restorekit.data.rcc import read_rcc
from restorekit.io import decode_image, list_images, read_image, read_image_info, read_volume
from restorekit.registry import Registry

logger = logging.getLogger(__name__)

__all__ = [
    "BACKGROUNDS_ENV",
    "GCOMPRIS_BUNDLES",
    "GCOMPRIS_ENV",
    "KINDS",
    "LOMIRI_PHOTOS",
    "SOURCES",
    "WALLPAPERS_ENV",
    "WALLPAPER_NAMES",
    "Example",
    "Source",
    "SourceUnavailableError",
    "get_source",
    "list_sources",
    "summarize_shapes",
]

KINDS = ("photo", "face", "mri", "haze")
"""What a source's images are for: natural photos, 48x48 faces, MRI slices, haze scenes."""

WALLPAPERS_ENV = "RESTOREKIT_WALLPAPERS"
"""Environment variable: a folder to use instead of ``/usr/share/wallpapers``."""

WALLPAPER_NAMES = (
    "BytheWater",
    "ColdRipple",
    "ColorfulCups",
    "DarkestHour",
    "EveningGlow",
    "FallenLeaf",
    "Grey",
    "Kite",
    "OneStandsOut",
    "Path",
    "summer_1am",
)
"""The plasma wallpapers that are real photographs (the package's others are renders)."""

BACKGROUNDS_ENV = "RESTOREKIT_BACKGROUNDS"
"""Environment variable: a folder to use instead of ``/usr/share/backgrounds``."""

LOMIRI_PHOTOS = (
    "Bridge_by_Sander_Klootwijk.jpg",
    "Dragonfly_by_Bolly.jpg",
    "Kleiber_by_Lukas_Baubkus.jpg",
    "Picture_0B_by_freespace.jpg",
    "Picture_1A_by_freespace.jpg",
    "Wine_by_Jakkub_Mede.jpg",
    "aitzgorri_by_Aitzol_Berasategi.jpg",
    "free_by_Peter_Nerlich.jpg",
    "friends_by_Aitzol_Berasategi.jpg",
    "life_by_Aitzol_Berasategi.jpg",
    "picosdeeuropa_by_Aitzol_Berasategi.jpg",
    "seeding_by_Clements_Engelhardt.jpg",
    "sunset_by_Aitzol_Berasategi.jpg",
)
"""The lomiri wallpapers (20.04 and 16.04) that are real photographs; the others there
are renders, as are all of gnome-backgrounds, ukui-wallpapers, sway-backgrounds and
lomiri-wallpapers (checked by eye, session 13)."""

GCOMPRIS_ENV = "RESTOREKIT_GCOMPRIS"
"""Environment variable: a folder to use instead of ``/usr/share/gcompris-qt/rcc``."""

GCOMPRIS_BUNDLES = ("erase", "explore_monuments", "explore_world_animals", "explore_farm_animals")
"""The gcompris-qt-data bundles whose large images are real photographs: 33 wildlife
photos (1920x1080), 49 monuments and landscapes and 24 animals (1024 wide). Its other
bundles hold drawings, paintings, renders and underwater photos (checked by eye)."""

GCOMPRIS_MIN_SIDE = 300
"""Images in those bundles with a shorter side below this are icons and thumbnails."""

FACE_SIZE = 48
VOLUME_SUFFIXES = (".nii", ".nii.gz", ".h5", ".hdf5")


MNI152_FILE = "datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
"""The MNI152 2009a T1 template, below nilearn's package folder."""


def foreground_fraction(images: torch.Tensor) -> torch.Tensor:
    """Per image of (S, C, H, W), or for one (C, H, W) image, the fraction of pixels above
    5% of the [0, 1] range: (S,) or 0-d. Slices below a few percent are empty edges of a
    volume, which teach nothing and have no defined PSNR."""
    flat = (images > 0.05).flatten(-3).float()
    return flat.mean(-1)


class SourceUnavailableError(FileNotFoundError):
    """An optional source whose package or files are not installed; the message says how."""


@dataclass(frozen=True, eq=False)
class Example:
    """One clean image, held in memory or read from its file when used.

    Attributes:
        name: A name unique within its source, usable as a file stem.
        data: The image, (C, H, W) float32 in [0, 1]; the image file to read it from, or
            the encoded bytes of one (a photo inside a bundle), so that large photo
            pools are not held in memory decoded.
        depth: (1, H, W) normalised scene depth in [0, 1] for haze, when known.
        split: ``"train"``, ``"val"`` or ``"test"`` when the source fixes it (FER2013).
        label: A class label when the source has one (FER2013's emotion, 0-6).
    """

    name: str
    data: torch.Tensor | Path | bytes
    depth: torch.Tensor | None = None
    split: str | None = None
    label: int | None = None

    @property
    def image(self) -> torch.Tensor:
        """The image, (C, H, W) float32 in [0, 1], C = 1 or 3 (an alpha channel is dropped)."""
        if isinstance(self.data, torch.Tensor):
            return self.data
        x = (
            decode_image(self.data, self.name)
            if isinstance(self.data, bytes)
            else read_image(self.data)
        )
        return x[:3] if x.shape[0] >= 3 else x[:1]


# ----------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class Source:
    """A named set of clean images that ships with an installed package.

    Subclasses implement :meth:`_find` (what is missing, or ``None``) and :meth:`load`.
    Loading is deterministic: the same images, in the same order, every time.

    Attributes:
        name: Registry name (``restorekit data prepare NAME``).
        description: What it yields, in one line.
        kind: One of :data:`KINDS`.
    """

    name: str
    description: str
    kind: str

    def available(self) -> bool:
        """Whether every package and file this source needs is installed."""
        return self._find() is None

    def unavailable_reason(self) -> str:
        """Why the source cannot load, naming what to install; ``""`` when it can."""
        return self._find() or ""

    def load(self) -> list[Example]:
        """The source's images, in a fixed order.

        Raises:
            SourceUnavailableError: a package or file is missing (the message says which).
        """
        raise NotImplementedError

    def shapes(self) -> list[tuple[int, int, int]]:
        """(C, H, W) of each image, from file headers where possible (cheap)."""
        return [tuple(e.image.shape) for e in self.load()]  # type: ignore[misc]

    def summary(self) -> str:
        """Count, channels and sizes in a few words, e.g. ``"100 gray 48x48"``.

        Raises:
            SourceUnavailableError: the source is not installed.
        """
        return summarize_shapes(self.shapes())

    def _find(self) -> str | None:
        raise NotImplementedError

    def _check(self) -> None:
        reason = self._find()
        if reason:
            raise SourceUnavailableError(f"source {self.name!r}: {reason}")


def summarize_shapes(shapes: Sequence[tuple[int, int, int]]) -> str:
    """``"13 RGB/gray 172x448..1411x1411"``-style summary of (C, H, W) shapes.

    Example:
        >>> summarize_shapes([(1, 48, 48)] * 100)
        '100 gray 48x48'
        >>> summarize_shapes([(3, 300, 451), (1, 512, 512)])
        '2 RGB/gray 300x451..512x512'
    """
    if not shapes:
        return "0 images"
    kinds = "/".join(k for c, k in ((3, "RGB"), (1, "gray")) if any(s[0] == c for s in shapes))
    by_area = sorted({(h * w, h, w) for _, h, w in shapes})
    lo, hi = f"{by_area[0][1]}x{by_area[0][2]}", f"{by_area[-1][1]}x{by_area[-1][2]}"
    return f"{len(shapes)} {kinds} {lo}" + ("" if lo == hi else f"..{hi}")


def _package_dir(package: str) -> Path | None:
    """The folder of an installed package, found without importing it (imports are slow,
    and nilearn's would fail: it is installed without its dependencies)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _file_shapes(paths: Sequence[Path]) -> list[tuple[int, int, int]]:
    shapes = []
    for p in paths:
        info = read_image_info(p)
        shapes.append((3 if info.channels >= 3 else 1, info.height, info.width))
    return shapes


@dataclass(frozen=True)
class PackageImages(Source):
    """Image files inside an installed Python package's folder, read on use.

    Attributes:
        package: The package that holds them (``"skimage"``).
        folder: Their folder inside the package (``"data"``).
        files: File names, in the order they are yielded; each becomes an Example named
            by its stem.
        install: What to run when they are missing.
    """

    package: str = ""
    folder: str = ""
    files: tuple[str, ...] = ()
    install: str = ""

    def _paths(self) -> list[Path]:
        root = _package_dir(self.package)
        base = root / self.folder if root is not None else Path(self.folder)
        return [base / f for f in self.files]

    def _find(self) -> str | None:
        if _package_dir(self.package) is None:
            return f"the {self.package} package is not installed ({self.install})"
        missing = [p.name for p in self._paths() if not p.is_file()]
        if missing:
            return f"{self.package} lacks {', '.join(missing)} (reinstall: {self.install})"
        return None

    def load(self) -> list[Example]:
        self._check()
        return [Example(p.stem, p) for p in self._paths()]

    def shapes(self) -> list[tuple[int, int, int]]:
        self._check()
        return _file_shapes(self._paths())


@dataclass(frozen=True)
class Wallpapers(Source):
    """The photographs of plasma-workspace-wallpapers, at their largest size.

    The folder is ``$RESTOREKIT_WALLPAPERS`` when set, else ``/usr/share/wallpapers``;
    each photo is ``<folder>/<Name>/contents/images/<W>x<H>.<ext>`` and the 2560x1600
    file is taken when present, else the largest. Only :data:`WALLPAPER_NAMES` are used.
    """

    def root(self) -> Path:
        """The folder searched, read from the environment at each call."""
        return Path(os.environ.get(WALLPAPERS_ENV) or "/usr/share/wallpapers")

    def _paths(self) -> list[Path]:
        found = []
        for name in WALLPAPER_NAMES:
            images = self.root() / name / "contents" / "images"
            if images.is_dir():
                best = _largest_wallpaper(list_images(images))
                if best is not None:
                    found.append(best)
        return found

    def _find(self) -> str | None:
        if self._paths():
            return None
        return (
            f"no wallpaper photos in {self.root()}: install them with "
            "`sudo apt-get install plasma-workspace-wallpapers`, or set "
            f"{WALLPAPERS_ENV} to a folder holding <Name>/contents/images/<W>x<H>.jpg"
        )

    def load(self) -> list[Example]:
        self._check()
        paths = self._paths()
        if len(paths) < len(WALLPAPER_NAMES):
            logger.info("wallpapers: %d of %d photos found", len(paths), len(WALLPAPER_NAMES))
        # Named by the wallpaper's folder, not the file ("2560x1600"), which all share.
        return [Example(p.parents[2].name, p) for p in paths]

    def shapes(self) -> list[tuple[int, int, int]]:
        self._check()
        return _file_shapes(self._paths())


@dataclass(frozen=True)
class BackgroundPhotos(Source):
    """Named photos in ``/usr/share/backgrounds`` (or ``$RESTOREKIT_BACKGROUNDS``), as apt
    wallpaper packages install them; each Example is named by the part before ``_by_``.
    The photos found are used; none found is an error naming the packages."""

    files: tuple[str, ...] = ()
    install: str = ""

    def _paths(self) -> list[Path]:
        root = Path(os.environ.get(BACKGROUNDS_ENV) or "/usr/share/backgrounds")
        return [root / f for f in self.files if (root / f).is_file()]

    def _find(self) -> str | None:
        if self._paths():
            return None
        return f"none of its photos are installed ({self.install}, or set {BACKGROUNDS_ENV})"

    def load(self) -> list[Example]:
        self._check()
        return [Example(p.stem.split("_by_")[0].lower(), p) for p in self._paths()]

    def shapes(self) -> list[tuple[int, int, int]]:
        self._check()
        return _file_shapes(self._paths())


@dataclass(frozen=True)
class GComprisPhotos(Source):
    """The photographs inside gcompris-qt-data's Qt resource bundles (:data:`GCOMPRIS_BUNDLES`),
    read with :func:`~restorekit.data.rcc.read_rcc` and held encoded (WebP) until used.

    The folder is ``$RESTOREKIT_GCOMPRIS`` when set, else ``/usr/share/gcompris-qt/rcc``;
    each Example is named ``<bundle>_<file stem>``. Images whose shorter side is below
    :data:`GCOMPRIS_MIN_SIDE` (icons, thumbnails) are left out.
    """

    def root(self) -> Path:
        """The folder searched, read from the environment at each call."""
        return Path(os.environ.get(GCOMPRIS_ENV) or "/usr/share/gcompris-qt/rcc")

    def _find(self) -> str | None:
        missing = [b for b in GCOMPRIS_BUNDLES if not (self.root() / f"{b}.rcc").is_file()]
        if not missing:
            return None
        return (
            f"{self.root()} lacks {', '.join(m + '.rcc' for m in missing)}: install them "
            f"with `sudo apt-get install gcompris-qt-data`, or set {GCOMPRIS_ENV}"
        )

    def _photos(self) -> list[tuple[str, bytes, tuple[int, int, int]]]:
        self._check()
        out = []
        for bundle in GCOMPRIS_BUNDLES:
            for inside, blob in read_rcc(self.root() / f"{bundle}.rcc").items():
                if Path(inside).suffix.lower() not in (".webp", ".jpg", ".jpeg", ".png"):
                    continue
                with Image.open(io.BytesIO(blob)) as im:  # the header only
                    shape = (1 if im.mode in ("1", "L", "LA", "I;16") else 3, im.height, im.width)
                if min(shape[1:]) >= GCOMPRIS_MIN_SIDE:
                    out.append((f"{bundle}_{Path(inside).stem}", blob, shape))
        return out

    def load(self) -> list[Example]:
        return [Example(name, blob) for name, blob, _ in self._photos()]

    def shapes(self) -> list[tuple[int, int, int]]:
        return [shape for _, _, shape in self._photos()]


def _largest_wallpaper(files: list[Path]) -> Path | None:
    preferred = [f for f in files if f.stem == "2560x1600"]
    if preferred:
        return preferred[0]
    sized = []
    for f in files:
        m = re.fullmatch(r"(\d+)x(\d+)", f.stem)
        if m:
            sized.append((int(m[1]) * int(m[2]), f.name, f))
    return max(sized)[2] if sized else (files[0] if files else None)


@dataclass(frozen=True)
class LFWFaces(Source):
    """scikit-image's LFW crops (the first 100 of ``lfw_subset.npy`` are faces), 25x25,
    resized with MATLAB-exact bicubic to 48x48 gray: the face task's stand-in for FER2013."""

    def _file(self) -> Path | None:
        root = _package_dir("skimage")
        return None if root is None else root / "data" / "lfw_subset.npy"

    def _find(self) -> str | None:
        file = self._file()
        if file is None or not file.is_file():
            return "scikit-image's lfw_subset.npy is missing (pip install scikit-image)"
        return None

    def load(self) -> list[Example]:
        from restorekit.degrade import imresize

        self._check()
        faces = torch.from_numpy(np.load(self._file())[:100].astype(np.float64))[:, None]
        faces = imresize(faces, size=(FACE_SIZE, FACE_SIZE)).clamp(0, 1).to(torch.float32)
        return [Example(f"lfw_{i:03d}", face) for i, face in enumerate(faces)]

    def shapes(self) -> list[tuple[int, int, int]]:
        self._check()
        return [(1, FACE_SIZE, FACE_SIZE)] * 100


@dataclass(frozen=True)
class MNI152(Source):
    """Axial slices of the MNI152 2009a T1 template that nilearn ships, read with nibabel.

    Slices whose foreground (voxels above 5% of the range) covers less than
    ``min_foreground`` of the slice are left out: an empty slice teaches a model nothing
    and its PSNR is undefined. Slices are ``data[:, :, z]`` (read_volume's order).
    """

    min_foreground: float = 0.05

    def _file(self) -> Path | None:
        root = _package_dir("nilearn")
        return None if root is None else root / MNI152_FILE

    def _find(self) -> str | None:
        file = self._file()
        if file is None or not file.is_file():
            return "nilearn's MNI152 template is missing (pip install --no-deps nilearn)"
        if _package_dir("nibabel") is None:
            return "reading the MNI152 template needs nibabel (pip install nibabel)"
        return None

    def load(self) -> list[Example]:
        self._check()
        vol = read_volume(self._file())
        fg = foreground_fraction(vol)
        return [
            Example(f"mni152_z{z:03d}", vol[z])
            for z in range(vol.shape[0])
            if fg[z] >= self.min_foreground
        ]


DICOM_MR_FILES = (
    "MR2_UNCR.dcm",
    "MR-SIEMENS-DICOM-WithOverlays.dcm",
    "emri_small.dcm",
    "MR_small.dcm",
)


@dataclass(frozen=True)
class DicomMR(Source):
    """The MR images of pydicom's test data, each frame a slice, each file normalised to [0, 1]."""

    def _paths(self) -> list[Path] | None:
        if _package_dir("pydicom") is None:
            return None
        from pydicom.data import get_testdata_file

        # download=False: pydicom would otherwise fetch files missing from pydicom-data.
        found = [get_testdata_file(name, download=False) for name in DICOM_MR_FILES]
        if any(f is None for f in found):
            return None
        return [Path(str(f)) for f in found]

    def _find(self) -> str | None:
        if _package_dir("pydicom") is None:
            return "pydicom is not installed (pip install pydicom pydicom-data)"
        if self._paths() is None:
            return "pydicom's test MR files are missing (pip install pydicom-data)"
        return None

    def load(self) -> list[Example]:
        self._check()
        out = []
        for path in self._paths() or []:
            vol = read_volume(path)
            stem = path.stem.replace("-", "_")
            if vol.shape[0] == 1:
                out.append(Example(stem, vol[0]))
            else:
                out.extend(Example(f"{stem}_f{k:02d}", s) for k, s in enumerate(vol))
        return out


@dataclass(frozen=True)
class MRIVolume:
    """One volume of :class:`MRIPool`: where it lies and which split it belongs to."""

    name: str
    package: str  # the package that ships it
    path: str  # below the package folder; pydicom's test files by name
    split: str
    what: str


MRI_VOLUMES = (
    MRIVolume("mni152", "nilearn", MNI152_FILE, "train",
              "MNI152 T1 template, brain, 1 mm (an average of 152 subjects)"),
    MRIVolume("mr2_uncr", "pydicom", "MR2_UNCR.dcm", "train",
              "shoulder, one 1024x1024 12-bit slice, cut into its 256x256 tiles with foreground"),
    MRIVolume("piesno", "dipy", "data/files/test_piesno.nii.gz", "train",
              "brain diffusion, 14 slices 96x96"),
    MRIVolume("s0_10slices", "dipy", "data/files/S0_10slices.nii.gz", "val",
              "brain b0, 10 slices 128x128, 2 mm"),
    MRIVolume("emri_small", "pydicom", "emri_small.dcm", "val", "10 frames 64x64"),
    MRIVolume("mr_small", "pydicom", "MR_small.dcm", "val", "head, one slice 64x64"),
    MRIVolume("t1_coronal", "dipy", "data/files/t1_coronal_slice.npy", "test",
              "single-subject brain T1, one coronal slice 256x256"),
    MRIVolume("siemens_abdomen", "pydicom", "MR-SIEMENS-DICOM-WithOverlays.dcm", "test",
              "abdomen, one slice 484x484"),
    MRIVolume("example4d", "nibabel", "tests/data/example4d.nii.gz", "test",
              "brain EPI, 24 slices 128x96 (first time point)"),
)  # fmt: skip
"""The offline MRI volumes of :class:`MRIPool`, each wholly in one split."""


@dataclass(frozen=True)
class MRIPool(Source):
    """Every offline MRI volume of DATA.md, split by volume (:data:`MRI_VOLUMES`).

    Each volume is normalised to [0, 1] on its own and its slices with less than 5%
    foreground are dropped. The split is fixed, not drawn per slice, so no test slice
    neighbours a training slice: train is the MNI152 template, the shoulder and a brain
    diffusion volume; validation two small brain/head volumes and a head slice; test a
    single-subject T1 brain slice, an abdomen and a brain EPI volume. Needs nilearn,
    nibabel, pydicom with pydicom-data, and dipy (its data files only: ``pip install
    --no-deps dipy``).
    """

    min_foreground: float = 0.05
    tile: int = 256  # large training slices are cut into tiles, so one big slice is not
    # one example among hundreds

    def _file(self, vol: MRIVolume) -> Path | None:
        if vol.package == "pydicom":
            if _package_dir("pydicom") is None:
                return None
            from pydicom.data import get_testdata_file

            found = get_testdata_file(vol.path, download=False)
            return None if found is None else Path(str(found))
        root = _package_dir(vol.package)
        return None if root is None else root / vol.path

    def _find(self) -> str | None:
        missing = sorted({v.package for v in MRI_VOLUMES if not _is_file(self._file(v))})
        if "pydicom" in missing and _package_dir("pydicom") is not None:
            missing[missing.index("pydicom")] = "pydicom-data"
        if missing:
            # nilearn and dipy are read as files, never imported: --no-deps is enough.
            names = ", ".join(missing)
            return f"the MRI pool needs {names} (pip install --no-deps {' '.join(missing)})"
        return None

    def load(self) -> list[Example]:
        self._check()
        out = []
        for vol in MRI_VOLUMES:
            file = self._file(vol)
            assert file is not None  # _check
            if file.suffix == ".npy":
                data = torch.from_numpy(np.load(file).astype(np.float32))[None, None]
                lo, hi = data.min(), data.max()
                slices = (data - lo) / (hi - lo) if hi > lo else torch.zeros_like(data)
            else:
                slices = read_volume(file)
            fg = foreground_fraction(slices)
            kept = [(k, s) for k, s in enumerate(slices) if fg[k] >= self.min_foreground]
            for k, s in kept:
                name = vol.name if len(slices) == 1 else f"{vol.name}_z{k:03d}"
                out.extend(self._tiles(name, s, vol.split))
        return out

    def _tiles(self, name: str, image: torch.Tensor, split: str) -> list[Example]:
        """A large training slice as tiles with foreground; anything else whole."""
        h, w = image.shape[-2:]
        if split != "train" or (h < 2 * self.tile and w < 2 * self.tile):
            return [Example(name, image, split=split)]
        t = self.tile
        tiles = [
            (f"{name}_t{i:02d}{j:02d}", image[:, i * t : (i + 1) * t, j * t : (j + 1) * t])
            for i in range(h // t)
            for j in range(w // t)
        ]
        return [
            Example(n, tile.clone(), split=split)
            for n, tile in tiles
            if float(foreground_fraction(tile)) >= self.min_foreground
        ]


def _is_file(path: Path | None) -> bool:
    return path is not None and path.is_file()


@dataclass(frozen=True)
class Motorcycle(Source):
    """The left view of skimage's Middlebury motorcycle (500x741 RGB) with normalised depth
    from its true disparity (holes filled from the background), for haze synthesis."""

    def _files(self) -> tuple[Path, Path] | None:
        root = _package_dir("skimage")
        if root is None:
            return None
        return root / "data" / "motorcycle_left.png", root / "data" / "motorcycle_disp.npz"

    def _find(self) -> str | None:
        files = self._files()
        if files is None or not all(f.is_file() for f in files):
            return "scikit-image's motorcycle files are missing (pip install scikit-image)"
        return None

    def load(self) -> list[Example]:
        from restorekit.degrade import disparity_to_depth

        self._check()
        image_file, disp_file = self._files()  # type: ignore[misc]
        with np.load(disp_file) as npz:
            disparity = torch.from_numpy(npz["arr_0"].astype(np.float32))
        depth = disparity_to_depth(disparity, fill="background")[0]
        return [Example("motorcycle", read_image(image_file)[:3], depth=depth)]

    def shapes(self) -> list[tuple[int, int, int]]:
        self._check()
        return _file_shapes(self._files()[:1])  # type: ignore[index]


SOURCES: Registry[Source] = Registry("data source", ordered=True)
"""Every installed source by name, in display order (``SOURCES.entry(name).kind``: face,
photo, mri or haze). A new source is a :class:`Source` added here."""

for _source in (
    PackageImages(
        "skimage_photos",
        "13 photos and textures from the scikit-image wheel (RGB and gray, 8-bit)",
        "photo",
        package="skimage",
        folder="data",
        files=(
            "astronaut.png",
            "camera.png",
            "coffee.png",
            "chelsea.png",
            "rocket.jpg",
            "hubble_deep_field.jpg",
            "retina.jpg",
            "ihc.png",
            "coins.png",
            "moon.png",
            "brick.png",
            "grass.png",
            "gravel.png",
        ),
        install="pip install scikit-image",
    ),
    PackageImages(
        "sklearn_photos",
        "2 RGB photos from the scikit-learn wheel (china, flower)",
        "photo",
        package="sklearn",
        folder="datasets/images",
        files=("china.jpg", "flower.jpg"),
        install="pip install scikit-learn",
    ),
    Wallpapers(
        "wallpapers",
        "11 RGB photos 2560x1600 from plasma-workspace-wallpapers (apt), a training pool",
        "photo",
    ),
    BackgroundPhotos(
        "lomiri_photos",
        "13 RGB photos, 1.4-6k pixels wide, from lomiri-wallpapers-20.04/-16.04 (apt), "
        "held out for testing",
        "photo",
        files=LOMIRI_PHOTOS,
        install="sudo apt-get install lomiri-wallpapers-20.04 lomiri-wallpapers-16.04",
    ),
    GComprisPhotos(
        "gcompris_photos",
        "106 RGB photos 1-2k pixels wide from gcompris-qt-data (apt), a training pool",
        "photo",
    ),
    LFWFaces("lfw_faces", "100 LFW face crops, 25x25 resized to 48x48 gray", "face"),
    MNI152(
        "mni152",
        "axial slices with brain of the MNI152 T1 template (nilearn), gray",
        "mri",
    ),
    DicomMR(
        "dicom_mr", "MR slices from pydicom-data's test files (12-bit and 16-bit), gray", "mri"
    ),
    MRIPool(
        "mri",
        "every offline MRI volume (MNI152, pydicom, nibabel, dipy), split by volume, gray",
        "mri",
    ),
    Motorcycle(
        "motorcycle", "skimage's motorcycle (left view) with depth from true disparity", "haze"
    ),
):
    SOURCES.add(_source.name, _source, kind=_source.kind, paper=_source.description)


def list_sources() -> list[str]:
    """Names of the registered sources, in display order."""
    return SOURCES.names()


def get_source(name: str) -> Source:
    """The registered source ``name``; unknown names raise ValueError listing the choices."""
    return SOURCES.get(name)
