"""Small utilities shared by every layer: atomic writes, generators, argument checks and
the BT.601 gray conversion.

Each check here is the only copy: a layer that validates images, positive integers or
(lo, hi) ranges calls these, so every error reads the same.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
"""Where shipped weights live: ``<name>.safetensors``, each with a ``<name>.md`` card."""

FLIP_GROUPS: tuple[str, ...] = ("dihedral", "hflip")
"""The flip groups of training augmentation and of self-ensemble: the eight flips and
rotations, or the left-right mirror alone (upright content such as faces)."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    A reader never sees a half-written file: the rename is atomic on POSIX when both
    names are on one file system, which is why the temporary lives in the same folder.
    On any exception the temporary is removed and ``path`` is left as it was.

    The temporary keeps ``path``'s suffix, so writers that pick a format by extension
    (Pillow, tifffile, safetensors) still work.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes the file private (0600), and writers that replace the temporary
        # keep that; give the result the mode a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def ram_bytes() -> int:
    """Physical memory of this machine in bytes (what memory budgets are fractions of)."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


STALE_AFTER_S = 600
"""A temporary of :func:`atomic_path` older than this was left by a killed process."""


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporaries that :func:`atomic_path` left in ``folder`` when its process
    was killed (SIGKILL gives no chance to clean up); return what was removed.

    Only files named as ``atomic_path`` names them (``.STEM.XXXXXXXX.tmpSUFFIX``) and not
    modified for :data:`STALE_AFTER_S` seconds are touched, so a run writing into the
    same folder at the same time keeps its own.
    """
    root = Path(folder)
    if not root.is_dir():
        return []
    now, removed = time.time(), []
    for path in root.glob(".*.tmp*"):
        if _TEMPORARY.fullmatch(path.name) and now - path.stat().st_mtime > STALE_AFTER_S:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


_TEMPORARY = re.compile(r"\..+\.[A-Za-z0-9_]{8}\.tmp(\.[A-Za-z0-9]+)*")


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread inside (restoring the count after).

    For data generation: the ops on one small crop are too short to split, and with two
    threads each op paid more in synchronisation than it saved (a defect crop of 128²
    took 60 ms on 2 threads, 15 ms on 1). Switching costs under a microsecond.
    """
    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def make_generator(seed: int | torch.Generator | None) -> torch.Generator:
    """Return a CPU ``torch.Generator``: ``seed`` itself if it is one, else seeded with it.

    ``None`` draws a fresh seed from the OS, so results differ run to run; pass an
    int for reproducible results.
    """
    if isinstance(seed, torch.Generator):
        return seed
    gen = torch.Generator()
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(int(seed))
    return gen


def check_positive(name: str, value: object) -> int:
    """``value`` if it is a positive integer (not a bool), else ValueError naming ``name``.

    >>> check_positive("n_blocks", 0)
    Traceback (most recent call last):
    ...
    ValueError: n_blocks must be a positive integer, got 0
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_arg(ok: bool, name: str, value: object, need: str) -> None:
    """Raise ``ValueError("{name} must be {need}, got {value!r}")`` unless ``ok``.

    >>> check_arg(3 > 0, "radius", 3, "> 0")
    """
    if not ok:
        raise ValueError(f"{name} must be {need}, got {value!r}")


def is_int(v: object) -> bool:
    """An int and not a bool (``True`` is an int to Python; no size or count takes it)."""
    return isinstance(v, int) and not isinstance(v, bool)


def working_float(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32, or float64 kept: half precisions lose sums over large windows."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def check_images(x: object, *, name: str = "x", channels: tuple[int, ...] | None = None) -> None:
    """ValueError unless ``x`` is a float (B, C, H, W) tensor (with C in ``channels``)."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
        got = f"{tuple(x.shape)} {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a float tensor of shape (B, C, H, W), got {got}")
    if channels is not None and x.shape[1] not in channels:
        allowed = " or ".join(map(str, channels))
        raise ValueError(f"{name} must have {allowed} channels, got {tuple(x.shape)}")


def as_range(
    value: float | tuple[float, float] | list[float],
    *,
    name: str,
    lo_min: float = 0.0,
    hi_max: float | None = None,
) -> tuple[float, float]:
    """A fixed value or a (lo, hi) range as a checked ``(lo, hi)`` float pair.

    >>> as_range(0.1, name="sigma"), as_range([0.0, 0.2], name="sigma")
    ((0.1, 0.1), (0.0, 0.2))
    >>> as_range((0.3, 0.1), name="sigma")
    Traceback (most recent call last):
    ...
    ValueError: sigma must be a number or a range (lo, hi) with 0.0 <= lo <= hi, got (0.3, 0.1)
    """
    pair = (value, value) if isinstance(value, (int, float)) else tuple(value)
    ok = len(pair) == 2 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in pair
    )
    if ok:
        lo, hi = float(pair[0]), float(pair[1])
        ok = lo_min <= lo <= hi and (hi_max is None or hi <= hi_max)
    if not ok:
        bound = f" <= {hi_max}" if hi_max is not None else ""
        raise ValueError(
            f"{name} must be a number or a range (lo, hi) with {lo_min} <= lo <= hi{bound}, "
            f"got {value!r}"
        )
    return lo, hi


BT601 = (0.298936021293775, 0.587043074451121, 0.114020904255103)
"""RGB -> gray weights of ITU-R BT.601, as MATLAB's ``rgb2gray`` rounds them."""


def rgb_to_gray(x: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) RGB -> (..., 1, H, W) gray with :data:`BT601`; 1 channel stays.

    >>> rgb_to_gray(torch.ones(2, 3, 4, 4)).shape
    torch.Size([2, 1, 4, 4])
    """
    if x.shape[-3] == 1:
        return x
    r, g, b = x.unbind(-3)
    return (BT601[0] * r + BT601[1] * g + BT601[2] * b).unsqueeze(-3)
