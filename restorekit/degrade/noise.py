"""Additive Gaussian noise, Poisson-Gaussian sensor noise, Rician (MRI magnitude) noise and
salt-and-pepper noise.

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

from restorekit.degrade.base import Degradation, Degraded, preset, register, uniform
from restorekit.utils import as_range, check_images

__all__ = [
    "DNCNN_SIGMAS",
    "FACE_NOISE_SIGMA",
    "FACE_SALT_PEPPER_AMOUNT",
    "GaussianNoise",
    "PoissonGaussianNoise",
    "RicianNoise",
    "SaltPepper",
    "gaussian_noise",
    "poisson_gaussian_noise",
    "rician_noise",
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


def gaussian_noise(
    x: torch.Tensor,
    sigma: float | torch.Tensor,
    *,
    generator: torch.Generator,
    clip: bool = True,
    quantize: bool = False,
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
        quantize: round to 8 bits (multiples of 1/255) after clipping, as a noisy photo
            saved as 8-bit PNG holds it; needs ``clip``.

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
    check_images(x)
    if quantize and not clip:
        raise ValueError("quantize=True needs clip=True: 8-bit images hold [0, 1] only")
    s = _per_image(sigma, x.shape[0], name="sigma")
    # float64 inputs get float64 noise; every other float type is noised in float32.
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    noise = torch.randn(x.shape, generator=generator, device=generator.device, dtype=dtype)
    noise = noise.to(x.device) * s.to(device=x.device, dtype=dtype).view(-1, 1, 1, 1)
    y = x.to(dtype) + noise
    if clip:
        y = y.clamp(0.0, 1.0)
    if quantize:
        y = torch.round(y * 255) / 255
    return y.to(x.dtype)


def poisson_gaussian_noise(
    x: torch.Tensor,
    gain: float | torch.Tensor,
    sigma: float | torch.Tensor,
    *,
    generator: torch.Generator,
    clip: bool = True,
) -> torch.Tensor:
    """Signal-dependent sensor noise: ``y = x + sqrt(gain * x + sigma**2) * N(0, 1)``.

    The heteroscedastic Gaussian model of Poisson (shot) plus Gaussian (read) noise of
    Foi et al. 2008, "Practical Poissonian-Gaussian noise modeling and fitting for
    single-image raw-data", IEEE TIP, https://doi.org/10.1109/TIP.2008.2001399: the
    variance grows with brightness, as on a real sensor.

    Args:
        x: images, (B, C, H, W) float in [0, 1].
        gain: the Poisson part's variance per unit of signal, >= 0 (a float or (B,)).
        sigma: the signal-independent std, >= 0 (a float or (B,)).
        generator: the source of randomness (noise drawn on its device).
        clip: clip the result to [0, 1].

    Returns:
        Noisy images, (B, C, H, W), ``x``'s dtype.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.cat([torch.full((1, 1, 64, 64), 0.1), torch.full((1, 1, 64, 64), 0.9)])
        >>> y = poisson_gaussian_noise(x, 0.01, 0.0, generator=g, clip=False)
        >>> [round(v, 2) for v in (y - x).flatten(1).std(1).tolist()]  # sqrt(0.01 x): 0.032, 0.095
        [0.03, 0.1]
    """
    check_images(x)
    a = _per_image(gain, x.shape[0], name="gain")
    s = _per_image(sigma, x.shape[0], name="sigma")
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    noise = torch.randn(x.shape, generator=generator, device=generator.device, dtype=dtype)
    a = a.to(device=x.device, dtype=dtype).view(-1, 1, 1, 1)
    s = s.to(device=x.device, dtype=dtype).view(-1, 1, 1, 1)
    clean = x.to(dtype)
    y = clean + noise.to(x.device) * torch.sqrt(a * clean.clamp(min=0) + s * s)
    return (y.clamp(0.0, 1.0) if clip else y).to(x.dtype)


def rician_noise(
    x: torch.Tensor, sigma: float | torch.Tensor, *, generator: torch.Generator
) -> torch.Tensor:
    """The noise of a magnitude MRI image: ``y = |x + sigma * (N1 + i N2)|``.

    An MR image is the magnitude of a complex signal whose real and imaginary channels
    both carry Gaussian noise, so its noise is Rician: biased upward where the signal is
    weak (the background becomes Rayleigh-distributed, mean ``sigma * sqrt(pi / 2)``) and
    close to Gaussian of std ``sigma`` where it is strong (Gudbjartsson & Patz 1995, "The
    Rician distribution of noisy MRI data", https://doi.org/10.1002/mrm.1910340618).

    Args:
        x: images, (B, C, H, W) float in [0, 1] (the noise-free magnitude).
        sigma: the std of each channel's noise on the [0, 1] scale, a float or (B,).
        generator: the source of randomness (noise drawn on its device).

    Returns:
        Noisy magnitudes, (B, C, H, W), ``x``'s dtype, clipped to at most 1.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> y = rician_noise(torch.zeros(1, 1, 128, 128), 0.1, generator=g)
        >>> round(y.mean().item(), 3)  # Rayleigh: 0.1 * sqrt(pi / 2) = 0.125
        0.125
    """
    check_images(x)
    s = _per_image(sigma, x.shape[0], name="sigma")
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    shape = (2, *x.shape)
    noise = torch.randn(shape, generator=generator, device=generator.device, dtype=dtype)
    noise = noise.to(x.device) * s.to(device=x.device, dtype=dtype).view(1, -1, 1, 1, 1)
    y = torch.hypot(x.to(dtype) + noise[0], noise[1])
    return y.clamp(max=1.0).to(x.dtype)


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
    check_images(x)
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


@register("gaussian", paper="additive white Gaussian noise; DnCNN's levels unclipped")
class GaussianNoise(Degradation):
    """Twin of :func:`gaussian_noise`: one sigma per image, uniform in the ``sigma`` range.

    Args:
        sigma: noise std on the [0, 1] scale, fixed or a (lo, hi) range.
        clip: clip to [0, 1] (face task) or not (DnCNN protocol); see :func:`gaussian_noise`.

    Returns ``params = {"sigma": (B,)}``, the std each image got.
    """

    def __init__(
        self,
        sigma: float | tuple[float, float] = 0.04,
        *,
        clip: bool = True,
        quantize: bool = False,
    ):
        super().__init__()
        self.sigma_range = as_range(sigma, name="sigma")
        if quantize and not clip:
            raise ValueError("quantize=True needs clip=True: 8-bit images hold [0, 1] only")
        self.clip, self.quantize = bool(clip), bool(quantize)

    def forward(self, x: torch.Tensor, *, generator: torch.Generator) -> Degraded:
        check_images(x)
        sigma = uniform(*self.sigma_range, x.shape[0], generator)
        lq = gaussian_noise(x, sigma, generator=generator, clip=self.clip, quantize=self.quantize)
        return Degraded(lq, params={"sigma": sigma})

    def extra_repr(self) -> str:
        lo, hi = self.sigma_range
        quantize = ", quantize=True (8 bits)" if self.quantize else ""
        return f"sigma_range=({lo:.4g}, {hi:.4g}), clip={self.clip}{quantize}"


@register("poisson_gaussian", paper="Foi et al. 2008 heteroscedastic Poisson-Gaussian model")
class PoissonGaussianNoise(Degradation):
    """Twin of :func:`poisson_gaussian_noise`: one gain and one sigma per image.

    Args:
        gain: the Poisson variance per unit of signal, fixed or a (lo, hi) range.
        sigma: the signal-independent std on [0, 1], fixed or a (lo, hi) range.
        clip: clip to [0, 1].

    Returns ``params = {"gain": (B,), "sigma": (B,)}``.
    """

    def __init__(
        self,
        gain: float | tuple[float, float] = (0.0, 0.02),
        sigma: float | tuple[float, float] = (0.0, 0.1),
        *,
        clip: bool = True,
    ):
        super().__init__()
        self.gain_range = as_range(gain, name="gain")
        self.sigma_range = as_range(sigma, name="sigma")
        self.clip = bool(clip)

    def forward(self, x: torch.Tensor, *, generator: torch.Generator) -> Degraded:
        check_images(x)
        gain = uniform(*self.gain_range, x.shape[0], generator)
        sigma = uniform(*self.sigma_range, x.shape[0], generator)
        lq = poisson_gaussian_noise(x, gain, sigma, generator=generator, clip=self.clip)
        return Degraded(lq, params={"gain": gain, "sigma": sigma})

    def extra_repr(self) -> str:
        return f"gain_range={self.gain_range}, sigma_range={self.sigma_range}, clip={self.clip}"


@register("rician", paper="Gudbjartsson & Patz 1995: the noise of magnitude MR images")
class RicianNoise(Degradation):
    """Twin of :func:`rician_noise`: one sigma per image, uniform in the ``sigma`` range.

    With ``scene=True`` the noise is part of the scene, as an MR acquisition's own noise
    is part of every slice a model is tested on: the noisy image is returned as the new
    ground truth too (``Degraded.gt``), so that ``rician:sigma=[0,0.03],scene=true +
    bicubic:scale=3`` trains super-resolution on noisy high-resolution slices and their
    downscaled, less noisy, inputs.

    Args:
        sigma: each channel's noise std on [0, 1], fixed or a (lo, hi) range.
        scene: return the noisy image as the ground truth as well.

    Returns ``params = {"sigma": (B,)}``.
    """

    def __init__(self, sigma: float | tuple[float, float] = (0.0, 0.03), *, scene: bool = False):
        super().__init__()
        self.sigma_range = as_range(sigma, name="sigma", hi_max=1.0)
        self.scene = bool(scene)

    def forward(self, x: torch.Tensor, *, generator: torch.Generator) -> Degraded:
        check_images(x)
        sigma = uniform(*self.sigma_range, x.shape[0], generator)
        y = rician_noise(x, sigma, generator=generator)
        return Degraded(y, params={"sigma": sigma}, gt=y if self.scene else None)

    def extra_repr(self) -> str:
        lo, hi = self.sigma_range
        return f"sigma_range=({lo:.4g}, {hi:.4g}), scene={self.scene}"


@register("salt_pepper", paper="impulse noise (Gonzalez & Woods 5.2); defaults: the face task's")
class SaltPepper(Degradation):
    """Twin of :func:`salt_pepper`: one amount per image, uniform in the ``amount`` range.

    Returns ``Degraded(lq, mask, {"amount": (B,)})`` with the (B, 1, H, W) corruption mask.

    Args:
        amount: corruption probability, fixed or a (lo, hi) range within [0, 1]; the
            default is the face task's level.
        salt_ratio: probability that a corrupted pixel is salt (1) rather than pepper (0).
    """

    def __init__(
        self,
        amount: float | tuple[float, float] = FACE_SALT_PEPPER_AMOUNT,
        *,
        salt_ratio: float = 0.5,
    ):
        super().__init__()
        self.amount_range = as_range(amount, name="amount", hi_max=1.0)
        if not 0.0 <= salt_ratio <= 1.0:
            raise ValueError(f"salt_ratio must be in [0, 1], got {salt_ratio}")
        self.salt_ratio = float(salt_ratio)

    def forward(self, x: torch.Tensor, *, generator: torch.Generator) -> Degraded:
        check_images(x)
        amount = uniform(*self.amount_range, x.shape[0], generator)
        lq, mask = salt_pepper(x, amount, salt_ratio=self.salt_ratio, generator=generator)
        return Degraded(lq, mask, {"amount": amount})

    def extra_repr(self) -> str:
        return f"amount_range={self.amount_range}, salt_ratio={self.salt_ratio}"


# The face task's noises (SPEC.md B), clipped like the seed's noisy images; its
# salt-and-pepper level is the operator's default.
preset("gaussian_low", "gaussian", sigma=FACE_NOISE_SIGMA["low"], clip=True,
       description="the face task's low noise (SPEC.md B)")  # fmt: skip
preset("gaussian_high", "gaussian", sigma=FACE_NOISE_SIGMA["high"], clip=True,
       description="the face task's high noise (SPEC.md B)")  # fmt: skip
# Both face noises and everything between, for one pretraining run that each face task's
# U-Net is then fine-tuned from.
preset("gaussian_face_blind", "gaussian", sigma=(0.02, 0.15), clip=True,
       description="face noise levels low to high and between")  # fmt: skip
# The DnCNN benchmark levels leave the noisy image unclipped (values may leave [0, 1]).
# The same levels saved as 8-bit images: clipped to [0, 1], then rounded to 1/255.
for _level in DNCNN_SIGMAS:
    preset(f"gaussian_{_level}", "gaussian", sigma=_level / 255, clip=False,
           description=f"sigma {_level}/255 unclipped (DnCNN protocol)")  # fmt: skip
    preset(f"gaussian_{_level}_8bit", "gaussian", sigma=_level / 255, clip=True, quantize=True,
           description=f"sigma {_level}/255, clipped and rounded to 8 bits")  # fmt: skip
