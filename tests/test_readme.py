"""The README's commands and Python block run as written (issue 14), on tiny inputs made
here: every `restorekit ...` line of its shell blocks, then its Python block.

Only what cannot be tiny is adjusted, and said so in ADJUST: training runs its smoke
variant, the bench times one small case. `restorekit demo` is test_demo's (quick) and runs
here only with RESTOREKIT_SLOW=1. `[...]` in a line is an optional part, left out.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from restorekit.cli import run

README = Path(__file__).resolve().parents[1] / "README.md"

# The first words of a command -> what is added to make it tiny.
BENCH_TINY = "--size 64 --model face_attention_unet_low --recipe face_attention_unet_low"
ADJUST = {
    ("train",): ["--smoke"],
    ("bench",): [*BENCH_TINY.split(), "--steps", "1", "--rounds", "1", "--min-time", "0.05",
                 "--no-onnx"],
}  # fmt: skip


def blocks(language: str) -> list[str]:
    text = README.read_text()
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def commands() -> list[str]:
    """Every `restorekit` command of the shell blocks: continuations joined, comments
    and optional [parts] dropped."""
    out = []
    for block in blocks("sh"):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line.startswith("restorekit "):
                out.append(re.sub(r"\s*\[[^\]]*\]", "", line))
    return out


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files the README's commands name: photos/, hr/, photo.png, face.png, scan.nii.gz."""
    import nibabel as nib
    from skimage import data

    root = tmp_path_factory.mktemp("readme")
    astro, cam = data.astronaut(), data.camera()
    for folder, images in (
        ("photos", (astro[:64, :80], cam[:48, :48])),
        ("hr", (astro[:64, :64],)),
    ):
        (root / folder).mkdir()
        for i, image in enumerate(images):
            Image.fromarray(image).save(root / folder / f"p{i}.png")
    Image.fromarray(astro[100:164, 100:164]).save(root / "photo.png")
    Image.fromarray(cam[:48, :48]).save(root / "face.png")
    scan = np.stack([cam[:32, :32], cam[32:64, :32]], axis=-1).astype(np.int16)  # 2 slices
    nib.save(nib.Nifti1Image(scan, np.eye(4)), root / "scan.nii.gz")
    return root


def test_the_readme_names_the_commands_it_should() -> None:
    firsts = {shlex.split(c)[1] for c in commands()}
    assert {"demo", "train", "restore", "eval", "weights", "data", "degrade", "downsample",
            "export", "bench", "models", "recipes"} <= firsts  # fmt: skip


@pytest.mark.parametrize("command", commands())
def test_each_readme_command_runs_as_written(
    command: str, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = shlex.split(command)[1:]
    if argv[0] == "demo" and not os.environ.get("RESTOREKIT_SLOW"):
        pytest.skip("the demo runs in test_demo (quick); here with RESTOREKIT_SLOW=1")
    argv += next((extra for words, extra in ADJUST.items() if tuple(argv[:1]) == words), [])
    monkeypatch.chdir(workdir)
    if "--resume" in argv:  # continues the run the line names: make it first
        assert run([a for a in argv if a != "--resume"]) == 0
    outputs = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("--out", "--lr-dir")]
    assert run([*argv, *(["--overwrite"] if _rewrites(argv, outputs) else [])]) == 0, command


def _rewrites(argv: list[str], outputs: list[str]) -> bool:
    """Whether an image command would meet its own outputs from an earlier test run."""
    return argv[0] in ("restore", "degrade", "downsample") and any(
        Path(o).exists() for o in outputs
    )


def test_the_readme_python_block_runs_as_written(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (code,) = blocks("python")
    monkeypatch.chdir(workdir)
    exec(compile(code, str(README), "exec"), {})  # the project's own README
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("tensor([") and float(printed[1]) > 25  # denoised: > input
