"""The ``bench`` command: this machine's speed, measured side by side (restorekit.bench)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from restorekit.cli._app import UserError, app


@app.command()
def bench(
    out: Annotated[
        Path, typer.Option("--out", help="JSON file for the numbers (written atomically).")
    ] = Path("out/bench.json"),
    size: Annotated[
        list[int] | None, typer.Option("--size", help="Repeatable output side (default 256, 1024).")
    ] = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", help="Repeatable shipped model (default all).")
    ] = None,
    recipe: Annotated[
        list[str] | None, typer.Option("--recipe", help="Repeatable recipe (default all).")
    ] = None,
    steps: Annotated[int, typer.Option(help="Training steps timed per recipe, way and round.")] = 5,
    rounds: Annotated[int, typer.Option(help="Interleaved rounds; the fastest is kept.")] = 3,
    min_time: Annotated[float, typer.Option(help="Seconds per inference measurement.")] = 1.0,
    threads: Annotated[
        int | None, typer.Option(help="torch threads (default: torch's own choice).")
    ] = None,
    compile: Annotated[
        bool, typer.Option("--compile", help="Also time torch.compile on three recipes.")
    ] = False,
    onnx: Annotated[bool, typer.Option("--onnx/--no-onnx", help="Time ONNX Runtime too.")] = True,
) -> None:
    """How fast restorekit runs here: matmul peak, inference of every shipped model
    (fp32 eager, the default path, ONNX Runtime), and every recipe's training step
    alone and end to end. Prints a table and writes the numbers as JSON."""
    import torch

    from restorekit.bench import format_bench, run_bench
    from restorekit.utils import atomic_path

    if steps < 1 or rounds < 1 or min_time <= 0:
        raise UserError("--steps and --rounds must be >= 1 and --min-time > 0")
    if any(s < 8 for s in size or ()):
        raise UserError("--size must be at least 8 pixels")
    if threads is not None:
        if threads < 1:
            raise UserError(f"--threads {threads}: must be at least 1")
        torch.set_num_threads(threads)
    result = run_bench(
        sizes=tuple(size or (256, 1024)), models=model, recipes=recipe, steps=steps, rounds=rounds,
        min_time=min_time, compile=compile, onnx=onnx,
    )  # fmt: skip
    typer.echo(format_bench(result))
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(result, indent=2) + "\n")
    typer.echo(f"wrote {out}")
