"""Benchmark runner: methods x tasks -> a results table that states its protocol.

A *method* is anything that restores: a trained model, an untrained one (said so in the
table), or a classical baseline (``restorekit.baselines``). A *task* is a set of
(degraded, ground truth) pairs with a name: clean images degraded on the fly with a
seeded preset (:func:`synthetic_task`), or a prepared dataset folder (:func:`folder_task`).
Every method runs on every task whose scale it matches (a x2 network is not scored on a
x4 task), and the degraded input itself is scored as the reference row of a task
without a scale change.

The protocol is part of the result. Each task records its colour space, border crop,
data range, noise seed, how its inputs were degraded (clipped or not) and which resize
made its low-resolution images; the tables and the JSON carry it, and two runs with the
same seed give identical numbers (CPU inference is deterministic, and each pair's
degradation comes from a generator seeded with (seed, index) alone).

Conventions (BENCHMARKS.md): super-resolution is scored on MATLAB ``rgb2ycbcr`` luma with
``scale`` pixels cropped from each border (gray images as they are); denoising and
dehazing on all channels, no crop. Restored outputs are clipped to [0, 1]; PSNR and SSIM
(Wang et al. 2004) use data range 1 on float images (not quantised to 8 bits).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import math
import statistics
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from restorekit.data import (
    DEFAULT_DEGRADATION,
    SOURCES,
    Example,
    SyntheticPairs,
    detect_layout,
    load_examples,
    open_dataset,
    split_indices,
)
from restorekit.hardware import resolve
from restorekit.inference import ChannelMismatchError, restore_channels
from restorekit.metrics import DEFAULT_METRICS, MASK_METRICS, METRICS
from restorekit.utils import atomic_path

__all__ = [
    "INPUT",
    "Method",
    "NonFiniteOutputError",
    "Protocol",
    "Results",
    "Score",
    "Skipped",
    "Task",
    "evaluate",
    "folder_task",
    "format_mean_se",
    "score",
    "synthetic_task",
    "tasks_for",
]

log = logging.getLogger(__name__)

INPUT = "degraded input"  # the method name of the no-restoration reference row
RESIZE = "MATLAB imresize (antialiased bicubic, a = -0.5), restorekit.degrade.imresize"


@dataclass(frozen=True)
class Protocol:
    """How one task's numbers were made; :meth:`describe` is the line tables print."""

    color: str  # "Y (MATLAB rgb2ycbcr, float)", "RGB" or "gray"
    crop_border: int
    data_range: float
    seed: int | tuple[int, ...] | None  # degradation seed(s); None: a folder's fixed pairs
    degraded_by: str  # the preset's parameters, e.g. its noise and whether it clips
    resize: str | None  # what made the low-resolution images, for scale > 1
    numerics: str = ""  # the precision each kind of method ran in (restorekit.hardware)
    images: str = ""  # which images were scored: a test split, or all of a user's folder
    y_channel: bool = False  # scored on the luma (the color line says so)

    def describe(self) -> str:
        if self.seed is None:
            seed = "fixed pairs"
        elif isinstance(self.seed, tuple):
            seed = f"seeds {', '.join(map(str, self.seed))} (mean over seeds per image)"
        else:
            seed = f"seed {self.seed}"
        parts = [
            *([self.images] if self.images else []),
            self.color,
            f"crop {self.crop_border}",
            f"data range {self.data_range:g}",
            f"{seed}: {self.degraded_by}",
            "outputs clipped to [0,1], float (not quantised)",
        ]
        if self.resize:
            parts.append(f"LR by {self.resize}")
        if self.numerics:
            parts.append(self.numerics)
        return "; ".join(parts)


@dataclass(frozen=True)
class Task:
    """Named (lq, gt) pairs to evaluate on.

    Attributes:
        dataset: the data's name (an offline source, a folder).
        degradation: the preset name, or ``"as prepared"`` for a folder's own pairs.
        pairs: items ``{"lq": (C, h, w), "gt": (C, H, W), "name": str}`` in [0, 1].
        seed: the degradation seed, None for fixed pairs.
        description: how the pairs were degraded, for the protocol line.
        images: which images these are (a test split, or all), for the protocol line.
    """

    dataset: str
    degradation: str
    pairs: Sequence[dict[str, Any]]
    seed: int | None = None
    description: str = ""
    images: str = ""


@dataclass(frozen=True)
class Method:
    """A named restorer and a note on where it comes from (weights, parameters); with
    ``ensemble``, run with self-ensemble (:func:`~restorekit.inference.self_ensemble`)."""

    name: str
    module: nn.Module
    note: str = ""
    ensemble: bool = False


@dataclass(frozen=True)
class Score:
    """One image's scores under one method: metric name -> value (:data:`METRICS`)."""

    dataset: str
    degradation: str
    method: str
    image: str
    values: Mapping[str, float]
    seed: int | None = None  # the degradation seed of this score

    @property
    def psnr(self) -> float:
        return self.values.get("psnr", math.nan)

    @property
    def ssim(self) -> float:
        return self.values.get("ssim", math.nan)

    def row(self) -> dict[str, Any]:
        """The flat record of ``results.csv`` and ``results.json``."""
        keys = {k: v for k, v in asdict(self).items() if k != "values"}
        return {**keys, **self.values}


@dataclass(frozen=True)
class Skipped:
    """An image that could not be read, so it has no score."""

    dataset: str
    degradation: str
    image: str
    reason: str


@dataclass
class Results:
    """Per-image scores, each task's protocol, and a few kept outputs for figures.

    ``examples[(dataset, degradation)]`` holds, for the first ``keep`` images of a task,
    ``{"lq", "gt", method name: output}`` as (1, C, H, W) tensors (not serialised).
    """

    scores: list[Score] = field(default_factory=list)
    protocols: dict[tuple[str, str], Protocol] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # method name -> note
    examples: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)  # unreadable images, not scored

    def metrics(self) -> list[str]:
        """The metrics scored, in :data:`METRICS` order."""
        seen = {name for s in self.scores for name in s.values}
        return [name for name in METRICS if name in seen]

    def summary(self) -> list[dict[str, Any]]:
        """Mean of each metric per (dataset, degradation, method), in evaluation order.

        With several noise seeds, each image's scores are first averaged over the seeds;
        ``psnr``/``ssim`` (each metric's name) are the mean over images of those, and
        ``psnr_se``/``ssim_se`` their standard error over images (sample standard
        deviation / sqrt(images); NaN for a single image): the uncertainty that comes
        from which images were scored, which the seeds do not reduce. In-mask metrics
        leave out the images whose mask is empty (NaN).
        """
        groups: dict[tuple[str, str, str], dict[str, list[Score]]] = {}
        for s in self.scores:
            key = (s.dataset, s.degradation, s.method)
            groups.setdefault(key, {}).setdefault(s.image, []).append(s)
        rows = []
        for (dataset, degradation, method), images in groups.items():
            row: dict[str, Any] = {
                "dataset": dataset, "degradation": degradation, "method": method,
                "images": len(images), "seeds": max(len(per) for per in images.values()),
            }  # fmt: skip
            for name in self.metrics():
                per_image = [_mean(s.values.get(name, math.nan) for s in per)
                             for per in images.values()]  # fmt: skip
                if METRICS.entry(name).obj.needs_mask:  # images with an empty mask: no score
                    per_image = [v for v in per_image if not math.isnan(v)]
                row[name], row[f"{name}_se"] = _mean(per_image), _se(per_image)
            row |= {
                "skipped": len(self.skipped_images((dataset, degradation))),
                "note": self.notes.get(method, ""),
                "protocol": self.protocols[(dataset, degradation)].describe(),
            }
            rows.append(row)
        return rows

    def skipped_images(self, key: tuple[str, str]) -> list[str]:
        """The images of task ``(dataset, degradation)`` that could not be read, sorted
        (once each, however many seeds the task ran at)."""
        return sorted({k.image for k in self.skipped if (k.dataset, k.degradation) == key})

    def extend(self, other: Results) -> None:
        """Add the scores, protocols, notes and kept outputs of another evaluation."""
        self.scores += other.scores
        self.protocols.update(other.protocols)
        self.notes.update(other.notes)
        self.skipped += other.skipped
        for key, examples in other.examples.items():
            self.examples.setdefault(key, []).extend(examples)

    def to_json(self) -> dict[str, Any]:
        """Everything but the kept images, as plain JSON values."""
        return {
            "metrics": {name: METRICS.entry(name).paper for name in self.metrics()},
            "protocols": [
                {"dataset": d, "degradation": g, **asdict(p), "description": p.describe()}
                for (d, g), p in self.protocols.items()
            ],
            "summary": self.summary(),
            "images": [s.row() for s in self.scores],
            "skipped": [asdict(k) for k in self.skipped],
        }

    def write(self, out: str | Path) -> list[Path]:
        """Write ``results.csv`` (per image), ``summary.csv`` and ``results.json``."""
        out = Path(out)
        per_image = [s.row() for s in self.scores]
        paths = [out / "results.csv", out / "summary.csv", out / "results.json"]
        fields = ["dataset", "degradation", "method", "image", "seed", *self.metrics()]
        _write_text(paths[0], _csv(per_image, fields))
        summary = self.summary()
        _write_text(paths[1], _csv(summary, list(summary[0]) if summary else []))
        _write_text(paths[2], json.dumps(self.to_json(), indent=2, allow_nan=True) + "\n")
        return paths


# ------------------------------------------------------------------------------- tasks


def synthetic_task(
    dataset: str,
    examples: Sequence[Example | torch.Tensor],
    degradation: str,
    *,
    seed: int = 0,
    channels: int | None = None,
    images: str = "",
) -> Task:
    """Clean images degraded with a preset; pair ``i`` always gets the same degradation.

    Whole images are used (modcropped to the scale for super-resolution). ``images`` says
    which images these are, for the protocol line.
    """
    pairs = SyntheticPairs(examples, degradation, seed=seed, channels=channels)
    description = repr(pairs.degradation)
    takes_depth = "depth" in pairs.degradation.inputs
    if takes_depth and any(getattr(e, "depth", None) is not None for e in examples):
        description += " with the scene's true depth (the prior only where none is known)"
    return Task(dataset, degradation, pairs, seed=seed, description=description, images=images)


def folder_task(
    root: str | Path, *, split: str | None = "auto", channels: int | None = None
) -> Task:
    """A prepared dataset folder's own pairs (``restorekit data prepare`` or any layout).

    ``split="auto"`` scores the test split when the folder's ``dataset.json`` names its
    splits (``restorekit data prepare`` writes them), else every pair: a user's own
    lq/gt folder was not split by restorekit, so none of it was trained on.
    """
    root = Path(root)
    if split == "auto":
        meta = root / "dataset.json"
        listed = meta.is_file() and bool(json.loads(meta.read_text()).get("splits"))
        split = "test" if listed else None
    pairs = open_dataset(root, split=split, channels=channels)
    images = f"the {split} split of {root}" if split else f"all {len(pairs)} pairs of {root}"
    return Task(root.name, "as prepared", pairs, description=f"pairs from {root}", images=images)


def held_out(examples: Sequence[Example], *, seed: int = 0) -> list[Example]:
    """The 10% test part of the 70/20/10 split by ``seed`` (the training recipes' split),
    or the source's own test split when it has one (FER2013's PrivateTest)."""
    return _split_part(examples, "test", seed=seed)


def validation_part(examples: Sequence[Example], *, seed: int = 0) -> list[Example]:
    """The 20% validation part of the same split (what a training run validates on), or
    the source's own: for comparing runs without touching the test part."""
    return _split_part(examples, "val", seed=seed)


def _split_part(examples: Sequence[Example], part: str, *, seed: int) -> list[Example]:
    own = [e for e in examples if e.split == part]
    if own:
        return own
    index = ("train", "val", "test").index(part)
    return [examples[i] for i in split_indices(len(examples), seed=seed)[index]]


def tasks_for(
    data: str | Path,
    degradations: Sequence[str] = (),
    *,
    seed: int | Sequence[int] = 0,
    split: str | None = "auto",
    split_seed: int = 0,
    channels: int | None = None,
) -> list[Task]:
    """The tasks of one ``--data`` argument.

    A prepared dataset folder (``restorekit data prepare``, or lq/ + gt/, triplet or
    RESIDE folders) gives one task with its own pairs. Anything ``load_examples`` reads
    (an offline source name, an image folder, a FER2013 CSV, a volume) gives one task per
    degradation (default: the one ``data prepare`` uses for the data's kind) with noise
    ``seed`` (or one task per seed of a list, which :func:`evaluate` averages per image),
    on the test part of the 70/20/10 split by ``split_seed`` (the training
    recipes' ``train.seed``, 0 by default, so no training image is scored), on its
    validation part with ``split="val"`` (to compare runs without touching the test
    part), or on every image with ``split=None``.

    ``split="auto"`` (the default) takes the test split of what restorekit trains on (a
    registered source, or data with its own split: FER2013's Usage, volumes split by
    volume) and every image of anything else: a user's folder of five photos is scored
    whole, not cut down to its 10%. The protocol line says which was done.

    Raises:
        ValueError: degradations given for a prepared folder, an unknown split, or data
            that is neither a dataset folder nor a readable source.
    """
    path = Path(data)
    try:
        detect_layout(path)
        is_folder = True
    except (FileNotFoundError, ValueError):
        is_folder = False
    if is_folder:
        if degradations:
            raise ValueError(f"{path} holds prepared pairs: drop --degradation for it")
        return [folder_task(path, split=split, channels=channels)]  # its own split
    kind, examples = load_examples(data)
    registered = str(data) in SOURCES
    if split == "auto":
        split = "test" if registered or any(e.split for e in examples) else None
    name = Path(data).name if path.exists() else str(data)
    if split in ("test", "val"):
        total = len(examples)
        examples = _split_part(examples, split, seed=split_seed)
        own = any(e.split for e in examples)
        how = "its own split" if own else f"the 70/20/10 split by seed {split_seed}"
        part = "test" if split == "test" else "validation"
        images = f"the {part} split of {name} ({len(examples)} of {total} images, {how})"
    elif split is None:
        images = f"all {len(examples)} images of {name}"
    else:
        raise ValueError(f"split {split!r}: clean images are scored on 'test', 'val' or all (None)")
    return [
        synthetic_task(name, examples, d, seed=s, channels=channels, images=images)
        for d in (degradations or [DEFAULT_DEGRADATION[kind]])
        for s in ([seed] if isinstance(seed, int) else seed)
    ]


# -------------------------------------------------------------------------- evaluation


def evaluate(
    methods: Sequence[Method],
    tasks: Iterable[Task],
    *,
    limit: int | None = None,
    keep: int = 1,
    tile: int | None = None,
    y_channel: bool | None = None,
    crop_border: int | None = None,
    progress: bool = False,
    precision: str = "auto",
    memory_format: str = "auto",
    metrics: Sequence[str] = DEFAULT_METRICS,
) -> Results:
    """Score every method on every task of its scale.

    Args:
        methods: the restorers; names must be unique.
        tasks: the pairs to score on.
        limit: score only the first N pairs of each task.
        keep: keep the outputs of this many images per task, for figures.
        tile: tiled inference with this tile side (see ``restore_tensor``).
        y_channel, crop_border: override the protocol (default: Y and crop = scale for
            super-resolution, all channels and no crop otherwise).
        progress: show a progress bar on stderr.
        precision, memory_format: how the learned models run (``restore_tensor``; the
            classical baselines always run in fp32); stated in every protocol line.
        metrics: names of :data:`~restorekit.metrics.METRICS` to score; with the
            default, data with masks also get the in-mask PSNR and SSIM.

    Raises:
        ValueError: duplicate method names, or a method whose channel count does not
            match a task's images.
    """
    for name in metrics:
        METRICS.get(name)  # unknown names fail before any work
    names = [m.name for m in methods]
    if len(set(names)) != len(names) or INPUT in names:
        raise ValueError(f"method names must be unique and not {INPUT!r}: {names}")
    results = Results(notes={m.name: m.note for m in methods})
    numerics = _numerics(methods, precision, memory_format)
    for task in tasks:
        n = len(task.pairs) if limit is None else min(limit, len(task.pairs))
        items = _readable(task, n, results)
        if progress:
            from tqdm import tqdm

            # disable=None: a bar on a terminal only, never carriage returns in a log file.
            desc = f"{task.dataset}/{task.degradation}"
            items = tqdm(items, total=n, desc=desc, unit="img", disable=None)
        for index, item in enumerate(items):
            lq, gt = item["lq"][None], item["gt"][None]
            scale = gt.shape[-1] // lq.shape[-1]
            key = (task.dataset, task.degradation)
            if key not in results.protocols:
                protocol = _protocol(task, gt, scale, y_channel, crop_border)
                results.protocols[key] = dataclasses.replace(protocol, numerics=numerics)
            elif index == 0 and task.seed is not None:  # the same task at another seed
                results.protocols[key] = _add_seed(results.protocols[key], task.seed)
            protocol = results.protocols[key]
            outputs: dict[str, torch.Tensor] = {}
            if scale == 1:
                outputs[INPUT] = lq.clamp(0, 1)
            for method in methods:
                if int(getattr(method.module, "scale", 1)) != scale:
                    continue
                try:  # gray through an RGB model and back, as `restore` does for a user
                    out = restore_channels(method.module, lq, tile=tile, precision=precision,
                                           memory_format=memory_format,
                                           ensemble=method.ensemble)  # fmt: skip
                except ChannelMismatchError as err:
                    raise ValueError(
                        f"method {method.name!r} takes {err.wanted}-channel images but "
                        f"{task.dataset}/{task.degradation} has {err.channels}: give the "
                        f"task channels={err.wanted}"
                    ) from None
                if not torch.isfinite(out).all():
                    raise NonFiniteOutputError(
                        f"method {method.name!r} gave NaN or infinite values on "
                        f"{task.dataset}/{item['name']}: its weights or input are broken; "
                        "no score is given for it"
                    )
                outputs[method.name] = out
            mask = item.get("mask")
            with_masks = mask is not None and tuple(metrics) == DEFAULT_METRICS
            chosen = [*metrics, *(MASK_METRICS if with_masks else ())]
            side = min(gt.shape[-2:]) - 2 * protocol.crop_border
            too_small = [m for m in chosen if side < METRICS.get(m).min_side]
            if too_small:
                log.warning("%s/%s: %s is %dx%d, too small after the crop for %s: NaN, "
                            "left out of the means", *key, item["name"], *gt.shape[-2:],
                            ", ".join(too_small))  # fmt: skip
            for name, out in outputs.items():
                values = score(out, gt, protocol, chosen, mask=mask)
                results.scores.append(Score(*key, name, str(item["name"]), values, task.seed))
            first_seed = protocol.seed[0] if isinstance(protocol.seed, tuple) else protocol.seed
            if index < keep and task.seed == first_seed:  # figures: the first seed only
                results.examples.setdefault(key, []).append({"lq": lq, "gt": gt, **outputs})
    return results


class NonFiniteOutputError(ValueError):
    """A method returned NaN or infinity: an error, never a score (PSNR would read inf)."""


def _readable(task: Task, n: int, results: Results) -> Iterator[dict[str, Any]]:
    """The first ``n`` pairs of a task; one whose file cannot be read or decoded is
    skipped, logged and recorded in ``results.skipped``, and the others are scored."""
    for i in range(n):
        try:
            yield task.pairs[i]
        except (OSError, ValueError) as err:
            examples = getattr(task.pairs, "examples", None)
            name = examples[i % len(examples)].name if examples else str(i)
            results.skipped.append(Skipped(task.dataset, task.degradation, name, str(err)))
            log.warning("%s/%s: skipped %s (%s)", task.dataset, task.degradation, name, err)


def _add_seed(protocol: Protocol, seed: int) -> Protocol:
    seeds = protocol.seed if isinstance(protocol.seed, tuple) else (protocol.seed,)
    return dataclasses.replace(protocol, seed=tuple(dict.fromkeys((*seeds, seed))))


def _numerics(methods: Sequence[Method], precision: str, memory_format: str) -> str:
    """``"models in bf16 autocast, channels_last (auto: ... has AMX), baselines in fp32,
    NCHW (a classical baseline: always fp32)"``: how each kind of method really ran. A
    model that ran otherwise than most (weights shipped to run in fp32) is named:
    ``"..., sr_rdn_x2 in fp32, channels_last (auto: these weights lose ...)"``."""
    ran: dict[str, dict[tuple[str, str], list[str]]] = {"models": {}, "baselines": {}}
    for m in methods:
        kind = "baselines" if getattr(m.module, "classical", False) else "models"
        n = resolve(precision, memory_format, model=m.module, quiet=True)
        ran[kind].setdefault((n.describe(), n.why), []).append(m.name)
    parts = []
    for kind, seen in ran.items():
        most = max(seen.values(), key=len, default=[])
        for (described, why), names in seen.items():
            who = kind if names is most else ", ".join(names)
            parts.append(f"{who} in {described} ({why})")
    return ", ".join(parts)


def _protocol(
    task: Task, gt: torch.Tensor, scale: int, y_channel: bool | None, crop: int | None
) -> Protocol:
    rgb = gt.shape[1] == 3
    y = (scale > 1 and rgb) if y_channel is None else (y_channel and rgb)
    color = "Y (MATLAB rgb2ycbcr, float)" if y else ("RGB" if rgb else "gray")
    return Protocol(
        y_channel=y,
        color=color,
        crop_border=scale if crop is None and scale > 1 else (crop or 0),
        data_range=1.0,
        seed=task.seed,
        degraded_by=task.description or task.degradation,
        resize=RESIZE if scale > 1 and task.seed is not None else None,
        images=task.images,
    )


def score(
    out: torch.Tensor,
    gt: torch.Tensor,
    protocol: Protocol,
    metrics: Sequence[str] = DEFAULT_METRICS,
    *,
    mask: torch.Tensor | None = None,
) -> dict[str, float]:
    """Each of ``metrics`` (:data:`METRICS` names) for one (1, C, H, W) image under
    ``protocol``, the output clipped to [0, 1]. NaN where a metric is undefined: an
    image too small for it after the crop, or an in-mask metric without a mask."""
    kw = {
        "crop_border": protocol.crop_border,
        "y_channel": protocol.y_channel,
        "data_range": protocol.data_range,
    }
    pred, target = out.double().clamp(0, 1), gt.double()
    side = min(gt.shape[-2:]) - 2 * protocol.crop_border
    values = {}
    for name in metrics:
        metric = METRICS.get(name)
        if side < metric.min_side or (metric.needs_mask and mask is None):
            values[name] = math.nan
            continue
        m = mask[None] if mask is not None and mask.ndim == 3 else mask
        values[name] = float(metric.fn(pred, target, mask=m, **kw)[0])
    return values


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    finite = [v for v in values if math.isfinite(v)]
    if len(finite) < len(values):  # identical images: PSNR is +inf, and so is the mean
        return math.inf
    return statistics.fmean(finite) if finite else math.nan


def format_mean_se(value: float, se: float | None, digits: int) -> str:
    """``"33.34 ± 0.12"`` when a standard error is known (two images or more), else the
    value alone (``"inf"`` for identical images)."""
    text = "inf" if value == math.inf else f"{value:.{digits}f}"
    if se is None or not math.isfinite(se):
        return text
    return f"{text} ± {se:.{digits}f}"


def _se(values: list[float]) -> float:
    """Standard error of the mean: sample standard deviation / sqrt(n); NaN for n < 2."""
    finite = [v for v in values if math.isfinite(v)]
    if len(finite) < 2 or len(finite) < len(values):
        return math.nan
    return statistics.stdev(finite) / math.sqrt(len(finite))


def _csv(rows: list[Mapping[str, Any]], fields: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _fmt(v) for k, v in row.items()})
    return buf.getvalue()


def _fmt(value: Any) -> Any:
    return f"{value:.6f}" if isinstance(value, float) else value


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
