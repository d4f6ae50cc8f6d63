"""Precision and memory format: ``auto`` follows the hardware, explicit choices win."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest
import torch

from restorekit import hardware
from restorekit.baselines import create_baseline
from restorekit.hardware import Numerics, cpu_info, native_bf16, resolve
from restorekit.models import create_model


def _cpu(
    monkeypatch: pytest.MonkeyPatch, *, amx: bool, avx512_bf16: bool, speedup: float = 2.0
) -> None:
    """Pretend to be a CPU with these flags on which bf16 measures ``speedup`` x fp32."""
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(hardware, "bf16_speedup", lambda threads=None: speedup)


@pytest.mark.parametrize(
    ("amx", "avx512_bf16", "want"),
    [(True, False, "bf16"), (False, True, "bf16"), (False, False, "fp32")],
)
def test_auto_is_bf16_only_with_native_bf16(
    monkeypatch: pytest.MonkeyPatch, amx: bool, avx512_bf16: bool, want: str
) -> None:
    _cpu(monkeypatch, amx=amx, avx512_bf16=avx512_bf16)
    assert native_bf16("cpu") is (want == "bf16")
    chosen = resolve("auto", device="cpu", quiet=True)
    assert chosen.precision == want
    assert ("no native bf16" in chosen.why) is (want == "fp32")
    # Explicit choices override whatever the hardware has.
    assert resolve("fp32", quiet=True).precision == "fp32"
    assert resolve("bf16", quiet=True).precision == "bf16"


@pytest.mark.parametrize("amx", [True, False])
def test_auto_needs_bf16_to_measure_faster_than_fp32(
    monkeypatch: pytest.MonkeyPatch, amx: bool
) -> None:
    # The flags alone do not decide: an Intel Xeon with AVX512-BF16 and no AMX ran bf16
    # 0.53x fp32 in the probe (0.67-0.73x in training steps). Below the margin: fp32.
    for speedup, want in [(0.54, "fp32"), (1.05, "fp32"), (hardware.BF16_MIN_SPEEDUP, "bf16")]:
        _cpu(monkeypatch, amx=amx, avx512_bf16=not amx, speedup=speedup)
        chosen = resolve("auto", device="cpu", quiet=True)
        assert chosen.precision == want, speedup
        assert ("did not measure faster than fp32" in chosen.why) is (want == "fp32")
        assert ("AMX" in chosen.why) is amx
        assert resolve("bf16", quiet=True).precision == "bf16"  # explicit still wins


def test_no_probe_without_native_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    _cpu(monkeypatch, amx=False, avx512_bf16=False)

    def probe(threads: int | None = None) -> float:
        raise AssertionError("emulated bf16 needs no measuring")

    monkeypatch.setattr(hardware, "bf16_speedup", probe)
    assert resolve("auto", quiet=True).precision == "fp32"


def test_the_bf16_probe_measures_once_and_leaves_the_random_stream() -> None:
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    threads = torch.get_num_threads()
    speedup = hardware.bf16_speedup(1)
    assert math.isfinite(speedup) and speedup > 0
    assert torch.equal(torch.rand(3), expected)  # a seeded run draws what it would have
    assert torch.get_num_threads() == threads  # the probe's thread count is put back
    assert hardware.bf16_speedup(1) == speedup  # cached: measured once per thread count


def test_memory_format_follows_the_model_and_baselines_stay_fp32_nchw(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _cpu(monkeypatch, amx=True, avx512_bf16=True)
    unet = create_model("attention_unet", in_channels=1)
    assert resolve(model=unet, quiet=True).channels_last
    casr = create_model("casr", scale=2, n_blocks=1, channels=16)
    assert resolve(model=casr, quiet=True).channels_last  # bf16 here: channels_last
    assert not resolve("fp32", model=casr, quiet=True).channels_last  # fp32: NCHW
    assert resolve("fp32", "channels_last", model=casr, quiet=True).channels_last
    median = create_baseline("median")
    assert resolve(model=median, quiet=True).describe() == "fp32, NCHW"
    assert resolve(model=median, quiet=True).why == "a classical baseline: always fp32"
    # A baseline forced to bf16 still gets it: explicit always wins.
    assert resolve("bf16", model=median, quiet=True).precision == "bf16"


def test_weights_that_lose_accuracy_in_bf16_run_in_fp32_under_auto(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from restorekit.api import load_model
    from restorekit.train.checkpoint import save_weights

    _cpu(monkeypatch, amx=True, avx512_bf16=True)
    net = create_model("attention_unet", in_channels=1)
    save_weights(tmp_path / "plain.safetensors", net)
    save_weights(tmp_path / "fp32.safetensors", net, auto_precision="fp32")
    plain, marked = (load_model(tmp_path / f"{n}.safetensors") for n in ("plain", "fp32"))
    assert plain.auto_precision is None
    assert resolve(model=plain, quiet=True).precision == "bf16"
    assert marked.auto_precision == "fp32"
    chosen = resolve(model=marked, quiet=True)
    assert chosen.precision == "fp32"
    assert "lose accuracy under bf16" in chosen.why
    # An explicit choice still wins over the weights' preference.
    assert resolve("bf16", model=marked, quiet=True).precision == "bf16"


def test_unknown_choices_name_the_options() -> None:
    with pytest.raises(ValueError, match="precision must be one of auto, fp32, bf16"):
        resolve("fp16")
    with pytest.raises(ValueError, match="memory format must be one of"):
        resolve("fp32", "nhwc")


def test_the_choice_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    hardware._logged.clear()
    with caplog.at_level(logging.INFO, logger="restorekit.hardware"):
        resolve("fp32", "contiguous")
        resolve("fp32", "contiguous")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["precision: fp32, NCHW (set explicitly)"]


def test_numerics_autocast_and_layout() -> None:
    conv = torch.nn.Conv2d(2, 2, 3, padding=1)
    x = torch.rand(1, 2, 8, 8)
    bf16 = Numerics("bf16", channels_last=True)
    bf16.prepare(conv)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert bf16.input(x).is_contiguous(memory_format=torch.channels_last)
    with bf16.autocast():
        assert conv(bf16.input(x)).dtype == torch.bfloat16
    with Numerics("fp32", channels_last=False).autocast():
        assert conv(x).dtype == torch.float32


def test_cpu_info_reports_what_decides_speed() -> None:
    info = cpu_info()
    assert set(info) >= {"cpu", "capability", "avx2", "avx512", "amx", "threads", "torch"}
    assert info["threads"] == torch.get_num_threads() and isinstance(info["cpu"], str)
    assert info["amx"] == torch.cpu._is_amx_tile_supported()


def test_cpu_name_comes_from_proc_cpuinfo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "cpuinfo"
    fake.write_text("processor\t: 0\nmodel name\t: AMD EPYC 7B13 64-Core Processor\n")
    real_open = open
    monkeypatch.setattr(
        "builtins.open", lambda f, *a, **k: real_open(fake if f == "/proc/cpuinfo" else f, *a, **k)
    )
    hardware.cpu_name.cache_clear()
    try:
        assert hardware.cpu_name() == "AMD EPYC 7B13 64-Core Processor"
    finally:
        monkeypatch.undo()
        hardware.cpu_name.cache_clear()


@pytest.mark.parametrize(("threads", "want"), [(1, "1 thread,"), (2, "2 threads,")])
def test_machine_summary_names_the_threads_and_native_bf16(monkeypatch, threads, want) -> None:
    _cpu(monkeypatch, amx=False, avx512_bf16=True)
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    line = hardware.machine_summary()
    assert want in line and "AVX512_BF16" in line and "AMX" not in line, line
