"""Model-card sections for the table scripts (maintainers only): each table is one
Markdown section, headed by its first line, that a rerun replaces."""

from __future__ import annotations

import argparse

from restorekit.api import WEIGHTS_DIR


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
