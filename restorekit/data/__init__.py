"""Real data for training and evaluation: installed sources, users' formats, datasets.

- ``sources.py``: offline sources (``SOURCES``: scikit-image and scikit-learn photos, the
  plasma wallpapers, LFW faces, MNI152 and pydicom MR slices, the motorcycle with depth)
  and readers for FER2013 CSV, NIfTI / DICOM / fastMRI volumes and image folders;
- ``datasets.py``: paired / triplet / RESIDE folders, ``PairedImages``, ``SyntheticPairs``
  (seeded on-the-fly degradation), ``open_dataset``;
- ``transforms.py``: aligned crops across scales, flips/rotations, 70/20/10 splits;
- ``collate.py``: ``pad_collate`` (zero-pad a batch to its largest image, with sizes);
- ``prepare.py``: ``prepare_dataset``, behind ``restorekit data prepare``.
"""

from restorekit.data.collate import crop_to_sizes, pad_collate
from restorekit.data.datasets import (
    DATASET_JSON,
    LAYOUTS,
    PairedImages,
    PairFiles,
    SyntheticPairs,
    check_zoom,
    detect_layout,
    find_pairs,
    find_reside,
    find_triplets,
    item_seed,
    open_dataset,
)
from restorekit.data.formats import read_fastmri, read_fer2013, read_image_folder, read_slices
from restorekit.data.prepare import DEFAULT_DEGRADATION, load_examples, prepare_dataset
from restorekit.data.sources import (
    BACKGROUNDS_ENV,
    GCOMPRIS_ENV,
    KINDS,
    LOMIRI_PHOTOS,
    SOURCES,
    WALLPAPER_NAMES,
    WALLPAPERS_ENV,
    Example,
    Source,
    SourceUnavailableError,
    get_source,
    list_sources,
    summarize_shapes,
)
from restorekit.data.transforms import (
    crop_offsets,
    dihedral,
    modcrop,
    paired_random_crop,
    random_dihedral,
    split_indices,
    to_channels,
)

__all__ = [
    "BACKGROUNDS_ENV",
    "DATASET_JSON",
    "DEFAULT_DEGRADATION",
    "GCOMPRIS_ENV",
    "KINDS",
    "LAYOUTS",
    "LOMIRI_PHOTOS",
    "SOURCES",
    "WALLPAPERS_ENV",
    "WALLPAPER_NAMES",
    "Example",
    "PairFiles",
    "PairedImages",
    "Source",
    "SourceUnavailableError",
    "SyntheticPairs",
    "check_zoom",
    "crop_offsets",
    "crop_to_sizes",
    "detect_layout",
    "dihedral",
    "find_pairs",
    "find_reside",
    "find_triplets",
    "get_source",
    "item_seed",
    "list_sources",
    "load_examples",
    "modcrop",
    "open_dataset",
    "pad_collate",
    "paired_random_crop",
    "prepare_dataset",
    "random_dihedral",
    "read_fastmri",
    "read_fer2013",
    "read_image_folder",
    "read_slices",
    "split_indices",
    "summarize_shapes",
    "to_channels",
]
