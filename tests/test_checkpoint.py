"""Checkpoints: atomic step folders, safetensors weights with rebuild metadata, RNG state."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

from restorekit.train import checkpoint as ckpt


def small_model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4))
    model.model_name, model.model_kwargs = "toy", {"width": 4}
    return model


def test_weights_round_trip_with_metadata(tmp_path) -> None:
    model = small_model()
    ckpt.save_weights(tmp_path / "w.safetensors", model, step=7)
    state, meta = ckpt.load_weights(tmp_path / "w.safetensors")
    assert meta == {"model_name": "toy", "model_kwargs": {"width": 4}, "step": 7}
    assert state.keys() == model.state_dict().keys()
    for key, value in model.state_dict().items():
        assert torch.equal(state[key], value)


def test_bad_weights_files_name_the_file(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.safetensors"):
        ckpt.load_weights(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 40)
    with pytest.raises(ValueError, match=r"junk\.safetensors"):
        ckpt.load_weights(junk)


def test_checkpoint_round_trip_and_pruning(tmp_path) -> None:
    model = small_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.rand(2, 1, 5, 5)).sum().backward()
    opt.step()
    for step in (10, 20, 30):
        ckpt.save_checkpoint(
            tmp_path, step=step, modules={"model": model}, state={"optimizer": opt.state_dict()}
        )
    assert sorted(p.name for p in tmp_path.glob("step-*")) == ["step-00000020", "step-00000030"]
    loaded = ckpt.load_checkpoint(tmp_path)
    assert loaded is not None and loaded.step == 30
    fresh = torch.optim.Adam(small_model().parameters(), lr=1e-3)
    fresh.load_state_dict(loaded.state["optimizer"])
    assert torch.equal(
        fresh.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"]
    )
    assert loaded.meta["model"]["model_name"] == "toy"


def test_a_save_killed_midway_leaves_the_previous_checkpoint(tmp_path, monkeypatch) -> None:
    model = small_model()
    ckpt.save_checkpoint(tmp_path, step=1, modules={"model": model}, state={})

    def die(*args, **kwargs):
        raise KeyboardInterrupt  # stands for SIGKILL while writing state.pt

    monkeypatch.setattr(ckpt.torch, "save", die)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint(tmp_path, step=2, modules={"model": model}, state={})
    monkeypatch.undo()
    assert ckpt.load_checkpoint(tmp_path).step == 1
    # The next save clears the half-written folder and succeeds.
    ckpt.save_checkpoint(tmp_path, step=2, modules={"model": model}, state={})
    assert ckpt.load_checkpoint(tmp_path).step == 2
    assert not list(tmp_path.glob(".*.tmp"))


def test_no_checkpoint_yet_is_none(tmp_path) -> None:
    assert ckpt.load_checkpoint(tmp_path) is None


def test_rng_state_survives_a_save_and_load(tmp_path) -> None:
    torch.manual_seed(1)
    random.seed(1)
    np.random.seed(1)
    ckpt.save_checkpoint(tmp_path, step=1, modules={}, state={"rng": ckpt.capture_rng()})
    expected = (torch.rand(3), random.random(), np.random.rand())
    torch.manual_seed(99)
    random.seed(99)
    np.random.seed(99)
    ckpt.restore_rng(ckpt.load_checkpoint(tmp_path).state["rng"])
    assert torch.equal(torch.rand(3), expected[0])
    assert random.random() == expected[1]
    assert np.random.rand() == expected[2]
