"""The MRI super-resolution table of issue 12: every shipped ``sr_<model>_x<scale>`` beside
MATLAB bicubic on the held-out test volumes of the ``mri`` source (maintainers only).

    python scripts/sr_table.py [--cards] [--ensemble] [--scales 2 3 4] [--runs RUN ...]

Per scale: each model's parameters, MACs and CPU time for one 256x256 output slice (this
machine's default path), PSNR and SSIM (gray, crop = scale, data range 1: BENCHMARKS.md),
and the gain over bicubic. Also per test volume, since the test split's volumes differ in
size. Prints Markdown; ``--cards`` also appends the table of its scale to each shipped
card (replacing an earlier one); ``--ensemble`` adds each model run with the x8
self-ensemble (EDSR+ in Lim et al. 2017; 8x the time), as rows of their own; ``--runs``
adds training runs' best weights (one scale) beside the shipped ones, to decide a shipping.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import torch
from cards import set_card_section

from restorekit.api import list_weights, load_model
from restorekit.baselines import create_baseline
from restorekit.bench import timed
from restorekit.data.sources import MRI_VOLUMES
from restorekit.evaluate import Method, evaluate, format_mean_se, tasks_for
from restorekit.hardware import machine_summary, resolve
from restorekit.inference import ensemble_label, restore_tensor
from restorekit.models.summary import model_cost

MODELS = ("srcnn", "drrn", "edsr", "rdn", "casr", "casrgan")
VOLUMES = tuple(v.name for v in MRI_VOLUMES if v.split == "test")
HEADING = "## All shipped MRI models at this scale"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", action="store_true", help="append the tables to the cards")
    parser.add_argument(
        "--ensemble", action="store_true", help="also score each model with self-ensemble"
    )
    parser.add_argument("--scales", type=int, nargs="+", default=[2, 3, 4], choices=(2, 3, 4))
    parser.add_argument("--runs", nargs="+", default=[], help="run folders, scored as well")
    args = parser.parse_args()
    if args.runs and (args.cards or len(args.scales) != 1):
        parser.error("--runs needs one --scales value and no --cards")
    shipped = set(list_weights())
    for scale in args.scales:
        names = [f"sr_{m}_x{scale}" for m in MODELS if f"sr_{m}_x{scale}" in shipped]
        if not names:
            continue
        table = _table(scale, names + args.runs, ensemble=args.ensemble)
        print(table, "\n")
        if args.cards:
            for name in names:
                set_card_section(name, f"{HEADING}\n\n{table}")


def _table(scale: int, names: list[str], *, ensemble: bool = False) -> str:
    models = {Path(n).name: load_model(n) for n in names}
    for name, model in models.items():
        if model.model_kwargs.get("scale") != scale:
            print(f"sr_table: {name} is a x{model.model_kwargs.get('scale')} model, not "
                  f"x{scale}", file=sys.stderr)  # fmt: skip
            raise SystemExit(2)
    where = {Path(n).name: "training run" if Path(n).is_dir() else "shipped weights"
             for n in names}  # fmt: skip
    methods = [Method(n, m, where[n]) for n, m in models.items()]
    if ensemble:
        methods += [Method(ensemble_label(n, m), m, where[n], ensemble=True)
                    for n, m in models.items()]  # fmt: skip
    bicubic = create_baseline("bicubic", scale=scale)
    methods.append(Method(bicubic.describe(), bicubic, "classical baseline"))
    (task,) = tasks_for("mri", [f"bicubic_x{scale}"], split="test", channels=1)
    results = evaluate(methods, [task])
    rows = results.summary()
    (protocol,) = {r["protocol"] for r in rows}
    base = next(r for r in rows if r["method"] == bicubic.describe())
    per_volume = _per_volume(results)
    lines = [
        f"x{scale}, {base['images']} test slices of the `mri` source's test volumes "
        f"({', '.join(VOLUMES)}; never trained or validated on). Protocol: {protocol}. "
        f"Time: one 256x256 output slice on {machine_summary()}, default precision.",
        "",
        "| method | parameters | MACs (256² out) | ms / slice | PSNR | SSIM | vs bicubic | "
        + " | ".join(f"PSNR {v}" for v in VOLUMES)
        + " |",
        "|---" * (7 + len(VOLUMES)) + "|",
    ]
    by_name = {m.name: m for m in methods}
    for r in rows:
        method = by_name[r["method"]]
        cost = _cost(method, scale) if method.module is not bicubic else ("-",) * 3
        gain = r["psnr"] - base["psnr"]
        vols = " | ".join(f"{per_volume[r['method']].get(v, float('nan')):.2f}" for v in VOLUMES)
        lines.append(
            f"| {r['method']} | {' | '.join(cost)} | "
            f"{format_mean_se(r['psnr'], r['psnr_se'], 2)} | "
            f"{format_mean_se(r['ssim'], r['ssim_se'], 4)} | {gain:+.2f} dB | {vols} |"
        )
    psnr = {r["method"]: r["psnr"] for r in rows}
    return "\n".join([*lines, "", _ranking(psnr, scale)])


# The papers' order (BENCHMARKS.md, on natural images): each pair is (better, worse).
PAPER_ORDER = (("rdn", "edsr"), ("edsr", "drrn"), ("drrn", "srcnn"))


def _ranking(psnr: dict[str, float], scale: int) -> str:
    """The shipped L1 models in PSNR order, and which of the papers' pairs hold here."""
    shipped = {m: psnr[f"sr_{m}_x{scale}"] for m in MODELS if f"sr_{m}_x{scale}" in psnr}
    shipped.pop("casrgan", None)  # a GAN trades PSNR for texture: not ranked by PSNR
    order = " > ".join(m.upper() for m in sorted(shipped, key=shipped.get, reverse=True))
    pairs = []
    for better, worse in PAPER_ORDER:
        if better in shipped and worse in shipped:
            gap = shipped[better] - shipped[worse]
            verdict = "holds" if gap >= 0 else "reversed"
            pairs.append(f"{better.upper()} over {worse.upper()} {verdict} ({gap:+.2f} dB)")
    return (
        f"Ranking by PSNR: {order}. The papers' order (RDN ≥ EDSR > DRRN > SRCNN, on natural "
        f"images): {'; '.join(pairs)}. RDN and DRRN ship as cut-down configurations "
        "(`rdn_small`, `drrn_small`: see their cards): a reversal here holds for these sizes "
        "and training budgets, not for the papers' networks."
    )


def _cost(method: Method, scale: int) -> tuple[str, str, str]:
    """Parameters, MACs and milliseconds for one 256x256 output; with self-ensemble the
    MACs are 8x (SR weights average over all 8 flips/rotations) and the time is measured."""
    model = method.module
    cost = model_cost(model.model_name, output_size=256, **model.model_kwargs)
    runs = 8 if method.ensemble else 1
    x = torch.rand(1, 1, 256 // scale, 256 // scale)
    ms = 1000 * timed(lambda: restore_tensor(model, x, ensemble=method.ensemble), min_time=0.5)
    return f"{cost.params:,}", f"{runs * cost.macs / 1e9:.1f} G", f"{ms:.0f}"


def _per_volume(results) -> dict[str, dict[str, float]]:
    """Mean PSNR per method and test volume."""
    sums: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for score in results.scores:
        volume = next((v for v in VOLUMES if score.image.startswith(v)), "other")
        sums[score.method][volume].append(score.psnr)
    return {m: {v: sum(p) / len(p) for v, p in vols.items()} for m, vols in sums.items()}


if __name__ == "__main__":
    torch.set_num_threads(2)
    resolve(quiet=True)
    main()
