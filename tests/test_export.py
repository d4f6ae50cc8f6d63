"""restorekit.export: every registered model to ONNX, run with onnxruntime, equal to torch."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
ort = pytest.importorskip("onnxruntime")

import restorekit.export as export_module  # noqa: E402 - after the skips
from restorekit.export import (  # noqa: E402
    OnnxExport,
    export_onnx,
    read_onnx_metadata,
    run_onnx,
)
from restorekit.layers import WindowAttention  # noqa: E402
from restorekit.models import MODELS, create_model, list_models, model_entry  # noqa: E402
from restorekit.models.base import Restorer, pad_to_multiple  # noqa: E402

# The registry's tiny configurations (restorekit.registry.Entry.tiny), so each export takes
# seconds (the exporter's time grows with the number of layers, not their width). They
# cover size multiples 4 (attention_unet), 6 (casr) and 32 (resnet_unet), and ffa with
# both attention switches on; the SR models take their scales in turn, so x2, x3 and x4
# are all exported.
_SR = [e.name for e in MODELS.entries() if e.scales != (1,)]
TINY: dict[str, dict] = {e.name: dict(e.tiny) for e in MODELS.entries()}
for i, name in enumerate(_SR):
    scales = model_entry(name).scales
    TINY[name]["scale"] = scales[i % len(scales)]
TOLERANCE = 1e-4  # max |onnx - torch| on [0, 1] images
ODD_SIZE = (37, 29)  # a multiple of none of the size multiples (4, 6, 32)


def build(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = create_model(name, **TINY[name])
    # Non-trivial BatchNorm statistics, so eval mode is really what gets exported.
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    return model


def real_images(channels: int, height: int, width: int, *, batch: int = 1) -> torch.Tensor:
    """Crops of scikit-image's photos in [0, 1]: cameraman (gray) or astronaut (RGB).

    Each batch item is another crop. A conditional discriminator's two channels are
    cameraman and a seeded noisy copy, its real input.
    """
    from skimage import data

    if channels == 3:
        photo = torch.from_numpy(data.astronaut()).permute(2, 0, 1).float() / 255
    else:
        photo = torch.from_numpy(data.camera())[None].float() / 255
    crops = [photo[:, 60 + 40 * i : 60 + 40 * i + height, 180 : 180 + width] for i in range(batch)]
    x = torch.stack(crops)
    if channels == 2:
        noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
        x = torch.cat([(x + 0.1 * noise).clamp(0, 1), x], dim=1)
    return x.contiguous()


def max_error(session: object, model: torch.nn.Module, x: torch.Tensor) -> float:
    with torch.no_grad():
        expected = model(x)
    got = run_onnx(session, x)
    assert got.shape == expected.shape
    return float((got - expected).abs().max())


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """One torch thread, as conftest.py sets under xdist: on 2 busy cores, two threads wait
    on each other at every layer (a 1 s forward of the tiny resnet_unet instead of 20 ms).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """name -> (model, OnnxExport): each model is exported once for all tests.

    Without the built-in check: the parity test below does it on real images, at more
    sizes; the check itself is tested on a small model further down.
    """
    folder = tmp_path_factory.mktemp("onnx")
    cache: dict[str, tuple[torch.nn.Module, OnnxExport]] = {}

    def get(name: str) -> tuple[torch.nn.Module, OnnxExport]:
        if name not in cache:
            model = build(name).eval()
            cache[name] = (model, export_onnx(model, folder / f"{name}.onnx", check=False))
        return cache[name]

    return get


def check_sizes(multiple: int) -> list[tuple[int, int]]:
    """Sizes that take each path of padding and windowing, besides the export size.

    An exact multiple (no padding; for CASR a map of 4 x 4 tokens, one window, where its
    first Swin block needs no mask), an odd size, and one smaller than its padding
    (replication instead of reflection).
    """
    side = 4 * max(multiple, 4)
    sizes = [(side, side), ODD_SIZE]
    if multiple > 1:
        sizes.append((max(1, multiple // 2 - 1), 2 * multiple + 1))
    return sizes


@pytest.mark.parametrize("name", list_models())
def test_export_matches_torch_at_every_size(name: str, exported) -> None:
    model, info = exported(name)
    assert info.path.is_file() and info.dynamic and info.static_reason is None
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(info.path), options, providers=["CPUExecutionProvider"])
    (spec,) = session.get_inputs()
    assert spec.name == info.input_name == ("lq" if isinstance(model, Restorer) else "image")
    assert spec.shape[2:] == ["height", "width"]
    channels = spec.shape[1]
    multiple = model.size_multiple if isinstance(model, Restorer) else 1
    x = real_images(channels, info.height, info.width, batch=2)  # a dynamic batch too
    errors = {(info.height, info.width): max_error(session, model, x)}
    for size in check_sizes(multiple):
        errors[size] = max_error(session, model, real_images(channels, *size))
    logging.getLogger(__name__).info("%s: max |onnx - torch| by size %s", name, errors)
    assert max(errors.values()) <= TOLERANCE, errors
    if isinstance(model, Restorer):
        out = run_onnx(session, real_images(channels, *ODD_SIZE))
        assert out.shape == (1, channels, ODD_SIZE[0] * model.scale, ODD_SIZE[1] * model.scale)


@pytest.mark.parametrize("name", ["casr", "attention_unet", "patchgan"])
def test_metadata_round_trips(name: str, exported) -> None:
    model, info = exported(name)
    meta = read_onnx_metadata(info.path)
    assert meta["model_name"] == name == info.model_name
    assert meta["model_kwargs"] == json.loads(json.dumps(model.model_kwargs))
    assert json.loads(json.dumps(TINY[name])).items() <= meta["model_kwargs"].items()
    assert meta["dynamic_spatial"] is True
    assert meta["in_channels"] == model.in_channels
    assert meta["input_name"] == info.input_name and meta["output_name"] == info.output_name
    assert meta["restorekit_version"] == __import__("restorekit").__version__
    assert meta["opset"] == info.opset == 18
    if isinstance(model, Restorer):
        assert (meta["scale"], meta["size_multiple"]) == (model.scale, model.size_multiple)
    # The metadata alone rebuilds the architecture (the weights are in the graph).
    rebuilt = create_model(meta["model_name"], **meta["model_kwargs"])
    rebuilt.load_state_dict(model.state_dict())


class Tiny(Restorer):
    """A small restorer with padding (multiple 4) and x2 upscaling, quick to export."""

    scale, size_multiple, in_channels = 2, 4, 1

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.PixelShuffle(2)
        )

    def restore(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class SizeBranch(Tiny):
    """Branches in Python on the padded width, which an ONNX graph cannot follow."""

    def restore(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return y if x.shape[-1] % 8 else 1 - y


def test_the_built_in_check_passes_a_good_dynamic_export(tmp_path: Path) -> None:
    info = export_onnx(Tiny(), tmp_path / "tiny.onnx")
    assert info.dynamic and info.model_name == "Tiny"
    assert info.max_abs_error is not None and 0 <= info.max_abs_error <= TOLERANCE


def test_a_graph_right_only_at_the_export_size_falls_back_to_a_fixed_size(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = SizeBranch()  # training mode, as a trainer leaves it
    with caplog.at_level(logging.WARNING, logger="restorekit.export"):
        info = export_onnx(model, tmp_path / "m.onnx", height=20, width=24)
    assert not info.dynamic and (info.height, info.width) == (20, 24)
    assert "max |onnx - torch|" in info.static_reason
    assert "fixed 20x24 input only" in caplog.text
    assert model.training  # the caller's model is left as it was
    meta = read_onnx_metadata(info.path)
    assert meta["dynamic_spatial"] is False
    assert (meta["export_height"], meta["export_width"]) == (20, 24)
    x = real_images(1, 20, 24, batch=3)  # the batch axis stays dynamic
    assert max_error(str(info.path), model.eval(), x) <= TOLERANCE
    with pytest.raises(ValueError, match=r"has shape \('batch', 1, 20, 24\)"):
        run_onnx(info.path, real_images(1, 21, 24))


class Record(Restorer):
    """Keeps what ``restore`` is given: the padded input."""

    in_channels = 1

    def restore(self, x: torch.Tensor) -> torch.Tensor:
        self.seen = x
        return x


def _torch_pad(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """The reference: torch's own reflect pad, replicate when the image is too small."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    mode = "reflect" if ph < h and pw < w else "replicate"
    return torch.nn.functional.pad(x, (0, pw, 0, ph), mode=mode)


@pytest.mark.parametrize("multiple", [2, 4, 6, 32])
def test_the_branch_free_padding_equals_torch_padding(multiple: int) -> None:
    net = Record()
    net.size_multiple = multiple
    for h, w in [(1, 1), (1, 9), (2, 3), (5, 5), (multiple, 2 * multiple), (17, 40), (33, 7)]:
        x = torch.rand(2, 1, h, w)
        for safe in (False, True):  # eager, and the export-safe path without branches
            net.export_safe = safe
            assert torch.equal(net(x), x)  # cropped back
            assert torch.equal(net.seen, _torch_pad(x, multiple)), (h, w, safe)
        assert torch.equal(pad_to_multiple(x, multiple, always=True), _torch_pad(x, multiple))


def test_export_leaves_the_model_as_it_was(exported) -> None:
    model, _ = exported("casr")  # its WindowAttention is exported written out
    attention = [m for m in model.modules() if isinstance(m, WindowAttention)]
    assert attention and not any(m.export_safe for m in attention) and not model.export_safe


def test_window_attention_export_safe_path_gives_the_same_values() -> None:
    torch.manual_seed(0)
    attention = WindowAttention(8, 4, 2).eval()
    x, mask = torch.rand(6, 16, 8), torch.rand(3, 16, 16) > 0.3
    mask |= torch.eye(16, dtype=torch.bool)  # every token may see itself
    fused = attention(x, mask)
    attention.export_safe = True
    torch.testing.assert_close(attention(x, mask), fused, atol=1e-6, rtol=1e-5)


def test_a_static_export_on_request(tmp_path: Path) -> None:
    info = export_onnx(Tiny(), tmp_path / "static.onnx", height=12, width=9, dynamic=False)
    assert not info.dynamic and (info.height, info.width) == (12, 9)
    assert "dynamic=False" in info.static_reason


def test_a_graph_that_disagrees_with_torch_is_an_error_and_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export_module.check, "CHECK_TOLERANCE", -1.0)  # every check fails
    target = tmp_path / "bad.onnx"
    with pytest.raises(RuntimeError, match="disagrees with PyTorch"):
        export_onnx(Tiny(), target, height=16, width=16, dynamic=False)
    assert not target.exists() and not list(tmp_path.iterdir())  # nor a temporary


def test_bad_arguments_are_clear_errors(tmp_path: Path) -> None:
    model = build("edsr_baseline")
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        export_onnx("nope", tmp_path / "m.onnx")
    with pytest.raises(ValueError, match=r"must end in \.onnx"):
        export_onnx(model, tmp_path / "m.pt")
    (tmp_path / "folder.onnx").mkdir()
    with pytest.raises(ValueError, match="is a folder"):
        export_onnx(model, tmp_path / "folder.onnx")
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError, match="is not a folder"):
        export_onnx(model, tmp_path / "file" / "m.onnx")
    with pytest.raises(ValueError, match="not a restorekit"):
        export_onnx(torch.nn.Conv2d(3, 3, 3), tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="height must be a positive integer"):
        export_onnx(model, tmp_path / "m.onnx", height=0)
    with pytest.raises(ValueError, match="at least 16"):
        export_onnx(build("vgg_discriminator"), tmp_path / "m.onnx", height=8, dynamic=False)
    with pytest.raises(ValueError, match="opset"):
        export_onnx(model, tmp_path / "m.onnx", opset=11)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder.onnx"]


def test_reading_bad_files_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such ONNX file"):
        read_onnx_metadata(tmp_path / "missing.onnx")
    with pytest.raises(FileNotFoundError, match="no such ONNX file"):
        run_onnx(tmp_path / "missing.onnx", torch.zeros(1, 3, 8, 8))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\xff" * 64)
    with pytest.raises(ValueError, match=r"junk\.onnx"):
        read_onnx_metadata(junk)
    with pytest.raises(ValueError, match=r"junk\.onnx"):
        run_onnx(junk, torch.zeros(1, 3, 8, 8))


def test_run_onnx_checks_its_input(exported) -> None:
    _, info = exported("edsr")
    with pytest.raises(ValueError, match=r"has shape \('batch', 3, 'height', 'width'\)"):
        run_onnx(info.path, torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="float"):
        run_onnx(info.path, np.zeros((1, 3, 8, 8), np.float32))


def test_a_missing_package_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # makes `import onnxscript` fail
    with pytest.raises(ImportError, match=r"pip install 'restorekit\[onnx\]'"):
        export_onnx(build("edsr_baseline"), tmp_path / "m.onnx")


def test_import_is_cheap() -> None:
    code = (
        "import sys, restorekit.export; "
        "heavy = {'onnx', 'onnxruntime', 'onnxscript'} & set(sys.modules); "
        "sys.exit(sorted(heavy) or 0)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_cli_exports_shipped_weights_and_reports_errors_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from restorekit.api import list_weights, load_model
    from restorekit.cli import run

    if "face_attention_unet_low" not in list_weights():
        pytest.skip("no shipped face weights")
    out = tmp_path / "face.onnx"
    assert run(["export", "onnx", "--model", "face_attention_unet_low", "--out", str(out)]) == 0
    assert "any H x W" in capsys.readouterr().out
    x = torch.rand(1, 1, 37, 29)
    with torch.no_grad():
        want = load_model("face_attention_unet_low")(x)
    assert (run_onnx(out, x) - want).abs().max() < 1e-4
    assert run(["export", "onnx", "--model", "nope", "--out", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown model 'nope'" in err[0]
    assert not (tmp_path / "x.onnx").exists()
