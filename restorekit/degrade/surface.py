"""Surface defects drawn into the scene: the ground truth of the defect-aware task.

SPEC.md D (seed 003) denoises images of objects that carry defects: scratches, cracks,
spots and stains on a surface under inspection. The defects are part of the scene, so
they belong to the ground truth; a mask marks them, and the masked loss makes the
network keep them while it removes the noise (a plain denoiser smooths thin, faint
structures away). :class:`SurfaceDefects` draws them into the clean image and returns
that image as both the new ground truth and the input that noise is then added to::

    create_degradation("surface_defects + gaussian:sigma=[0.02, 0.2],clip=false")

Shapes reuse :mod:`restorekit.degrade.defects` (scratch curves, blotch outlines for
stains, discs for spots) plus branching cracks. Unlike painted damage, each defect keeps
the surface under it: it shifts the local brightness by a contrast drawn per defect, and
a fine grain modulates that shift, as machining marks and pits vary along their length.
Stains have soft edges and a tint.

For the opposite task, blind removal of damage painted over a photo (old-film scratches
and blotches), use the ``defects`` operator of :mod:`restorekit.degrade.defects`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from restorekit.degrade.base import Degradation, Degraded, preset, register
from restorekit.degrade.defects import (
    blob_mask,
    blotch_mask,
    check_count_ranges,
    paint_polyline,
    scratch_mask,
)
from restorekit.utils import as_range, check_images

__all__ = ["SurfaceDefects", "crack_mask", "draw_surface_defects"]

_KINDS = ("scratches", "cracks", "spots", "stains")


def crack_mask(
    h: int,
    w: int,
    *,
    generator: torch.Generator,
    n: int = 1,
    width_range: tuple[float, float] = (1.0, 2.0),
    length_range: tuple[float, float] = (0.15, 0.5),
    branches: int = 2,
) -> torch.Tensor:
    """Cracks: jagged random walks with side branches.

    Each crack starts at a random pixel and walks 12 steps of ``length / 12`` pixels, its
    heading turning by up to 0.6 rad per step; up to ``branches`` shorter walks (a third
    to a half of the length) split off from random points of it.

    Args:
        h, w: image size in pixels.
        generator: the source of randomness (a CPU generator).
        n: number of cracks, >= 0.
        width_range: (lo, hi) width in pixels, lo >= 1.
        length_range: (lo, hi) length as a fraction of the image diagonal.
        branches: the most side branches per crack.

    Returns:
        (1, 1, H, W) float mask in {0, 1}.

    Example:
        >>> m = crack_mask(64, 64, generator=torch.Generator().manual_seed(0))
        >>> m.shape, 0 < m.mean().item() < 0.2
        (torch.Size([1, 1, 64, 64]), True)
    """
    as_range(width_range, name="width_range", lo_min=1.0)
    as_range(length_range, name="length_range")
    mask = torch.zeros(h, w, dtype=torch.bool)

    def u(lo: float = 0.0, hi: float = 1.0) -> float:
        return lo + (hi - lo) * float(torch.rand((), generator=generator, dtype=torch.float64))

    def walk(x: float, y: float, heading: float, length: float) -> list[tuple[float, float]]:
        points, step = [(x, y)], length / 12
        for _ in range(12):
            heading += u(-0.6, 0.6)
            x, y = x + step * math.cos(heading), y + step * math.sin(heading)
            points.append((x, y))
        return points

    diag = math.hypot(h, w)
    for _ in range(n):
        length, width = u(*length_range) * diag, u(*width_range)
        trunk = walk(u(0, w - 1), u(0, h - 1), u(0, 2 * math.pi), length)
        paint_polyline(mask, torch.tensor(trunk), 0.5 * width)
        for _ in range(int(torch.randint(0, branches + 1, (), generator=generator))):
            x, y = trunk[int(torch.randint(1, len(trunk), (), generator=generator))]
            twig = walk(x, y, u(0, 2 * math.pi), length * u(0.33, 0.5))
            paint_polyline(mask, torch.tensor(twig), 0.5 * max(1.0, 0.7 * width))
    return mask.float().view(1, 1, h, w)


def _grain(h: int, w: int, generator: torch.Generator) -> torch.Tensor:
    """(1, 1, H, W) fine grain around 1 (0.6 .. 1.4): noise on a 2-pixel grid, bilinear."""
    coarse = torch.rand(1, 1, h // 2 + 2, w // 2 + 2, generator=generator)
    fine = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    return 0.6 + 0.8 * fine


def draw_surface_defects(
    x: torch.Tensor,
    masks: dict[str, torch.Tensor],
    *,
    generator: torch.Generator,
    contrast: tuple[float, float] = (0.12, 0.4),
) -> torch.Tensor:
    """Draw defects into clean images ``x``: the result is the task's ground truth.

    Scratches and spots shift the brightness up or down (one side per image and kind)
    by a contrast drawn per image; cracks darken by their contrast, since a crack is a
    shadowed gap; stains darken softly (a blurred mask edge) by half the contrast, with
    a tint on RGB. A grain modulates every shift, so the surface texture shows through.

    Args:
        x: clean images, (B, C, H, W) float in [0, 1].
        masks: (B, 1, H, W) {0, 1} masks under the keys ``scratches``, ``cracks``,
            ``spots`` and ``stains`` (each may be missing).
        generator: the source of randomness (a CPU generator).
        contrast: (lo, hi) brightness change of a defect on the [0, 1] scale.

    Returns:
        (B, C, H, W) images in [0, 1], ``x``'s dtype; pixels outside every mask (and the
        one-pixel soft edge of stains) are unchanged.
    """
    check_images(x)
    lo, hi = as_range(contrast, name="contrast", hi_max=1.0)
    b, c, h, w = x.shape
    y = x.to(torch.float32).clone()

    def draw(*shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=generator)

    for kind in _KINDS:
        if kind not in masks:
            continue
        m = masks[kind].to(torch.float32)
        amount = (lo + (hi - lo) * draw(b)).view(b, 1, 1, 1)
        grain = torch.cat([_grain(h, w, generator) for _ in range(b)])
        if kind == "stains":
            soft = F.avg_pool2d(F.pad(m, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
            tint = 1.0 + (0.15 * (draw(b, c) - 0.5) if c == 3 else torch.zeros(b, c))
            y = (
                y
                * (1 - 0.5 * amount * soft * grain)
                * torch.where(soft > 0, tint[..., None, None], 1.0)
            )
            continue
        sign = torch.where(draw(b) < 0.5, -1.0, 1.0).view(b, 1, 1, 1)
        if kind == "cracks":
            sign = -torch.ones_like(sign)
        y = y + m * sign * amount * grain
    return y.clamp(0.0, 1.0).to(x.dtype)


@register("surface_defects", paper="SPEC.md D: defects drawn into the scene, kept by the task")
class SurfaceDefects(Degradation):
    """Scratches, cracks, spots and stains drawn into the scene (module docstring).

    Returns ``Degraded(lq, mask, gt=lq)``: the drawn image is both the new ground truth
    and the input (compose with noise to make the task's input), and the mask is the
    union of the defects. Counts are drawn per image, uniformly in each inclusive range;
    at least one defect is drawn, so no mask is empty.

    Args:
        n_scratches, n_cracks, n_spots, n_stains: (lo, hi) counts per image.
        contrast: (lo, hi) brightness change of a defect on the [0, 1] scale.
        scratch_width: (lo, hi) scratch width in pixels (lo >= 1).
    """

    def __init__(
        self,
        n_scratches: tuple[int, int] = (0, 3),
        n_cracks: tuple[int, int] = (0, 2),
        n_spots: tuple[int, int] = (0, 6),
        n_stains: tuple[int, int] = (0, 2),
        *,
        contrast: tuple[float, float] = (0.12, 0.4),
        scratch_width: tuple[float, float] = (1.0, 2.5),
    ):
        super().__init__()
        checked = check_count_ranges(n_scratches=n_scratches, n_cracks=n_cracks,
                                     n_spots=n_spots, n_stains=n_stains)  # fmt: skip
        self.counts = {kind: checked[f"n_{kind}"] for kind in _KINDS}
        if not any(hi for _, hi in self.counts.values()):
            raise ValueError("surface_defects: every count range is (0, 0), nothing to draw")
        self.contrast = as_range(contrast, name="contrast", hi_max=1.0)
        self.scratch_width = as_range(scratch_width, name="scratch_width", lo_min=1.0)

    def _masks(self, h: int, w: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        while True:  # redraw the counts until at least one defect is drawn
            n = {k: int(torch.randint(lo, hi + 1, (), generator=generator))
                 for k, (lo, hi) in self.counts.items()}  # fmt: skip
            if any(n.values()):
                break
        return {
            "scratches": scratch_mask(h, w, generator=generator, n=n["scratches"],
                                      width_range=self.scratch_width, length_range=(0.1, 0.5)),
            "cracks": crack_mask(h, w, generator=generator, n=n["cracks"]),
            "spots": blob_mask(h, w, generator=generator, n=n["spots"],
                               radius_range=(0.008, 0.03)),
            "stains": blotch_mask(h, w, generator=generator, n=n["stains"],
                                  radius_range=(0.04, 0.12)),
        }  # fmt: skip

    def forward(self, x: torch.Tensor, *, generator: torch.Generator) -> Degraded:
        check_images(x)
        h, w = x.shape[-2:]
        per_image = [self._masks(h, w, generator) for _ in range(x.shape[0])]
        masks = {k: torch.cat([m[k] for m in per_image]).to(x.device) for k in _KINDS}
        y = draw_surface_defects(x, masks, generator=generator, contrast=self.contrast)
        union = torch.stack(list(masks.values())).amax(dim=0).to(x.dtype)
        return Degraded(y, union, gt=y)

    def extra_repr(self) -> str:
        counts = ", ".join(f"n_{k}={v}" for k, v in self.counts.items())
        return f"{counts}, contrast={self.contrast}, scratch_width={self.scratch_width}"


preset(
    "defect_noise",
    "surface_defects + gaussian:sigma=[0.02, 0.2],clip=true",
    description="SPEC.md D's task: surface defects drawn into the scene (the ground truth), "
    "then Gaussian noise of sigma 5-51 grey levels, clipped",
)
preset(
    "defect_noise_sensor",
    "surface_defects + poisson_gaussian:gain=[0.0, 0.02],sigma=[0.01, 0.1]",
    description="the same with signal-dependent (Poisson-Gaussian) sensor noise",
)
