"""Write a ready dataset folder from a source: clean images, degraded once with a seed.

``restorekit data prepare`` calls :func:`prepare_dataset`. The folder it writes is what
:func:`~restorekit.data.datasets.open_dataset` (and so training and evaluation) reads::

    OUT/gt/<name>.png            clean images
    OUT/lq/<name>.png            degraded images            (paired layout), or
    OUT/degraded/<name>.png      + OUT/mask/<name>.png       (triplet layout: the
                                                              degradation returns a mask)
    OUT/dataset.json             source, degradation, seed, count, layout, splits

Image ``i`` is item ``i`` of epoch 0 of :class:`~restorekit.data.datasets.SyntheticPairs`
with the same degradation, seed and crop, rounded to 8 bits (16 for MRI), so a prepared
folder and the on-the-fly dataset agree. Writing clips to [0, 1]: the unclipped noise
presets (``gaussian_15/25/50``) lose their few values outside it. ``dataset.json`` is
written last and atomically: a folder without it is incomplete.

Safety: a non-empty output folder is refused, unless ``force`` is given *and* the folder
holds a ``dataset.json`` (an earlier prepare); then only its ``gt``, ``lq``, ``degraded``
and ``mask`` sub-folders and ``dataset.json`` are replaced, nothing else is touched.

Reference: the folder layouts of :mod:`restorekit.data.datasets` (SPEC.md A-D).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from restorekit.data.datasets import DATASET_JSON, SyntheticPairs
from restorekit.data.formats import FORMATS
from restorekit.data.sources import SOURCES, Example, get_source
from restorekit.data.transforms import split_indices
from restorekit.degrade import create_degradation
from restorekit.io import write_image
from restorekit.utils import atomic_path

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_DEGRADATION", "load_examples", "prepare_dataset"]

DEFAULT_DEGRADATION = {
    "photo": "gaussian_25",
    "face": "gaussian_low",
    "mri": "bicubic_x2",
    "haze": "haze",
}
"""The degradation ``prepare`` applies when none is named, by the source's kind."""

_LAYOUT_DIRS = ("gt", "lq", "degraded", "mask")


def load_examples(source: str | os.PathLike[str]) -> tuple[str, list[Example]]:
    """The kind and clean images of a registered source name or of a user's file/folder.

    Paths are read by the first of :data:`~restorekit.data.formats.FORMATS` that takes
    them: a ``.csv`` is FER2013 (``"face"``); one image or a folder of images is
    ``"photo"``; a NIfTI, DICOM or ``.h5`` file, or a folder without images, is read slice
    by slice (``"mri"``).

    Raises:
        ValueError: neither a source name nor an existing path (lists the sources).
        SourceUnavailableError: the source is not installed (says what to install).
    """
    text = os.fspath(source)
    if text in SOURCES:
        src = get_source(text)
        return src.kind, src.load()
    path = Path(text)
    if not path.exists():
        raise ValueError(
            f"{text!r} is neither a data source ({', '.join(SOURCES)}) nor an "
            "existing file or folder"
        )
    fmt = next(f for f in FORMATS.values() if f.matches(path))
    return fmt.kind, fmt.read(path)


def _clear_output(out: Path, force: bool) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise ValueError(f"{out}: exists and is not a folder")
    if not any(out.iterdir()):
        return
    if not force:
        raise ValueError(
            f"{out}: folder is not empty; choose a new one, or --force to replace "
            "a dataset written by `restorekit data prepare`"
        )
    if not (out / DATASET_JSON).is_file():
        raise ValueError(
            f"{out}: --force replaces only a folder holding {DATASET_JSON} "
            "(one written by `restorekit data prepare`); this one has none"
        )
    (out / DATASET_JSON).unlink()  # first, so an interrupted rewrite is seen as incomplete
    for sub in _LAYOUT_DIRS:
        if (out / sub).is_dir():
            shutil.rmtree(out / sub)


def prepare_dataset(
    source: str | os.PathLike[str] | Sequence[Example],
    out: str | os.PathLike[str],
    *,
    degradation: str | None = None,
    seed: int = 0,
    limit: int | None = None,
    crop: int | None = None,
    force: bool = False,
    kind: str = "photo",
    progress: Callable[[Iterable[int]], Iterable[int]] | None = None,
) -> dict[str, Any]:
    """Degrade a source's images once and write them as a dataset folder (see the module).

    Args:
        source: a source name (``restorekit data list``), a user's file or folder
            (:func:`load_examples`), or a list of Examples.
        out: the output folder (created).
        degradation: preset name; ``None``: :data:`DEFAULT_DEGRADATION` for the kind.
        seed: seeds each image's crop and degradation (with its index), and the split.
        limit: use only the first ``limit`` images (in the source's fixed order).
        crop: take a seeded random ``crop`` x ``crop`` patch of each clean image (a
            multiple of the SR scale); ``None`` keeps whole images (modcropped for SR).
        force: replace an earlier prepare's output (see the module's "Safety").
        kind: the kind of Examples passed directly (names and defaults use it).
        progress: wraps the loop over images (a progress bar), or ``None``.

    Returns:
        The ``dataset.json`` content: source, kind, degradation, seed, crop, scale, count,
        layout, bit depth and ``splits`` (name lists for ``train``/``val``/``test``: the
        source's own split when every image has one, as FER2013's Usage; else 70/20/10
        by ``seed``).

    Raises:
        ValueError: unknown source or degradation, a non-empty output folder, an image
            smaller than ``crop`` (named).
    """
    if isinstance(source, (str, os.PathLike)):
        kind, examples = load_examples(source)
        label = os.fspath(source)
    else:
        examples, label = list(source), "examples"
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        examples = examples[:limit]
    if not examples:
        raise ValueError(f"{label}: no images")
    name = degradation or DEFAULT_DEGRADATION[kind]
    op = create_degradation(name)  # unknown names fail before anything is written
    dataset = SyntheticPairs(examples, op, seed=seed, crop=crop)
    target = Path(out)
    _clear_output(target, force)
    # 16-bit keeps the 12-16-bit range of MRI; photos and faces are 8-bit sources.
    bit_depth = 16 if kind == "mri" else 8
    layout, lq_dir = "paired", "lq"
    indices: Iterable[int] = range(len(dataset))
    for i in progress(indices) if progress else indices:
        item = dataset[i]
        if i == 0 and "mask" in item:
            layout, lq_dir = "triplet", "degraded"
        write_image(target / "gt" / f"{item['name']}.png", item["gt"], bit_depth=bit_depth)
        write_image(target / lq_dir / f"{item['name']}.png", item["lq"], bit_depth=bit_depth)
        if layout == "triplet":
            write_image(target / "mask" / f"{item['name']}.png", item["mask"])
    names = [e.name for e in dataset.examples]
    meta = {
        "source": label,
        "kind": kind,
        "degradation": name,
        "degradation_repr": repr(op),
        "seed": seed,
        "crop": crop,
        "scale": dataset.scale,
        "count": len(names),
        "layout": layout,
        "bit_depth": bit_depth,
        "splits": _splits(examples, names, seed),
    }
    with atomic_path(target / DATASET_JSON) as tmp:
        tmp.write_text(json.dumps(meta, indent=2) + "\n")
    logger.info("wrote %d %s pairs (%s, seed %d) to %s", len(names), layout, name, seed, target)
    return meta


def _splits(examples: Sequence[Example], names: list[str], seed: int) -> dict[str, list[str]]:
    if all(e.split is not None for e in examples):
        return {s: [e.name for e in examples if e.split == s] for s in ("train", "val", "test")}
    parts = split_indices(len(names), seed=seed)
    return {
        s: [names[i] for i in part] for s, part in zip(("train", "val", "test"), parts, strict=True)
    }
