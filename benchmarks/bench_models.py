"""CPU inference throughput of every registered restoration model: fp32 vs bf16 + channels_last.

Each model runs side by side in the same process on the same input, first in float32
NCHW, then under ``torch.autocast("cpu", dtype=torch.bfloat16)`` with the model and input
in ``channels_last`` memory format (what restorekit's inference uses on CPUs with AVX-512
and AMX). It prints megapixels of *output* per second for both, and their ratio.

    python benchmarks/bench_models.py --size 128 --threads 2 [--models edsr_baseline ffa_light]

Models run at their registered default configuration, untrained (speed does not depend
on the weights). Discriminators and backbones are skipped: they restore nothing.
"""

from __future__ import annotations

import argparse
import time

import torch

from restorekit.models import create_model, list_models
from restorekit.models.base import Restorer


def throughput(model: torch.nn.Module, x: torch.Tensor, *, bf16: bool, min_time: float) -> float:
    """Output megapixels per second of ``model(x)``, after one warm-up call."""
    if bf16:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    ctx = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)
    with torch.inference_mode(), ctx:
        y = model(x)  # warm-up: allocations, oneDNN kernel selection
        runs, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < min_time or runs < 2:
            model(x)
            runs += 1
    return y.shape[0] * y.shape[-2] * y.shape[-1] * runs / elapsed / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128, help="output side in pixels")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--min-time", type=float, default=1.0, help="seconds per measurement")
    parser.add_argument("--models", nargs="*", help="names (default: every restoration model)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    print(f"CPU inference, batch 1, output {args.size}x{args.size}, {args.threads} threads,")
    print("fp32 NCHW vs bf16 autocast + channels_last, output megapixels/s (higher is better)")
    print(f"{'model':16s} {'input':>12s} {'fp32 MP/s':>10s} {'bf16 MP/s':>10s} {'ratio':>6s}")
    for name in args.models or list_models():
        kwargs = {"pretrained": False} if name == "resnet_unet" else {}
        model = create_model(name, **kwargs).eval()
        if not isinstance(model, Restorer):
            continue
        side = args.size // model.scale
        x = torch.rand(1, model.in_channels, side, side)
        fp32 = throughput(model, x, bf16=False, min_time=args.min_time)
        bf16 = throughput(model, x, bf16=True, min_time=args.min_time)
        shape = f"{model.in_channels}x{side}x{side}"
        print(f"{name:16s} {shape:>12s} {fp32:10.3f} {bf16:10.3f} {bf16 / fp32:6.2f}")


if __name__ == "__main__":
    main()
