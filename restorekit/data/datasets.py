"""Datasets of (``lq``, ``gt``[, ``mask``]) pairs: from folders on disk, or made on the fly.

Folder layouts (every pair is matched by file stem; suffixes may differ):

- paired: ``root/lq/x.png`` <-> ``root/gt/x.png`` (lq may be smaller by an integer scale);
- triplet: ``root/degraded/x.png``, ``root/mask/x.png``, ``root/gt/x.png`` (SPEC.md D);
- RESIDE: ``root/hazy/ID_k_beta.png`` <-> ``root/clear/ID.png`` (or ``gt/`` or ``GT/``),
  several hazy images per clear one; the clear ID is the hazy stem up to its first ``_``.

A file without its partner, or a pair whose sizes disagree, is an error that names the
files: nothing is dropped silently. :func:`open_dataset` reads a folder written by
``restorekit data prepare`` (or any of the layouts above), with its splits.

Every random choice of item ``i`` in epoch ``e`` comes from a generator seeded with
(seed, e, i), so an item is the same whatever the worker count or the order of access;
:meth:`set_epoch` moves to the next epoch's draws (the trainer calls it).

References:
    - RESIDE (Li et al. 2019, "Benchmarking Single-Image Dehazing and Beyond", IEEE TIP):
      https://arxiv.org/abs/1712.04143
    - BasicSR's paired-folder convention: https://github.com/XPixelGroup/BasicSR
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from restorekit.data.sources import Example
from restorekit.data.transforms import (
    augment_group,
    modcrop,
    paired_random_crop,
    photometric_jitter,
    random_dihedral,
    split_indices,
    to_channels,
)
from restorekit.degrade import Degradation, create_degradation, imresize
from restorekit.io import list_images, read_image, read_image_info
from restorekit.registry import Registry
from restorekit.utils import make_generator, single_thread

logger = logging.getLogger(__name__)

__all__ = [
    "DATASET_JSON",
    "LAYOUTS",
    "PairFiles",
    "PairedImages",
    "SyntheticPairs",
    "check_zoom",
    "detect_layout",
    "find_pairs",
    "find_reside",
    "find_triplets",
    "item_seed",
    "open_dataset",
]

DATASET_JSON = "dataset.json"
"""The description file that ``restorekit data prepare`` writes last into its folder."""

LAYOUTS: Registry[Callable[..., list[PairFiles]]] = Registry("dataset layout", ordered=True)
"""Dataset folder layouts: name -> the finder of its pairs, with ``extra["folders"]`` (its
sub-folders, as shown to users) and ``extra["detect"]`` (does a folder have them?). A
folder without ``dataset.json`` gets the first layout, in this order, that detects it;
a new layout is a finder and one ``LAYOUTS.add`` below them."""

_CLEAR_NAMES = ("clear", "gt", "GT")
_SHOW = 5  # how many unmatched names an error lists before "and N more"


@dataclass(frozen=True)
class PairFiles:
    """The files of one pair: ``lq`` (degraded or hazy), ``gt``, and a defect ``mask``."""

    name: str
    lq: Path
    gt: Path
    mask: Path | None = None


def check_zoom(zoom: Sequence[float], *, name: str = "zoom") -> tuple[float, float]:
    """``zoom`` as a (lo, hi) tuple of floats, checked: 0 < lo <= hi <= 1 (see
    :class:`SyntheticPairs`); ``name`` is the key a ValueError names.

    >>> check_zoom([0.25, 1])
    (0.25, 1.0)
    """
    lo, hi = (float(v) for v in zoom)
    if not 0 < lo <= hi <= 1:
        raise ValueError(f"{name} must be [lo, hi] with 0 < lo <= hi <= 1, got {[lo, hi]}")
    return lo, hi


def item_seed(seed: int, epoch: int, index: int) -> int:
    """The seed of item ``index`` in ``epoch``: a hash of the three, so nearby triples give
    unrelated streams (``seed + index`` would make item 1 of seed 0 equal item 0 of seed 1).

    Example:
        >>> item_seed(0, 0, 1) == item_seed(0, 0, 1), item_seed(0, 0, 1) == item_seed(1, 0, 0)
        (True, False)
    """
    state = np.random.SeedSequence([seed % 2**63, epoch, index]).generate_state(2)
    return int(state[0]) << 31 | int(state[1]) >> 1  # 63 bits: a valid manual_seed


# ------------------------------------------------------------------------------ folders


def _by_stem(folder: Path) -> dict[str, Path]:
    files = list_images(folder)
    out: dict[str, Path] = {}
    for f in files:
        if f.stem in out:
            raise ValueError(f"{folder}: {out[f.stem].name} and {f.name} share the name {f.stem!r}")
        out[f.stem] = f
    return out


def _fail_unmatched(root: Path, problems: list[str], what: str) -> None:
    if problems:
        more = f", and {len(problems) - _SHOW} more" if len(problems) > _SHOW else ""
        raise ValueError(f"{root}: {len(problems)} {what}: {'; '.join(problems[:_SHOW])}{more}")


def _match(root: Path, folders: dict[str, Path]) -> dict[str, dict[str, Path]]:
    """stem -> {role: file} for stems present in every folder; anything else is an error."""
    files = {role: _by_stem(folder) for role, folder in folders.items()}
    stems = sorted(set().union(*files.values()))
    problems = []
    for stem in stems:
        missing = [role for role in files if stem not in files[role]]
        if missing:
            have = next(files[r][stem] for r in files if stem in files[r])
            lacks = ", ".join(f"{folders[r].name}/{stem}.*" for r in missing)
            problems.append(f"{have.parent.name}/{have.name} has no {lacks}")
    _fail_unmatched(root, problems, "files without a partner")
    if not stems:
        raise ValueError(f"{root}: no images in {', '.join(f.name for f in folders.values())}")
    return {stem: {role: files[role][stem] for role in files} for stem in stems}


def _size(path: Path) -> tuple[int, int]:
    info = read_image_info(path)
    return info.height, info.width


def _check_sizes(root: Path, pairs: list[PairFiles], scale: int | None) -> int:
    """Check every pair's sizes from the headers; returns the scale (gt / lq)."""
    problems = []
    for p in pairs:
        (h, w), (gh, gw) = _size(p.lq), _size(p.gt)
        if scale is None and gh % h == 0 and gw % w == 0 and gh // h == gw // w:
            scale = gh // h  # the first pair fixes the scale of the set
        if scale is None or (h * scale, w * scale) != (gh, gw):
            problems.append(f"{p.name}: lq {h}x{w}, gt {gh}x{gw}")
        elif p.mask is not None and _size(p.mask) != (gh, gw):
            problems.append(f"{p.name}: mask {'x'.join(map(str, _size(p.mask)))}, gt {gh}x{gw}")
    _fail_unmatched(root, problems, f"pairs whose sizes disagree (scale {scale})")
    return scale or 1


def find_pairs(
    root: str | os.PathLike[str], *, lq: str = "lq", gt: str = "gt", check_sizes: bool = True
) -> list[PairFiles]:
    """Pairs ``root/lq/x.*`` <-> ``root/gt/x.*``, matched by stem, sorted by name.

    Args:
        root: the folder holding the two sub-folders.
        lq: name of the degraded sub-folder.
        gt: name of the ground-truth sub-folder.
        check_sizes: read each header and require gt = lq x one integer scale for all pairs.

    Raises:
        FileNotFoundError: a sub-folder is missing.
        ValueError: files without a partner, or sizes that disagree; the message lists up
            to five names and the count.
    """
    base = Path(root)
    matched = _match(base, {"lq": base / lq, "gt": base / gt})
    pairs = [PairFiles(stem, f["lq"], f["gt"]) for stem, f in matched.items()]
    if check_sizes:
        _check_sizes(base, pairs, None)
    return pairs


def find_triplets(
    root: str | os.PathLike[str],
    *,
    degraded: str = "degraded",
    mask: str = "mask",
    gt: str = "gt",
    check_sizes: bool = True,
) -> list[PairFiles]:
    """Triplets ``root/degraded/x.*``, ``root/mask/x.*``, ``root/gt/x.*`` (all one size).

    Raises:
        FileNotFoundError: a sub-folder is missing.
        ValueError: a file missing from one of the three, or sizes that disagree.
    """
    base = Path(root)
    matched = _match(base, {"lq": base / degraded, "mask": base / mask, "gt": base / gt})
    triplets = [PairFiles(stem, f["lq"], f["gt"], f["mask"]) for stem, f in matched.items()]
    if check_sizes:
        _check_sizes(base, triplets, 1)
    return triplets


def find_reside(
    root: str | os.PathLike[str],
    *,
    hazy: str = "hazy",
    clear: str | None = None,
    check_sizes: bool = True,
) -> list[PairFiles]:
    """RESIDE pairs: each hazy ``ID_k_beta.*`` (or ``ID_A_beta.*``) with its clear ``ID.*``.

    The clear ID is the hazy stem up to its first underscore, so one clear image serves
    every hazy version of it (ITS/OTS: ten or more). Pairs are named by the hazy stem.

    Args:
        root: the folder holding the hazy and clear sub-folders.
        hazy: name of the hazy sub-folder.
        clear: name of the clear sub-folder; ``None`` takes the first of ``clear``,
            ``gt``, ``GT`` that exists.
        check_sizes: require each hazy image to have its clear image's size.

    Raises:
        FileNotFoundError: a sub-folder is missing.
        ValueError: a hazy image without its clear image, or a clear image that no hazy
            image uses (both listed by name), or sizes that disagree.
    """
    base = Path(root)
    if clear is None:
        clear = next((c for c in _CLEAR_NAMES if (base / c).is_dir()), None)
        if clear is None:
            raise FileNotFoundError(f"{base}: no clear/, gt/ or GT/ folder beside hazy/")
    hazy_files, clear_files = _by_stem(base / hazy), _by_stem(base / clear)
    pairs, problems, used = [], [], set()
    for stem, file in hazy_files.items():
        cid = stem.split("_", 1)[0]
        if cid in clear_files:
            pairs.append(PairFiles(stem, file, clear_files[cid]))
            used.add(cid)
        else:
            problems.append(f"{hazy}/{file.name} has no {clear}/{cid}.*")
    problems += [
        f"{clear}/{f.name} has no hazy image" for c, f in clear_files.items() if c not in used
    ]
    _fail_unmatched(base, problems, "files without a partner")
    if not pairs:
        raise ValueError(f"{base}: no images in {hazy}/ and {clear}/")
    if check_sizes:
        _check_sizes(base, pairs, 1)
    return sorted(pairs, key=lambda p: p.name)


def _has(*folders: str) -> Callable[[Path], bool]:
    return lambda base: all((base / d).is_dir() for d in folders)


def _reside(base: Path) -> bool:
    return (base / "hazy").is_dir() and any((base / c).is_dir() for c in _CLEAR_NAMES)


_TRIPLET = {"folders": "degraded/ + mask/ + gt/", "detect": _has("degraded", "mask", "gt")}
LAYOUTS.add("triplet", find_triplets, extra=_TRIPLET)
LAYOUTS.add("paired", find_pairs, extra={"folders": "lq/ + gt/", "detect": _has("lq", "gt")})
LAYOUTS.add("reside", find_reside, extra={"folders": "hazy/ + clear/", "detect": _reside})


def detect_layout(root: str | os.PathLike[str]) -> str:
    """A name of :data:`LAYOUTS`: from ``dataset.json``, else the first whose sub-folders
    the folder has.

    Raises:
        FileNotFoundError: no such folder, or none of the layouts' sub-folders.
    """
    base = Path(root)
    if not base.is_dir():
        raise FileNotFoundError(f"{base}: no such folder")
    meta = base / DATASET_JSON
    if meta.is_file():
        layout = json.loads(meta.read_text()).get("layout")
        if layout in LAYOUTS:
            return str(layout)
        raise ValueError(f"{meta}: layout {layout!r} is not one of {list(LAYOUTS)}")
    for entry in LAYOUTS.entries():
        if entry.extra["detect"](base):
            return entry.name
    expected = ", ".join(e.extra["folders"] for e in LAYOUTS.entries())
    raise FileNotFoundError(f"{base}: not a dataset folder; expected one of {expected}")


# ----------------------------------------------------------------------------- datasets


def _read(path: Path, channels: int | None, max_pixels: int | None) -> torch.Tensor:
    x = read_image(path, max_pixels=max_pixels)
    x = x[:3] if x.shape[0] >= 3 else x[:1]  # alpha is not part of the image content
    return x if channels is None else to_channels(x, channels)


class _Epochs(Dataset):
    """Shared epoch bookkeeping: item randomness is seeded by (seed, epoch, index)."""

    seed: int
    epoch: int = 0

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch``'s draws from now on (crops, flips, degradation samples)."""
        self.epoch = int(epoch)

    def _generator(self, index: int) -> torch.Generator:
        return make_generator(item_seed(self.seed, self.epoch, index))


class PairedImages(_Epochs):
    """Pairs (or triplets) read from files, with aligned random crops and flips/rotations.

    Args:
        pairs: from :func:`find_pairs`, :func:`find_triplets` or :func:`find_reside`.
        crop: side of the random ``gt`` crop (a multiple of the scale); ``None`` keeps
            whole images (batch them with :func:`~restorekit.data.collate.pad_collate`).
        augment: apply one of the eight flips/rotations, the same to lq, gt and mask
            (``"hflip"``: the left-right mirror only; see :func:`augment_group`).
        seed: seeds the crops and flips, with the epoch and the index.
        channels: convert images to 1 or 3 channels; ``None`` keeps them as stored.
        max_pixels: refuse larger images (see :func:`restorekit.io.read_image`).

    Items are dicts: ``lq`` (C, h, w), ``gt`` (C', H, W), ``mask`` (1, H, W) in {0, 1}
    for triplets, and ``name``; float32 in [0, 1].
    """

    def __init__(
        self,
        pairs: Sequence[PairFiles],
        *,
        crop: int | None = None,
        augment: bool | str = False,
        seed: int = 0,
        channels: int | None = None,
        max_pixels: int | None = None,
    ) -> None:
        if not pairs:
            raise ValueError("PairedImages needs at least one pair")
        self.pairs = list(pairs)
        self.crop, self.augment, self.seed = crop, augment_group(augment), int(seed)
        self.channels, self.max_pixels = channels, max_pixels

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        p = self.pairs[index]
        lq = _read(p.lq, self.channels, self.max_pixels)
        gt = _read(p.gt, self.channels, self.max_pixels)
        mask = None
        if p.mask is not None:
            mask = (_read(p.mask, None, self.max_pixels)[:1] > 0.5).to(torch.float32)
        gen = self._generator(index)
        if self.crop is not None:
            scale = gt.shape[-2] // lq.shape[-2]
            try:
                lq, gt, mask = paired_random_crop(
                    lq, gt, size=self.crop, scale=scale, mask=mask, generator=gen
                )
            except ValueError as err:
                raise ValueError(f"{p.gt}: {err}") from None
        if self.augment:
            lq, gt, mask = random_dihedral(lq, gt, mask, generator=gen, group=self.augment)
        item: dict[str, Any] = {"lq": lq.contiguous(), "gt": gt.contiguous(), "name": p.name}
        if mask is not None:
            item["mask"] = mask.contiguous()
        return item


class SyntheticPairs(_Epochs):
    """Pairs made on the fly: a clean image, cropped and flipped, then degraded.

    Item ``i`` in epoch ``e`` draws its crop, flip and degradation from one generator
    seeded with (seed, e, i): the same triple always gives the same pair, whatever the
    worker count or access order, and each epoch sees fresh noise.

    For a resizing degradation (``bicubic_xN``, whose module has ``scale``) the ``gt`` is
    the crop (a multiple of the scale) or the whole image modcropped, and ``lq`` is
    1/scale of it. A haze degradation receives the example's ``depth`` when it has one
    (cropped and flipped like the image), else it uses its depth prior.

    Args:
        images: clean images: :class:`~restorekit.data.sources.Example` records (file-
            backed ones are read on each access) or (C, H, W) tensors in [0, 1].
        degradation: a preset name (``restorekit degradations``) or a Degradation module.
        seed: the base seed.
        crop: side of the random ``gt`` crop; ``None`` keeps whole images.
        augment: apply one of the eight flips/rotations before degrading (``"hflip"``:
            the left-right mirror only, for upright content such as faces).
        channels: convert the clean images to 1 or 3 channels; ``None`` keeps them.
        repeat: each image appears this many times per epoch, each time with its own
            crop and noise (BasicSR's ``dataset_enlarge_ratio``): a few large photos
            then fill many batches of small crops.
        cache_bytes: file-backed images are decoded once and kept in memory (as
            float32, after the channel conversion) while their total stays under this
            budget; decoding a 2560x1600 JPEG for every 48x48 crop would cost more than
            the training step itself. Beyond the budget they are read on each access.
        jitter: a small shift and brightness/contrast change of each clean crop
            (:func:`~restorekit.data.transforms.photometric_jitter`), for small sets.
        resample: resize each clean crop down to this side and back (MATLAB bicubic), so
            photos take on the spectrum of data made that way: the LFW faces are 25x25
            crops resized to 48x48, so photo crops resampled through 25 look like them.
        zoom: (lo, hi) with 0 < lo <= hi <= 1: each crop is cut at a scale drawn from
            this range, a window of ``crop / scale`` pixels (at most the image's shorter
            side) shrunk to ``crop`` (MATLAB bicubic, antialiased; the depth map with it).
            Large photos then also show whole objects in a crop, at the scale of the
            smaller images a user restores, not only zoomed-in texture. An image whose
            shorter side is below ``crop`` gives a window of that side, enlarged to
            ``crop`` (without zoom it is an error). None: no zoom.
        gray_fraction: this share of the RGB items is made gray: the clean crop is turned
            to luma, degraded as one channel and both sides repeated to three, so an RGB
            network also learns gray images, whose noise is the same in every channel
            (what :func:`restorekit.api.restore` feeds it for a gray photo).

    Items: ``lq`` (C, h, w) float32 (values may leave [0, 1] for the unclipped noise
    presets), ``gt`` (C, H, W), ``mask`` (1, H, W) when the degradation returns one,
    ``name``, and the degradation's targets under their own names (haze: ``transmission``
    (1, H, W) and ``airlight`` (C,); see :class:`~restorekit.degrade.base.Degraded`).

    Example:
        >>> ds = SyntheticPairs([torch.rand(1, 16, 16)], "gaussian_25", seed=0, crop=8)
        >>> a, b = ds[0], ds[0]
        >>> a["lq"].shape, bool(torch.equal(a["lq"], b["lq"]))
        (torch.Size([1, 8, 8]), True)
        >>> ds.set_epoch(1); bool(torch.equal(ds[0]["lq"], a["lq"]))
        False
    """

    def __init__(
        self,
        images: Sequence[Example | torch.Tensor],
        degradation: str | Degradation,
        *,
        seed: int,
        crop: int | None = None,
        augment: bool | str = False,
        channels: int | None = None,
        repeat: int = 1,
        cache_bytes: int = 2 << 30,
        jitter: bool = False,
        resample: int | None = None,
        gray_fraction: float = 0.0,
        zoom: tuple[float, float] | None = None,
    ) -> None:
        if not images:
            raise ValueError("SyntheticPairs needs at least one image")
        if repeat < 1:
            raise ValueError(f"repeat must be a positive integer, got {repeat}")
        self.examples = [
            x if isinstance(x, Example) else Example(f"image_{i:05d}", x)
            for i, x in enumerate(images)
        ]
        op = create_degradation(degradation) if isinstance(degradation, str) else degradation
        self.degradation = op
        self.scale = int(op.scale)
        if crop is not None and (crop < 1 or crop % self.scale):
            raise ValueError(f"crop {crop} must be a positive multiple of the scale {self.scale}")
        self._takes_depth = "depth" in op.inputs
        self.crop, self.seed, self.channels = crop, int(seed), channels
        self.augment = augment_group(augment)
        self.repeat, self.cache_bytes, self.jitter = int(repeat), int(cache_bytes), jitter
        if resample is not None and resample < 2:
            raise ValueError(f"resample must be at least 2 pixels, got {resample}")
        self.resample = resample
        if zoom is not None and crop is None:
            raise ValueError(f"zoom {list(zoom)} needs a crop: it shrinks windows to it")
        self.zoom = None if zoom is None else check_zoom(zoom)
        if not 0.0 <= gray_fraction <= 1.0:
            raise ValueError(f"gray_fraction must be in [0, 1], got {gray_fraction}")
        self.gray_fraction = float(gray_fraction)
        # Keyed by the Example itself, so one listed several times is decoded once.
        self._cache: dict[Example, torch.Tensor] = {}
        self._cached = 0  # bytes held in _cache

    def __len__(self) -> int:
        return len(self.examples) * self.repeat

    def _clean(self, ex: Example) -> torch.Tensor:
        """The example's image in float32 with the requested channels, cached."""
        if ex in self._cache:
            return self._cache[ex]
        gt = ex.image.to(torch.float32)
        if self.channels is not None:
            gt = to_channels(gt, self.channels)
        if not isinstance(ex.data, torch.Tensor) and self._cached + gt.nbytes <= self.cache_bytes:
            self._cache[ex] = gt
            self._cached += gt.nbytes
        return gt

    def _zoom_window(self, image: torch.Tensor, gen: torch.Generator) -> int:
        """The side of the window a zoomed crop is cut from (see ``zoom``)."""
        assert self.zoom is not None and self.crop is not None
        lo, hi = self.zoom
        scale = lo + (hi - lo) * float(torch.rand((), generator=gen, dtype=torch.float64))
        return min(max(self.crop, round(self.crop / scale)), *image.shape[-2:])

    def __getitem__(self, index: int) -> dict[str, Any]:
        with single_thread():  # small crops: threads cost more than they save
            return self._item(index)

    def _item(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        ex = self.examples[index % len(self.examples)]
        gt = self._clean(ex)
        depth = ex.depth if self._takes_depth else None
        gen = self._generator(index)
        if self.crop is not None:
            window = self.crop if self.zoom is None else self._zoom_window(gt, gen)
            try:
                # A same-size crop of (gt, depth): the pair's lq is made afterwards.
                _, gt, depth = paired_random_crop(gt, gt, size=window, mask=depth, generator=gen)
            except ValueError as err:
                raise ValueError(f"image {ex.name!r}: {err}") from None
            if window != self.crop:
                size = (self.crop, self.crop)
                gt = imresize(gt[None].double(), size=size)[0].clamp(0, 1).to(torch.float32)
                if depth is not None:
                    depth = imresize(depth[None].double(), size=size)[0].clamp(0, 1)
                    depth = depth.to(torch.float32)
        else:
            gt = modcrop(gt, self.scale)
            depth = None if depth is None else modcrop(depth, self.scale)
        if self.augment:
            gt, depth = random_dihedral(gt, depth, generator=gen, group=self.augment)
        if self.jitter:
            gt, depth = photometric_jitter(gt, generator=gen, depth=depth)
        if self.resample is not None:
            h, w = gt.shape[-2:]
            small = imresize(gt[None].double(), size=(self.resample, self.resample))
            gt = imresize(small, size=(h, w))[0].clamp(0, 1).to(torch.float32)
        # Drawn only when asked for, so runs without it keep their generator streams.
        gray = self.gray_fraction > 0 and gt.shape[0] == 3
        gray = gray and float(torch.rand((), generator=gen)) < self.gray_fraction
        if gray:
            gt = to_channels(gt, 1)
        extra = {"depth": depth[None]} if depth is not None else {}
        with torch.no_grad():
            out = self.degradation(gt[None], generator=gen, **extra)
        lq = out.lq[0].to(torch.float32)
        if out.gt is not None:  # the operator changed the scene (surface defects drawn in)
            gt = out.gt[0].to(torch.float32)
        targets = {k: v[0].to(torch.float32) for k, v in out.targets.items()}
        if gray:
            lq, gt = to_channels(lq, 3), to_channels(gt, 3)
            if "airlight" in targets:  # the grey haze colour, in each of the three channels
                targets["airlight"] = targets["airlight"].expand(3)
        item: dict[str, Any] = {
            "lq": lq.contiguous(),
            "gt": gt.contiguous(),
            "name": ex.name,
        }
        if out.mask is not None:
            item["mask"] = out.mask[0].to(torch.float32)
        return item | {k: v.contiguous() for k, v in targets.items()}


def open_dataset(
    root: str | os.PathLike[str],
    *,
    split: str | None = None,
    crop: int | None = None,
    augment: bool | str = False,
    seed: int = 0,
    channels: int | None = None,
    split_seed: int = 0,
) -> PairedImages:
    """Open a dataset folder (``restorekit data prepare``'s output, or any layout above).

    The layout comes from ``dataset.json`` or the sub-folders. With ``split``, only that
    part is kept: the names listed under ``splits`` in ``dataset.json`` when present, else
    a 70/20/10 split of the sorted pairs by ``split_seed`` (:func:`split_indices`).

    Args:
        root: the dataset folder.
        split: ``"train"``, ``"val"``, ``"test"`` or ``None`` for everything.
        crop, augment, seed, channels: see :class:`PairedImages`.
        split_seed: seed of the split when ``dataset.json`` gives none.

    Raises:
        FileNotFoundError: not a dataset folder.
        ValueError: unmatched files, an unknown split, or a split naming missing files.
    """
    base = Path(root)
    layout = detect_layout(base)
    pairs = LAYOUTS.get(layout)(base)
    if split is not None:
        total = len(pairs)
        pairs = _select_split(base, pairs, split, split_seed)
        if not pairs:
            raise ValueError(f"{base}: split {split!r} is empty (of {total} pairs)")
    return PairedImages(pairs, crop=crop, augment=augment, seed=seed, channels=channels)


def _select_split(base: Path, pairs: list[PairFiles], split: str, seed: int) -> list[PairFiles]:
    parts = ("train", "val", "test")
    meta = base / DATASET_JSON
    splits = json.loads(meta.read_text()).get("splits") if meta.is_file() else None
    if splits:
        if split not in splits:
            raise ValueError(f"{meta}: no split {split!r} (splits: {sorted(splits)})")
        by_name = {p.name: p for p in pairs}
        missing = [n for n in splits[split] if n not in by_name]
        _fail_unmatched(base, [f"{n} is listed but has no files" for n in missing], "split names")
        return [by_name[n] for n in splits[split]]
    if split not in parts:
        raise ValueError(f"split must be one of {parts}, not {split!r}")
    chosen = split_indices(len(pairs), seed=seed)[parts.index(split)]
    return [pairs[i] for i in chosen]
