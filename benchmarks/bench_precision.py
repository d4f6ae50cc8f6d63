"""Training step time in fp32 against bf16 autocast, side by side in one run.

``--precision auto`` picks bf16 autocast where the processor has native bf16 (AMX or
AVX512-BF16) and a one-convolution probe (``restorekit.hardware.bf16_speedup``, its
reading printed on the ``precision auto`` line) measures it faster, fp32 elsewhere. This
checks that choice on whole training steps on the machine at hand: for each recipe it
builds the trainer twice (``train.amp=fp32`` and ``train.amp=bf16``, each with the
memory format ``auto`` gives it) and times the step alone on one fixed batch, in
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

from restorekit.hardware import bf16_speedup, machine_summary, native_bf16, resolve
from restorekit.train.recipe import build_trainer, find_recipe, load_recipe

RECIPES = ("sr_casr", "ffa_light_ea", "defect_denoise")
PRECISIONS = ("fp32", "bf16")


def step_seconds(recipe: str, *, steps: int, rounds: int) -> tuple[dict[str, float], str]:
    """Seconds per step per precision for one recipe, and the protocol they were timed
    under (batch, crop, each precision's numerics)."""
    with tempfile.TemporaryDirectory() as tmp:
        recipes = {
            amp: load_recipe(
                find_recipe(recipe),
                (f"run_dir={tmp}/{amp}", "train.progress=false", f"train.amp={amp}"),
            )
            for amp in PRECISIONS
        }
        trainers = {amp: build_trainer(r) for amp, r in recipes.items()}
        best = dict.fromkeys(PRECISIONS, math.inf)
        for _ in range(rounds):
            for amp, trainer in trainers.items():
                best[amp] = min(best[amp], trainer.time_steps(steps, end_to_end=False))
    r = recipes["fp32"]
    how = " | ".join(t.numerics.describe() for t in trainers.values())
    return best, f"batch {r.train.batch_size}, crop {r.data.crop}; {how}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", action="append", help="a recipe (repeatable)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--steps", type=int, default=3, help="steps per timing")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"machine: {machine_summary()}")
    auto = resolve(quiet=True)
    probe = f"; bf16 probe {bf16_speedup():.2f}x fp32" if native_bf16() else ""
    print(f"precision auto: {auto.describe()} ({auto.why}{probe})")
    print("training step alone on one fixed batch, the fastest of the interleaved rounds")
    print(f"{'recipe':16s} {'fp32 s/step':>12s} {'bf16 s/step':>12s} {'fp32/bf16':>10s}  protocol")
    for recipe in args.recipe or RECIPES:
        t, how = step_seconds(recipe, steps=args.steps, rounds=args.rounds)
        print(f"{recipe:16s} {t['fp32']:12.3f} {t['bf16']:12.3f} "
              f"{t['fp32'] / t['bf16']:9.2f}x  {how}")  # fmt: skip


if __name__ == "__main__":
    main()
