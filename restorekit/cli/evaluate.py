"""Commands that score and ship models: eval, demo, export onnx."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from restorekit.cli._app import (
    MODEL_HELP,
    MemoryFormatOption,
    PrecisionOption,
    UserError,
    WeightsOption,
    app,
)


@app.command("eval")
def eval_cmd(
    data: Annotated[
        list[str],
        typer.Option(
            "--data",
            help="Repeatable: a source (`restorekit data list`), a folder of clean images, "
            "a FER2013 .csv, a volume, or a prepared dataset folder (scored on its pairs).",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder for tables and the report.")],
    model: Annotated[
        list[str] | None, typer.Option("--model", help="Repeatable. " + MODEL_HELP)
    ] = None,
    weights: WeightsOption = None,
    baseline: Annotated[
        list[str] | None,
        typer.Option(
            "--baseline",
            help="Repeatable: NAME or NAME:key=value,... (median, gaussian, nlm, bm3d, "
            "bicubic, dcp), e.g. median:size=5.",
        ),
    ] = None,
    degradation: Annotated[
        list[str] | None,
        typer.Option("--degradation", help="Repeatable preset for clean data (default by kind)."),
    ] = None,
    seed: Annotated[
        list[int] | None,
        typer.Option(
            "--seed",
            help="Noise seed of the degradations; repeat it to average each image over "
            "several seeds (tables then give the standard error over images). Default 0.",
        ),
    ] = None,
    split: Annotated[
        str,
        typer.Option(
            "--split",
            help="Which images: auto (the test split of what restorekit trains on, "
            "every image of your own folder or file), test, or all.",
        ),
    ] = "auto",
    all_images: Annotated[
        bool, typer.Option("--all-images", help="The same as --split all.")
    ] = False,
    limit: Annotated[int | None, typer.Option(help="Score only the first N of each task.")] = None,
    channels: Annotated[
        int | None, typer.Option(help="Convert the images to 1 or 3 channels.")
    ] = None,
    tile: Annotated[int | None, typer.Option(help="Tiled inference, N pixels a side.")] = None,
    report: Annotated[
        bool, typer.Option("--report/--no-report", help="Also write report.md and .html.")
    ] = True,
    metric: Annotated[
        list[str] | None,
        typer.Option(
            "--metric",
            help="Repeatable: a metric to score (an unknown name lists them), e.g. psnr_chroma "
            "or colour_cast. Default psnr and ssim, and psnr_mask and ssim_mask where the "
            "data has masks.",
        ),
    ] = None,
    precision: PrecisionOption = "auto",
    memory_format: MemoryFormatOption = "auto",
) -> None:
    """Score models and baselines on datasets x degradations; write CSV, JSON and a report.

    Super-resolution is scored on MATLAB luma with crop = scale, the rest on all channels
    without crop; every table states its protocol, and a fixed --seed gives identical
    numbers run to run. Registered sources are scored on the test part of the split that
    training uses (seed 0); a folder or file of your own is scored whole (--split says
    otherwise). An image that cannot be read is skipped and counted in the table; a model
    that returns NaN is an error, never a score.
    """
    from restorekit.evaluate import Method, evaluate, tasks_for
    from restorekit.metrics import DEFAULT_METRICS, METRICS

    unknown = [m for m in metric or () if m not in METRICS]
    if unknown:
        raise UserError(f"--metric {unknown[0]!r} is not one of: {', '.join(METRICS)}")
    if weights is not None and len(model or []) != 1:
        raise UserError("--weights goes with exactly one --model")
    methods = _eval_methods(model or [], baseline or [], weights)
    if not methods:
        raise UserError("name at least one --model or --baseline")
    # The images take the first model's channel count unless --channels says otherwise.
    counts = [getattr(module, "in_channels", None) for _, module, _ in methods]
    want = channels or next((c for c in counts if isinstance(c, int)), None)
    if split not in ("auto", "test", "all"):
        raise UserError(f"--split must be auto, test or all, not {split!r}")
    chosen = None if all_images or split == "all" else split
    tasks = [
        task
        for item in data
        for task in tasks_for(
            item, degradation or (), seed=seed or [0], split=chosen, channels=want
        )
    ]
    results = evaluate(
        [Method(n, m, note) for n, m, note in methods],
        tasks,
        metrics=tuple(metric) if metric else DEFAULT_METRICS,
        limit=limit,
        tile=tile,
        progress=True,
        precision=precision,
        memory_format=memory_format,
    )
    results.write(out)
    if report:
        from restorekit.report import write_report

        write_report(results, out, title="restorekit evaluation")
    typer.echo(_summary_table(results))
    typer.echo(
        f"wrote {out}/results.csv, summary.csv, results.json"
        + (", report.md, report.html" if report else "")
    )


def _eval_methods(models: list[str], baselines: list[str], weights: Path | None) -> list:
    """(name, module, note) for each --model and --baseline, in the order given."""
    from restorekit.api import load_model
    from restorekit.baselines import create_baseline
    from restorekit.config import parse_call

    methods = []
    for spec in models:
        net = load_model(spec, weights=weights)
        name = Path(spec).stem if ("/" in spec or spec.endswith(".safetensors")) else spec
        note = f"weights {net.weights_file}" if not net.untrained else "untrained (random init)"
        methods.append((name, net, note))
    for spec in baselines:
        name, kwargs = parse_call(spec)  # bm3d:sigma=0.1
        module = create_baseline(name, **kwargs)
        methods.append((module.describe(), module, "classical baseline"))
    return methods


def _summary_table(results) -> str:  # -> the printed table, one block per task
    from restorekit.evaluate import format_mean_se
    from restorekit.metrics import METRICS

    lines = []
    rows = results.summary()
    names = results.metrics()
    for key, protocol in results.protocols.items():
        lines += ["", f"{' / '.join(key)}  [{protocol.describe()}]"]
        labels = "".join(f" {METRICS[n].label:>15s}" for n in names)
        lines.append(f"  {'method':36s} {'images':>6s}{labels}")
        for r in rows:
            if (r["dataset"], r["degradation"]) == key:
                cells = "".join(
                    f" {format_mean_se(r[n], r[f'{n}_se'], METRICS[n].digits):>15s}" for n in names
                )
                lines.append(f"  {r['method'][:36]:36s} {r['images']:6d}{cells}")
        skipped = results.skipped_images(key)
        if skipped:
            lines.append(f"  skipped {len(skipped)} unreadable: {', '.join(skipped[:5])}"
                         + (" ..." if len(skipped) > 5 else ""))  # fmt: skip
    return "\n".join(lines)


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the report and tables.")] = Path(
        "out/demo"
    ),
    seed: Annotated[int, typer.Option(help="Noise seed.")] = 0,
    precision: PrecisionOption = "auto",
    quick: Annotated[
        bool, typer.Option("--quick", help="Fewer, smaller images: a check in a minute.")
    ] = False,
) -> None:
    """The four systems on bundled real images, beside the classical baselines.

    Degrades real photos, faces, an MRI slice and the motorcycle scene with each system's
    presets, restores them with its models (shipped weights when present, else marked
    untrained) and with the baselines, and writes results and a report to OUT.
    """
    from restorekit.demo import run_demo

    results = run_demo(out, seed=seed, precision=precision, quick=quick)
    typer.echo(_summary_table(results))
    typer.echo(f"wrote {out}/report.html, report.md, results.csv, summary.csv, results.json")


export_app = typer.Typer(help="Export a model for other runtimes (ONNX).", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("onnx")
def export_onnx_cmd(
    model: Annotated[str, typer.Option("--model", help=MODEL_HELP)],
    out: Annotated[Path, typer.Option("--out", help="The .onnx file to write.")],
    weights: WeightsOption = None,
    height: Annotated[
        int, typer.Option(help="Input height of a --static export (and of the fallback).")
    ] = 256,
    width: Annotated[
        int, typer.Option(help="Input width of a --static export (and of the fallback).")
    ] = 256,
    static: Annotated[
        bool, typer.Option("--static", help="Fix the input size to --height x --width.")
    ] = False,
    opset: Annotated[int, typer.Option(help="ONNX opset (18 or later).")] = 18,
) -> None:
    """Export a model to ONNX, checked against PyTorch with onnxruntime.

    The file takes `lq`, (B, C, H, W) float32 in [0, 1], and returns `restored`,
    (B, C, scale*H, scale*W); discriminators take `image` and return `logits`. H and W
    are dynamic unless --static, or unless the model cannot be exported so: then the
    file takes --height x --width only and a warning says why. The model name, its
    arguments, scale and size multiple are stored in the file's metadata. Needs
    `pip install 'restorekit[onnx]'`.
    """
    from restorekit.api import load_model
    from restorekit.export import export_onnx

    net = load_model(model, weights=weights)
    info = export_onnx(net, out, height=height, width=width, dynamic=not static, opset=opset)
    axes = "any H x W" if info.dynamic else f"{info.height}x{info.width} inputs only"
    trained = "untrained (random init)" if net.untrained else f"weights {net.weights_file}"
    typer.echo(
        f"wrote {info.path}: {info.model_name}, {trained}, {axes}, opset {info.opset}, "
        f"{info.input_name} -> {info.output_name}, max |onnx - torch| {info.max_abs_error:.1e}"
    )
    if not info.dynamic and not static:
        typer.echo(f"restorekit: warning: {info.static_reason}", err=True)
