"""The fault corpus (issue 14): bad files, bad configs, bad weights and failing disks, made
here and run through every CLI entry point.

Each case asserts what a user must see: no traceback (``run`` would raise), exit code 2,
one line on stderr naming the file or key, and nothing lost: every input byte-identical,
no output half-written. The corpus is the cross product of the bad inputs and the
commands that read that kind of input, plus the file-system faults.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from restorekit.cli import run
from restorekit.models import create_model
from restorekit.train.checkpoint import save_weights

# ------------------------------------------------------------------------- bad images


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (a decompression bomb's start)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk
            + struct.pack(">I", zlib.crc32(chunk)))  # fmt: skip


BAD_IMAGES: dict[str, Callable[[Path], None]] = {
    "empty.png": lambda p: p.write_bytes(b""),
    "text.png": lambda p: p.write_text("this is not an image\n"),
    "truncated.png": lambda p: p.write_bytes(_good_png_bytes()[:60]),
    "bomb.png": lambda p: p.write_bytes(_png_header(200_000, 200_000)),
    "half.jpg": lambda p: p.write_bytes(_good_png_bytes()[: len(_good_png_bytes()) // 2]),
    "folder.png": lambda p: p.mkdir(),
}


def _good_png_bytes() -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(np.arange(64 * 64, dtype=np.uint8).reshape(64, 64)).save(buf, "PNG")
    return buf.getvalue()


IMAGE_COMMANDS: dict[str, Callable[[Path, Path], list[str]]] = {
    "restore": lambda src, out: ["restore", str(src), "--model", "median", "--out", str(out)],
    "degrade": lambda src, out: ["degrade", str(src), "--out", str(out)],
    "downsample": lambda src, out: ["downsample", "--hr-dir", str(src), "--lr-dir", str(out)],
    "eval": lambda src, out: [
        "eval",
        "--data",
        str(src),
        "--baseline",
        "median",
        "--out",
        str(out),
        "--no-report",
    ],
}


def _snapshot(root: Path) -> dict[str, str]:
    """Path -> content hash of every file below ``root``."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _one_line_exit_2(code: int, capsys: pytest.CaptureFixture[str], *names: str) -> None:
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert code == 2, err
    assert len(err) >= 1 and all("Traceback" not in line for line in err)
    assert any(all(n in line for n in names) for line in err), (names, err)


@pytest.mark.parametrize("bad", BAD_IMAGES)
@pytest.mark.parametrize("command", IMAGE_COMMANDS)
def test_a_bad_image_is_named_skipped_and_the_batch_goes_on(
    command: str, bad: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    (src / "good.png").write_bytes(_good_png_bytes())
    BAD_IMAGES[bad](src / bad)
    before = _snapshot(src)
    out = tmp_path / "out"
    code = run(IMAGE_COMMANDS[command](src, out))
    assert _snapshot(src) == before  # inputs untouched
    if bad == "folder.png":  # not a file: not an image of the folder at all
        assert code == 0
        return
    if command == "eval":  # eval skips and counts a bad image, and still scores the rest
        assert code == 0
        summary = json.loads((out / "results.json").read_text())["summary"]
        assert {r["skipped"] for r in summary} == {1} and {r["images"] for r in summary} == {1}
        return
    _one_line_exit_2(code, capsys, bad.split(".")[0])
    written = sorted(p.name for p in out.iterdir() if p.is_file())
    assert written == ["good.png"]  # the good one done, nothing half-written


# ------------------------------------------------------------------------- bad configs

BAD_RECIPES: dict[str, tuple[bytes, str]] = {
    "syntax": (b"name: [unclosed\n", "not valid YAML"),
    "latin1": ("name: caf\xe9\n".encode("latin-1"), "not UTF-8"),
    "list": (b"- a\n- b\n", "top level must be a mapping"),
    "unknown_key": (b"name: x\nmodle: {}\n", "modle: unknown key"),
    "bad_lr": (
        b"name: x\nmodel: {name: srcnn}\ndata: {source: lfw_faces}\n"
        b"train: {stages: [{lr: .nan}]}\n",
        "lr: must be a finite number",
    ),
    "bomb": (
        b"a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + b"".join(
            f"{b}: &{b} [{', '.join(['*' + a] * 10)}]\n".encode()
            for a, b in zip("abcdefgh", "bcdefghi", strict=True)
        ),
        "expands to more than",
    ),
}


@pytest.mark.parametrize("case", BAD_RECIPES)
def test_a_bad_recipe_is_one_line_naming_the_file(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, message = BAD_RECIPES[case]
    recipe = tmp_path / f"{case}.yaml"
    recipe.write_bytes(text)
    code = run(["train", str(recipe), f"run_dir={tmp_path / 'run'}"])
    _one_line_exit_2(code, capsys, f"{case}.yaml", message)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("override", "key"),
    [("train.stages.0.lr=.inf", "lr"), ("train.val_every=0", "val_every"),
     ("train.log_every=0", "log_every"), ("train.ema_decay=5.0", "ema_decay"),
     ("train.keep=-1", "keep"), ("train.grad_clip=-1", "grad_clip"),
     ("train.stages.0.gamma=-1", "gamma"), ("data.limit=0", "limit"),
     ("train.batch_size=0", "batch_size"), ("data.crop=-4", "crop")],
)  # fmt: skip
def test_an_out_of_range_setting_is_one_line_naming_the_key(
    override: str, key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(["train", "face_attention_unet_low", override, f"run_dir={tmp_path / 'r'}"])
    _one_line_exit_2(code, capsys, key)
    assert not (tmp_path / "r").exists()


# ------------------------------------------------------------------------- bad weights


def _nan_weights(path: Path) -> None:
    net = create_model("srcnn", scale=2, filters=(4, 2))
    with torch.no_grad():
        next(net.parameters()).fill_(float("nan"))
    save_weights(path, net)


def _huge_metadata(path: Path) -> None:
    from safetensors.torch import save_file

    net = create_model("srcnn", scale=2, filters=(4, 2))
    meta = {"model_name": '"srcnn"', "model_kwargs": '{"scale": 2, "filters": [6000, 6000]}'}
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path), metadata=meta)


class _Evil:
    def __reduce__(self) -> tuple:
        return (os.system, ("echo pwned > pwned.txt",))


BAD_WEIGHTS: dict[str, tuple[str, Callable[[Path], None], str]] = {
    "random_bytes": ("w.safetensors", lambda p: p.write_bytes(os.urandom(512)), "safetensors"),
    "empty": ("w.safetensors", lambda p: p.write_bytes(b""), "w.safetensors"),
    "pickle": ("w.pth", lambda p: torch.save({"x": _Evil()}, p), "w.pth"),
    "huge_metadata": ("w.safetensors", _huge_metadata, "metadata asks for"),
    "nan": ("w.safetensors", _nan_weights, "NaN"),
}


@pytest.mark.parametrize("case", BAD_WEIGHTS)
@pytest.mark.parametrize("command", ["restore", "eval", "export"])
def test_bad_weights_are_refused_in_one_line(
    case: str, command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    name, make, message = BAD_WEIGHTS[case]
    weights = tmp_path / name
    make(weights)
    image = tmp_path / "in" / "a.png"
    image.parent.mkdir()
    image.write_bytes(_good_png_bytes())
    model = ["--model", "srcnn", "--weights", str(weights)] if case == "pickle" else [
        "--model", str(weights)]  # fmt: skip
    argv = {
        "restore": ["restore", str(image), *model, "--out", str(tmp_path / "out")],
        "eval": [
            "eval",
            "--data",
            str(image.parent),
            *model,
            "--out",
            str(tmp_path / "out"),
            "--degradation",
            "bicubic_x2",
            "--no-report",
        ],
        "export": ["export", "onnx", *model, "--out", str(tmp_path / "out" / "m.onnx")],
    }[command]
    code = run(argv)
    assert not (tmp_path / "pwned.txt").exists()  # a pickle never runs
    _one_line_exit_2(code, capsys, message)
    outputs = tmp_path / "out"
    assert not outputs.exists() or not any(p.is_file() for p in outputs.rglob("*"))


# --------------------------------------------------------------------- file-system faults


@pytest.mark.parametrize("command", ["restore", "degrade", "downsample", "eval", "train"])
@pytest.mark.parametrize("fault", [errno.ENOSPC, errno.EROFS])
def test_a_full_or_read_only_disk_is_one_line_and_exit_2(
    command: str, fault: int, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    import restorekit.utils

    src = tmp_path / "in"
    src.mkdir()
    for i in range(2):
        (src / f"p{i}.png").write_bytes(_good_png_bytes())
    before = _snapshot(src)
    real = restorekit.utils.tempfile.mkstemp

    def failing(*args: object, **kwargs: object) -> tuple[int, str]:
        if str(tmp_path / "out") in str(kwargs.get("dir", "")):
            raise OSError(fault, os.strerror(fault), str(kwargs["dir"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(restorekit.utils.tempfile, "mkstemp", failing)
    out = tmp_path / "out"
    argv = {
        **{k: f(src, out) for k, f in IMAGE_COMMANDS.items()},
        "train": ["train", "face_attention_unet_low", "--smoke", f"run_dir={out}"],
    }[command]
    code = run(argv)
    _one_line_exit_2(code, capsys, os.strerror(fault))
    assert _snapshot(src) == before
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*"))
