"""One training loop for supervised, adversarial and staged training, read top to bottom.

A run is a sequence of :class:`Stage`s (CASRGAN: L1 pretraining, then lambda set to 1,
then GAN; most recipes: one stage). Each stage has its own optimiser, learning-rate
schedule and loss weights; the step counter runs across stages. Every ``val_every``
steps the loop validates (loss, PSNR, SSIM, printed as the seeds print them: ``Step
20000: Loss 0.0996, SSIM 0.8501, PSNR 20.74``), saves a checkpoint, and keeps the best
weights by validation PSNR, within the stage being trained (so a GAN stage ships GAN
weights, not its pretraining's).

Resuming is exact: the checkpoint holds the optimiser, scheduler, EMA, RNG states and the
data position, and the data order is a function of (seed, epoch) alone, so a run killed at
any moment and resumed ends with the same weights as one that never stopped (on CPU).
A NaN or infinite loss stops the run with a message before any checkpoint is written.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import logging
import math
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Sampler

from restorekit.config import (
    ConfigError,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Range,
)
from restorekit.degrade import TARGETS
from restorekit.hardware import check_device, machine_summary, resolve
from restorekit.losses import (
    LOSSES,
    GANLoss,
    LossInputs,
    PerceptualLoss,
    PixelLoss,
    unweighted_pixel_loss,
)
from restorekit.metrics import DEFAULT_METRICS, METRICS
from restorekit.train.checkpoint import capture_rng, load_checkpoint, restore_rng, save_checkpoint
from restorekit.train.checkpoint import save_weights as _save_weights
from restorekit.train.distributed import Context, init_from_env, rank_slice

log = logging.getLogger(__name__)

Beta = Annotated[float, Range(ge=0, lt=1)]  # an Adam beta


@dataclass(frozen=True)
class LossTerm:
    """One term of a stage's loss: ``weight x LOSSES[name](inputs, **params)``."""

    name: str = "l1"
    weight: NonNegativeFloat = 1.0
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        LOSSES.get(self.name)  # unknown names fail at once, listing the choices


@dataclass(frozen=True)
class Stage:
    """One phase of training: its length, optimiser, schedule and loss terms.

    ``losses`` are summed with their weights (:data:`restorekit.losses.LOSSES`);
    ``model_options`` go to the model's ``on_stage`` hook when the stage starts (CASR's
    ``{deepnorm_alpha: 1.0}``, the seed's lambda switch). ``lr_scale`` multiplies the
    learning rate of the parameters under a module name (``{airlight: 100}``): Adam moves
    a parameter by about ``lr`` a step whatever its gradient, so a head that must travel
    far from its start (a bias from logit 0.9 to logit 0.75) needs its own rate; the
    schedule scales every group alike. ``frozen`` names modules whose parameters this
    stage does not train (``[head, groups]``): they get no gradient, so the backward pass
    stops where nothing trainable lies below it (a small head on a frozen body trains at
    the cost of the body's forward).
    """

    name: str = "main"
    steps: PositiveInt = 1000
    optimizer: Literal["adam", "adamw"] = "adam"
    lr: PositiveFloat = 1e-4
    betas: tuple[Beta, Beta] = (0.9, 0.999)
    weight_decay: NonNegativeFloat = 0.0
    scheduler: Literal["none", "step", "cosine", "plateau"] = "none"
    step_size: PositiveInt = 1000  # "step": lr *= gamma every step_size steps of this stage
    min_lr: NonNegativeFloat = 0.0  # "cosine": lr falls from lr to min_lr over the stage
    # (an lr_scale group from its scaled lr to its scaled min_lr)
    gamma: Annotated[float, Range(gt=0, le=1)] = 0.5
    patience: PositiveInt = 5  # "plateau": validations without improvement before lr *= gamma
    losses: tuple[LossTerm, ...] = (LossTerm(),)
    model_options: dict[str, Any] = field(default_factory=dict)
    lr_scale: dict[str, PositiveFloat] = field(default_factory=dict)
    frozen: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.steps <= 0:
            raise ValueError(f"stage {self.name!r}: steps must be positive")
        if self.lr <= 0:
            raise ValueError(f"stage {self.name!r}: lr must be positive")
        if self.scheduler == "cosine" and self.min_lr >= self.lr:
            raise ValueError(f"stage {self.name!r}: min_lr must be below lr for a cosine fall")
        if not self.losses:
            raise ValueError(f"stage {self.name!r}: losses is empty")

    def uses(self, kind: str) -> bool:
        """Whether a term of this kind (``"adversarial"``, ``"perceptual"``) weighs > 0."""
        return any(LOSSES.entry(t.name).kind == kind and t.weight > 0 for t in self.losses)

    @property
    def val_loss(self) -> str:
        """The loss validation reports: the stage's first pixel term (l1 if it has none).
        Its column is an unweighted pixel loss, so the masked losses and the PSNR loss read
        as plain MSE there; the psnr and in-mask metric columns give the rest."""
        pixel = [t.name for t in self.losses if LOSSES.entry(t.name).kind == "pixel"]
        return unweighted_pixel_loss(pixel[0]) if pixel else "l1"


_LEGACY = ("pixel_loss", "pixel_weight", "mask_lambda", "perceptual_weight", "gan_weight",
           "deepnorm_alpha")  # fmt: skip


def legacy_stage(stage: Mapping[str, Any]) -> dict[str, Any]:
    """A stage written with the older one-field-per-loss keys, as ``losses`` terms (in
    full, as a saved run's config holds them, so an older run resumes unchanged).

    >>> legacy_stage({"pixel_loss": "l1", "pixel_weight": 0.01, "gan_weight": 5e-3})["losses"]
    [{'name': 'l1', 'weight': 0.01, 'params': {}}, {'name': 'gan', 'weight': 0.005, 'params': {}}]
    """
    if not any(k in stage for k in _LEGACY):
        return dict(stage)
    out = {k: v for k, v in stage.items() if k not in _LEGACY}
    if "losses" in stage:
        raise ConfigError(f"stage {stage.get('name')!r}: give losses, or the older "
                          f"{', '.join(_LEGACY)}, not both")  # fmt: skip
    weight = stage.get("pixel_weight", 1.0)
    if stage.get("mask_lambda") is not None:
        terms = [{"name": "masked_mse", "weight": weight, "params": {"lam": stage["mask_lambda"]}}]
    else:
        terms = [{"name": stage.get("pixel_loss", "l1"), "weight": weight, "params": {}}]
    for key, name in (("perceptual_weight", "perceptual"), ("gan_weight", "gan")):
        if stage.get(key):
            terms.append({"name": name, "weight": stage[key], "params": {}})
    out["losses"] = terms
    alpha = stage.get("deepnorm_alpha")
    out["model_options"] = {} if alpha is None else {"deepnorm_alpha": alpha}
    return out


@dataclass(frozen=True)
class TrainOptions:
    """Everything about a run that is not a stage."""

    stages: tuple[Stage, ...] = (Stage(),)
    batch_size: PositiveInt = 16
    seed: NonNegativeInt = 0
    val_every: PositiveInt = 500
    log_every: PositiveInt = 50
    grad_clip: NonNegativeFloat = 0.0  # max gradient norm; 0 = off
    # BatchNorm layers normalise with their running statistics in training too, and keep
    # them; their scale and shift still learn. For fine-tuning with small batches of mixed
    # noise levels, whose batch statistics jump from step to step (issue 10).
    freeze_bn: bool = False
    ema_decay: Annotated[float, Range(ge=0, lt=1)] = (
        0.0  # 0 = off; else validate and save the EMA weights too
    )
    # "auto": bf16 autocast where the hardware has native bf16, else fp32 (see
    # restorekit.hardware); true/false are the older spellings of bf16/fp32.
    amp: Literal["auto", "fp32", "bf16"] | bool = "auto"
    memory_format: Literal["auto", "channels_last", "contiguous"] = "auto"
    compile: bool = False  # torch.compile the model (see restorekit bench for when it pays)
    num_workers: NonNegativeInt = 0
    keep: PositiveInt = 2  # checkpoints kept besides best
    crop_border: NonNegativeInt = 0  # metric protocol during validation
    y_channel: bool = False
    # Validation metrics (restorekit.metrics.METRICS); psnr picks best.safetensors.
    metrics: tuple[str, ...] = DEFAULT_METRICS
    progress: bool = True
    tensorboard: bool = False  # also log the CSV's scalars to run_dir/tensorboard
    extra: dict[str, Any] = field(default_factory=dict)  # config saved with checkpoints

    def __post_init__(self) -> None:
        if isinstance(self.amp, bool):
            object.__setattr__(self, "amp", "bf16" if self.amp else "fp32")
        for name in self.metrics:
            if name not in METRICS:  # unknown names fail at once, listing the choices
                raise ValueError(f"metrics: unknown metric {name!r}; choose one of: "
                                 f"{', '.join(METRICS)}")  # fmt: skip
        if "psnr" not in self.metrics:
            raise ValueError(
                f"train.metrics must include psnr (it picks the best weights): {self.metrics}"
            )

    @property
    def total_steps(self) -> int:
        return sum(s.steps for s in self.stages)

    def uses(self, kind: str) -> bool:
        """Whether any stage has a loss term of this kind (see :meth:`Stage.uses`)."""
        return any(s.uses(kind) for s in self.stages)


class EpochSampler(Sampler[int]):
    """A random order that depends on (seed, epoch) only, started at any position.

    Resuming at batch k of epoch e replays exactly the indices an uninterrupted run
    would have drawn next, whatever happened before. Under data parallelism each rank
    takes its slice of every global batch (see ``distributed.rank_slice``).
    """

    def __init__(self, n: int, *, seed: int, global_batch: int, ctx: Context) -> None:
        self.n, self.seed, self.global_batch, self.ctx = n, seed, global_batch, ctx
        self.epoch, self.start = 0, 0

    def set_position(self, epoch: int, start: int) -> None:
        self.epoch, self.start = epoch, start

    def _indices(self) -> list[int]:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.n, generator=gen)[self.start :].tolist()
        return rank_slice(order, global_batch=self.global_batch, ctx=self.ctx)

    def __iter__(self) -> Iterator[int]:
        yield from self._indices()

    def __len__(self) -> int:
        return len(self._indices())


class Trainer:
    """Trains ``model`` on ``train_set`` (dicts with ``lq``, ``gt``, optional ``mask``).

    Args:
        model: the restoration network (a Restorer from ``create_model``).
        train_set: a Dataset of dicts; if it has ``set_epoch(e)``, it is called per epoch.
        val_set: a Dataset of dicts for validation (batch size 1: images may differ in size).
        options: run options and stages.
        run_dir: checkpoints, ``log.csv`` and ``best.safetensors`` go here.
        discriminator: needed by stages with a ``gan`` loss term. A discriminator with
            ``conditional = True`` sees ``cat(lq, image)`` (same sizes), else ``image``.
        perceptual: for stages with a ``perceptual`` loss term: a
            :class:`~restorekit.losses.PerceptualLoss`, or a feature network to wrap in
            one with every layer weighing 1.
        gan_loss: defaults to vanilla BCE with the face system's smoothing (0.9 / 0.1).
        device: where to train.
    """

    def __init__(
        self,
        model: nn.Module,
        train_set: Dataset,
        val_set: Dataset | None,
        options: TrainOptions,
        run_dir: str | Path,
        *,
        discriminator: nn.Module | None = None,
        perceptual: nn.Module | None = None,
        gan_loss: GANLoss | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.opt, self.run_dir = options, Path(run_dir)
        self.device = check_device(device)
        self.ctx = init_from_env(self.device)
        if options.batch_size % self.ctx.world:
            raise ValueError(
                f"batch_size={options.batch_size} must divide among {self.ctx.world} processes"
            )
        if options.uses("adversarial") and discriminator is None:
            raise ValueError("a stage has a gan loss term but no discriminator was given")
        if options.uses("perceptual") and perceptual is None:
            raise ValueError("a stage has a perceptual loss term but no feature network was given")
        self.numerics = resolve(options.amp, options.memory_format, device=device, model=model)
        self.model = model.to(self.device, memory_format=self.numerics.memory_format)
        # What the model itself trains (a frozen pretrained part stays frozen in every stage).
        self._trainable = {n for n, p in self.model.named_parameters() if p.requires_grad}
        self.disc = discriminator.to(self.device) if discriminator is not None else None
        if perceptual is not None and not isinstance(perceptual, PerceptualLoss):
            perceptual = PerceptualLoss(perceptual)
        self.perceptual = perceptual.to(self.device) if perceptual is not None else None
        self.gan_loss = gan_loss or GANLoss("vanilla", real_label=0.9, fake_label=0.1)
        self.ema = copy.deepcopy(self.model).eval() if options.ema_decay > 0 else None
        # What the loop calls: the models themselves, or their data-parallel wrappers.
        self.net, self.critic = self.model, self.disc
        if options.compile:  # the weights stay self.model's: checkpoints are unchanged
            self.net = torch.compile(self.model)
        if self.ctx.world > 1:
            self.net = nn.parallel.DistributedDataParallel(self.model)
            if self.disc is not None:
                self.critic = nn.parallel.DistributedDataParallel(self.disc)
        self.train_set, self.val_set = train_set, val_set
        if not isinstance(train_set, Sized) or len(train_set) < options.batch_size:
            raise ValueError(
                f"the training set needs at least batch_size={options.batch_size} items"
            )
        self.sampler = EpochSampler(
            len(train_set), seed=options.seed, global_batch=options.batch_size, ctx=self.ctx
        )
        self.step, self.epoch, self.batch_in_epoch = 0, 0, 0
        self.best_psnr = -math.inf
        self._stage_index = -1
        self._board: Any = None  # the TensorBoard writer, made on first use

    # ------------------------------------------------------------------ the loop
    def fit(self) -> dict[str, float]:
        """Train to the end of the last stage (resuming from ``run_dir`` if it has a
        checkpoint); return the last validation scores."""
        torch.manual_seed(self.opt.seed)
        self._resume()
        scores: dict[str, float] = {}
        self._progress = _Progress(self.step, self.opt.stages)
        while self.step < self.opt.total_steps:
            for batch in self._batches():
                self._enter_stage(self._stage_at(self.step))
                loss = self._train_step(batch)
                self.step += 1
                if self.step % self.opt.log_every == 0 and self.ctx.is_main:
                    self._print_progress(loss)
                if self.step % self.opt.val_every == 0 or self.step == self.opt.total_steps:
                    with self._progress.paused():
                        scores = self._validate_and_save(loss)  # logs its own row
                elif self.step % self.opt.log_every == 0 and self.ctx.is_main:
                    self._log_row({"loss": loss})
                if self.step >= self.opt.total_steps:
                    break
        if self._board is not None:
            self._board.close()
        return scores

    def time_steps(self, steps: int, *, end_to_end: bool) -> float:
        """Seconds per training step, over ``steps`` steps after one warm-up step.

        ``end_to_end``: the real loop (the data loader making each batch, the step, the
        ``log.csv`` row every ``log_every`` steps); else the step alone, on one batch made
        beforehand. No validation or checkpoint is written. For ``restorekit bench``; it
        moves the step counter and the weights, so use a trainer made for it.
        """
        self._enter_stage(self._stage_at(self.step))
        batches = self._endless_batches()
        fixed = next(batches)
        self._train_step(fixed)  # warm-up: allocations, oneDNN kernel choice
        start = time.perf_counter()
        for _ in range(steps):
            batch = next(batches) if end_to_end else fixed
            loss = self._train_step(batch)
            self.step += 1
            if end_to_end and self.step % self.opt.log_every == 0 and self.ctx.is_main:
                self._log_row({"loss": loss})
        return (time.perf_counter() - start) / steps

    def time_batches(self, batches: int) -> float:
        """Seconds of the fastest of ``batches`` draws of one batch from the training data
        loader (data generation alone, for ``restorekit bench``)."""
        source, best = self._endless_batches(), math.inf
        next(source)  # warm-up: the first epoch's loader, cached photos
        for _ in range(batches):
            start = time.perf_counter()
            next(source)
            best = min(best, time.perf_counter() - start)
        return best

    def _endless_batches(self) -> Iterator[dict[str, Tensor]]:
        while True:
            yield from self._batches()

    def _train_step(self, batch: dict[str, Tensor]) -> float:
        stage, model = self.stage, self.model
        lq, gt = batch["lq"].to(self.device), batch["gt"].to(self.device)
        mask = batch["mask"].to(self.device) if "mask" in batch else None
        targets = {k: batch[k].to(self.device) for k in TARGETS if k in batch}
        model.train()
        if self.opt.freeze_bn:
            freeze_batch_norm(model)
        lq = self.numerics.input(lq)
        with self._autocast():
            pred = self.net(lq)
            loss = self._generator_loss(stage, lq, pred.float(), gt, mask, targets)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"step {self.step + 1}: the loss is {loss.item()}; stopping before any "
                f"checkpoint is written (the last good one is in {self.run_dir})"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.opt.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), self.opt.grad_clip)
        self.optimizer.step()
        if stage.uses("adversarial"):
            self._discriminator_step(lq, pred.detach().float(), gt)
        if self.scheduler is not None and stage.scheduler in ("step", "cosine"):
            self.scheduler.step()
        if self.ema is not None:
            with torch.no_grad():
                for e, p in zip(self.ema.parameters(), model.parameters(), strict=True):
                    e.lerp_(p, 1 - self.opt.ema_decay)
                for e, b in zip(self.ema.buffers(), model.buffers(), strict=True):
                    e.copy_(b)
        return loss.item()

    def _generator_loss(
        self,
        stage: Stage,
        lq: Tensor,
        pred: Tensor,
        gt: Tensor,
        mask: Tensor | None,
        targets: dict[str, Tensor],
    ) -> Tensor:
        inputs = LossInputs(pred, gt, lq, mask, perceptual=self.perceptual, gan=self.gan_loss,
                            judge=lambda image: self._judge(lq, image), targets=targets,
                            maps=getattr(self.model, "aux_outputs", {}))  # fmt: skip
        terms = [t.weight * LOSSES[t.name](inputs, **t.params) for t in stage.losses if t.weight]
        return torch.stack(terms).sum() if terms else pred.sum() * 0

    def _discriminator_step(self, lq: Tensor, fake: Tensor, gt: Tensor) -> None:
        self.disc.train()
        with self._autocast():
            d_loss = self.gan_loss.discriminator_loss(self._judge(lq, gt), self._judge(lq, fake))
        if not torch.isfinite(d_loss):
            raise FloatingPointError(f"step {self.step}: the discriminator loss is {d_loss.item()}")
        self.d_optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        self.d_optimizer.step()

    def _judge(self, lq: Tensor, image: Tensor) -> Tensor:
        if getattr(self.disc, "conditional", False):
            return self.critic(torch.cat([lq, image], dim=1))
        return self.critic(image)

    # ------------------------------------------------------------ validation
    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Mean validation loss and :attr:`TrainOptions.metrics` (of the EMA weights when EMA
        is on); an in-mask metric is averaged over the images that have a non-empty mask."""
        self._enter_stage(self._stage_at(self.step))  # its pixel loss is the val loss
        net = self.ema if self.ema is not None else self.model
        net.eval()
        loader = DataLoader(
            self.val_set, batch_size=1, num_workers=self.opt.num_workers, generator=_own_rng()
        )
        values: dict[str, list[float]] = {"val_loss": [], **{m: [] for m in self.opt.metrics}}
        metric_kw = {"crop_border": self.opt.crop_border, "y_channel": self.opt.y_channel}
        for batch in loader:
            lq, gt = batch["lq"].to(self.device), batch["gt"].to(self.device)
            mask = batch["mask"].to(self.device) if "mask" in batch else None
            with self._autocast():
                pred = net(lq).float().clamp(0, 1)
            values["val_loss"].append(self._val_loss(pred, gt).item())
            for name in self.opt.metrics:
                metric = METRICS[name]
                if not metric.needs_mask or mask is not None:
                    values[name].append(metric.fn(pred, gt, mask=mask, **metric_kw).item())
        finite = {k: [x for x in v if math.isfinite(x) or x == math.inf] for k, v in values.items()}
        return {k: sum(v) / len(v) if v else math.nan for k, v in finite.items()}

    def _validate_and_save(self, loss: float) -> dict[str, float]:
        # Every rank validates, so a plateau schedule steps alike everywhere; rank 0 writes.
        scores = self.validate() if self.val_set is not None else {}
        if scores and self.scheduler is not None and self.stage.scheduler == "plateau":
            self.scheduler.step(scores["val_loss"])
        if self.ctx.is_main:
            if scores:
                extra = "".join(f", {METRICS[m].label} {scores[m]:.{METRICS[m].digits}f}"
                                for m in self.opt.metrics if m not in ("psnr", "ssim"))  # fmt: skip
                log.info(
                    "Step %d: Loss %.4f, SSIM %.4f, PSNR %.2f%s (val: %s, crop %d, data range 1)",
                    self.step, loss, scores.get("ssim", math.nan), scores["psnr"], extra,
                    "Y" if self.opt.y_channel else "all channels", self.opt.crop_border,
                )  # fmt: skip
                if scores["psnr"] > self.best_psnr:
                    best = self.ema if self.ema is not None else self.model
                    path = self.run_dir / "best.safetensors"
                    _save_weights(path, best, step=self.step, numerics=self.numerics.describe(),
                                  **scores)  # fmt: skip
            self._log_row({"loss": loss, **scores})
            self._save()
        if scores:
            self.best_psnr = max(self.best_psnr, scores["psnr"])
        self.ctx.barrier()  # the others must not read a checkpoint rank 0 is writing
        return scores

    # ------------------------------------------------------------ stages
    def _stage_at(self, step: int) -> int:
        end = 0
        for i, stage in enumerate(self.opt.stages):
            end += stage.steps
            if step < end:
                return i
        return len(self.opt.stages) - 1

    def _stage_start(self, index: int) -> int:
        return sum(s.steps for s in self.opt.stages[:index])

    def _enter_stage(self, index: int, state: dict[str, Any] | None = None) -> None:
        """Build the optimiser, scheduler and losses of stage ``index`` (once per stage),
        then load their saved ``state`` when resuming."""
        if index != self._stage_index:
            self._stage_index, self.stage = index, self.opt.stages[index]
            stage = self.stage
            if index > 0 and self.step == self._stage_start(index):
                # best.safetensors is the best of the stage being trained: a GAN stage's
                # weights are what its recipe ships, even at a lower PSNR than pretraining.
                self.best_psnr = -math.inf
            if stage.model_options:  # the model's hook (Restorer.on_stage)
                self.model.on_stage(**stage.model_options)
            self._val_loss = PixelLoss(stage.val_loss)  # the validation's loss column
            _freeze(stage, self.model, self._trainable)
            self.optimizer = _optimizer(stage, self.model)
            self.d_optimizer = _optimizer(stage, self.disc, scaled=False) if self.disc else None
            self.scheduler = _scheduler(stage, self.optimizer)
            log.info("stage %r from step %d: %s", stage.name, self._stage_start(index), stage)
        if state is not None:
            self.optimizer.load_state_dict(state["optimizer"])
            if self.d_optimizer is not None and "d_optimizer" in state:
                self.d_optimizer.load_state_dict(state["d_optimizer"])
            if self.scheduler is not None:
                self.scheduler.load_state_dict(state["scheduler"])

    # ------------------------------------------------------------ data
    def _batches(self) -> Iterator[dict[str, Tensor]]:
        """Batches from the current data position to the end of the epoch."""
        if hasattr(self.train_set, "set_epoch"):
            self.train_set.set_epoch(self.epoch)
        self.sampler.set_position(self.epoch, self.batch_in_epoch * self.opt.batch_size)
        loader = DataLoader(
            self.train_set,
            batch_size=self.opt.batch_size // self.ctx.world,
            sampler=self.sampler,
            drop_last=True,
            num_workers=self.opt.num_workers,
            generator=_own_rng(self.opt.seed + self.epoch),
        )
        for batch in loader:
            self.batch_in_epoch += 1
            yield batch
        self.epoch, self.batch_in_epoch = self.epoch + 1, 0

    # ------------------------------------------------------------ checkpoints
    def _save(self) -> None:
        modules = {"model": self.model}
        if self.disc is not None:
            modules["discriminator"] = self.disc
        if self.ema is not None:
            modules["ema"] = self.ema
        state = {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else {},
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "best_psnr": self.best_psnr,
            "rng": capture_rng(),
            "config": self.opt.extra,
            "numerics": self.numerics.describe(),
            "machine": machine_summary(),
        }
        if self.d_optimizer is not None:
            state["d_optimizer"] = self.d_optimizer.state_dict()
        save_checkpoint(
            self.run_dir, step=self.step, modules=modules, state=state, keep=self.opt.keep
        )

    def _resume(self) -> None:
        ckpt = load_checkpoint(self.run_dir)
        if ckpt is None:
            return
        self.model.load_state_dict(ckpt.weights["model"])
        if self.disc is not None:
            self.disc.load_state_dict(ckpt.weights["discriminator"])
        if self.ema is not None:
            self.ema.load_state_dict(ckpt.weights["ema"])
        state = ckpt.state
        self.step, self.epoch = ckpt.step, state["epoch"]
        self.batch_in_epoch, self.best_psnr = state["batch_in_epoch"], state["best_psnr"]
        self._enter_stage(self._stage_at(self.step), state)
        restore_rng(state["rng"])
        self._truncate_log()
        log.info("resumed from %s at step %d", ckpt.folder, self.step)

    # ------------------------------------------------------------ logging
    def _log_row(self, values: dict[str, float]) -> None:
        path = self.run_dir / "log.csv"
        fields = ["step", "stage", "lr", "loss", "val_loss", *self.opt.metrics, "time"]
        row = {"step": self.step, "stage": self.stage.name, "time": f"{time.time():.0f}"}
        row["lr"] = self.optimizer.param_groups[0]["lr"]
        row.update({k: f"{v:.6g}" for k, v in values.items()})
        new = not path.exists()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            if new:
                writer.writeheader()
            writer.writerow(row)
        if self.opt.tensorboard:
            board = self._tensorboard()
            for key, value in {"lr": row["lr"], **values}.items():
                board.add_scalar(f"{self.stage.name}/{key}", float(value), self.step)

    def _tensorboard(self) -> Any:
        if self._board is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise ImportError(
                    "train.tensorboard needs the tensorboard package: "
                    "pip install 'restorekit[tensorboard]'"
                ) from None
            # purge_step drops the events a killed run wrote after its last checkpoint.
            self._board = SummaryWriter(self.run_dir / "tensorboard", purge_step=self.step)
        return self._board

    def _truncate_log(self) -> None:
        """Drop rows logged after the checkpoint we resume from (the killed run's tail)."""
        path = self.run_dir / "log.csv"
        if not path.exists():
            return
        lines = path.read_text().splitlines(keepends=True)
        kept = lines[:1] + [ln for ln in lines[1:] if int(ln.split(",", 1)[0]) <= self.step]
        path.write_text("".join(kept))

    def _print_progress(self, loss: float) -> None:
        """A plain line every ``log_every`` steps (no carriage returns: logs stay readable)."""
        if self.opt.progress:
            rate, eta = self._progress.update(self.step, self.stage)
            log.info(
                "step %d/%d (%s): loss %.5f, %.2f steps/s, ETA %s, %s",
                self.step, self.opt.total_steps, self.stage.name, loss, rate, eta,
                self.numerics.describe(),
            )  # fmt: skip

    def _autocast(self):  # -> contextlib.AbstractContextManager
        return self.numerics.autocast()


class _Progress:
    """Steps per second over the last window (so validation pauses age out), and the ETA.

    Stages of one kind (the same loss terms) train at one speed, but an adversarial or
    perceptual stage runs more networks per step (4x slower for CASRGAN's GAN stage on a
    CPU). So each kind keeps its own measured rate, and a later stage of a kind not yet
    timed is not guessed at: the ETA covers the timed steps and names the rest.
    """

    def __init__(self, step: int, stages: Sequence[Stage]) -> None:
        self.stages, self.last_step, self.last_time = tuple(stages), step, time.perf_counter()
        self.rates: dict[tuple[str, ...], float] = {}

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Time spent inside (validation, checkpoints) does not count as training."""
        start = time.perf_counter()
        yield
        self.last_time += time.perf_counter() - start

    def update(self, step: int, stage: Stage) -> tuple[float, str]:
        """The rate since the last call (steps of ``stage``) and the ETA in words."""
        now = time.perf_counter()
        rate = (step - self.last_step) / max(now - self.last_time, 1e-9)
        self.last_step, self.last_time = step, now
        self.rates[_cost_kind(stage)] = rate
        return rate, self.eta(step)

    def eta(self, step: int) -> str:
        """``"12 min 05 s"``, or ``"12 min 05 s, then 3000 untimed steps (gan)"``."""
        seconds, untimed, names, end = 0.0, 0, [], 0
        for stage in self.stages:
            start, end = end, end + stage.steps
            left = end - max(start, step)
            if left <= 0:
                continue
            rate = self.rates.get(_cost_kind(stage))
            if rate:
                seconds += left / rate
            else:
                untimed, names = untimed + left, [*names, stage.name]
        words = _duration(seconds)
        return f"{words}, then {untimed} untimed steps ({', '.join(names)})" if untimed else words


def _cost_kind(stage: Stage) -> tuple[str, ...]:
    """What a step of ``stage`` costs depends on the networks its losses run."""
    return tuple(sorted(t.name for t in stage.losses if t.weight > 0))


def _duration(seconds: float) -> str:
    """``"1 h 02 min"``, ``"3 min 05 s"``, ``"12 s"``."""
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s} s"


def freeze_batch_norm(model: nn.Module) -> None:
    """Put ``model``'s BatchNorm layers in eval mode (call after ``model.train()``)."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()


def _own_rng(seed: int = 0) -> torch.Generator:
    """A DataLoader draws its workers' base seed from the global RNG unless given its own
    generator; that extra draw on resume would shift every later dropout mask."""
    return torch.Generator().manual_seed(seed)


def _held(name: str, prefixes: Iterable[str]) -> list[str]:
    """The module names in ``prefixes`` that hold parameter ``name``."""
    return [p for p in prefixes if name == p or name.startswith(p + ".")]


def _refuse_empty(
    stage: Stage,
    key: str,
    prefixes: Iterable[str],
    names: list[str],
    module: nn.Module,
    suffix: str = "",
) -> None:
    """A ConfigError naming the first of the stage's ``key`` entries (module names) that
    holds none of the parameter ``names``: a typo must not train silently."""
    for prefix in prefixes:
        if not any(_held(name, (prefix,)) for name in names):
            raise ConfigError(f"stage {stage.name!r}: {key}.{prefix} names no parameters of "
                              f"{type(module).__name__}{suffix}")  # fmt: skip


def _freeze(stage: Stage, model: nn.Module, trainable: set[str]) -> None:
    """Stop the gradient of the parameters under ``stage.frozen``; train the others of
    ``trainable`` (those the model itself trains)."""
    names = [name for name, _ in model.named_parameters()]
    _refuse_empty(stage, "frozen", stage.frozen, names, model)
    for name, param in model.named_parameters():
        param.requires_grad_(name in trainable and not _held(name, stage.frozen))


def _optimizer(stage: Stage, module: nn.Module, *, scaled: bool = True) -> torch.optim.Optimizer:
    """The stage's optimiser over ``module``'s trainable parameters: one group at
    ``stage.lr`` (the first, which the log reports), then one per ``lr_scale`` entry
    (``scaled``)."""
    scales = stage.lr_scale if scaled else {}
    trained = [(name, p) for name, p in module.named_parameters() if p.requires_grad]
    _refuse_empty(stage, "lr_scale", scales, [name for name, _ in trained], module,
                  " that the stage trains")  # fmt: skip
    groups: dict[str, list[nn.Parameter]] = {"": [], **{prefix: [] for prefix in scales}}
    for name, param in trained:
        # The longest name that holds it: {body: 10, body.3: 100} gives body.3 its own.
        groups[max(_held(name, scales), key=len, default="")].append(param)
    param_groups = [{"params": p, "lr": stage.lr * scales.get(k, 1.0)} for k, p in groups.items()]
    kind = torch.optim.AdamW if stage.optimizer == "adamw" else torch.optim.Adam
    return kind(param_groups, lr=stage.lr, betas=stage.betas, weight_decay=stage.weight_decay)


def _scheduler(stage: Stage, optimizer: torch.optim.Optimizer) -> Any:
    if stage.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, stage.step_size, gamma=stage.gamma)
    if stage.scheduler == "cosine":  # half a cosine, once (Loshchilov & Hutter, SGDR, 2017)
        # A factor on each group's rate, so an lr_scale group falls to its scaled floor
        # (torch's CosineAnnealingLR takes every group to the same eta_min).
        floor = stage.min_lr / stage.lr
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda k: floor + (1 - floor) * (1 + math.cos(math.pi * k / stage.steps)) / 2
        )
    if stage.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=stage.gamma, patience=stage.patience
        )
    return None
