"""Speed and agreement of restorekit's SSIM and PSNR against scikit-image, in one run.

Loads photos shipped inside the scikit-image wheel (nothing downloads), degrades each with
a seeded blur + Gaussian noise, and scores every (degraded, clean) pair with both
libraries on the same float64 arrays. Prints per-image times, the speed ratio
(skimage time / restorekit time, > 1 means restorekit is faster) and the largest absolute
difference between the two libraries' scores.

    python benchmarks/bench_metrics.py                 # defaults, well under a minute
    python benchmarks/bench_metrics.py --threads 1 --repeats 9 --variant fastmri
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import scipy
import skimage
import torch
from scipy import ndimage
from skimage import data as skdata
from skimage.metrics import peak_signal_noise_ratio as sk_psnr
from skimage.metrics import structural_similarity as sk_ssim
from skimage.util import img_as_float64

from restorekit.metrics import SSIM_VARIANTS, psnr, ssim

DEFAULT_IMAGES = ("astronaut", "chelsea", "coffee", "rocket", "camera", "moon", "coins")


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--images",
        nargs="+",
        default=list(DEFAULT_IMAGES),
        help="skimage.data photos that ship in the wheel (default: %(default)s)",
    )
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="timed calls per measurement after one warm-up; the median is kept",
    )
    p.add_argument("--variant", choices=SSIM_VARIANTS, default="wang2004")
    p.add_argument("--noise-sigma", type=float, default=0.05, help="on the [0, 1] scale")
    p.add_argument("--blur-sigma", type=float, default=1.0, help="Gaussian blur, pixels")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


def _median_seconds(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    out = fn()  # warm-up: first-call allocations and lazy initialisation are not timed
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def _degrade(clean: np.ndarray, args: argparse.Namespace, rng: np.random.Generator) -> np.ndarray:
    sigma = (args.blur_sigma, args.blur_sigma, 0.0) if clean.ndim == 3 else args.blur_sigma
    out = ndimage.gaussian_filter(clean, sigma) + rng.normal(0.0, args.noise_sigma, clean.shape)
    return np.clip(out, 0.0, 1.0)


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(img))
    return (t[None] if t.ndim == 2 else t.permute(2, 0, 1))[None].contiguous()


def main() -> None:
    args = _parse()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    if args.variant == "wang2004":
        sk_kwargs = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}
        sk_call = "gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1"
    else:
        sk_kwargs = {}
        sk_call = "defaults (7x7 uniform, sample covariance), data_range=1"

    print("restorekit metrics benchmark")
    print("protocol:")
    print(f"  photos: skimage.data {', '.join(args.images)} (full size, float64 in [0, 1])")
    print(
        f"  pairs: Gaussian blur sigma {args.blur_sigma} px + Gaussian noise sigma "
        f"{args.noise_sigma}, clipped to [0, 1], numpy seed {args.seed}"
    )
    print(
        f"  skimage: structural_similarity({sk_call}, channel_axis=2 for colour); "
        "peak_signal_noise_ratio(data_range=1)"
    )
    print(
        f"  restorekit: ssim(variant={args.variant!r}) and psnr on (1, C, H, W) float64 CPU "
        "tensors under torch.inference_mode; numpy->torch conversion not timed"
    )
    print(
        f"  timing: median of {args.repeats} calls after 1 warm-up, same process, "
        f"torch threads {args.threads}"
    )
    print(
        f"  versions: python {platform.python_version()}, torch {torch.__version__}, "
        f"scikit-image {skimage.__version__}, scipy {scipy.__version__}, numpy {np.__version__}"
    )
    print(f"  machine: {platform.machine()} {platform.processor() or ''}".rstrip())
    print()
    header = (
        f"{'image':<10} {'size':>12} | {'ssim sk ms':>10} {'rk ms':>8} {'ratio':>6} "
        f"{'|dSSIM|':>9} | {'psnr sk ms':>10} {'rk ms':>7} {'ratio':>6} {'|dPSNR|':>9}"
    )
    print(header)
    print("-" * len(header))

    totals = {"ssim_sk": 0.0, "ssim_rk": 0.0, "psnr_sk": 0.0, "psnr_rk": 0.0}
    ssim_ratios, psnr_ratios = [], []
    max_dssim = max_dpsnr = 0.0
    with torch.inference_mode():
        for name in args.images:
            clean = img_as_float64(getattr(skdata, name)())
            pred = _degrade(clean, args, rng)
            channel_axis = 2 if clean.ndim == 3 else None
            tp, tc = _to_tensor(pred), _to_tensor(clean)

            t_sk, v_sk = _median_seconds(
                lambda p=pred, c=clean, ax=channel_axis: sk_ssim(
                    p, c, data_range=1.0, channel_axis=ax, **sk_kwargs
                ),
                args.repeats,
            )
            t_rk, v_rk = _median_seconds(
                lambda p=tp, c=tc: ssim(p, c, variant=args.variant), args.repeats
            )
            tp_sk, p_sk = _median_seconds(
                lambda p=pred, c=clean: sk_psnr(c, p, data_range=1.0), args.repeats
            )
            tp_rk, p_rk = _median_seconds(lambda p=tp, c=tc: psnr(p, c), args.repeats)

            dssim = abs(float(v_sk) - v_rk.item())
            dpsnr = abs(float(p_sk) - p_rk.item())
            max_dssim, max_dpsnr = max(max_dssim, dssim), max(max_dpsnr, dpsnr)
            ssim_ratios.append(t_sk / t_rk)
            psnr_ratios.append(tp_sk / tp_rk)
            for key, value in zip(totals, (t_sk, t_rk, tp_sk, tp_rk), strict=True):
                totals[key] += value
            size = "x".join(str(s) for s in clean.shape)
            print(
                f"{name:<10} {size:>12} | {1e3 * t_sk:10.2f} {1e3 * t_rk:8.2f} "
                f"{t_sk / t_rk:6.2f} {dssim:9.1e} | {1e3 * tp_sk:10.2f} {1e3 * tp_rk:7.2f} "
                f"{tp_sk / tp_rk:6.2f} {dpsnr:9.1e}"
            )

    def geomean(xs: list[float]) -> float:
        return math.exp(sum(math.log(x) for x in xs) / len(xs))

    print()
    print(
        f"SSIM ({args.variant}): total skimage {1e3 * totals['ssim_sk']:.1f} ms, restorekit "
        f"{1e3 * totals['ssim_rk']:.1f} ms; speed ratio skimage/restorekit: total "
        f"{totals['ssim_sk'] / totals['ssim_rk']:.2f}x, geometric mean "
        f"{geomean(ssim_ratios):.2f}x; max |dSSIM| {max_dssim:.1e}"
    )
    print(
        f"PSNR: total skimage {1e3 * totals['psnr_sk']:.1f} ms, restorekit "
        f"{1e3 * totals['psnr_rk']:.1f} ms; speed ratio skimage/restorekit: total "
        f"{totals['psnr_sk'] / totals['psnr_rk']:.2f}x, geometric mean "
        f"{geomean(psnr_ratios):.2f}x; max |dPSNR| {max_dpsnr:.1e} dB"
    )


if __name__ == "__main__":
    main()
