"""Typed config: YAML + dotted overrides into dataclasses, errors naming the file and key."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

from restorekit.config import ConfigError, apply_overrides, from_dict, load_config, to_dict


@dataclass(frozen=True)
class Optim:
    lr: float = 1e-3
    kind: Literal["adam", "adamw"] = "adam"
    betas: tuple[float, float] = (0.9, 0.999)


@dataclass(frozen=True)
class Recipe:
    model: str
    steps: int = 100
    gan: bool = False
    data: Path | None = None
    crop: tuple[int, ...] = (64,)
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    optim: Optim = field(default_factory=Optim)

    def __post_init__(self) -> None:
        if self.steps <= 0:
            raise ValueError("steps must be positive")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def test_yaml_and_overrides_build_the_typed_tree(tmp_path: Path) -> None:
    path = write(tmp_path, "model: edsr\noptim:\n  lr: 1e-4\nmodel_kwargs: {scale: 2}\n")
    cfg = load_config(path, Recipe, ["optim.kind=adamw", "gan=true", "crop=[48, 48]", "steps=5"])
    assert cfg == Recipe(
        model="edsr",
        steps=5,
        gan=True,
        crop=(48, 48),
        model_kwargs={"scale": 2},
        optim=Optim(lr=1e-4, kind="adamw"),
    )
    assert isinstance(cfg.optim.lr, float)
    assert to_dict(cfg)["optim"] == {"lr": 1e-4, "kind": "adamw", "betas": [0.9, 0.999]}


@pytest.mark.parametrize(
    ("text", "overrides", "message"),
    [
        ("model: a\nstepz: 3\n", [], "stepz: unknown key"),
        ("model: a\noptim: {lr: fast}\n", [], "optim.lr: expected a number, got 'fast'"),
        ("model: a\noptim: {kind: sgd}\n", [], "optim.kind: expected one of 'adam', 'adamw'"),
        ("model: a\n", ["gan=1"], "gan: expected true or false"),
        ("model: a\n", ["steps=2.5"], "steps: expected an integer"),
        ("model: a\n", ["optim.betas=[0.9]"], "optim.betas: expected 2 values"),
        ("model: a\n", ["crop=[64, x]"], r"crop\[1\]: expected an integer"),
        ("steps: 3\n", [], "model: missing"),
        ("model: a\nsteps: 0\n", [], "steps must be positive"),
        ("model: a\n", ["model.name=x"], "model is not a section"),
        ("model: a\n", ["novalue"], "expected key=value"),
        ("- just\n- a list\n", [], "top level must be a mapping"),
        ("model: [unclosed\n", [], "not valid YAML"),
    ],
)
def test_errors_name_the_file_and_key(
    tmp_path: Path, text: str, overrides: list[str], message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path, Recipe, overrides)
    assert str(info.value).startswith(str(path))
    assert "\n" not in str(info.value)


def test_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.yaml"):
        load_config(tmp_path / "nope.yaml", Recipe)


def test_optional_and_path_fields() -> None:
    assert from_dict(Recipe, {"model": "a", "data": "x/y"}).data == Path("x/y")
    assert from_dict(Recipe, {"model": "a", "data": None}).data is None


def test_overrides_do_not_mutate_their_input() -> None:
    data = {"optim": {"lr": 0.1}}
    apply_overrides(data, ["optim.lr=0.2"])
    assert data == {"optim": {"lr": 0.1}}


def test_overrides_index_lists_and_name_a_bad_index() -> None:
    data = {"train": {"stages": [{"steps": 10}, {"steps": 20}]}}
    out = apply_overrides(data, ["train.stages.1.steps=5"])
    assert out["train"]["stages"] == [{"steps": 10}, {"steps": 5}]
    assert data["train"]["stages"][1]["steps"] == 20  # the input is not changed
    with pytest.raises(ConfigError, match=r"train\.stages\.2: no such item \(the list has 2\)"):
        apply_overrides(data, ["train.stages.2.steps=5"])
