"""What every command module shares: the app, the user-error type, small helpers."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

try:  # typer >= 0.29 vendors click; older typer uses click itself
    from typer.exceptions import TyperException as _UsageError
except ImportError:  # pragma: no cover
    from click import ClickException as _UsageError

__all__ = [
    "EXIT_USER_ERROR",
    "MODEL_HELP",
    "OutFormat",
    "UserError",
    "WeightsOption",
    "_UsageError",
    "_fail",
    "_progress",
    "app",
]

app = typer.Typer(
    name="restorekit",
    help="Attention-based image restoration: denoising, dehazing and super-resolution.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

EXIT_USER_ERROR = 2


class UserError(Exception):
    """An error in the user's input: reported as one line with exit code 2."""


def _fail(message: str) -> None:
    typer.echo(f"restorekit: error: {message}", err=True)


class OutFormat(str, Enum):
    png = "png"
    tif = "tif"


def _progress(items: list, desc: str):
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="img", disable=None, file=sys.stderr)


# --model and --weights mean the same in restore, eval and export (restorekit.api.load_model).
MODEL_HELP = (
    "A shipped weights name, a .safetensors file from training, a run folder, or a "
    "registered model (`restorekit models`), untrained unless --weights."
)
WeightsOption = Annotated[
    Path | None,
    typer.Option("--weights", help="With a registered --model: its .safetensors or .pth file."),
]
PrecisionOption = Annotated[
    str,
    typer.Option(
        "--precision",
        help="auto (bf16 autocast where the CPU/GPU has native bf16: AMX, AVX512-BF16, "
        "Ampere+; else fp32), fp32 or bf16.",
    ),
]
MemoryFormatOption = Annotated[
    str,
    typer.Option(
        "--memory-format", help="auto (the model's preference), channels_last or contiguous."
    ),
]


def resolve_numerics(precision: str, memory_format: str, device: str, model: object):
    """The precision and memory format a command runs in (``restorekit.hardware``)."""
    from restorekit.hardware import resolve

    return resolve(precision, memory_format, device=device, model=model)


def tile_progress(name: str):  # -> Callable[[int, int], None]
    """A ``progress(done, total)`` for tiled restores: a plain line at every tenth of
    the tiles (never a carriage-return bar, so log files stay readable)."""

    def report(done: int, total: int) -> None:
        step = max(total // 10, 1)
        if total >= 4 and (done % step == 0 or done == total):
            typer.echo(f"{name}: tile {done}/{total}", err=True)

    return report
