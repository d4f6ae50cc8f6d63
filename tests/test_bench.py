"""``restorekit bench`` runs end to end and reports what the speed issue asks for.

Only the structure and the arithmetic are checked: timings are never asserted (they
depend on the machine and its load), per the house rule.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from restorekit.bench import format_bench
from restorekit.cli import run


def test_bench_prints_a_table_and_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("onnxruntime")
    out = tmp_path / "bench.json"
    argv = ["bench", "--size", "32", "--model", "face_attention_unet_low", "--recipe",
            "face_attention_unet_low", "--steps", "1", "--rounds", "1", "--min-time", "0.01",
            "--out", str(out)]  # fmt: skip
    assert run(argv) == 0
    result = json.loads(out.read_text())
    machine = result["machine"]
    assert {"cpu", "capability", "avx2", "avx512", "amx", "threads", "torch", "auto"} <= set(
        machine
    )
    assert result["matmul_gflops"]["fp32"] > 0
    assert ("bf16" in result["matmul_gflops"]) == (machine["amx"] or machine["avx512_bf16"])
    # Where bf16 is native, the probe that decides auto is reported beside it.
    assert (machine["bf16_speedup"] is not None) == ("bf16" in result["matmul_gflops"])
    paths = [r["path"] for r in result["inference"]]
    assert paths[0] == "fp32 NCHW eager" and paths[1].startswith("default (")
    assert paths[2] == "onnxruntime fp32"
    for r in result["inference"]:
        # GFLOP/s and the percentage follow from the time and the model's MACs.
        assert r["gflops"] > 0 and r["peak_percent"] == pytest.approx(
            100 * r["gflops"] / result["matmul_gflops"][r["dtype"]]
        )
    (train,) = result["training"]
    assert train["recipe"] == "face_attention_unet_low" and train["batch"] == 16
    assert train["data_batch_s"] > 0
    assert train["overhead_percent"] == pytest.approx(
        100 * (train["end_to_end_s"] / train["step_alone_s"] - 1)
    )
    printed = capsys.readouterr().out
    assert format_bench(result) in printed and f"wrote {out}" in printed
    assert "matmul 2048^3 peak: fp32" in printed


def test_bench_refuses_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["bench", "--steps", "0"]) == 2
    assert "--steps" in capsys.readouterr().err
    assert run(["bench", "--size", "4"]) == 2
