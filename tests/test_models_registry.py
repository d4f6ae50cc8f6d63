"""Generic checks over every registered model (timm-style): shapes, gradients, rebuilds."""

from __future__ import annotations

import json

import pytest
import torch

from restorekit.models import create_model, list_models
from restorekit.models.base import Restorer

# Smaller-than-paper settings so every model runs in well under a second here; the
# model files' own tests check the paper configurations (parameter counts).
SMALL: dict[str, dict] = {
    "ffa": {"groups": 2, "blocks": 1},
    "ffa_light": {"blocks": 1},
    "edsr": {"n_blocks": 2},
    "edsr_baseline": {"n_blocks": 2},
    "rdn": {"n_blocks": 2, "n_layers": 2},
    "drrn": {"n_units": 2},
    "casr": {"n_blocks": 2},
    "casr_small": {"n_blocks": 2},
    "resnet_unet": {"encoder": "resnet18", "pretrained": False},
}
DISCRIMINATOR_INPUT = {"patchgan": (2, 2, 48, 48), "vgg_discriminator": (2, 1, 32, 32)}


def build(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(name, **SMALL.get(name, {}))


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
        x = torch.rand(*DISCRIMINATOR_INPUT[name])
        y = model(x)
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
