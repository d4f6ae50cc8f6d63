"""Training step time in fp32 against bf16 autocast, side by side in one run.

``--precision auto`` picks bf16 autocast where the processor has native bf16 (AMX or
AVX512-BF16) and fp32 elsewhere. This checks that choice on the machine at hand: for each
recipe it builds the trainer twice (``train.amp=fp32`` and ``train.amp=bf16``, each with
the memory format ``auto`` gives it) and times the step alone on one fixed batch, in
interleaved rounds, keeping each one's fastest. A ratio above 1 means bf16 is faster.

    python benchmarks/bench_precision.py                          # three recipes, 1 thread
    python benchmarks/bench_precision.py --recipe sr_edsr --threads 2 --steps 5

On a CPU without native bf16, autocast is emulated: expect ratios well below 1.
"""

from __future__ import annotations

import argparse
import math
import tempfile

import torch

from restorekit.hardware import machine_summary, resolve
from restorekit.train.recipe import build_trainer, find_recipe, load_recipe

RECIPES = ("sr_casr", "ffa_light_ea", "defect_denoise")
PRECISIONS = ("fp32", "bf16")


def step_seconds(recipe: str, *, steps: int, rounds: int) -> dict[str, tuple[float, str]]:
    """Seconds per step and the numerics line, per precision, for one recipe."""
    with tempfile.TemporaryDirectory() as tmp:
        trainers = {
            amp: build_trainer(
                load_recipe(
                    find_recipe(recipe),
                    (f"run_dir={tmp}/{amp}", "train.progress=false", f"train.amp={amp}"),
                )
            )
            for amp in PRECISIONS
        }
        best = dict.fromkeys(PRECISIONS, math.inf)
        for _ in range(rounds):
            for amp, trainer in trainers.items():
                best[amp] = min(best[amp], trainer.time_steps(steps, end_to_end=False))
        return {amp: (best[amp], t.numerics.describe()) for amp, t in trainers.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", action="append", help="a recipe (repeatable)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--steps", type=int, default=3, help="steps per timing")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"machine: {machine_summary()}")
    print(f"precision auto: {resolve(quiet=True).describe()}")
    print(f"{'recipe':16s} {'fp32 s/step':>12s} {'bf16 s/step':>12s} {'fp32/bf16':>10s}  numerics")
    for recipe in args.recipe or RECIPES:
        t = step_seconds(recipe, steps=args.steps, rounds=args.rounds)
        (fp32, fp32_how), (bf16, bf16_how) = t["fp32"], t["bf16"]
        print(f"{recipe:16s} {fp32:12.3f} {bf16:12.3f} {fp32 / bf16:9.2f}x  "
              f"{fp32_how} | {bf16_how}")  # fmt: skip


if __name__ == "__main__":
    main()
