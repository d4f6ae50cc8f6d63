"""Classical baselines reported beside every learned model, as parameter-free ``nn.Module``s.

Each maps (B, C, H, W) float images in [0, 1], C = 1 or 3, to (B, C, scale*H, scale*W) of
the same dtype and device, and has ``scale`` and ``size_multiple = 1``, so
:func:`restorekit.inference.restore_tensor` and the benchmark runner take it like a model.
Build them by name with :func:`create_baseline`; :func:`list_baselines` names them all.

* ``median``: median filter, the reference for salt-and-pepper noise (torch).
* ``gaussian``: Gaussian blur with ``scipy.ndimage.gaussian_filter``'s kernel (torch).
* ``nlm``: non-local means, Buades, Coll and Morel, CVPR 2005,
  https://doi.org/10.1109/CVPR.2005.38, via scikit-image's ``denoise_nl_means`` (fast
  mode: Darbon et al., ISBI 2008, https://doi.org/10.1109/ISBI.2008.4541250).
* ``bm3d``: Dabov, Foi, Katkovnik and Egiazarian, IEEE TIP 16(8), 2007,
  https://doi.org/10.1109/TIP.2007.901238, via the optional ``bm3d`` package (Mäkinen,
  Azzari and Foi, ICIP 2019, https://doi.org/10.1109/ICIP.2019.8803785); CBM3D for RGB.
* ``bicubic``: upscaling with restorekit's MATLAB-exact ``imresize``.
* ``dcp``: dark channel prior dehazing, He, Sun and Tang, CVPR 2009,
  https://doi.org/10.1109/CVPR.2009.5206515 and TPAMI 33(12) 2011,
  https://doi.org/10.1109/TPAMI.2010.168, with the transmission refined by the guided
  filter, He, Sun and Tang, ECCV 2010, https://doi.org/10.1007/978-3-642-15549-9_1
  (the operations live in :mod:`restorekit.baselines.dcp`).

One module per family (``filters``, ``denoisers``, ``resize``, ``dcp``), each registering
its classes in :data:`BASELINES`; a new baseline is one such module. Median, Gaussian,
bicubic and DCP are torch code on the input's device; NLM and BM3D run
per image on the CPU in float64 and move the result back. scikit-image and bm3d are
imported on first use, so importing this package stays cheap.
"""

from __future__ import annotations

import inspect
from typing import Any

from restorekit.baselines.base import BASELINES, Baseline, register
from restorekit.baselines.dcp import DCP, Dehazed, dark_channel, dehaze_dcp, guided_filter
from restorekit.baselines.denoisers import BM3D, NLM
from restorekit.baselines.filters import Gaussian, Median, gaussian_blur, median_filter
from restorekit.baselines.resize import Bicubic

__all__ = [
    "BASELINES",
    "BM3D",
    "DCP",
    "NLM",
    "Baseline",
    "Bicubic",
    "Dehazed",
    "Gaussian",
    "Median",
    "create_baseline",
    "dark_channel",
    "dehaze_dcp",
    "gaussian_blur",
    "guided_filter",
    "list_baselines",
    "median_filter",
    "register",
]


def list_baselines() -> list[str]:
    """The names :func:`create_baseline` accepts, sorted.

    >>> list_baselines()
    ['bicubic', 'bm3d', 'dcp', 'gaussian', 'median', 'nlm']
    """
    return BASELINES.names()


def create_baseline(name: str, **kwargs: Any) -> Baseline:
    """The baseline ``name`` with keyword arguments ``kwargs`` (see each class).

    Raises:
        ValueError: an unknown name or argument (the message lists the valid ones), or
            a bad value.
        ImportError: ``bm3d`` without the bm3d package.

    Example:
        >>> create_baseline("median", size=5).describe()
        'median(size=5)'
    """
    cls = BASELINES.get(name)
    valid = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown argument(s) {', '.join(unknown)} for baseline {name!r}; "
            f"valid: {', '.join(valid)}"
        )
    return cls(**kwargs)
