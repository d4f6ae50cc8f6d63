"""The super-resolution baseline: MATLAB-exact bicubic upscaling."""

from __future__ import annotations

from torch import Tensor

from restorekit.baselines.base import Baseline, register
from restorekit.degrade.resize import imresize
from restorekit.utils import check_arg, is_int

__all__ = ["Bicubic"]


@register("bicubic", scales=(2, 3, 4), paper="MATLAB imresize, bicubic")
class Bicubic(Baseline):
    """Super-resolution baseline: ``imresize(x, scale)``, MATLAB-exact bicubic upscaling.

    Not clipped, as MATLAB (overshoot near edges); ``restore_tensor`` clips to [0, 1].
    """

    def __init__(self, *, scale: int = 4) -> None:
        check_arg(is_int(scale) and scale in (2, 3, 4), "scale", scale, "2, 3 or 4")
        super().__init__(scale=scale)
        self.scale = scale

    def restore(self, x: Tensor) -> Tensor:
        return imresize(x, self.scale)
