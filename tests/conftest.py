"""Suite-wide settings: one torch thread per xdist worker, the `slow` marker, and the checks
every model test shares (fixtures: ``check_gradients``, ``round_trip``), and a tiny trained-
looking SR model for the commands that restore (``tiny_sr_weights``)."""

from __future__ import annotations

import json
import os
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
