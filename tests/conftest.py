"""Suite-wide settings: one torch thread per xdist worker, the `slow` marker, and the checks
every model test shares (fixtures: ``check_gradients``, ``round_trip``), and a tiny trained-
looking SR model for the commands that restore (``tiny_sr_weights``)."""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

from restorekit.models import create_model
from restorekit.train.checkpoint import save_weights

# `make test` runs two xdist workers on this 2-core machine: one thread each avoids
# oversubscription, which makes convolutions several times slower.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("RESTOREKIT_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: set RESTOREKIT_SLOW=1 (make test-all) to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def _check_gradients(model: nn.Module, x: torch.Tensor) -> None:
    """Every parameter takes part in the output (gets a gradient), and nothing is NaN."""
    model.train()
    y = model(x)
    assert torch.isfinite(y).all()
    (y * torch.randn_like(y)).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} gets no gradient"
        assert torch.isfinite(p.grad).all(), name


def _round_trip(model: nn.Module, x: torch.Tensor) -> None:
    """A model rebuilt from its JSON-saved name and kwargs takes the weights strictly."""
    kwargs = json.loads(json.dumps(model.model_kwargs))  # tuples come back as lists
    rebuilt = create_model(model.model_name, **kwargs)
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    model.eval()
    rebuilt.eval()
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model(x))


@pytest.fixture
def check_gradients() -> Callable[[nn.Module, torch.Tensor], None]:
    return _check_gradients


@pytest.fixture
def round_trip() -> Callable[[nn.Module, torch.Tensor], None]:
    return _round_trip


@pytest.fixture
def tiny_sr_weights(tmp_path: Path) -> Path:
    """A tiny 2x gray SRCNN with random weights, saved as training saves it."""
    torch.manual_seed(0)
    model = create_model("srcnn", scale=2, filters=(8, 4))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.1)
    file = tmp_path / "sr.safetensors"
    save_weights(file, model)
    return file


def _write_rcc(
    path: Path, files: dict[str, bytes], *, zlib_files: tuple[str, ...] = (),
    zstd_files: tuple[str, ...] = (), version: int = 2,
) -> Path:  # fmt: skip
    """Write a Qt resource bundle laid out as Qt's rcc writes one (restorekit/data/rcc.py
    documents the layout), directories from the paths' folders; ``zlib_files`` are
    stored as qCompress writes them, ``zstd_files`` only flagged (their bytes kept)."""
    tree: dict = {}
    for name in files:
        *folders, leaf = name.split("/")
        node = tree
        for f in folders:
            node = node.setdefault(f, {})
        node[leaf] = name
    nodes: list[tuple[str, object]] = [("", tree)]  # (name, dict for a folder, path for a file)
    children: dict[int, tuple[int, int]] = {}
    i = 0
    while i < len(nodes):  # breadth first: each folder's children are contiguous
        _, entry = nodes[i]
        if isinstance(entry, dict):
            children[i] = (len(entry), len(nodes))
            nodes.extend(entry.items())
        i += 1
    names = data = b""
    tree_bytes = b""
    for k, (name, entry) in enumerate(nodes):
        name_at = len(names)
        utf16 = name.encode("utf-16-be")
        names += struct.pack(">HI", len(utf16) // 2, 0) + utf16
        if isinstance(entry, dict):
            tree_bytes += struct.pack(">IHII", name_at, 2, *children[k])
        else:
            raw = files[entry]
            flags = 1 if entry in zlib_files else 4 if entry in zstd_files else 0
            payload = struct.pack(">I", len(raw)) + zlib.compress(raw) if flags == 1 else raw
            tree_bytes += struct.pack(">IHHHI", name_at, flags, 0, 0, len(data))
            data += struct.pack(">I", len(payload)) + payload
        if version >= 2:
            tree_bytes += struct.pack(">Q", 0)  # modification time
    head = 24 if version >= 3 else 20
    offsets = (head, head + len(tree_bytes), head + len(tree_bytes) + len(data))
    header = b"qres" + struct.pack(">4I", version, *offsets)
    if version >= 3:
        header += struct.pack(">I", 0)
    path.write_bytes(header + tree_bytes + data + names)
    return path


@pytest.fixture
def write_rcc() -> Callable[..., Path]:
    return _write_rcc
