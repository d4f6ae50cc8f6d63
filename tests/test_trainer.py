"""The training loop: learning, stages and schedules, GAN steps, NaN stops, exact resume."""

from __future__ import annotations

import csv
import logging
import math
import re
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from restorekit.config import ConfigError
from restorekit.models.base import Restorer
from restorekit.train.checkpoint import load_checkpoint, load_weights
from restorekit.train.trainer import (
    LossTerm,
    Stage,
    Trainer,
    TrainOptions,
    _Progress,
    legacy_stage,
)


class NoisySquares(Dataset):
    """Tiny deterministic denoising pairs: item i is always the same (lq, gt)."""

    def __init__(self, n: int, *, seed: int = 0, size: int = 12) -> None:
        g = torch.Generator().manual_seed(seed)
        self.gt = torch.rand(n, 1, 1, 1, generator=g).expand(n, 1, size, size).clone()
        self.lq = (self.gt + 0.1 * torch.randn(self.gt.shape, generator=g)).clamp(0, 1)

    def __len__(self) -> int:
        return len(self.gt)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"lq": self.lq[i], "gt": self.gt[i]}


class TinyNet(Restorer):
    in_channels = 1

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Dropout(0.1),
                                  nn.Conv2d(8, 1, 3, padding=1))  # fmt: skip

    def restore(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class TinyCritic(nn.Module):
    conditional = True

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(2, 4, 3, stride=2), nn.LeakyReLU(0.2), nn.Conv2d(4, 1, 3)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def read_log(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def make_trainer(run_dir: Path, options: TrainOptions, **kw) -> Trainer:
    torch.manual_seed(0)
    return Trainer(TinyNet(), NoisySquares(24), NoisySquares(4, seed=1), options, run_dir, **kw)


def kill_at_step(trainer: Trainer, step: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run ``trainer`` until it is 'killed' (KeyboardInterrupt) as it starts ``step + 1``."""
    real_step = Trainer._train_step

    def dying_step(self: Trainer, batch: dict) -> float:
        if self.step == step:
            raise KeyboardInterrupt
        return real_step(self, batch)

    monkeypatch.setattr(Trainer, "_train_step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    monkeypatch.undo()


def options(**kw) -> TrainOptions:
    base = {"batch_size": 4, "val_every": 4, "log_every": 2, "progress": False}
    stage = Stage(steps=kw.pop("steps", 12), lr=1e-2, scheduler="step", step_size=5)
    return TrainOptions(**{"stages": (stage,), **base, **kw})


def test_training_improves_validation_psnr(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path, options(steps=40, val_every=40))
    before = trainer.validate()["psnr"]
    after = trainer.fit()["psnr"]
    assert after > before + 1.0
    assert (tmp_path / "best.safetensors").exists()
    rows = read_log(tmp_path / "log.csv")
    assert [int(r["step"]) for r in rows if r["psnr"]] == [40]


def test_a_killed_run_resumes_to_the_same_weights(tmp_path: Path, monkeypatch) -> None:
    reference = make_trainer(tmp_path / "ref", options())
    reference.fit()

    # Killed in the middle of the run, two steps after a checkpoint.
    kill_at_step(make_trainer(tmp_path / "run", options()), 6, monkeypatch)
    assert load_checkpoint(tmp_path / "run").step == 4

    resumed = make_trainer(tmp_path / "run", options())  # a fresh process would do this
    resumed.fit()
    expected = reference.model.state_dict()
    for key, value in resumed.model.state_dict().items():
        assert torch.equal(value, expected[key]), key
    assert resumed.optimizer.param_groups[0]["lr"] == reference.optimizer.param_groups[0]["lr"]
    steps = [int(r["step"]) for r in read_log(tmp_path / "run" / "log.csv")]
    assert steps == sorted(steps) and len(steps) == len(set(steps))  # no duplicated tail


def test_cosine_schedule_falls_to_min_lr_and_resumes_on_its_curve(
    tmp_path: Path, monkeypatch
) -> None:
    def cosine(**kw) -> TrainOptions:
        stage = Stage(steps=12, lr=1e-2, scheduler="cosine", min_lr=1e-3)
        return TrainOptions(stages=(stage,), batch_size=4, val_every=4, log_every=2,
                            progress=False, **kw)  # fmt: skip

    reference = make_trainer(tmp_path / "ref", cosine())
    reference.fit()
    kill_at_step(make_trainer(tmp_path / "run", cosine()), 6, monkeypatch)
    resumed = make_trainer(tmp_path / "run", cosine())
    resumed.fit()
    for key, value in resumed.model.state_dict().items():
        assert torch.equal(value, reference.model.state_dict()[key]), key
    # The rate after k of the 12 steps: 1e-3 + 9e-3 x (1 + cos(pi k / 12)) / 2.
    rows = read_log(tmp_path / "run" / "log.csv")
    lrs = {int(r["step"]): float(r["lr"]) for r in rows}
    expected = {k: 1e-3 + 9e-3 * (1 + math.cos(math.pi * k / 12)) / 2 for k in lrs}
    assert lrs == pytest.approx(expected, rel=1e-5)
    assert lrs[12] == pytest.approx(1e-3) and lrs[6] == pytest.approx(5.5e-3)
    with pytest.raises(ValueError, match="min_lr must be below lr"):
        Stage(lr=1e-3, scheduler="cosine", min_lr=1e-3)
    # An lr_scale group falls alike, to its own scaled floor.
    scaled = Stage(steps=12, lr=1e-2, scheduler="cosine", min_lr=1e-3, lr_scale={"body.3": 10.0})
    options = TrainOptions(stages=(scaled,), batch_size=4, val_every=12, progress=False)
    trainer = make_trainer(tmp_path / "scaled", options)
    trainer.fit()
    assert [g["lr"] for g in trainer.optimizer.param_groups] == pytest.approx([1e-3, 1e-2])


def test_stages_switch_optimiser_schedule_and_losses(tmp_path: Path) -> None:
    stages = (
        Stage(name="pretrain", steps=4, lr=1e-3, losses=(LossTerm("l1"),)),
        Stage(name="gan", steps=4, lr=5e-4, scheduler="step", step_size=2, gamma=0.5,
              losses=(LossTerm("l2"), LossTerm("gan", 1e-3))),
    )  # fmt: skip
    trainer = make_trainer(
        tmp_path, TrainOptions(stages=stages, batch_size=4, val_every=4, progress=False),
        discriminator=TinyCritic(),
    )  # fmt: skip
    trainer.fit()
    assert trainer.stage.name == "gan"
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(5e-4 * 0.5**2)
    assert load_checkpoint(tmp_path).meta.keys() == {"model", "discriminator"}


def test_validation_reports_mse_for_losses_it_cannot_repeat() -> None:
    # The val_loss column is an unweighted pixel loss; the psnr and in-mask columns say the rest.
    assert Stage(losses=(LossTerm("psnr"),)).val_loss == "l2"
    assert Stage(losses=(LossTerm("masked_mse"),)).val_loss == "l2"
    assert Stage(losses=(LossTerm("masked_psnr"),)).val_loss == "l2"
    assert Stage(losses=(LossTerm("perceptual"), LossTerm("l1"))).val_loss == "l1"
    assert Stage(losses=(LossTerm("perceptual"),)).val_loss == "l1"


def test_psnr_loss_stage_trains_and_validates(tmp_path: Path) -> None:
    opts = TrainOptions(stages=(Stage(steps=4, losses=(LossTerm("psnr"),)),), batch_size=4,
                        val_every=4, progress=False)  # fmt: skip
    trainer = make_trainer(tmp_path, opts)
    trainer.fit()
    row = read_log(tmp_path / "log.csv")[-1]
    assert float(row["loss"]) < 0 < float(row["val_loss"])  # minus dB; the MSE


def test_gan_stage_without_a_discriminator_is_refused(tmp_path: Path) -> None:
    opts = TrainOptions(stages=(Stage(losses=(LossTerm("gan", 0.1),)),), progress=False,
                        batch_size=4)  # fmt: skip
    with pytest.raises(ValueError, match="no discriminator"):
        make_trainer(tmp_path, opts)


def test_nan_loss_stops_before_writing_a_checkpoint(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path, options())
    trainer.fit()
    with torch.no_grad():
        trainer.model.body[0].weight.fill_(float("nan"))
    more = options(steps=20)
    broken = Trainer(trainer.model, NoisySquares(24), None, more, tmp_path)
    broken._resume = lambda: None  # keep the NaN weights instead of reloading the good ones
    broken.step = 12
    with pytest.raises(FloatingPointError, match="step 13: the loss is nan"):
        broken.fit()
    assert load_checkpoint(tmp_path).step == 12


def test_ema_and_bf16_autocast_run(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path, options(steps=4, ema_decay=0.9, amp=True))
    scores = trainer.fit()
    assert torch.isfinite(torch.tensor(scores["psnr"]))
    ema = load_checkpoint(tmp_path).weights["ema"]
    model = trainer.model.state_dict()
    assert not torch.equal(ema["body.0.weight"], model["body.0.weight"])


class NormNet(TinyNet):
    """TinyNet with a BatchNorm between its convolutions."""

    def __init__(self) -> None:
        super().__init__()
        self.body.insert(1, nn.BatchNorm2d(8))


@pytest.mark.parametrize("freeze", [False, True])
def test_freeze_bn_keeps_running_statistics_and_trains_scale_and_shift(
    tmp_path: Path, freeze: bool
) -> None:
    torch.manual_seed(0)
    net = NormNet()
    before = {k: v.clone() for k, v in net.body[1].state_dict().items()}
    trainer = Trainer(net, NoisySquares(24), None, options(steps=3, freeze_bn=freeze), tmp_path)
    trainer.fit()
    after = net.body[1].state_dict()
    assert not torch.equal(after["weight"], before["weight"])  # it learns either way
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        assert torch.equal(after[name], before[name]) == freeze, name


def test_tensorboard_gets_the_logged_scalars(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    make_trainer(tmp_path, options(steps=8, tensorboard=True)).fit()
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert {"main/loss", "main/psnr", "main/lr"} <= set(events.Tags()["scalars"])
    rows = read_log(tmp_path / "log.csv")
    psnr = [(e.step, e.value) for e in events.Scalars("main/psnr")]
    want = [(int(r["step"]), float(r["psnr"])) for r in rows if r["psnr"]]
    assert [s for s, _ in psnr] == [s for s, _ in want] == [4, 8]
    assert [v for _, v in psnr] == pytest.approx([v for _, v in want], rel=1e-5)


def test_progress_lines_are_plain_and_say_rate_eta_and_precision(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    opts = options(steps=6, val_every=6, progress=True, amp="fp32", memory_format="contiguous")
    trainer = make_trainer(tmp_path, opts)
    with caplog.at_level(logging.INFO, logger="restorekit.train.trainer"):
        trainer.fit()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("step ")]
    assert len(lines) == 3  # every log_every=2 steps, even with no TTY
    pattern = r"step (\d)/6 \(main\): loss [\d.]+, [\d.]+ steps/s, ETA \d+ s, fp32, NCHW$"
    assert [re.match(pattern, ln).group(1) for ln in lines] == ["2", "4", "6"]
    assert not any("\r" in ln for ln in lines)
    # The precision is part of the run's record: checkpoint state and best weights.
    assert load_checkpoint(tmp_path).state["numerics"] == "fp32, NCHW"
    assert load_weights(tmp_path / "best.safetensors")[1]["numerics"] == "fp32, NCHW"


def test_eta_times_each_kind_of_stage_on_its_own_rate() -> None:
    # The seed's `--gan` run: two L1 stages, then a GAN stage 4x slower per step on a CPU.
    # Its ETA once counted the GAN steps at the L1 rate: 1 h where the run took 2 h 13 min.
    l1, gan = (LossTerm("l1"),), (LossTerm("l1", 0.01), LossTerm("gan", 0.005))
    stages = (Stage(name="pretrain", steps=3000, losses=l1),
              Stage(name="lambda1", steps=1000, losses=l1),
              Stage(name="gan", steps=3000, losses=gan))  # fmt: skip
    progress = _Progress(0, stages)
    progress.rates[("l1",)] = 2.0  # what update() records, without timing anything
    assert progress.eta(1000) == "25 min 00 s, then 3000 untimed steps (gan)"
    progress.rates[("gan", "l1")] = 0.5
    assert progress.eta(1000) == "2 h 05 min"  # 3000 / 2 + 3000 / 0.5 seconds
    assert progress.eta(5500) == "50 min 00 s"  # inside the GAN stage: its rate alone
    assert progress.eta(7000) == "0 s"


def test_amp_spellings_resolve_to_a_precision() -> None:
    assert options(amp=True).amp == "bf16" and options(amp=False).amp == "fp32"
    assert options().amp == "auto"
    trainer = make_trainer(Path("/nonexistent"), options(amp="bf16"))
    assert trainer.numerics.precision == "bf16"


def test_time_steps_measures_without_writing_checkpoints(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path, options(amp="fp32"))
    assert trainer.time_steps(2, end_to_end=False) > 0
    assert trainer.time_steps(2, end_to_end=True) > 0
    assert load_checkpoint(tmp_path) is None and trainer.step == 4  # warm-ups uncounted


@pytest.mark.slow
def test_a_compiled_run_killed_and_resumed_ends_like_one_that_never_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opts = options(compile=True, amp="fp32")
    reference = make_trainer(tmp_path / "ref", opts)
    reference.fit()
    kill_at_step(make_trainer(tmp_path / "run", opts), 6, monkeypatch)
    resumed = make_trainer(tmp_path / "run", opts)
    resumed.fit()
    # The checkpoint holds the plain module's weights: no "_orig_mod." prefixes.
    assert not any("_orig_mod" in k for k in load_checkpoint(tmp_path / "run").weights["model"])
    expected = reference.model.state_dict()
    for key, value in resumed.model.state_dict().items():
        assert torch.equal(value, expected[key]), key


def test_best_weights_come_from_the_last_stage_trained(tmp_path: Path) -> None:
    stages = (
        Stage(name="pretrain", steps=8, lr=1e-2, losses=(LossTerm("l2"),)),
        Stage(name="finish", steps=4, lr=1e-9, losses=(LossTerm("l2"),)),  # cannot beat pretrain
    )
    trainer = make_trainer(tmp_path, options(stages=stages, val_every=4, amp="fp32"))
    trainer.fit()
    assert load_weights(tmp_path / "best.safetensors")[1]["step"] == 12


def test_a_stage_sums_its_weighted_loss_terms(tmp_path: Path) -> None:
    # One Stage field per loss became a list of (loss, weight) terms (issue 15).
    stage = Stage(losses=(LossTerm("l1", 0.5), LossTerm("l2", 2.0)))
    trainer = make_trainer(tmp_path, TrainOptions(stages=(stage,), progress=False, batch_size=4))
    trainer._enter_stage(0)
    pred, gt = torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), 0.5)
    loss = trainer._generator_loss(stage, pred, pred, gt, None, {})
    assert loss.item() == pytest.approx(0.5 * 0.5 + 2.0 * 0.25)
    with pytest.raises(ValueError, match=r"unknown loss 'l3'; choose one of: l1"):
        LossTerm("l3")


def test_older_stage_keys_read_as_loss_terms() -> None:
    old = {"name": "gan", "pixel_loss": "l1", "pixel_weight": 1e-2, "perceptual_weight": 1.0,
           "gan_weight": 5e-3, "deepnorm_alpha": None}  # fmt: skip
    new = legacy_stage(old)
    assert [(t["name"], t["weight"]) for t in new["losses"]] == [
        ("l1", 1e-2), ("perceptual", 1.0), ("gan", 5e-3),
    ]  # fmt: skip
    masked = legacy_stage({"pixel_loss": "l2", "mask_lambda": 5.0, "deepnorm_alpha": 1.0})
    assert masked["losses"] == [{"name": "masked_mse", "weight": 1.0, "params": {"lam": 5.0}}]
    assert masked["model_options"] == {"deepnorm_alpha": 1.0}


def test_stage_model_options_reach_the_model_hook(tmp_path: Path) -> None:
    seen = []

    class Hooked(torch.nn.Conv2d):
        def on_stage(self, **options: float) -> None:
            seen.append(options)

    stages = (Stage(steps=2), Stage(steps=2, model_options={"deepnorm_alpha": 1.0}))
    opts = TrainOptions(stages=stages, progress=False, batch_size=4, val_every=10)
    trainer = Trainer(Hooked(1, 1, 3, padding=1), NoisySquares(8), None, opts, tmp_path)
    trainer.fit()
    assert seen == [{"deepnorm_alpha": 1.0}]


def test_lr_scale_gives_a_module_its_own_rate_through_the_schedule(tmp_path: Path) -> None:
    stage = Stage(steps=6, lr=1e-3, scheduler="step", step_size=4,
                  lr_scale={"body.3": 100.0, "body": 1.0})  # the longer name wins  # fmt: skip
    trainer = make_trainer(tmp_path, TrainOptions(stages=(stage,), batch_size=4, val_every=6,
                                                  progress=False))  # fmt: skip
    last = trainer.model.body[3]
    start = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.fit()
    groups = trainer.optimizer.param_groups
    assert [g["lr"] for g in groups] == pytest.approx([5e-4, 5e-2, 5e-4])  # halved alike
    assert {id(p) for p in groups[1]["params"]} == {id(last.weight), id(last.bias)}
    assert {id(p) for p in groups[2]["params"]} == {
        id(p) for p in trainer.model.body[0].parameters()
    }
    # Adam moves a parameter by about lr a step: the scaled weights travelled ~30x as far
    # (0.148 against 0.0045 when written; unscaled, both layers move about alike).
    moved = {n: (p.detach() - start[n]).abs().max().item()
             for n, p in trainer.model.named_parameters()}  # fmt: skip
    assert moved["body.3.weight"] > 10 * moved["body.0.weight"]


def test_frozen_modules_keep_their_weights_for_that_stage_only(tmp_path: Path) -> None:
    stages = (Stage(steps=3, lr=1e-2, frozen=("body.0",)), Stage(steps=3, lr=1e-2))
    trainer = make_trainer(tmp_path, TrainOptions(stages=stages, batch_size=4, val_every=3,
                                                  progress=False))  # fmt: skip
    model = trainer.model
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    seen = {}
    real_step = trainer._train_step

    def step(batch: dict) -> float:
        if trainer.step == 2:  # the first stage's last step
            seen["optimised"] = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
        if trainer.step == 3:  # the first stage is over: what did it train?
            seen["moved"] = {n for n, p in model.named_parameters() if not p.equal(start[n])}
            seen["grad"] = model.body[0].weight.grad
        return real_step(batch)

    trainer._train_step = step
    trainer.fit()
    assert seen["moved"] == {"body.3.weight", "body.3.bias"}
    assert seen["optimised"] == {id(model.body[3].weight), id(model.body[3].bias)}
    assert seen["grad"] is None  # no gradient was computed for it
    assert model.body[0].weight.requires_grad  # the second stage trains it again
    assert not model.body[0].weight.equal(start["body.0.weight"])


def test_a_part_the_model_freezes_itself_stays_frozen_through_the_stages(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = TinyNet()
    model.body[0].bias.requires_grad_(False)  # as a pretrained, frozen part would be
    start = model.body[0].bias.detach().clone()
    stages = (Stage(steps=2, frozen=("body.3",)), Stage(steps=2))
    opts = TrainOptions(stages=stages, batch_size=4, val_every=2, progress=False)
    trainer = Trainer(model, NoisySquares(24), NoisySquares(4, seed=1), opts, tmp_path)
    trainer.fit()
    assert not model.body[0].bias.requires_grad and model.body[0].bias.equal(start)
    assert model.body[3].weight.requires_grad  # the second stage trains it again


def test_frozen_naming_no_parameters_is_refused(tmp_path: Path) -> None:
    stage = Stage(steps=2, frozen=("head",))
    trainer = make_trainer(tmp_path, TrainOptions(stages=(stage,), batch_size=4, progress=False))
    with pytest.raises(ConfigError, match=r"frozen.head names no parameters of TinyNet"):
        trainer.fit()
    stage = Stage(steps=2, frozen=("body.3",), lr_scale={"body.3": 10.0})  # nothing to scale
    trainer = make_trainer(tmp_path, TrainOptions(stages=(stage,), batch_size=4, progress=False))
    with pytest.raises(ConfigError, match=r"lr_scale.body.3 names no parameters of TinyNet that"):
        trainer.fit()


def test_lr_scale_naming_no_parameters_is_refused(tmp_path: Path) -> None:
    stage = Stage(steps=2, lr_scale={"airlight": 10.0})
    trainer = make_trainer(tmp_path, TrainOptions(stages=(stage,), batch_size=4, progress=False))
    with pytest.raises(ConfigError, match=r"lr_scale.airlight names no parameters of TinyNet"):
        trainer.fit()
