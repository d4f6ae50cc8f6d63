"""The shipped dehazers on scenes they never trained on (issue 11): a clear photo keeps
most of itself, haze is removed, and no edge strip is drawn.

Crops of the held-out sklearn photos (china, flower) and the motorcycle (haze from its
true depth) keep the test quick; the full tables are in the model card.
"""

from __future__ import annotations

import pytest
import torch

from restorekit.api import list_weights, load_model
from restorekit.data import load_examples
from restorekit.degrade import create_degradation
from restorekit.inference import restore_tensor
from restorekit.metrics import colour_cast, edge_gap, psnr

# Clear crops as the shipped weights return them (PSNR, colour cast), measured when
# shipped: ffa_light (stop 46) 39.7-45.5 dB, casts 0.002-0.008; ffa_light_scatter
# (stop 25) 31.2-37.4 dB, casts 0.017-0.027. Issue 11 wants them untouched; these bounds
# catch a regression.
CLEAR = {"ffa_light": (38.5, 0.02), "ffa_light_scatter": (30.5, 0.03)}
# Haze levels where both beat the hazy input on average over the crops.
DEHAZED_LEVELS = ("haze_light", "haze_dense")


def _crop(x: torch.Tensor, side: int = 160) -> torch.Tensor:
    h, w = x.shape[-2:]
    top, left = (h - side) // 2, (w - side) // 2
    return x[..., top : top + side, left : left + side].contiguous()


@pytest.fixture(scope="module", params=sorted(CLEAR))
def net(request) -> tuple[str, torch.nn.Module]:
    if request.param not in list_weights():
        pytest.skip(f"{request.param} is not shipped")
    return request.param, load_model(request.param)


@pytest.fixture(scope="module")
def scenes() -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    photos = [(_crop(e.image)[None], None) for e in load_examples("sklearn_photos")[1]]
    (moto,) = load_examples("motorcycle")[1]
    return [*photos, (_crop(moto.image)[None], _crop(moto.depth)[None])]


def _dehaze(net, scenes, level: str, seed: int = 0):
    op = create_degradation(level)
    for i, (gt, depth) in enumerate(scenes):
        extra = {} if depth is None else {"depth": depth}
        lq = op(gt, generator=torch.Generator().manual_seed(seed + i), **extra).lq
        yield gt, lq, restore_tensor(net, lq).clamp(0, 1)


def test_a_clear_photo_comes_back_almost_unchanged(net, scenes) -> None:
    name, model = net
    least_psnr, most_cast = CLEAR[name]
    for gt, _, out in _dehaze(model, scenes, "haze_clear"):
        assert float(psnr(out, gt)) > least_psnr
        assert float(colour_cast(out, gt)) < most_cast


# Below these levels the networks are not yet above the input on average (the cards
# state by how much).
def test_it_beats_the_hazy_input(net, scenes) -> None:
    _, model = net
    for level in DEHAZED_LEVELS:
        pairs = _dehaze(model, scenes, level)
        gains = [float(psnr(out, gt) - psnr(lq, gt)) for gt, lq, out in pairs]
        assert sum(gains) / len(gains) > 0, (level, gains)


def test_no_strip_along_the_edges(net, scenes) -> None:
    _, model = net
    for gt, _, out in _dehaze(model, scenes, "haze_faint"):
        assert abs(float(edge_gap(out, gt))) < 0.02
