"""Additive Gaussian noise and salt-and-pepper (impulse) noise.

Two readings of "Gaussian noise" are in use, and the presets name which one they follow:

* The face-denoising task (SPEC.md B, from its seed) clips the noisy image to [0, 1],
  as an 8-bit noisy photo would be: ``gaussian_low`` and ``gaussian_high``.
* The DnCNN benchmark protocol (Zhang et al. 2017, "Beyond a Gaussian Denoiser",
  https://arxiv.org/abs/1608.03981) adds noise of std ``sigma / 255`` to the clean image
  and does **not** clip, so the noise stays exactly Gaussian and zero-mean:
  ``gaussian_15``, ``gaussian_25``, ``gaussian_50``.

Salt-and-pepper noise sets a random fraction of the pixels to 0 or 1 (Gonzalez & Woods,
"Digital Image Processing", section 5.2, impulse noise); its presets follow the face task.

Randomness always comes from an explicit ``torch.Generator``: noise is drawn on the
generator's device (the CPU for the generators restorekit makes) and then moved to the
image's device, so a seed gives the same noise on every device.
"""

from __future__ import annotations

import torch

from restorekit.degrade.base import Degradation, Degraded, register, uniform

__all__ = [
    "DNCNN_SIGMAS",
    "FACE_NOISE_SIGMA",
    "FACE_SALT_PEPPER_AMOUNT",
    "GaussianNoise",
    "SaltPepper",
    "gaussian_noise",
    "salt_pepper",
]

FACE_NOISE_SIGMA: dict[str, float] = {"low": 0.04, "high": 0.12}
"""Noise std on [0, 1] of the face task's two Gaussian levels (SPEC.md B).

The seed states each level as a "std" and a "noise factor": low = std 0.2, factor 0.2;
high = std 0.4, factor 0.3. restorekit reads them as
``y = clip(x + factor * N(0, std**2), 0, 1)``, i.e. zero-mean Gaussian noise of std
``factor * std``: 0.04 (low) and 0.12 (high) on the [0, 1] scale (about 10 and 31 grey
levels of 255), clipped to [0, 1].
"""

FACE_SALT_PEPPER_AMOUNT: float = 0.1
"""Fraction of corrupted pixels of the face task's salt-and-pepper level (half salt)."""

DNCNN_SIGMAS: tuple[int, ...] = (15, 25, 50)
"""The usual Gaussian denoising benchmark levels, in grey levels of 255 (unclipped)."""


def _check_images(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
        got = f"{tuple(x.shape)} {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a float tensor of shape (B, C, H, W), got {got}")


def _per_image(value: float | torch.Tensor, batch: int, *, name: str) -> torch.Tensor:
    """A float or a (B,) tensor as a float64 CPU tensor of shape (B,), checked >= 0."""
    v = torch.as_tensor(value, dtype=torch.float64).detach().cpu()
    if v.ndim == 0:
        v = v.expand(batch)
    if v.shape != (batch,):
        raise ValueError(f"{name} must be a float or a ({batch},) tensor, got {tuple(v.shape)}")
    if not torch.isfinite(v).all() or (v < 0).any():
        raise ValueError(f"{name} must be finite and >= 0, got {v.tolist()}")
    return v


def _check_range(rng: tuple[float, float], *, name: str, hi_max: float | None = None) -> None:
    lo, hi = rng
    if not 0 <= lo <= hi or (hi_max is not None and hi > hi_max):
        bound = f" <= {hi_max}" if hi_max is not None else ""
        raise ValueError(f"{name} must satisfy 0 <= lo <= hi{bound}, got {rng}")


def gaussian_noise(
    x: torch.Tensor,
    sigma: float | torch.Tensor,
    *,
    generator: torch.Generator,
    clip: bool = True,
) -> torch.Tensor:
    """Add zero-mean Gaussian noise: ``y = x + sigma * N(0, 1)``, then clip to [0, 1].

    Args:
        x: images, (B, C, H, W) float, values in [0, 1].
        sigma: noise std on the [0, 1] scale, a float or a (B,) tensor (one per image),
            >= 0. For noise given in grey levels use ``sigma / 255``.
        generator: the source of randomness; noise is drawn on its device, then moved to
            ``x.device``.
        clip: clip the result to [0, 1] (what a saved noisy photo holds). ``False`` keeps
            the noise exactly Gaussian, as in the DnCNN benchmark protocol.

    Returns:
        Noisy images, (B, C, H, W), ``x``'s dtype; in [0, 1] when ``clip``.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> y = gaussian_noise(torch.full((2, 1, 64, 64), 0.5), 0.04, generator=g)
        >>> y.shape, round((y - 0.5).std().item(), 2)
        (torch.Size([2, 1, 64, 64]), 0.04)
        >>> y = gaussian_noise(torch.zeros(1, 3, 8, 8), 0.5, generator=g)
        >>> bool(y.min() >= 0), bool(y.max() <= 1)
        (True, True)
    """
    _check_images(x)
    s = _per_image(sigma, x.shape[0], name="sigma")
    # float64 inputs get float64 noise; every other float type is noised in float32.
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    noise = torch.randn(x.shape, generator=generator, device=generator.device, dtype=dtype)
    noise = noise.to(x.device) * s.to(device=x.device, dtype=dtype).view(-1, 1, 1, 1)
    y = x.to(dtype) + noise
    if clip:
        y = y.clamp(0.0, 1.0)
    return y.to(x.dtype)


def salt_pepper(
    x: torch.Tensor,
    amount: float | torch.Tensor,
    *,
    salt_ratio: float = 0.5,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Set a random fraction of the pixels to 1 (salt) or 0 (pepper).

    Each pixel position is corrupted independently with probability ``amount`` (a
    Bernoulli draw per position, the usual definition: the realised fraction varies
    around ``amount``). A corrupted position is salt with probability ``salt_ratio``,
    else pepper. The same positions and values are used in **all channels**, so a colour
    pixel becomes white or black (the impulse hits the pixel, not one colour sensor).

    Args:
        x: images, (B, C, H, W) float, values in [0, 1].
        amount: probability that a pixel is corrupted, a float or a (B,) tensor, in [0, 1].
        salt_ratio: probability that a corrupted pixel is salt (1) rather than pepper (0).
        generator: the source of randomness (drawn on its device, moved to ``x.device``).

    Returns:
        ``(noisy, mask)``: noisy images (B, C, H, W) in ``x``'s dtype, and the corruption
        mask (B, 1, H, W) float in {0, 1}, 1 where a pixel was set to salt or pepper
        (including the rare pixel that already had that value).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> y, mask = salt_pepper(torch.full((1, 3, 100, 100), 0.5), 0.1, generator=g)
        >>> mask.shape, round(mask.mean().item(), 1)
        (torch.Size([1, 1, 100, 100]), 0.1)
        >>> bool(((y != 0.5).any(1, keepdim=True) == mask.bool()).all())
        True
    """
    _check_images(x)
    a = _per_image(amount, x.shape[0], name="amount")
    if (a > 1).any():
        raise ValueError(f"amount must be in [0, 1], got {a.tolist()}")
    if not 0.0 <= salt_ratio <= 1.0:
        raise ValueError(f"salt_ratio must be in [0, 1], got {salt_ratio}")
    b, _, h, w = x.shape
    shape = (b, 1, h, w)
    u_hit = torch.rand(shape, generator=generator, device=generator.device, dtype=torch.float64)
    u_salt = torch.rand(shape, generator=generator, device=generator.device, dtype=torch.float64)
    hit = u_hit < a.to(u_hit.device).view(-1, 1, 1, 1)
    salt = u_salt < salt_ratio
    hit, salt = hit.to(x.device), salt.to(x.device)
    value = salt.to(x.dtype).expand_as(x)
    noisy = torch.where(hit.expand_as(x), value, x)
    return noisy, hit.to(x.dtype)


class GaussianNoise(Degradation):
    """Twin of :func:`gaussian_noise`: one sigma per image, uniform in ``sigma_range``.

    Args:
        sigma_range: (lo, hi) noise std on the [0, 1] scale; lo == hi gives a fixed level.
        clip: clip to [0, 1] (face task) or not (DnCNN protocol); see :func:`gaussian_noise`.
    """

    def __init__(self, sigma_range: tuple[float, float] = (0.04, 0.04), *, clip: bool = True):
        super().__init__()
        _check_range(sigma_range, name="sigma_range")
        self.sigma_range = (float(sigma_range[0]), float(sigma_range[1]))
        self.clip = clip

    def forward(self, x: torch.Tensor, *, generator: torch.Generator) -> Degraded:
        _check_images(x)
        sigma = uniform(*self.sigma_range, x.shape[0], generator)
        return Degraded(gaussian_noise(x, sigma, generator=generator, clip=self.clip))

    def extra_repr(self) -> str:
        lo, hi = self.sigma_range
        return f"sigma_range=({lo:.4g}, {hi:.4g}), clip={self.clip}"


class SaltPepper(Degradation):
    """Twin of :func:`salt_pepper`: one amount per image, uniform in ``amount_range``.

    Returns ``Degraded(lq, mask)`` with the (B, 1, H, W) corruption mask.

    Args:
        amount_range: (lo, hi) corruption probability, within [0, 1].
        salt_ratio: probability that a corrupted pixel is salt (1) rather than pepper (0).
    """

    def __init__(self, amount_range: tuple[float, float] = (0.1, 0.1), *, salt_ratio: float = 0.5):
        super().__init__()
        _check_range(amount_range, name="amount_range", hi_max=1.0)
        if not 0.0 <= salt_ratio <= 1.0:
            raise ValueError(f"salt_ratio must be in [0, 1], got {salt_ratio}")
        self.amount_range = (float(amount_range[0]), float(amount_range[1]))
        self.salt_ratio = float(salt_ratio)

    def forward(self, x: torch.Tensor, *, generator: torch.Generator) -> Degraded:
        _check_images(x)
        amount = uniform(*self.amount_range, x.shape[0], generator)
        lq, mask = salt_pepper(x, amount, salt_ratio=self.salt_ratio, generator=generator)
        return Degraded(lq, mask)

    def extra_repr(self) -> str:
        return f"amount_range={self.amount_range}, salt_ratio={self.salt_ratio}"


# The face task's three noises (SPEC.md B), clipped like the seed's noisy images.
@register("gaussian_low")
def _gaussian_low() -> Degradation:
    s = FACE_NOISE_SIGMA["low"]
    return GaussianNoise((s, s), clip=True)


@register("gaussian_high")
def _gaussian_high() -> Degradation:
    s = FACE_NOISE_SIGMA["high"]
    return GaussianNoise((s, s), clip=True)


@register("salt_pepper")
def _salt_pepper() -> Degradation:
    a = FACE_SALT_PEPPER_AMOUNT
    return SaltPepper((a, a), salt_ratio=0.5)


# Both face noises and everything between, for one pretraining run that each face task's
# model is then fine-tuned from (issue: photo pretraining for the face U-Net).
@register("gaussian_face_blind")
def _gaussian_face_blind() -> Degradation:
    return GaussianNoise((0.02, 0.15), clip=True)


# The DnCNN benchmark levels leave the noisy image unclipped (values may leave [0, 1]).
@register("gaussian_15")
def _gaussian_15() -> Degradation:
    return GaussianNoise((15 / 255, 15 / 255), clip=False)


@register("gaussian_25")
def _gaussian_25() -> Degradation:
    return GaussianNoise((25 / 255, 25 / 255), clip=False)


@register("gaussian_50")
def _gaussian_50() -> Degradation:
    return GaussianNoise((50 / 255, 50 / 255), clip=False)
