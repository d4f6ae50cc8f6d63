"""House rules checked by the suite: import direction, lint, and a cheap ``import restorekit``."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (make venv installs it)")
    return path


def test_import_direction_follows_design_md() -> None:
    """DESIGN.md's layers, as written in pyproject's [tool.importlinter] contract."""
    result = subprocess.run(
        [_tool("lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_is_clean() -> None:
    result = subprocess.run(
        [_tool("ruff"), "check", "restorekit", "tests", "benchmarks", "scripts"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_restorekit_does_not_load_torch_or_heavy_modules() -> None:
    """`import restorekit` and `restorekit --help` stay fast: nothing heavy at import time."""
    code = (
        "import sys, restorekit, restorekit.cli; "
        "heavy = {'torch', 'matplotlib', 'h5py', 'pydicom', 'nibabel', 'skimage', 'onnx'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _torch_load_calls(tree: ast.AST) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "load"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "torch"
    ]


def test_weights_never_unpickled() -> None:
    """Every torch.load in the package passes weights_only=True (no arbitrary pickles)."""
    for path in (ROOT / "restorekit").rglob("*.py"):
        for call in _torch_load_calls(ast.parse(path.read_text())):
            safe = any(
                k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value
                for k in call.keywords
            )
            assert safe, f"{path}:{call.lineno}: torch.load without weights_only=True"


TINY_ARCHITECTURE = '''
"""A two-conv residual denoiser: the architecture recipe of DESIGN.md, followed."""

from torch import nn

from restorekit.models import register
from restorekit.models.base import Restorer


@register("tiny_residual", kind="restorer", channels=1, tiny={"width": 4},
          paper="DESIGN.md, How to add an architecture")
class TinyResidual(Restorer):
    size_multiple = 2

    def __init__(self, *, in_channels: int = 1, width: int = 16) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.body = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(width, in_channels, 3, padding=1))

    def restore(self, x):
        return x + self.body(x)
'''


def test_adding_an_architecture_is_one_file(tmp_path: Path) -> None:
    """DESIGN.md's recipe: one file in models/ (here a folder added to the package's
    path), and the model is listed, built, trained, saved, rebuilt and loaded by name."""
    import json

    import torch

    import restorekit.models as models
    from restorekit.api import load_model
    from restorekit.train.checkpoint import save_weights

    (tmp_path / "tiny_residual.py").write_text(TINY_ARCHITECTURE)
    models.__path__.append(str(tmp_path))
    try:
        models.MODELS.load(again=True)
        assert "tiny_residual" in models.list_models(kind="restorer")
        assert models.MODELS.silent_modules() == []
        entry = models.model_entry("tiny_residual")
        net = models.create_model("tiny_residual", **entry.tiny)
        y = net(torch.rand(2, 1, 7, 9))  # any size: padded to the multiple, cropped back
        assert y.shape == (2, 1, 7, 9)
        y.square().mean().backward()
        assert net.model_kwargs == {"in_channels": 1, "width": 4}  # every resolved argument
        save_weights(tmp_path / "w.safetensors", net)
        loaded = load_model(tmp_path / "w.safetensors")
        assert json.dumps(loaded.model_kwargs) == json.dumps(net.model_kwargs)
        pairs = zip(loaded.state_dict().values(), net.state_dict().values(), strict=True)
        assert all(torch.equal(a, b) for a, b in pairs)
    finally:
        models.__path__.remove(str(tmp_path))
        models.MODELS.remove("tiny_residual")
        sys.modules.pop("restorekit.models.tiny_residual", None)
