"""Degradations: pure tensor-in, tensor-out operators with explicit generators.

Each is a function (``gaussian_noise``, ``salt_pepper``, ``haze``, ``imresize``, ...) plus
an ``nn.Module`` twin that samples its parameters from ranges. Named presets
(``gaussian_low``, ``salt_pepper``, ``haze``, ``bicubic_x4``, ``defects``, ...) are built
with :func:`create_degradation`; :func:`list_degradations` names them all.
"""

from restorekit.degrade.base import (
    Degradation,
    Degraded,
    create_degradation,
    list_degradations,
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
    transmission,
    vertical_gradient_depth,
)
from restorekit.degrade.noise import (
    FACE_NOISE_SIGMA,
    GaussianNoise,
    SaltPepper,
    gaussian_noise,
    salt_pepper,
)
from restorekit.degrade.resize import Bicubic, imresize

__all__ = [
    "DEPTH_PRIORS",
    "FACE_NOISE_SIGMA",
    "Bicubic",
    "DefectMasks",
    "Defects",
    "Degradation",
    "Degraded",
    "GaussianNoise",
    "Haze",
    "SaltPepper",
    "apply_defects",
    "create_degradation",
    "dark_channel_depth",
    "defect_mask",
    "defect_masks",
    "disparity_to_depth",
    "gaussian_noise",
    "haze",
    "imresize",
    "list_degradations",
    "register",
    "salt_pepper",
    "transmission",
    "vertical_gradient_depth",
]
