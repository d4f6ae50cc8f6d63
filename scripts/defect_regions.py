"""Where a defect-aware denoiser gains and loses against its plain twin (maintainers only).

    python scripts/defect_regions.py MASKED PLAIN [--seeds N] [--validation]

Scores both networks on the defect triplets of ``denoise_table.py defect`` (the same
photos, degradation and seeds) and splits the squared error by distance from the
defects: in the mask, its 1-pixel rim, 2-4 pixels out, and the rest. Each region's MSE
is pooled over all triplets, and each region's share of the whole-image MSE difference
says where the whole-image gap comes from. Models run in fp32 (the defect weights' own
precision under ``auto``). Prints Markdown.
"""

from __future__ import annotations

import argparse
import math

import torch
from cards import load_models
from denoise_table import held_out_photos

from restorekit.data.datasets import SyntheticPairs
from restorekit.inference import restore_tensor
from restorekit.losses import dilate_mask

RIMS = {"in the mask": (None, 0), "1-pixel rim": (0, 1), "2-4 pixels out": (1, 4),
        "further": (4, None)}  # fmt: skip  # region: (inner, outer) dilation in pixels


def regions(mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """(1, 1, H, W) weights of each region of RIMS: a ring between two dilations of the
    mask (a square of side 2 r + 1), the mask itself, or all beyond the last ring.

    >>> m = torch.zeros(1, 1, 11, 11); m[0, 0, 5, 5] = 1
    >>> [int(w.sum()) for w in regions(m).values()]
    [1, 8, 72, 40]
    """

    def grown(r: int | None, beyond: torch.Tensor) -> torch.Tensor:
        return beyond if r is None else dilate_mask(mask, r)

    return {name: grown(outer, torch.ones_like(mask)) - grown(inner, torch.zeros_like(mask))
            for name, (inner, outer) in RIMS.items()}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("masked")
    parser.add_argument("plain")
    parser.add_argument("--seeds", type=int, default=3, help="noise seeds per image")
    parser.add_argument("--validation", action="store_true", help="the validation photos only")
    args = parser.parse_args()
    models = load_models([args.masked, args.plain])
    images, where = held_out_photos(validation_only=args.validation)
    sums = {n: dict.fromkeys(RIMS, 0.0) for n in models}
    counts = dict.fromkeys(RIMS, 0.0)
    for seed in range(args.seeds):
        pairs = SyntheticPairs(images, "defect_noise", seed=seed, channels=3)
        for i in range(len(pairs)):
            item = pairs[i]
            weights = regions(item["mask"][None].float())
            for name, w in weights.items():
                counts[name] += w.sum().item()
            for label, model in models.items():
                out = restore_tensor(model, item["lq"][None], precision="fp32")  # clipped
                err = (out - item["gt"][None]).square().mean(1, keepdim=True)
                for name, w in weights.items():
                    sums[label][name] += (err * w).sum().item()
    masked, plain = models
    total = sum(counts.values())
    print(f"{where}, {args.seeds} noise seed(s) each; MSE pooled over all triplets; "
          "models in fp32.\n")  # fmt: skip
    print(f"| region | share of pixels | MSE {masked} | MSE {plain} | {masked} minus {plain} "
          "| share of the whole-image MSE difference |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    diff = {n: sums[masked][n] - sums[plain][n] for n in RIMS}
    for name in RIMS:
        a, b = (sums[m][name] / counts[name] for m in (masked, plain))
        share = diff[name] / sum(diff.values())
        print(f"| {name} | {counts[name] / total:.1%} | {a:.3e} | {b:.3e} | "
              f"{10 * math.log10(b / a):+.2f} dB | {share:+.0%} |")  # fmt: skip


if __name__ == "__main__":
    main()
