"""bf16 autocast costs no accuracy on the shipped models: within 0.05 dB PSNR of fp32.

Each shipped model is scored on held-out images of its own recipe's data and
degradation, once in fp32 and once under bf16 autocast (native on CPUs with AMX or
AVX512-BF16, emulated elsewhere: slower, same numbers), on crops of at most 96 pixels so
the test stays quick. ``auto`` picks bf16 on such CPUs, so this is the accuracy a user
of the default path gets. Weights that were measured to lose more when shipped carry
``auto_precision: fp32`` and run in fp32 under ``auto`` on every machine.
"""

from __future__ import annotations

import pytest

from restorekit.api import WEIGHTS_DIR, list_weights, load_model
from restorekit.data import Example, load_examples
from restorekit.evaluate import Method, evaluate, held_out, synthetic_task
from restorekit.train.checkpoint import load_weights
from restorekit.train.recipe import find_recipe, load_recipe

CROP = 96


def _held_out_crops(source: str, n: int = 3) -> list[Example]:
    """Centre crops: where the content is (an MRI slice's corner is background, where a
    PSNR of 45 dB moves by a tenth of a dB on noise no reader could see)."""
    _, examples = load_examples(source)
    crops = []
    for ex in held_out(examples)[:n]:
        h, w = ex.image.shape[-2:]
        top, left = max(0, (h - CROP) // 2), max(0, (w - CROP) // 2)
        window = (..., slice(top, top + CROP), slice(left, left + CROP))
        depth = None if ex.depth is None else ex.depth[window].contiguous()
        crops.append(Example(ex.name, ex.image[window].contiguous(), depth=depth))
    return crops


@pytest.mark.parametrize("name", list_weights())
def test_bf16_stays_within_005_db_of_fp32(name: str) -> None:
    recipe = load_recipe(
        find_recipe(load_weights(WEIGHTS_DIR / f"{name}.safetensors")[1]["recipe"])
    )
    model = load_model(name)
    bf16 = "auto" if model.auto_precision == "fp32" else "bf16"
    # The packaged recipe is x2; weights trained at x3 or x4 are scored at their scale.
    scale = int(getattr(model, "scale", 1))
    degradation = f"bicubic_x{scale}" if scale > 1 else recipe.data.degradation
    task = synthetic_task(
        recipe.data.source, _held_out_crops(recipe.data.source), degradation,
        channels=recipe.data.channels,
    )  # fmt: skip
    scores = {}
    for precision in ("fp32", bf16):
        results = evaluate([Method(name, model)], [task], precision=precision)
        row = next(r for r in results.summary() if r["method"] == name)
        scores[precision] = row["psnr"]
        assert ("fp32" if precision == "auto" else precision) in row["protocol"]
    assert abs(scores[bf16] - scores["fp32"]) < 0.05, scores
