"""The denoising tables of issue 10: photo and defect-aware denoisers beside BM3D and NLM
(maintainers only).

    python scripts/denoise_table.py photo RUN_OR_NAME ... [--card NAME] [--seeds N]
                                    [--no-baselines]
    python scripts/denoise_table.py defect MASKED PLAIN [--card NAME] [--seeds N]
                                    [--no-baselines]
    python scripts/denoise_table.py colour RUN_OR_NAME ... [--card NAME] [--seeds N]
                                    [--no-baselines]

``photo`` scores blind denoisers at sigma 15 / 25 / 50 (of 255) under both protocols
(unclipped, and clipped then rounded to 8 bits), in gray (every image made luma) and
RGB (the colour images), against BM3D / CBM3D and NLM given the true sigma. ``defect``
scores the masked-loss and plain-MSE networks on defect triplets (whole image and in
the mask) against BM3D with its sigma estimated per image (the triplets' sigma is drawn
per image). ``colour`` splits the unclipped RGB PSNR into luma and chroma
(``opponent_psnr``) beside CBM3D: which of the two a network restores worse. The images
are never trained on: the ``skimage_photos`` validation and test splits (camera, moon,
retina, ihc), the two sklearn photos and the 13 ``lomiri_photos`` (when installed), large
ones shrunk and each cut to its central 256 x 256 at most so that BM3D fits the time.
``--card NAME`` appends the table to that shipped model's card (replacing an earlier
one); ``--no-baselines`` leaves BM3D and NLM out (most of the time), to compare runs
quickly. ``--validation`` scores the validation photos only (camera, moon, retina: the
split the recipes validate on), the same way: for picking a run's step with many noise
seeds, on whole photos rather than the trainer's crops, and without the other 16.
Prints Markdown.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterable

import torch
from cards import add_card_option, load_models, set_card_section

from restorekit.baselines import create_baseline
from restorekit.data import Example, get_source, load_examples
from restorekit.data.transforms import split_indices
from restorekit.degrade import imresize
from restorekit.evaluate import (
    INPUT,
    Method,
    Results,
    evaluate,
    format_mean_se,
    synthetic_task,
)
from restorekit.hardware import resolve
from restorekit.inference import ensemble_label

SIGMAS = (15, 25, 50)
CLASSICAL = {"bm3d": "BM3D (true sigma)", "nlm": "NLM"}  # baseline name: its column
SIDE = 256  # the crop: BM3D takes ~6 s (CBM3D ~16 s) per 512x512 on 2 cores
SHRINK = 512
HEADINGS = {"photo": "## Held-out photos, sigma 15 / 25 / 50",
            "defect": "## Held-out defect triplets",
            "colour": "## Held-out colour photos: luma and chroma"}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", choices=tuple(HEADINGS))
    parser.add_argument("models", nargs="+", help="shipped names or training run folders")
    add_card_option(parser)
    parser.add_argument("--seeds", type=int, default=1, help="noise seeds per image")
    parser.add_argument(
        "--ensemble", action="store_true", help="also score each model with self-ensemble"
    )
    parser.add_argument(
        "--no-baselines", action="store_true", help="networks and input only (quick)"
    )
    parser.add_argument(
        "--validation", action="store_true",
        help="the validation photos only (for picking a step; never with --card)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.validation and args.card:
        parser.error("--validation scores the photos steps are picked on: not a card's table")
    loaded = load_models(args.models)
    models = [Method(n, m, "") for n, m in loaded.items()]
    if args.ensemble:
        models += [Method(ensemble_label(n, m), m, "", ensemble=True) for n, m in loaded.items()]
    images, where = held_out_photos(validation_only=args.validation)
    seeds = list(range(args.seeds))
    table = {"photo": _photo, "defect": _defect, "colour": _colour}[args.table]
    body = table(models, images, seeds, baselines=not args.no_baselines)
    heading = HEADINGS[args.table]
    if args.validation:
        heading = heading.replace("Held-out", "Validation")
    text = f"{heading}\n\n{where}, {args.seeds} noise seed(s) each.\n\n{body}"
    print(text)
    for name in args.card:
        set_card_section(name, text)


def held_out_photos(*, validation_only: bool = False) -> tuple[list[Example], str]:
    """The photos no denoiser trains on (or only those of them the recipes validate on):
    large ones (shorter side over 2 x SHRINK) shrunk to SHRINK on the shorter side, then
    each cut to its central SIDE x SIDE at most."""
    _, photos = load_examples("skimage_photos")
    _, val, test = split_indices(len(photos), seed=0)
    chosen = [photos[i] for i in val]
    if not validation_only:
        chosen += [photos[i] for i in test] + load_examples("sklearn_photos")[1]
        lomiri = get_source("lomiri_photos")
        if lomiri.available():
            chosen += lomiri.load()
        else:
            print(f"lomiri_photos left out: {lomiri.unavailable_reason()}", file=sys.stderr)
    out = []
    for e in chosen:
        img = e.image
        h, w = img.shape[-2:]
        if min(h, w) > 2 * SHRINK:
            size = (SHRINK, round(w * SHRINK / h)) if h < w else (round(h * SHRINK / w), SHRINK)
            img = imresize(img[None].double(), size=size)[0].clamp(0, 1).float()
            h, w = img.shape[-2:]
        top, left = max(0, (h - SIDE) // 2), max(0, (w - SIDE) // 2)
        out.append(Example(e.name, img[:, top : top + SIDE, left : left + SIDE].contiguous()))
    names = ", ".join(e.name for e in out)
    how = (f"photos over {2 * SHRINK} pixels on the shorter side shrunk to {SHRINK} there "
           f"(MATLAB bicubic), then the central {SIDE}x{SIDE} at most")  # fmt: skip
    what = "validation photos" if validation_only else "photos never trained on"
    return out, f"{len(out)} {what} ({names}; {how})"


def _photo(
    models: list[Method], images: list[Example], seeds: list[int], *, baselines: bool = True
) -> str:
    colour = [e for e in images if e.data.shape[0] == 3]
    names = [m.name for m in models]
    classical = CLASSICAL if baselines else {}
    header = ["colour", "protocol", "sigma", "images", *names, *classical.values(), "input"]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    protocols = []
    for channels, pool in ((1, images), (3, colour)):
        for suffix, protocol in (("", "unclipped"), ("_8bit", "8-bit")):
            for sigma in SIGMAS:
                rows = _scores_at(models, classical, pool, f"gaussian_{sigma}{suffix}", sigma,
                                  seeds, channels, ("psnr", "ssim"))  # fmt: skip
                if sigma == SIGMAS[0]:
                    protocols.append(next(iter(rows.values()))["protocol"])
                cells = [_cell(rows[m]) for m in (*names, *classical, INPUT)]
                gray = "gray" if channels == 1 else "RGB"
                n = len(pool)
                lines.append(f"| {gray} | {protocol} | {sigma} | {n} | " + " | ".join(cells) + " |")
    cbm3d = "BM3D is CBM3D (bm3d_rgb) on RGB. " if baselines else ""
    notes = ["", "PSNR (dB) / SSIM, mean ± standard error over images and seeds. "
             f"{cbm3d}Protocols at sigma {SIGMAS[0]} (the other rows differ only in sigma):",
             ""]  # fmt: skip
    return "\n".join(lines + notes + [f"- {p}" for p in dict.fromkeys(protocols)])


def _scores_at(
    models: list[Method], classical: Iterable[str], pool: list[Example], degradation: str,
    sigma: int, seeds: list[int], channels: int, metrics: tuple[str, ...],
) -> dict[str, dict]:  # fmt: skip
    """Summary rows by method name: the networks, the ``classical`` baselines given the true
    ``sigma`` (of 255) and the input, on ``pool`` under ``degradation``, over ``seeds``."""
    methods = list(models) + [
        Method(name, create_baseline(name, sigma=sigma / 255), "") for name in classical
    ]
    tasks = [synthetic_task("photos", pool, degradation, seed=s, channels=channels)
             for s in seeds]  # fmt: skip
    results = evaluate(methods, tasks, metrics=metrics)
    return {r["method"]: r for r in results.summary()}


def _defect(
    models: list[Method], images: list[Example], seeds: list[int], *, baselines: bool
) -> str:
    methods = list(models)
    if baselines:
        methods.append(Method("bm3d", create_baseline("bm3d"), "sigma estimated per image"))
    tasks = [synthetic_task("photos", images, "defect_noise", seed=s, channels=3) for s in seeds]
    results = evaluate(methods, tasks)
    header = ["method", "images", "PSNR", "SSIM", "PSNR in mask", "SSIM in mask"]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    rows = results.summary()
    for r in rows:
        cells = [format_mean_se(r[k], r[f"{k}_se"], 4 if "ssim" in k else 2)
                 for k in ("psnr", "ssim", "psnr_mask", "ssim_mask")]  # fmt: skip
        lines.append(f"| {r['method']} | {r['images']} | " + " | ".join(cells) + " |")
    lines += ["", f"Protocol: {rows[0]['protocol']}."]
    if baselines:
        lines[-1] += " BM3D: sigma estimated per image."
    if len(models) >= 2:
        lines += ["", *_gap_by_noise(results, models[0].name, models[1].name)]
    return "\n".join(lines)


def _gap_by_noise(results: Results, masked: str, plain: str) -> list[str]:
    """The target's two gaps (masked minus plain network, whole image and in the mask) by
    the noise each triplet drew, read from its input's PSNR (sigma = 10^(-PSNR / 20),
    slightly low where clipping trims the noise)."""
    per: dict[tuple, dict[str, dict]] = {}
    for s in results.scores:
        per.setdefault((s.image, s.seed), {})[s.method] = s.values
    bands = ((0.0, 0.06), (0.06, 0.1), (0.1, 0.14), (0.14, 1.0))
    header = ["sigma (of 1)", "triplets", "gap whole", "gap in mask"]
    lines = [f"{masked} minus {plain}, by the noise of the triplet:", "",
             "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]  # fmt: skip
    for lo, hi in (*bands, (0.0, 1.0)):
        gaps = [
            (v[masked]["psnr"] - v[plain]["psnr"], v[masked]["psnr_mask"] - v[plain]["psnr_mask"])
            for v in per.values()
            if lo <= 10 ** (-v[INPUT]["psnr"] / 20) < hi and math.isfinite(v[plain]["psnr_mask"])
        ]
        if gaps:
            label = "all" if (lo, hi) == (0.0, 1.0) else f"{lo:.2f}-{hi:.2f}"
            whole, mask = (sum(g) / len(gaps) for g in zip(*gaps, strict=True))
            lines.append(f"| {label} | {len(gaps)} | {whole:+.2f} | {mask:+.2f} |")
    return lines


def _colour(
    models: list[Method], images: list[Example], seeds: list[int], *, baselines: bool
) -> str:
    colour = [e for e in images if e.data.shape[0] == 3]
    names = [m.name for m in models] + (["CBM3D (true sigma)"] if baselines else []) + ["input"]
    header = ["sigma", "images", *names]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    classical = ["bm3d"] if baselines else []
    for sigma in SIGMAS:
        rows = _scores_at(models, classical, colour, f"gaussian_{sigma}", sigma, seeds, 3,
                          ("psnr", "psnr_luma", "psnr_chroma"))  # fmt: skip
        order = [m.name for m in models] + classical + [INPUT]
        cells = [" / ".join(f"{rows[m][k]:.2f}" for k in ("psnr", "psnr_luma", "psnr_chroma"))
                 for m in order]  # fmt: skip
        lines.append(f"| {sigma} | {len(colour)} | " + " | ".join(cells) + " |")
    notes = ["", "PSNR / luma / chroma (dB), means over images and seeds; luma and chroma are "
             "the PSNR of each part of the error in an orthonormal opponent basis "
             "(restorekit.metrics.opponent_psnr), so i.i.d. noise scores alike in both. "
             f"Protocol at sigma {SIGMAS[-1]}: {rows[INPUT]['protocol']}."]  # fmt: skip
    return "\n".join(lines + notes)


def _cell(row: dict) -> str:
    psnr = format_mean_se(row["psnr"], row["psnr_se"], 2)
    return f"{psnr} / {row['ssim']:.4f}"


if __name__ == "__main__":
    torch.set_num_threads(2)
    resolve(quiet=True)
    main()
