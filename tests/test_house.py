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
