"""The main job, run by ``make demo``: the four systems on bundled real images.

Real images that ship inside installed packages are degraded with each system's presets
and restored by that system's models and by the classical baselines; the results table
(CSV, JSON) and a markdown + HTML report with side-by-side figures go to ``out``.

- Face denoising (SPEC B): LFW face crops at 48x48 (the stand-in for FER2013) under the
  three face noises, each face over 5 noise seeds (mean ± standard error over faces);
  Attention U-Net (and the PatchGAN generator when its weights ship);
  median, Gaussian blur, non-local means and BM3D (when installed).
- Photo denoising: skimage's camera at sigma 15/25/50 (the field's noise levels): the
  blind photo denoiser and the classical baselines' PSNR-per-noise-level curve.
- Dehazing (SPEC A): the skimage motorcycle scene, in light and dense haze from its true
  depth; FFA-Net (light) and the dark channel prior.
- MRI super-resolution (SPEC C): slices of the MRI pool's test volumes at x2, x3 and x4;
  SRCNN, DRRN, EDSR, RDN and CASR at each scale; MATLAB bicubic.
- Defect-aware denoising (SPEC D): photo crops with surface defects drawn in (part of the
  truth) and then noise; the SCSE U-Net with the masked loss and its plain-MSE twin,
  whole-image and in-mask scores; non-local means and BM3D.

A model uses the shipped weights of its recipe (``restorekit/weights/<recipe>``) when
present; otherwise it runs with random weights and the table says "untrained". Held-out
images only: the faces and MRI slices are the test part of the split training uses.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from restorekit.api import list_weights, load_model
from restorekit.baselines import create_baseline
from restorekit.data import Example, load_examples
from restorekit.degrade import create_degradation
from restorekit.evaluate import Method, Results, evaluate, held_out, synthetic_task
from restorekit.report import write_report

log = logging.getLogger(__name__)

__all__ = ["run_demo"]


@dataclass(frozen=True)
class Part:
    """One system's share of the demo: its images, degradations and methods."""

    title: str
    dataset: str
    examples: list[Example]
    degradations: tuple[str, ...]
    models: tuple[tuple[str, str], ...]  # (recipe whose weights to use, degradation or "")
    baselines: tuple[tuple[str, dict], ...]
    channels: int
    seeds: int = 1  # noise seeds per image (faces: 5, so tables give mean ± SE)


def _parts(quick: bool) -> list[Part]:
    from skimage import data

    n = 2 if quick else 10
    _, faces = load_examples("lfw_faces")
    _, mri = load_examples("mri")
    _, moto = load_examples("motorcycle")
    _, photos = load_examples("skimage_photos")
    side = 96 if quick else 256
    camera = torch.as_tensor(data.camera()[64 : 64 + side, 128 : 128 + side]) / 255.0
    crops = [_center_crop(e, side) for e in photos if e.name in ("astronaut", "coffee")]
    if quick:
        moto = [_center_crop(moto[0], 128)]
    denoisers = (("median", {"size": 3}), ("gaussian", {"sigma": 1.0}), ("nlm", {}), ("bm3d", {}))
    return [
        Part("Face denoising", "lfw_faces", held_out(faces)[:n],
             ("gaussian_low", "gaussian_high", "salt_pepper"),
             tuple((f"face_{m}_{k}", d) for m in ("attention_unet", "patchgan")
                   for k, d in (("low", "gaussian_low"), ("high", "gaussian_high"),
                                ("sp", "salt_pepper"))),
             denoisers, 1, seeds=2 if quick else 5),
        Part("Photo denoising", "camera", [Example("camera", camera[None].float())],
             ("gaussian_15", "gaussian_25", "gaussian_50"), (("photo_denoise", ""),),
             denoisers, 1),
        Part("Dehazing", "motorcycle", moto, ("haze_light", "haze_dense"),
             (("ffa_light", ""),), (("dcp", {}),), 3),
        Part("MRI super-resolution", "mri", held_out(mri)[: 1 if quick else 3],
             tuple(f"bicubic_x{s}" for s in SR_SCALES),
             tuple((f"sr_{m}_x{s}", f"bicubic_x{s}") for s in SR_SCALES for m in SR_MODELS),
             (("bicubic", {}),), 1),
        Part("Defect-aware denoising", "photos", crops[:1] if quick else crops,
             ("defect_noise",), (("defect_denoise", ""), ("defect_denoise_mse", "")),
             (("nlm", {}), ("bm3d", {})), 3),
    ]  # fmt: skip


SR_MODELS = ("srcnn", "drrn", "edsr", "rdn", "casr")
SR_SCALES = (2, 3, 4)


def _center_crop(example: Example, side: int) -> Example:
    x = example.image
    top, left = max(0, (x.shape[-2] - side) // 2), max(0, (x.shape[-1] - side) // 2)
    crop = lambda t: t[..., top : top + side, left : left + side]  # noqa: E731
    depth = None if example.depth is None else crop(example.depth)
    return Example(example.name, crop(x).contiguous(), depth=depth)


def _methods(part: Part, degradation: str, shipped: set[str]) -> list[Method]:
    methods = []
    for recipe, only_for in part.models:
        if only_for and only_for != degradation:
            continue
        if recipe in shipped:
            net = load_model(recipe)
            methods.append(Method(recipe, net, f"shipped weights {recipe}.safetensors"))
        elif "patchgan" not in recipe and not recipe.startswith("sr_"):
            # An untrained PatchGAN would repeat the U-Net row; an SR model without weights
            # is left out (an untrained one scores nothing worth a row).
            name, kwargs = _untrained(recipe)
            kwargs.update(in_channels=part.channels)
            net = load_model(name, **kwargs)
            methods.append(Method(f"{recipe} (untrained)", net, "untrained: random init"))
    for name, kwargs in part.baselines:
        if name == "bicubic":  # the scale of this degradation
            kwargs = {**kwargs, "scale": create_degradation(degradation).scale}
        try:
            baseline = create_baseline(name, **kwargs)
        except ImportError as err:  # BM3D is an optional extra
            log.warning("%s: skipped (%s)", name, err)
            continue
        methods.append(Method(baseline.describe(), baseline, "classical baseline"))
    return methods


def _untrained(recipe: str) -> tuple[str, dict]:
    """The registered model and arguments a recipe trains (what runs, with random
    weights, when its weights are not shipped)."""
    from restorekit.train.recipe import find_recipe, load_recipe

    spec = load_recipe(find_recipe(recipe)).model
    return spec.name, dict(spec.kwargs)


DEMO_SOURCES = ("lfw_faces", "skimage_photos", "motorcycle", "mri")
"""The offline sources the demo's images come from."""


def check_demo_ready() -> None:
    """Raise ImportError, in one line saying what to install, when anything the demo needs
    is missing: its sources' packages, the report's matplotlib, the nlm baseline's
    PyWavelets. (BM3D is optional: its rows are left out without it.)"""
    import importlib.util

    from restorekit.data import get_source

    missing = [get_source(name).unavailable_reason() for name in DEMO_SOURCES]
    missing = [m for m in missing if m]
    for module, package in (("matplotlib", "matplotlib"), ("pywt", "PyWavelets")):
        if importlib.util.find_spec(module) is None:
            missing.append(f"{package} is not installed")
    if missing:
        raise ImportError(
            "the demo cannot run: " + "; ".join(missing) + ". Install everything it needs with "
            "pip install 'restorekit[demo]'"
        )


def run_demo(
    out: str | Path, *, seed: int = 0, quick: bool = False, precision: str = "auto"
) -> Results:
    """Run the demo; write ``results.*`` and ``report.*`` under ``out``; return the results.

    Args:
        out: the output folder.
        seed: the noise seed of every degradation.
        quick: fewer and smaller images (the test suite's variant).
        precision: how the models run (``restorekit.hardware``; baselines: fp32).
    """
    out = Path(out)
    check_demo_ready()  # before any work: a missing package fails now, not minutes in
    torch.manual_seed(seed)  # untrained models: the same random weights every run
    shipped = set(list_weights())
    results = Results()
    for part in _parts(quick):
        for degradation in part.degradations:
            tasks = [synthetic_task(part.dataset, part.examples, degradation, seed=seed + k,
                                    channels=part.channels) for k in range(part.seeds)]  # fmt: skip
            methods = _methods(part, degradation, shipped)
            results.extend(evaluate(methods, tasks, progress=True, precision=precision))
    results.write(out)
    untrained = sorted({s.method for s in results.scores if "(untrained)" in s.method})
    intro = (
        "The four systems of restorekit on real images bundled with installed packages, "
        "beside the classical baselines. Faces are LFW crops resized to 48x48 (the stand-in "
        "for FER2013); MRI slices are the test volumes of the offline MRI pool (a single-subject "
        "brain T1, an abdomen, a brain EPI; never trained on); haze is synthesised on the "
        "skimage motorcycle scene with its true depth. Only held-out images are scored."
    )
    if untrained:
        intro += (
            " No shipped weights were found for: " + ", ".join(untrained) + "; those rows are "
            "untrained networks (random weights) and show only that the pipeline runs."
        )
    write_report(results, out, title="restorekit demo", intro=intro)
    log.info("wrote %s", out)
    return results
