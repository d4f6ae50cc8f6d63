"""Nothing lost, nothing silent (issue 14): outputs that collide, outputs already there,
temporaries of killed runs, and OS errors while writing, for restore, degrade and
downsample alike."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from restorekit.cli import run

COMMANDS = {
    "degrade": lambda src, out, *a: ["degrade", str(src), "--out", str(out), *a],
    "downsample": lambda src, out, *a: [
        "downsample", "--hr-dir", str(src), "--lr-dir", str(out), "--scale", "2", *a
    ],
    "restore": lambda src, out, *a: [
        "restore", str(src), "--model", "median", "--out", str(out), *a
    ],
}  # fmt: skip


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png", "c.png"):
        Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(folder / name)
    return folder


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize("command", COMMANDS)
def test_two_inputs_with_one_stem_are_refused_before_anything_is_written(
    command: str, images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Image.open(images / "a.png").save(images / "a.bmp")  # a.bmp and a.png: one a.png out
    out = tmp_path / "out"
    assert run(COMMANDS[command](images, out)) == 2
    assert "would both be written to" in one_line_error(capsys)
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("command", COMMANDS)
def test_outputs_of_another_run_are_kept_unless_asked(
    command: str, images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert run(COMMANDS[command](images, out)) == 0
    capsys.readouterr()
    (out / "b.png").write_bytes(b"from another run")
    assert run(COMMANDS[command](images, out)) == 2  # the default refuses, before any work
    assert "already exists (3 of 3 outputs" in one_line_error(capsys)
    assert (out / "b.png").read_bytes() == b"from another run"

    assert run(COMMANDS[command](images, out, "--skip-existing")) == 0
    assert "kept 3 already there" in capsys.readouterr().out
    assert (out / "b.png").read_bytes() == b"from another run"

    assert run(COMMANDS[command](images, out, "--overwrite")) == 0
    assert "replacing 3 outputs" in capsys.readouterr().err
    assert (out / "b.png").read_bytes()[:4] == b"\x89PNG"

    assert run(COMMANDS[command](images, out, "--overwrite", "--skip-existing")) == 2
    assert "exclude each other" in one_line_error(capsys)


@pytest.mark.parametrize("command", COMMANDS)
def test_an_out_path_that_is_a_file_is_one_line_and_exit_2(
    command: str, images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "file"
    out.write_text("keep me")
    assert run(COMMANDS[command](images, out)) == 2
    assert "exists and is not a folder" in one_line_error(capsys)
    assert out.read_text() == "keep me"


def test_temporaries_of_a_killed_run_are_removed_by_the_next(
    images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    stale, fresh = out / ".a.k3j9x0q2.tmp.png", out / ".b.p0o9i8u7.tmp.png"
    stale.write_bytes(b"")  # what SIGKILL during a write leaves
    fresh.write_bytes(b"")  # another run writing right now
    hour_ago = time.time() - 3600
    os.utime(stale, (hour_ago, hour_ago))
    assert run(COMMANDS["restore"](images, out)) == 0
    assert not stale.exists() and fresh.exists()
    assert f"removed {stale}" in capsys.readouterr().err


@pytest.mark.parametrize("command", COMMANDS)
def test_a_full_disk_on_one_file_is_reported_and_the_batch_goes_on(
    command: str, images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    import restorekit.io

    real = restorekit.io.write_image

    def full_on_b(path, image, **kwargs):
        if Path(path).stem == "b":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, image, **kwargs)

    monkeypatch.setattr(restorekit.io, "write_image", full_on_b)
    out = tmp_path / "out"
    assert run(COMMANDS[command](images, out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "b.png: cannot write" in err[0] and "No space left" in err[0]
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "c.png"]  # the others done
