"""``restorekit bench``: how fast restorekit runs on this machine, measured side by side.

One run measures, in one process, on the machine it runs on:

- the machine: CPU name, vector extensions (AVX2, AVX-512, AVX512-BF16, AMX), threads,
  torch version, and what ``precision="auto"`` chooses here (``restorekit.hardware``);
- the fp32 matrix-multiply peak (2048³), and the bf16 peak where bf16 is native: the
  yardsticks for the percentages below;
- each shipped model's inference at the given output sizes (batch 1), three ways: fp32
  NCHW eager (the plain PyTorch path), restorekit's default path (``restore_tensor`` with
  ``auto``), and ONNX Runtime fp32 when it is installed; as milliseconds, GFLOP/s (two
  flops per multiply-accumulate of ``count_macs``) and percent of the peak of the dtype
  that path computes in;
- each recipe's training step at its batch size and crop, two ways: the step alone on a
  batch made beforehand, and the real loop (the data loader making each batch, logging);
  their ratio is the cost of data generation;
- optionally (``--compile``), ``torch.compile`` on three recipes' training steps: its
  compile time and step time, and whether it pays over a 1000-step run.

It prints a table and writes the same numbers as JSON. Models run with their shipped
weights (speed does not depend on them); recipes at their own model configuration.
"""

from __future__ import annotations

import copy
import logging
import math
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from restorekit.api import list_weights, load_model
from restorekit.hardware import bf16_speedup, cpu_info, native_bf16, resolve
from restorekit.inference import restore_tensor
from restorekit.models.summary import count_macs

__all__ = ["COMPILE_RECIPES", "matmul_peak", "run_bench"]

log = logging.getLogger(__name__)

COMPILE_RECIPES = ("ffa_light", "sr_edsr", "face_attention_unet_low")
"""The recipes whose training step ``--compile`` measures (the speed issue's three)."""


def timed(
    fn: Callable[[], Any], *, min_time: float, min_runs: int = 1, warm_up: bool = True
) -> float:
    """Seconds of the fastest call of ``fn`` (after a warm-up call), calling it for at
    least ``min_time`` seconds and ``min_runs`` times. The fastest, not the mean: on a
    shared machine the noise only ever adds time."""
    if warm_up:
        fn()
    best, runs, start = math.inf, 0, time.perf_counter()
    while time.perf_counter() - start < min_time or runs < min_runs:
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        runs += 1
    return best


def matmul_peak(dtype: torch.dtype, *, n: int = 2048, min_time: float = 1.0) -> float:
    """GFLOP/s of an ``n``³ matrix product in ``dtype`` (the machine's practical peak)."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(dtype)
    b = torch.randn(n, n, generator=gen).to(dtype)
    return 2 * n**3 / timed(lambda: a @ b, min_time=min_time, min_runs=2) / 1e9


def _macs(model: nn.Module, x: torch.Tensor) -> int:
    with torch.device("meta"):
        ghost = copy.deepcopy(model).to("meta")
        return count_macs(ghost, torch.zeros(x.shape))


def _onnx_session(model: nn.Module, folder: Path) -> Any:
    """An ONNX Runtime session of ``model`` (fp32, torch's thread count, dynamic H and
    W), or None when onnxruntime or the exporter is missing."""
    try:
        import onnxruntime as ort

        from restorekit.export import export_onnx
    except ImportError:
        return None
    path = folder / f"{model.model_name}.onnx"
    export_onnx(model, path, check=False)
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _onnx_call(session: Any, x: torch.Tensor) -> Callable[[], Any]:
    name, array = session.get_inputs()[0].name, x.numpy()
    return lambda: session.run(None, {name: array})


def inference_rows(
    names: Sequence[str], sizes: Sequence[int], *, peaks: dict[str, float], min_time: float,
    onnx: bool = True, rounds: int = 3,
) -> list[dict[str, Any]]:  # fmt: skip
    """One row per (shipped model, output size, path); see the module docstring."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            model = load_model(name)
            scale, channels = int(model.scale), int(model.in_channels)
            auto = resolve(model=model, quiet=True)
            plain = copy.deepcopy(model)  # its own NCHW copy: no layout switch between paths
            session = _onnx_session(model, Path(tmp)) if onnx else None
            for size in sizes:
                gen = torch.Generator().manual_seed(0)
                x = torch.rand(1, channels, size // scale, size // scale, generator=gen)
                macs = _macs(model, x)
                paths: dict[str, tuple[str, Callable[[], Any]]] = {
                    "fp32 NCHW eager": ("fp32", _eager(plain, x)),
                    f"default ({auto.describe()})": (auto.precision, _default(model, x)),
                }
                if session is not None:
                    paths["onnxruntime fp32"] = ("fp32", _onnx_call(session, x))
                # Interleaved rounds, the fastest kept: every path sees the same machine.
                seconds = {p: math.inf for p in paths}
                for turn in range(rounds):
                    for path, (_, fn) in paths.items():
                        t = timed(fn, min_time=min_time / rounds, warm_up=turn == 0)
                        seconds[path] = min(seconds[path], t)
                for path, (dtype, _) in paths.items():
                    gflops = 2 * macs / seconds[path] / 1e9
                    peak = peaks.get(dtype)
                    rows.append({
                        "model": name, "output": size, "path": path, "dtype": dtype,
                        "ms": 1000 * seconds[path], "gflops": gflops,
                        "peak_percent": 100 * gflops / peak if peak else None,
                    })  # fmt: skip
    return rows


def _default(model: nn.Module, x: torch.Tensor) -> Callable[[], Any]:
    return lambda: restore_tensor(model, x)


def _eager(model: nn.Module, x: torch.Tensor) -> Callable[[], Any]:
    def run() -> Any:
        with torch.inference_mode():
            return model(x)

    return run


def training_rows(
    recipes: Sequence[str], *, steps: int, rounds: int = 3, compile_recipes: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """One row per recipe: step alone and end to end (s/step), and their ratio; with
    ``compile_recipes``, also torch.compile's compile time and step time."""
    from restorekit.train.recipe import build_trainer, find_recipe, load_recipe

    rows = []
    for name in recipes:
        with tempfile.TemporaryDirectory() as tmp:
            settings = (f"run_dir={tmp}", "train.progress=false")
            recipe = load_recipe(find_recipe(name), settings)
            trainer = build_trainer(recipe)
            # Interleaved rounds, the fastest of each kept: the two ways see the same
            # machine, and a moment of load elsewhere does not decide the ratio.
            alone, e2e = math.inf, math.inf
            for _ in range(rounds):
                alone = min(alone, trainer.time_steps(steps, end_to_end=False))
                e2e = min(e2e, trainer.time_steps(steps, end_to_end=True))
            data = trainer.time_batches(steps)
            crop = recipe.data.crop
            row = {
                "recipe": name, "model": recipe.model.name, "batch": recipe.train.batch_size,
                "crop": crop, "numerics": trainer.numerics.describe(),
                "step_alone_s": alone, "end_to_end_s": e2e,
                "overhead_percent": 100 * (e2e / alone - 1), "data_batch_s": data,
            }  # fmt: skip
            if name in compile_recipes:
                row.update(_compile_row(name, tmp, steps))
            rows.append(row)
    return rows


def _compile_row(name: str, tmp: str, steps: int) -> dict[str, Any]:
    from restorekit.train.recipe import build_trainer, find_recipe, load_recipe

    settings = (f"run_dir={tmp}/compiled", "train.progress=false", "train.compile=true")
    trainer = build_trainer(load_recipe(find_recipe(name), settings))
    start = time.perf_counter()
    trainer.time_steps(1, end_to_end=False)  # compiles on the warm-up step
    first = time.perf_counter() - start
    compiled = trainer.time_steps(steps, end_to_end=False)
    return {"compile_s": first, "compiled_step_s": compiled}


def run_bench(
    *,
    sizes: Sequence[int] = (256, 1024),
    models: Sequence[str] | None = None,
    recipes: Sequence[str] | None = None,
    steps: int = 5,
    rounds: int = 3,
    min_time: float = 1.0,
    compile: bool = False,
    onnx: bool = True,
) -> dict[str, Any]:
    """Everything the module docstring lists, as a JSON-ready dict."""
    from restorekit.train.recipe import list_recipes

    info = cpu_info()
    auto = resolve(quiet=True)
    peaks = {"fp32": matmul_peak(torch.float32, min_time=min_time)}
    speedup = None
    if native_bf16():
        peaks["bf16"] = matmul_peak(torch.bfloat16, min_time=min_time)
        speedup = bf16_speedup()
    names = list(models) if models is not None else list_weights()
    chosen = list(recipes) if recipes is not None else list_recipes()
    compile_recipes = [r for r in COMPILE_RECIPES if r in chosen] if compile else []
    return {
        "machine": {**info, "auto": auto.describe(), "auto_why": auto.why, "bf16_speedup": speedup},
        "matmul_gflops": peaks,
        "inference": inference_rows(
            names, sizes, peaks=peaks, min_time=min_time, onnx=onnx, rounds=rounds
        ),
        "training": training_rows(
            chosen, steps=steps, rounds=rounds, compile_recipes=compile_recipes
        ),
    }


def format_bench(result: dict[str, Any]) -> str:
    """The human-readable table of a :func:`run_bench` result."""
    m = result["machine"]
    flags = [k for k in ("avx2", "avx512", "avx512_bf16", "amx") if m[k]]
    peaks = result["matmul_gflops"]
    lines = [
        f"machine: {m['cpu']}; {m['capability']} ({', '.join(flags) or 'no AVX2'}); "
        f"{m['threads']} threads of {m['cores']} cores; torch {m['torch']}",
        f"precision auto: {m['auto']} ({m['auto_why']})"
        + ("" if m.get("bf16_speedup") is None else f"; bf16 probe {m['bf16_speedup']:.2f}x fp32"),
        "matmul 2048^3 peak: " + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in peaks.items()),
        "",
        "inference, batch 1 (ms; GFLOP/s; % of the same dtype's matmul peak)",
        f"  {'model':26s} {'output':>6s}  {'path':34s} {'ms':>9s} {'GFLOP/s':>8s} {'%peak':>6s}",
    ]
    for r in result["inference"]:
        pct = "-" if r["peak_percent"] is None else f"{r['peak_percent']:.0f}"
        lines.append(
            f"  {r['model']:26s} {r['output']:6d}  {r['path']:34s} {r['ms']:9.1f} "
            f"{r['gflops']:8.1f} {pct:>6s}"
        )
    lines += [
        "",
        "training step at the recipe's batch and crop (ms/step; end-to-end adds the data "
        "loader and logging; data: one batch drawn alone)",
        f"  {'recipe':26s} {'batch':>5s} {'crop':>5s} {'alone':>9s} {'end2end':>9s} "
        f"{'overhead':>8s} {'data':>7s}  numerics",
    ]
    for r in result["training"]:
        crop = "whole" if r["crop"] is None else str(r["crop"])
        lines.append(
            f"  {r['recipe']:26s} {r['batch']:5d} {crop:>5s} {1000 * r['step_alone_s']:9.1f} "
            f"{1000 * r['end_to_end_s']:9.1f} {r['overhead_percent']:7.1f}% "
            f"{1000 * r['data_batch_s']:7.1f}  {r['numerics']}"
        )
    compiled = [r for r in result["training"] if "compile_s" in r]
    if compiled:
        lines += ["", "torch.compile on the training step (a 1000-step run, compile included)"]
        for r in compiled:
            eager = 1000 * r["step_alone_s"]
            comp = r["compile_s"] + 999 * r["compiled_step_s"]
            lines.append(
                f"  {r['recipe']:26s} compile {r['compile_s']:6.1f} s, step "
                f"{1000 * r['compiled_step_s']:.1f} ms vs eager {1000 * r['step_alone_s']:.1f}"
                f" ms: 1000 steps {comp:.0f} s vs {eager:.0f} s "
                f"({'compile pays' if comp < eager else 'eager wins'})"
            )
    return "\n".join(lines)
