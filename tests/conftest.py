"""Suite-wide settings: one torch thread per xdist worker, and the `slow` marker."""

from __future__ import annotations

import os

import pytest
import torch

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
