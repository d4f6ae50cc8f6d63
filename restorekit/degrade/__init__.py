"""Degradations: pure tensor-in, tensor-out operators with explicit generators.

Each is a function (``gaussian_noise``, ``salt_pepper``, ``haze``, ``imresize``, ...) plus
an ``nn.Module`` twin, the operator, that samples its parameters from ranges. Operators
(``gaussian``, ``salt_pepper``, ``haze``, ``bicubic``, ``defects``) and the seed's presets
(``gaussian_low``, ``bicubic_x4``, ...) are built with :func:`create_degradation`, with
parameters and composition (``"bicubic:scale=4 + gaussian:sigma=0.05"``);
:func:`list_degradations` names them all. A new operator is one module here that
registers it (see :mod:`restorekit.degrade.base`).
"""

from restorekit.degrade.base import (
    DEGRADATIONS,
    TARGETS,
    Compose,
    Degradation,
    Degraded,
    Preset,
    create_degradation,
    list_degradations,
    parse_spec,
    preset,
    register,
)
from restorekit.degrade.defects import (
    DefectMasks,
    Defects,
    apply_defects,
    defect_mask,
    defect_masks,
)
from restorekit.degrade.haze import (
    DEPTH_PRIORS,
    Haze,
    dark_channel_depth,
    disparity_to_depth,
    haze,
    random_depth,
    transmission,
    vertical_gradient_depth,
)
from restorekit.degrade.noise import (
    FACE_NOISE_SIGMA,
    GaussianNoise,
    PoissonGaussianNoise,
    SaltPepper,
    gaussian_noise,
    poisson_gaussian_noise,
    salt_pepper,
)
from restorekit.degrade.resize import Bicubic, imresize
from restorekit.degrade.surface import SurfaceDefects, crack_mask, draw_surface_defects

__all__ = [
    "DEGRADATIONS",
    "DEPTH_PRIORS",
    "FACE_NOISE_SIGMA",
    "TARGETS",
    "Bicubic",
    "Compose",
    "DefectMasks",
    "Defects",
    "Degradation",
    "Degraded",
    "GaussianNoise",
    "Haze",
    "PoissonGaussianNoise",
    "Preset",
    "SaltPepper",
    "SurfaceDefects",
    "apply_defects",
    "crack_mask",
    "create_degradation",
    "dark_channel_depth",
    "defect_mask",
    "defect_masks",
    "disparity_to_depth",
    "draw_surface_defects",
    "gaussian_noise",
    "haze",
    "imresize",
    "list_degradations",
    "parse_spec",
    "poisson_gaussian_noise",
    "preset",
    "random_depth",
    "register",
    "salt_pepper",
    "transmission",
    "vertical_gradient_depth",
]
