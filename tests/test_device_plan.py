"""scripts/device_train.py's plan: every run must start on the lent machine, whose time is
counted in minutes, so a mistyped override or a missing init is caught here instead."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from restorekit.models import create_model
from restorekit.train.recipe import find_recipe, load_recipe

ROOT = Path(__file__).resolve().parent.parent


def _device_train():
    spec = importlib.util.spec_from_file_location(
        "device_train", ROOT / "scripts" / "device_train.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PLAN = _device_train().PLAN


@pytest.mark.parametrize("name", sorted(PLAN))
def test_each_planned_run_reads_as_a_recipe_with_a_shipped_start(name: str) -> None:
    recipe_name, init, overrides = PLAN[name]
    recipe = load_recipe(find_recipe(recipe_name), tuple(overrides))
    assert (ROOT / "restorekit" / "weights" / f"{init}.safetensors").is_file()
    assert recipe.model.kwargs.get("pretrained", False) is False  # no ImageNet file there
    assert not recipe.train.uses("perceptual")  # its weights are over what a call carries
    create_model(recipe.model.name, **recipe.model.kwargs)  # the widths fit together
