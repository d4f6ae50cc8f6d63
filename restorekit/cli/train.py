"""Commands for training: train (recipes and the seed's form), recipes, models."""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from restorekit.cli._app import UserError, app

UNCHECKED = ("run_dir", "recipe_file", "smoke", "train.progress", "train.log_every",
             "train.tensorboard", "train.num_workers")  # fmt: skip
"""Settings a resumed run may change: where it lives and how it reports, not what it learns."""


@app.command(context_settings={"allow_interspersed_args": True})
def train(
    recipe: Annotated[
        str | None,
        typer.Argument(help="Recipe: a YAML path, or a packaged name (`restorekit recipes`)."),
    ] = None,
    overrides: Annotated[
        list[str] | None, typer.Argument(help="key=value settings, e.g. train.batch_size=8.")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Seed form: an SR model (srcnn, drrn, edsr, rdn, casr).")
    ] = None,
    scale: Annotated[int | None, typer.Option(help="Seed form: 2, 3 or 4.")] = None,
    gan: Annotated[bool, typer.Option("--gan", help="Seed form: also run the GAN stage.")] = False,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in the recipe's run_dir.")
    ] = False,
    smoke: Annotated[
        bool, typer.Option("--smoke", help="The recipe's tiny variant: 2 steps per stage.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="With --resume: continue with changed settings.")
    ] = False,
) -> None:
    """Train a recipe: `restorekit train recipes/NAME.yaml [key=value ...]`.

    The seed's form works too: `restorekit train --model casr --scale 4 [--gan]`. Every
    key is checked before training starts. A run_dir that already holds a checkpoint is
    continued only with --resume, exactly where it stopped.
    """
    from restorekit.config import differences, to_dict
    from restorekit.train.checkpoint import load_checkpoint
    from restorekit.train.recipe import (
        build_trainer,
        find_recipe,
        load_recipe,
        recipe_for_model,
        upgrade_stages,
    )

    # The loop logs "Step N: Loss ..., SSIM ..., PSNR ..." at each validation, as the seeds.
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    settings = list(overrides or [])
    if recipe is not None and "=" in recipe:  # `train --model casr key=value`: no recipe
        settings.insert(0, recipe)
        recipe = None
    if model is not None:
        if recipe is not None:
            raise UserError("give a recipe or --model, not both")
        try:
            recipe = recipe_for_model(model)
        except ValueError as err:
            raise UserError(str(err)) from None
        settings += [f"gan={str(gan).lower()}"] + ([f"scale={scale}"] if scale else [])
    elif recipe is None:
        raise UserError("name a recipe (restorekit recipes lists them) or use --model")
    elif gan:
        settings.append("gan=true")
    config = load_recipe(find_recipe(recipe), tuple(settings), smoke=smoke)
    run_dir = config.folder
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"run_dir {run_dir}: exists and is not a folder")
    ckpt = load_checkpoint(run_dir)
    if ckpt is not None and not resume:
        raise UserError(
            f"{run_dir} already holds a checkpoint: pass --resume to continue it, "
            "or run_dir=... for a new run"
        )
    if ckpt is not None and not force:
        saved = upgrade_stages(ckpt.state.get("config", {}))  # runs from before `losses`
        changed = differences(saved, to_dict(config), ignore=UNCHECKED, new_keys=False)
        if changed:
            raise UserError(
                f"{run_dir} was started with other settings ({'; '.join(changed[:4])}"
                f"{'; ...' if len(changed) > 4 else ''}): resume with the same ones, or "
                "pass --force to continue with these"
            )
    trainer = build_trainer(config)
    scores = trainer.fit()
    if scores:
        typer.echo(
            f"{config.name}: step {trainer.step}: PSNR {scores['psnr']:.2f} dB, SSIM "
            f"{scores['ssim']:.4f} on {len(trainer.val_set)} validation images "
            f"({'Y' if config.train.y_channel else 'all channels'}, crop "
            f"{config.train.crop_border}, data range 1); weights in {trainer.run_dir}"
        )


@app.command("recipes")
def list_recipes_cmd() -> None:
    """List the packaged recipes, one per experiment of the four systems."""
    from restorekit.train.recipe import list_recipes, read_description

    for name in list_recipes():
        typer.echo(f"{name:28s} {read_description(name)}")


@app.command("weights")
def list_weights_cmd() -> None:
    """List the shipped weights: task, what they were trained on, held-out score.

    Each name works as `--model NAME` and `restorekit.load_model("NAME")`; its card
    (restorekit/weights/NAME.md) has the full table, protocol and how to reproduce it.
    """
    from restorekit.api import shipped_cards

    cards = shipped_cards()
    if not cards:
        typer.echo("no weights are shipped with this install")
    for card in cards:
        typer.echo(f"{card.name}\n  task:   {card.task}")
        if card.domain:
            typer.echo(f"  domain: {card.domain}")
        typer.echo(f"  test:   {card.score}")
        if card.protocol:
            typer.echo(f"          {card.protocol}")


@app.command("models")
def list_models_cmd(
    size: Annotated[
        int, typer.Option(help="Output side in pixels at which MACs are counted.")
    ] = 256,
) -> None:
    """List the registered models with their parameters and multiply-accumulates.

    MACs count convolutions, matrix products and attention for one image whose output is
    about SIZE x SIZE (the input is SIZE // scale), at each model's default settings.
    """
    from restorekit.models import list_models
    from restorekit.models.summary import model_cost

    typer.echo(f"MACs: one image, output about {size}x{size}, default settings of each model")
    typer.echo(
        f"{'model':18s} {'params':>12s} {'GMACs':>9s} {'scale':>5s} {'input C x H x W':>16s}"
    )
    for name in list_models():
        cost = model_cost(name, output_size=size)
        shape = "x".join(map(str, cost.input_size))
        typer.echo(
            f"{name:18s} {cost.params:12,d} {cost.macs / 1e9:9.2f} {cost.scale:5d} {shape:>16s}"
        )
