"""Shared by the table scripts (maintainers only): the models named on the command line,
and model-card sections (each table is one Markdown section, headed by its first line,
that a rerun replaces)."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from torch import nn

from restorekit.api import WEIGHTS_DIR, load_model


def load_models(names: list[str]) -> dict[str, nn.Module]:
    """Each shipped name, run folder or weights file loaded, labelled by its short name
    (a weights file with its folder: ``step-00000500/ema.safetensors``), or by the whole
    argument where two share it (``RUN_A/step-00000500/...`` beside ``RUN_B/...``), so
    that no model silently replaces another in a table."""
    short = {n: _short_name(n) for n in names}
    counts = Counter(short.values())
    return {(short[n] if counts[short[n]] == 1 else n): load_model(n) for n in names}


def _short_name(name: str) -> str:
    path = Path(name)
    if path.suffix == ".safetensors" and path.parent.name:  # `ema.safetensors` alone says little
        return f"{path.parent.name}/{path.name}"
    return path.name


def add_card_option(parser: argparse.ArgumentParser) -> None:
    """``--card NAME`` (repeatable): the shipped models whose cards get the table."""
    parser.add_argument(
        "--card",
        action="append",
        default=[],
        metavar="NAME",
        help="append the table to this shipped model's card (replacing an earlier one)",
    )


def set_card_section(name: str, section: str) -> None:
    """Put ``section`` (Markdown whose first line is its heading) at the end of the card
    ``restorekit/weights/NAME.md``, in place of the section with that heading and
    everything after it."""
    card = WEIGHTS_DIR / f"{name}.md"
    heading = section.splitlines()[0]
    kept = card.read_text().split(f"\n{heading}")[0].rstrip("\n")
    card.write_text(f"{kept}\n\n{section.rstrip()}\n")
