"""Generic checks over every registered model (timm-style): shapes, gradients, rebuilds."""

from __future__ import annotations

import json

import pytest
import torch

from restorekit.models import MODELS, create_model, list_models, model_entry
from restorekit.models.base import Discriminator, Restorer

# Each entry's tiny configuration (restorekit.registry.Entry.tiny) runs in well under a
# second here; the model files' own tests check the paper configurations.


def build(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(name, **model_entry(name).tiny)


def test_every_name_of_the_issue_is_registered() -> None:
    expected = {
        "attention_unet", "patchgan", "ffa", "ffa_light", "srcnn", "drrn", "edsr",
        "edsr_baseline", "rdn", "casr", "vgg_discriminator", "resnet_unet",
    }  # fmt: skip
    assert expected <= set(list_models())


@pytest.mark.parametrize("name", list_models())
def test_forward_backward_and_rebuild(name: str) -> None:
    model = build(name)
    if isinstance(model, Restorer):
        assert model.scale in (1, 2, 3, 4) and model.size_multiple >= 1
        x = torch.rand(2, model.in_channels, 13, 19)
        y = model(x)
        assert y.shape == (2, model.in_channels, 13 * model.scale, 19 * model.scale)
    else:
        assert isinstance(model, Discriminator)
        shape = model_entry(name).tiny_input
        assert shape is not None and shape[0] == model.in_channels
        assert min(shape[1:]) >= model.min_side
        y = model(torch.rand(2, *shape))
    assert torch.isfinite(y).all()
    y.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"no gradient reaches {missing[:5]}"

    kwargs = json.loads(json.dumps(model.model_kwargs))  # what a checkpoint stores
    rebuilt = create_model(model.model_name, **kwargs)
    rebuilt.load_state_dict(model.state_dict(), strict=True)


def test_unknown_names_and_arguments_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        create_model("nope")
    with pytest.raises(ValueError, match="attention_unet"):
        create_model("attention_unet", no_such_argument=1)


def test_every_model_module_registers_something() -> None:
    # A file in models/ that registers nothing is a forgotten decorator (helpers are named).
    assert MODELS.silent_modules() == []
    assert {e.kind for e in MODELS.entries()} == {"restorer", "discriminator"}
    for entry in MODELS.entries():
        assert entry.paper and entry.channels in (1, 3), entry.name
        model = build(entry.name)  # kind, scales and channels say what the model is
        kind = "restorer" if isinstance(model, Restorer) else "discriminator"
        assert kind == entry.kind, entry.name
        if kind == "restorer":
            assert model.scale in entry.scales and model.in_channels == entry.channels


def test_checkpoints_store_every_resolved_argument() -> None:
    # Only the passed kwargs were stored: changing a default broke old weights (issue 15).
    model = create_model("edsr_baseline", scale=2, n_blocks=2)
    assert model.model_kwargs == {
        "scale": 2, "in_channels": 3, "n_blocks": 2, "n_feats": 64, "res_scale": 1.0,
        "pixel_mean": None,
    }  # fmt: skip
