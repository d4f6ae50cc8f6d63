"""Training losses: pixel losses with an optional weight mask, perceptual, and adversarial.

All losses take ``(pred, target)`` (B, C, H, W) tensors and return a scalar tensor.

* Pixel: :func:`l1_loss`, :func:`l2_loss`, :func:`charbonnier_loss`, each with an
  optional ``weight`` (B, 1 or C, H, W) that turns the mean into a weighted mean, and
  :func:`masked_mse` for the defect-aware system (SPEC.md D): MSE over the pixels outside
  the defect mask + lambda x MSE over the pixels inside it; :func:`psnr_loss`, the mean
  over images of 10 log10(MSE), which weighs each image by the inverse of its own error,
  so a lightly degraded image counts as much in dB as a heavily degraded one (as mean PSNR
  scores them; Chen et al. 2021, HINet, and NAFNet train with it); :func:`masked_psnr_loss`,
  the masked loss in those units: per image, 10 log10 of the MSE outside the mask +
  lambda x 10 log10 of the MSE inside it, as the in-mask PSNR columns score it;
  :func:`mean_colour_loss`, the L1 between each image's mean colour and the ground
  truth's, a term beside a pixel loss for a network whose errors are global shifts (a
  dehazer that darkens a clear photo, or leaves a cast).
* Perceptual: :class:`PerceptualLoss` sums, over chosen layers of a frozen feature
  network, the mean squared difference of the features of ``pred`` and ``target``
  (Johnson et al. 2016). The network is passed in (losses never import models): use
  ``restorekit.models.backbones.VGGFeatures`` for VGG19 ``conv3_4`` before its ReLU, as
  CASRGAN does, or several layers for FFA-Net.
* Adversarial: :class:`GANLoss`, vanilla (BCE on logits, Goodfellow et al. 2014) or least
  squares (Mao et al. 2017), with one-sided or two-sided label smoothing (Salimans et al.
  2016), as ``generator_loss(fake)`` and ``discriminator_loss(real, fake)``.

Training stages compose their loss from :data:`LOSSES` terms, each with a weight (a
recipe's ``losses: [{name: l1, weight: 0.01}, {name: perceptual}, {name: gan, weight:
5e-3}]``); a new loss is one function and one ``@register_loss`` here.

References:
    Charbonnier et al. 1994, https://doi.org/10.1109/ICIP.1994.413553 ;
    Johnson, Alahi, Fei-Fei 2016, https://arxiv.org/abs/1603.08155 ;
    Mao et al. 2017 (LSGAN), https://arxiv.org/abs/1611.04076 ;
    Salimans et al. 2016 (label smoothing), https://arxiv.org/abs/1606.03498 ;
    Chen et al. 2021 (HINet, PSNR loss), https://arxiv.org/abs/2105.06086
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from restorekit.registry import Registry

__all__ = [
    "LOSSES",
    "GANLoss",
    "LossInputs",
    "PerceptualLoss",
    "PixelLoss",
    "charbonnier_loss",
    "dilate_mask",
    "l1_loss",
    "l2_loss",
    "masked_mse",
    "masked_psnr_loss",
    "mean_colour_loss",
    "psnr_loss",
    "register_loss",
    "unweighted_pixel_loss",
]


def _check_pair(pred: Tensor, target: Tensor) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")


def _check_eps(eps: float, loss: str) -> None:
    if eps < 0:
        raise ValueError(f"{loss} loss: eps must be >= 0, got {eps}")


def _weighted_mean(err: Tensor, weight: Tensor | None) -> Tensor:
    """Mean of ``err``, or its ``weight``-weighted mean; all-zero weights give 0, not NaN."""
    if weight is None:
        return err.mean()
    w = weight.to(err.dtype).expand_as(err)
    return (err * w).sum() / w.sum().clamp_min(torch.finfo(err.dtype).tiny)


def l1_loss(pred: Tensor, target: Tensor, *, weight: Tensor | None = None) -> Tensor:
    """Mean absolute error, optionally weighted per pixel.

    >>> l1_loss(torch.zeros(1, 1, 2, 2), torch.tensor([[[[1.0, 0], [0, 1]]]]))
    tensor(0.5000)
    """
    _check_pair(pred, target)
    return _weighted_mean((pred - target).abs(), weight)


def l2_loss(pred: Tensor, target: Tensor, *, weight: Tensor | None = None) -> Tensor:
    """Mean squared error, optionally weighted per pixel.

    >>> w = torch.tensor([[[[1.0, 0], [0, 0]]]])  # only the top-left pixel counts
    >>> l2_loss(torch.zeros(1, 1, 2, 2), torch.tensor([[[[2.0, 9], [9, 9]]]]), weight=w)
    tensor(4.)
    """
    _check_pair(pred, target)
    return _weighted_mean((pred - target).square(), weight)


def charbonnier_loss(
    pred: Tensor, target: Tensor, *, eps: float = 1e-3, weight: Tensor | None = None
) -> Tensor:
    """Charbonnier loss sqrt(d^2 + eps^2): L1 that is smooth at zero.

    >>> charbonnier_loss(torch.zeros(1, 1, 1, 1), torch.zeros(1, 1, 1, 1), eps=0.5)
    tensor(0.5000)
    """
    _check_pair(pred, target)
    return _weighted_mean(((pred - target).square() + eps * eps).sqrt(), weight)


def masked_mse(pred: Tensor, target: Tensor, mask: Tensor, *, lam: float = 1.0) -> Tensor:
    """MSE outside ``mask`` + ``lam`` x MSE inside it (the defect-aware system's loss).

    Each term is the mean over its own pixels, so a small defect is not drowned by the
    clean area; an empty mask (or a full one) makes its term 0 instead of NaN.

    Args:
        pred: (B, C, H, W) restored images.
        target: (B, C, H, W) ground truth.
        mask: (B, 1, H, W) or (B, C, H, W), 1 on defect pixels, 0 elsewhere.
        lam: weight of the defect term.

    >>> pred, gt = torch.zeros(1, 1, 1, 2), torch.tensor([[[[1.0, 3.0]]]])
    >>> masked_mse(pred, gt, torch.tensor([[[[0.0, 1.0]]]]), lam=2.0)  # 1 + 2 * 9
    tensor(19.)
    >>> masked_mse(pred, gt, torch.zeros(1, 1, 1, 2), lam=2.0)  # no defects: plain MSE
    tensor(5.)
    """
    _check_pair(pred, target)
    err = (pred - target).square()
    mask = mask.to(err.dtype)
    return _weighted_mean(err, 1 - mask) + lam * _weighted_mean(err, mask)


def psnr_loss(pred: Tensor, target: Tensor, *, eps: float = 1e-4) -> Tensor:
    """Mean over images of 10 log10(MSE + eps): minus the mean PSNR (data range 1), in dB.

    The gradient of each image is that of its MSE times 4.34 / (MSE + eps): against plain
    MSE, an image restored to 40 dB weighs 10x more than one at 30 dB. ``eps`` (1e-4:
    40 dB) caps the weight of images that are nearly clean already, so a batch with an
    undegraded sample does not train on that sample alone.
    Computed in float32 under autocast.

    >>> pred, gt = torch.zeros(2, 1, 1, 2), torch.tensor([0.1, 0.1, 0.01, 0.01]).view(2, 1, 1, 2)
    >>> round(psnr_loss(pred, gt, eps=0.0).item(), 4)  # (-20 + -40) / 2
    -30.0
    """
    _check_pair(pred, target)
    _check_eps(eps, "psnr")
    mse = (pred.float() - target.float()).square().flatten(1).mean(1)
    return (10 * torch.log10(mse + eps)).mean()


def mean_colour_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean over images and channels of |mean(pred) - mean(target)|, each mean over the
    image's pixels: the error of its mean colour, blind to anything that averages out.
    ``pred`` and ``target`` are (B, C, H, W) in the same units; returns a scalar in them.

    A per-pixel L1 charges a global shift of 0.1 as much as noise of amplitude 0.1; as an
    added term this one charges the shift again. It pulls both ways: on ffa_light, whose
    samples were mostly hazy (a too-bright mean there is left-over haze), it darkened
    clear photos further (its card, stop 50). Computed in float32 under autocast.

    >>> pred = torch.tensor([[[[0.0, 1.0]], [[0.5, 0.5]]]])  # channel means 0.5 and 0.5
    >>> round(mean_colour_loss(pred, torch.full_like(pred, 0.4)).item(), 4)  # (0.1 + 0.1) / 2
    0.1
    """
    _check_pair(pred, target)
    shift = pred.float().flatten(2).mean(2) - target.float().flatten(2).mean(2)
    return shift.abs().mean()


def dilate_mask(mask: Tensor, pixels: int) -> Tensor:
    """``mask`` (B, C, H, W), values in [0, 1], grown by ``pixels`` (a square of side 2 x
    pixels + 1; the border is not padded with ones); float, same shape.

    >>> m = torch.zeros(1, 1, 5, 5); m[0, 0, 2, 2] = 1
    >>> int(dilate_mask(m, 1).sum()), int(dilate_mask(m, 0).sum())
    (9, 1)
    """
    if pixels < 0:
        raise ValueError(f"dilate must be >= 0, got {pixels}")
    mask = mask.float()
    return F.max_pool2d(mask, 2 * pixels + 1, stride=1, padding=pixels) if pixels else mask


def masked_psnr_loss(
    pred: Tensor,
    target: Tensor,
    mask: Tensor,
    *,
    lam: float = 1.0,
    eps: float = 1e-4,
    dilate: int = 0,
) -> Tensor:
    """:func:`masked_mse` in decibels, per image: the mean over images of
    10 log10(MSE outside + eps) + ``lam`` x 10 log10(MSE inside + eps).

    Each region's MSE is the mean over that image's own pixels in it; an image without
    defect pixels adds no inside term (and one that is all defect, no outside term), so
    an empty mask gives :func:`psnr_loss`. Per image and in dB, it weighs images as the
    mean in-mask PSNR does: against the pooled :func:`masked_mse`, a lightly noisy crop's
    defects count as much in dB as a heavily noisy one's. Computed in float32.

    Args:
        pred, target: (B, C, H, W).
        mask: (B, 1, H, W) or (B, C, H, W), 1 on defect pixels.
        lam: weight of the inside term.
        eps: added to each MSE (1e-4: 40 dB), capping the weight of near-perfect regions.
        dilate: grow the inside region by this many pixels (a square of side 2 x dilate
            + 1), so that a defect's rim counts with it: with the inside weighed above
            the outside, the pixels just outside a defect are where a network errs on the
            defect's side (bleeding it wider) at the outside's low price.

    >>> pred, gt = torch.zeros(1, 1, 1, 2), torch.tensor([[[[0.1, 0.01]]]])
    >>> m = torch.tensor([[[[0.0, 1.0]]]])
    >>> round(masked_psnr_loss(pred, gt, m, lam=0.5, eps=0.0).item(), 4)  # -20 + 0.5 x -40
    -40.0
    """
    _check_pair(pred, target)
    _check_eps(eps, "masked psnr")
    err = (pred.float() - target.float()).square()
    inside = dilate_mask(mask, dilate).expand_as(err).flatten(1)
    err = err.flatten(1)

    def region_db(w: Tensor) -> Tensor:
        n = w.sum(1)
        mse = torch.where(n > 0, (err * w).sum(1) / n.clamp_min(1), 1 - eps)  # empty: log 1 = 0
        return 10 * torch.log10(mse + eps)

    return (region_db(1 - inside) + lam * region_db(inside)).mean()


_PIXEL_LOSSES = {"l1": l1_loss, "l2": l2_loss, "charbonnier": charbonnier_loss}


def unweighted_pixel_loss(name: str) -> str:
    """The :class:`PixelLoss` kind that stands for pixel term ``name`` where no mask or
    per-image weighting applies (a validation loss column): itself for l1, l2 and
    charbonnier, MSE for the masked and PSNR losses.

    >>> unweighted_pixel_loss("l1"), unweighted_pixel_loss("masked_psnr")
    ('l1', 'l2')
    """
    return name if name in _PIXEL_LOSSES else "l2"


class PixelLoss(nn.Module):
    """Module twin of the pixel losses: ``PixelLoss("l1" | "l2" | "charbonnier")``."""

    def __init__(self, kind: str = "l1") -> None:
        super().__init__()
        if kind not in _PIXEL_LOSSES:
            raise ValueError(f"unknown pixel loss {kind!r}; choose one of {sorted(_PIXEL_LOSSES)}")
        self.kind = kind

    def forward(self, pred: Tensor, target: Tensor, *, weight: Tensor | None = None) -> Tensor:
        return _PIXEL_LOSSES[self.kind](pred, target, weight=weight)

    def extra_repr(self) -> str:
        return repr(self.kind)


class PerceptualLoss(nn.Module):
    """Sum over layers of weight x mean squared difference of frozen features.

    Args:
        features: a module mapping (B, C, H, W) images in [0, 1] to a dict
            ``{layer name: feature map}`` (e.g. ``VGGFeatures("vgg19", layers=("conv3_4",))``).
            Its parameters are frozen here; gradients still flow to ``pred``.
        weights: per-layer weights; layers missing from it weigh 1.
        normalize: divide each layer's mean squared difference by the mean square of the
            target's features, so the loss does not depend on the network's input
            convention (the offline HED VGG16 takes Caffe 0-255 input, and its raw
            feature MSE is about 10^4 times an L1 pixel loss). 1.0 means errors as large
            as the features themselves; a sharp restoration scores a few hundredths.
    """

    def __init__(
        self,
        features: nn.Module,
        *,
        weights: Mapping[str, float] | None = None,
        normalize: bool = False,
    ) -> None:
        super().__init__()
        self.features = features.eval().requires_grad_(False)
        self.weights = dict(weights or {})
        self.normalize = normalize

    def train(self, mode: bool = True) -> PerceptualLoss:
        super().train(mode)
        self.features.eval()  # a frozen network keeps its eval behaviour (BatchNorm, dropout)
        return self

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        _check_pair(pred, target)
        fp = self.features(pred)
        with torch.no_grad():
            ft = self.features(target)
        losses = [self.weights.get(k, 1.0) * self._layer_loss(fp[k], ft[k]) for k in fp]
        return torch.stack(losses).sum()

    def _layer_loss(self, fp: Tensor, ft: Tensor) -> Tensor:
        mse = F.mse_loss(fp, ft)
        if not self.normalize:
            return mse
        return mse / ft.float().square().mean().clamp_min(torch.finfo(torch.float32).tiny)

    def extra_repr(self) -> str:
        return f"weights={self.weights}, normalize={self.normalize}"


class GANLoss(nn.Module):
    """Adversarial losses on discriminator logits, with label smoothing.

    Args:
        kind: ``"vanilla"`` (binary cross-entropy on logits) or ``"lsgan"`` (least squares).
        real_label: the discriminator's target for real samples (0.9 in the face system).
        fake_label: its target for generated samples (0.1 in the face system).
        generator_label: the generator's target for its samples ("classified as real");
            1.0, since smoothing only regularises the discriminator.
    """

    def __init__(
        self,
        kind: str = "vanilla",
        *,
        real_label: float = 1.0,
        fake_label: float = 0.0,
        generator_label: float = 1.0,
    ) -> None:
        super().__init__()
        if kind not in ("vanilla", "lsgan"):
            raise ValueError(f"unknown GAN loss {kind!r}; choose 'vanilla' or 'lsgan'")
        self.kind = kind
        self.real_label, self.fake_label = real_label, fake_label
        self.generator_label = generator_label

    def _loss(self, logits: Tensor, label: float) -> Tensor:
        target = torch.full_like(logits, label)
        if self.kind == "vanilla":
            return F.binary_cross_entropy_with_logits(logits, target)
        return F.mse_loss(logits, target)

    def generator_loss(self, fake: Tensor) -> Tensor:
        """The generator's loss on the discriminator's logits for generated samples."""
        return self._loss(fake, self.generator_label)

    def discriminator_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        """(loss on real logits + loss on fake logits) / 2; pass ``fake`` detached."""
        return (self._loss(real, self.real_label) + self._loss(fake, self.fake_label)) / 2

    def extra_repr(self) -> str:
        return f"{self.kind!r}, real={self.real_label}, fake={self.fake_label}"


# ------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class LossInputs:
    """What a loss term may look at during one training step.

    Attributes:
        pred: the model's output (float32).
        gt: the ground truth.
        lq: the model's input.
        mask: the batch's defect mask, or None.
        perceptual: the run's :class:`PerceptualLoss` (terms of kind ``"perceptual"``).
        judge: the discriminator's logits for an image (terms of kind ``"adversarial"``).
        gan: the run's :class:`GANLoss`.
        targets: what the degradation knew about the batch (``Degraded.targets``: the
            haze's ``transmission`` and ``airlight``), for terms of kind ``"auxiliary"``.
        maps: what the model's training forward left beside its output (its
            ``aux_outputs``: the scattering FFA-Net's ``log_inv_t`` and ``airlight``).
    """

    pred: Tensor
    gt: Tensor
    lq: Tensor
    mask: Tensor | None = None
    perceptual: PerceptualLoss | None = None
    judge: Callable[[Tensor], Tensor] | None = None
    gan: GANLoss | None = None
    targets: Mapping[str, Tensor] = field(default_factory=dict)
    maps: Mapping[str, Tensor] = field(default_factory=dict)


LOSSES: Registry[Callable[..., Tensor]] = Registry("loss", ordered=True)
"""Loss terms a training stage sums, ``weight x term(inputs, **params)``; each entry's
``kind`` is ``"pixel"``, ``"perceptual"`` (needs the recipe's perceptual network),
``"adversarial"`` (needs its discriminator) or ``"auxiliary"`` (supervises a map the model
leaves beside its output with one the degradation knows)."""


def register_loss(name: str, *, kind: str, description: str):  # -> decorator
    """Register ``fn(inputs: LossInputs, **params) -> Tensor`` as loss term ``name``."""
    return LOSSES.register(name, kind=kind, paper=description)


def _pixel_term(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """The loss term of pixel loss ``fn`` (the table :class:`PixelLoss` reads)."""

    def term(x: LossInputs, **params: float) -> Tensor:
        return fn(x.pred, x.gt, **params)

    term.__qualname__ = f"_pixel_term.{fn.__name__}"  # stable: a re-import is no new entry
    return term


for _name, _fn in _PIXEL_LOSSES.items():
    LOSSES.add(_name, _pixel_term(_fn), module=__name__, kind="pixel",
               paper=(_fn.__doc__ or "").splitlines()[0])  # fmt: skip


@register_loss("masked_mse", kind="pixel",
               description="MSE outside the mask + lam x MSE inside (SPEC.md D); plain MSE "
               "for batches without a mask")  # fmt: skip
def _masked_mse_term(x: LossInputs, *, lam: float = 1.0) -> Tensor:
    if x.mask is None:
        return l2_loss(x.pred, x.gt)
    return masked_mse(x.pred, x.gt, x.mask, lam=lam)


@register_loss("masked_psnr", kind="pixel",
               description="per image, dB of the MSE outside the mask + lam x dB inside (the "
               "mask grown by dilate pixels); the psnr loss for batches without a "
               "mask")  # fmt: skip
def _masked_psnr_term(
    x: LossInputs, *, lam: float = 1.0, eps: float = 1e-4, dilate: int = 0
) -> Tensor:
    if x.mask is None:
        return psnr_loss(x.pred, x.gt, eps=eps)
    return masked_psnr_loss(x.pred, x.gt, x.mask, lam=lam, eps=eps, dilate=dilate)


@register_loss("psnr", kind="pixel",
               description="mean over images of 10 log10(MSE + eps): minus mean PSNR")  # fmt: skip
def _psnr_term(x: LossInputs, *, eps: float = 1e-4) -> Tensor:
    return psnr_loss(x.pred, x.gt, eps=eps)


@register_loss("mean_colour", kind="pixel",
               description="L1 between each image's mean colour and the ground truth's, per "
               "channel")  # fmt: skip
def _mean_colour_term(x: LossInputs) -> Tensor:
    return mean_colour_loss(x.pred, x.gt)


@register_loss("perceptual", kind="perceptual", description="frozen VGG feature distance")
def _perceptual_term(x: LossInputs) -> Tensor:
    assert x.perceptual is not None, "a perceptual term needs the recipe's perceptual network"
    return x.perceptual(x.pred, x.gt)


@register_loss("gan", kind="adversarial", description="the generator's adversarial loss")
def _gan_term(x: LossInputs) -> Tensor:
    assert x.judge is not None and x.gan is not None, "a gan term needs a discriminator"
    return x.gan.generator_loss(x.judge(x.pred))


_MIN_T = 0.05  # the scattering output's own lower clamp of t (restorekit.models.ffa)


@register_loss("scattering", kind="auxiliary",
               description="L1 on the scattering output's log(1/t) and airlight against the "
               "synthetic haze's own")  # fmt: skip
def _scattering_term(x: LossInputs) -> Tensor:
    """mean |log(1/t) - log(1/t_true)| + mean |A - A_true|, t_true clamped at 0.05.

    The image loss alone leaves t and A tied: a network unsure of the haze keeps t high
    (an error in 1/t is amplified by it, so a timid t costs the L1 less), and under-dehazes
    dense haze. The haze maker knows both, and says them here."""
    missing = [k for k in ("log_inv_t", "airlight") if k not in x.maps]
    if missing:
        raise ValueError(f"loss 'scattering' needs a model with output=scattering (no {missing})")
    missing = [k for k in ("transmission", "airlight") if k not in x.targets]
    if missing:
        raise ValueError(f"loss 'scattering' needs synthetic haze data (no target {missing})")
    t = x.targets["transmission"]
    log_inv_t = x.maps["log_inv_t"].float()[..., : t.shape[-2], : t.shape[-1]]
    return l1_loss(log_inv_t, -torch.log(t.clamp(min=_MIN_T))) + l1_loss(
        x.maps["airlight"].float(), x.targets["airlight"]
    )
