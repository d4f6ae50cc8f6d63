"""Commands on data: list the offline sources, prepare dataset folders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from restorekit.cli._app import _progress, app

data_app = typer.Typer(
    help="Data: installed sources, and dataset folders ready for training and evaluation.",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")


@data_app.command("list")
def data_list(
    long: Annotated[
        bool, typer.Option("--long", "-l", help="Also say what each source yields.")
    ] = False,
) -> None:
    """List the offline data sources: kind, image count and sizes, and availability.

    Sizes are read from file headers (the MNI template is read whole, under a second).
    An unavailable source says what to install.
    """
    from restorekit.data import SOURCES
    from restorekit.data.prepare import DEFAULT_DEGRADATION

    typer.echo(f"{'source':15s} {'kind':6s} {'images (count, channels, HxW)':32s} status")
    for name, src in SOURCES.items():
        reason = src.unavailable_reason()
        images = "-" if reason else src.summary()
        typer.echo(f"{name:15s} {src.kind:6s} {images:32s} {reason or 'available'}")
        if long:
            typer.echo(f"{'':15s} {src.description}")
    defaults = ", ".join(f"{kind}: {deg}" for kind, deg in DEFAULT_DEGRADATION.items())
    typer.echo(f"`restorekit data prepare` degrades by kind unless told: {defaults}")


@data_app.command("prepare")
def data_prepare(
    source: Annotated[
        str,
        typer.Argument(
            help="A source from `restorekit data list`, or a FER2013 .csv, a NIfTI/DICOM/"
            "fastMRI .h5 volume or folder, or a folder of images."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Output folder (new or empty).")],
    degradation: Annotated[
        str | None,
        typer.Option(
            "--degradation",
            help="Preset (`restorekit degradations`); default by the source's kind.",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of crops, degradations and the split.")] = 0,
    limit: Annotated[int | None, typer.Option(help="Use only the first N images.")] = None,
    crop: Annotated[
        int | None, typer.Option(help="Take a seeded random NxN patch of each clean image.")
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace a folder written by an earlier `data prepare`."),
    ] = False,
) -> None:
    """Write a dataset folder: gt/ + lq/ (or degraded/ + mask/ + gt/) + dataset.json.

    Each clean image is degraded once with its own seed (from --seed and its index);
    degradations with a mask (salt_pepper, defects) give the triplet layout. SR presets
    (bicubic_xN) modcrop gt to a multiple of the scale. dataset.json records the source,
    degradation, seed, layout and a train/val/test split (FER2013's own Usage, else
    70/20/10 by seed). A non-empty OUT is refused; --force replaces only a folder that
    holds a dataset.json, and only its gt/, lq/, degraded/, mask/ and dataset.json.
    """
    from restorekit.data.prepare import prepare_dataset

    meta = prepare_dataset(
        source,
        out,
        degradation=degradation,
        seed=seed,
        limit=limit,
        crop=crop,
        force=force,
        progress=lambda items: _progress(list(items), f"prepare {source}"),
    )
    sizes = ", ".join(f"{k} {len(v)}" for k, v in meta["splits"].items())
    typer.echo(
        f"wrote {meta['count']} images ({meta['layout']} layout, {meta['degradation']}, "
        f"seed {seed}) to {out} [{sizes}]"
    )
