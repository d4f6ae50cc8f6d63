"""The machine a run is on, and the precision and memory format chosen for it.

``precision="auto"`` (the default everywhere: training, restore, eval, the demo, the
benchmarks) picks bfloat16 autocast only where the hardware computes in bf16 natively:

- CPU: AMX tiles or AVX512-BF16 (Intel Sapphire Rapids and later, AMD Zen 4 and later),
  and there only where bf16 autocast also *measures* faster than fp32: the flags do not
  say how fast a CPU is. A probe (:func:`bf16_speedup`, one 3x3 convolution's forward and
  backward, about 0.1 s once per process) must find bf16 at least ``BF16_MIN_SPEEDUP``
  times faster. Measured with ``benchmarks/bench_precision.py``: on an AMD EPYC with
  AVX512-BF16 training steps ran 1.4-3.1x faster in bf16, on an Intel Xeon with
  AVX512-BF16 and no AMX 0.67-0.73x (slower), and the probe read 0.53x there. Without
  native bf16, PyTorch emulates it and it runs 4-6x *slower* than fp32 (measured on an
  AVX2-only AMD EPYC), so ``auto`` is fp32 there without probing;
- CUDA: where ``torch.cuda.is_bf16_supported()`` (Ampere and later);
- anything else: fp32.

Weights can opt out of bf16: a shipped file whose scores moved by more than 0.05 dB under
bf16 autocast (measured when it was shipped, by ``scripts/ship_weights.py``) records
``auto_precision: "fp32"``, which :func:`restorekit.load_model` puts on the model, and
``auto`` then runs it in fp32 on every machine.

``memory_format="auto"`` is channels_last unless the model says otherwise with its
``prefers_channels_last`` attribute (False, or ``"bf16"``: only under bf16 autocast).
Measured side by side, channels_last was faster for every shipped architecture in
inference (fp32 and bf16), and in training for all but CASR in fp32 on an AVX2 CPU
(0.88x), whose Swin block reshapes between layouts; see its class.

Explicit ``"fp32"`` and ``"bf16"`` (and ``"channels_last"``, ``"contiguous"``) override
``auto``. The choice is logged once per process and written into every protocol line,
checkpoint and model card via :func:`describe`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import platform
import time
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

__all__ = [
    "BF16_MIN_SPEEDUP",
    "MEMORY_FORMATS",
    "PRECISIONS",
    "Numerics",
    "bf16_speedup",
    "check_device",
    "cpu_info",
    "machine_summary",
    "native_bf16",
    "resolve",
]

log = logging.getLogger(__name__)

Precision = Literal["auto", "fp32", "bf16"]
MemoryFormat = Literal["auto", "channels_last", "contiguous"]
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")
MEMORY_FORMATS: tuple[str, ...] = ("auto", "channels_last", "contiguous")

BF16_MIN_SPEEDUP = 1.1
"""``auto`` takes bf16 autocast on a CPU only where :func:`bf16_speedup` reads at least this:
bf16 costs precision, so it has to buy a clear gain, not a tie the probe's noise could flip."""

_logged: set[tuple[str, str, str]] = set()


@functools.lru_cache(maxsize=1)
def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what ``platform`` says."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_info() -> dict[str, object]:
    """What decides CPU speed here: name, vector extensions, threads, torch version."""
    cpu = torch.cpu
    return {
        "cpu": cpu_name(),
        "capability": torch.backends.cpu.get_cpu_capability(),
        "avx2": bool(cpu._is_avx2_supported()),
        "avx512": bool(cpu._is_avx512_supported()),
        "avx512_bf16": bool(cpu._is_avx512_bf16_supported()),
        "amx": bool(cpu._is_amx_tile_supported()),
        "threads": torch.get_num_threads(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
    }


def machine_summary() -> str:
    """One line for run records and model cards: ``"Intel(R) Xeon(R) ... (AVX512, AMX,
    2 threads, torch 2.13.0+cpu)"``."""
    info = cpu_info()
    extras = [name for name in ("amx", "avx512_bf16") if info[name]]
    parts = [str(info["capability"]), *[e.upper() for e in extras]]
    threads = info["threads"]
    parts += [f"{threads} thread{'s' if threads != 1 else ''}", f"torch {info['torch']}"]
    return f"{info['cpu']} ({', '.join(parts)})"


def native_bf16(device: str | torch.device = "cpu") -> bool:
    """Whether ``device`` computes bfloat16 natively (not emulated through fp32)."""
    device = torch.device(device)
    if device.type == "cpu":
        return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return False


def bf16_speedup(threads: int | None = None) -> float:
    """How many times faster bf16 autocast runs than fp32 on this CPU: one 3x3
    convolution (64 channels, 64x64, channels_last, batch 1), forward and backward, the
    fastest of five interleaved rounds of each. Above 1: bf16 is faster. About 0.1 s,
    measured once per process and thread count (``threads``, default torch's current).
    """
    return _bf16_speedup(torch.get_num_threads() if threads is None else threads)


@functools.cache
def _bf16_speedup(threads: int) -> float:
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        # Its own generator: the probe must not move the global random stream a run seeds.
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(1, 64, 64, 64, generator=gen).to(memory_format=torch.channels_last)
        w = (torch.randn(64, 64, 3, 3, generator=gen) / 24).to(memory_format=torch.channels_last)
        x.requires_grad_()
        w.requires_grad_()

        def seconds(bf16: bool) -> float:
            start = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                y = nn.functional.conv2d(x, w, padding=1)
            torch.autograd.grad(y.float().sum(), (x, w))
            return time.perf_counter() - start

        for bf16 in (False, True):  # a first run of each path, not counted
            seconds(bf16)
        best = {False: math.inf, True: math.inf}
        for _ in range(5):
            for bf16 in best:
                best[bf16] = min(best[bf16], seconds(bf16))
        return best[False] / best[True]
    finally:
        torch.set_num_threads(previous)


@dataclass(frozen=True)
class Numerics:
    """The resolved precision and memory format of a run.

    Attributes:
        precision: ``"fp32"`` or ``"bf16"`` (bf16 autocast; weights stay fp32).
        channels_last: run the model and its inputs in channels_last memory format.
        device_type: ``"cpu"``, ``"cuda"``, ... (what autocast needs).
        why: how ``auto`` decided, for the log.
    """

    precision: Literal["fp32", "bf16"]
    channels_last: bool
    device_type: str = "cpu"
    why: str = ""

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast for ``bf16``, nothing for ``fp32``."""
        return torch.autocast(
            self.device_type, dtype=torch.bfloat16, enabled=self.precision == "bf16"
        )

    def prepare(self, model: nn.Module) -> nn.Module:
        """``model`` in this memory format (in place, as ``Module.to`` does)."""
        return model.to(memory_format=self.memory_format)

    def input(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` in this memory format (4-D tensors only; others pass unchanged)."""
        return x.contiguous(memory_format=self.memory_format) if x.dim() == 4 else x

    def describe(self) -> str:
        """``"bf16 autocast, channels_last"``: the words every protocol line carries."""
        words = "bf16 autocast" if self.precision == "bf16" else "fp32"
        return f"{words}, {'channels_last' if self.channels_last else 'NCHW'}"


def _auto_precision(device: torch.device) -> tuple[Literal["fp32", "bf16"], str]:
    """``auto``'s precision for a model without a preference, and why (module docstring)."""
    native = native_bf16(device)
    if device.type != "cpu":
        words = f"auto: {device.type} {'supports' if native else 'lacks'} bf16"
        return ("bf16" if native else "fp32"), words
    if not native:
        return "fp32", f"auto: {cpu_name()} has no native bf16 (emulated bf16 is slower)"
    has = f"{cpu_name()} has {'AMX' if torch.cpu._is_amx_tile_supported() else 'AVX512-BF16'}"
    if bf16_speedup() >= BF16_MIN_SPEEDUP:
        return "bf16", f"auto: {has}"
    return "fp32", f"auto: {has}, but bf16 did not measure faster than fp32 here"


def check_device(device: str | torch.device) -> torch.device:
    """``device`` as a torch.device, if this machine has it.

    Raises:
        ValueError: a name torch does not know (``"bogus"``), or a device this machine
            lacks (``"cuda"`` on a CPU-only torch), in one line that says what there is.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {str(device)!r}: use cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(
                f"device {str(device)!r}: no CUDA device here (torch {torch.__version__}); "
                "use --device cpu"
            )
        if dev.index is not None and dev.index >= count:
            raise ValueError(f"device {str(device)!r}: this machine has {count} CUDA device(s)")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {str(device)!r}: MPS is not available here; use --device cpu")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device {str(device)!r}: restorekit runs on cpu, cuda or mps")
    return dev


def resolve(
    precision: str = "auto",
    memory_format: str = "auto",
    *,
    device: str | torch.device = "cpu",
    model: nn.Module | None = None,
    quiet: bool = False,
) -> Numerics:
    """Turn ``auto`` into this machine's choice (see the module docstring).

    Args:
        precision: ``"auto"``, ``"fp32"`` or ``"bf16"``.
        memory_format: ``"auto"``, ``"channels_last"`` or ``"contiguous"``.
        device: where the model runs.
        model: its ``prefers_channels_last`` attribute (default True) decides ``auto``;
            a classical baseline (``classical = True``) gets fp32 and NCHW under ``auto``,
            and so do weights whose ``auto_precision`` is ``"fp32"`` (fp32 only).
        quiet: do not log the choice (it is logged once per process and setting).

    Raises:
        ValueError: an unknown precision or memory format, naming the choices.
    """
    check_device(device)
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if memory_format not in MEMORY_FORMATS:
        raise ValueError(
            f"memory format must be one of {', '.join(MEMORY_FORMATS)}, got {memory_format!r}"
        )
    device = torch.device(device)
    chosen: Literal["fp32", "bf16"]
    if getattr(model, "classical", False) and precision == "auto":
        # A classical baseline's numbers must not depend on the machine.
        chosen, why = "fp32", "a classical baseline: always fp32"
        memory_format = "contiguous" if memory_format == "auto" else memory_format
    elif precision == "auto" and getattr(model, "auto_precision", None) == "fp32":
        chosen, why = "fp32", "auto: these weights lose accuracy under bf16 (measured when shipped)"
    elif precision == "auto":
        chosen, why = _auto_precision(device)
    else:
        chosen, why = precision, "set explicitly"  # type: ignore[assignment]
    if memory_format == "auto":
        prefers = getattr(model, "prefers_channels_last", True)
        channels_last = prefers is True or (prefers == "bf16" and chosen == "bf16")
    else:
        channels_last = memory_format == "channels_last"
    numerics = Numerics(chosen, channels_last, device.type, why)
    key = (numerics.describe(), why, type(model).__name__)
    if not quiet and key not in _logged:
        _logged.add(key)
        log.info("precision: %s (%s)", numerics.describe(), why)
    return numerics
