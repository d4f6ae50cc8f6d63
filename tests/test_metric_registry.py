"""The metric registry (issue 15): in-mask metrics against independent references, and a
new metric reaches evaluation, the summary, the CLI table and the report from one
registration."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from restorekit.evaluate import Method, evaluate, synthetic_task
from restorekit.metrics import METRICS, psnr_masked, register_metric, ssim_masked
from restorekit.report import write_report


def _pair_and_mask() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    gt = torch.rand(1, 1, 40, 48, generator=g, dtype=torch.float64)
    pred = (gt + 0.05 * torch.randn(gt.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    mask = torch.zeros(1, 1, 40, 48)
    mask[..., 10:25, 5:30] = 1
    return pred, gt, mask


def test_psnr_in_mask_is_skimage_psnr_of_the_masked_pixels() -> None:
    pred, gt, mask = _pair_and_mask()
    keep = mask[0, 0].bool().numpy()
    reference = peak_signal_noise_ratio(
        gt[0, 0].numpy()[keep], pred[0, 0].numpy()[keep], data_range=1
    )
    assert psnr_masked(pred, gt, mask).item() == pytest.approx(reference, abs=1e-10)
    assert math.isnan(psnr_masked(pred, gt, torch.zeros_like(mask)).item())  # empty: undefined


def test_ssim_in_mask_is_skimage_ssim_map_over_the_masked_centres() -> None:
    pred, gt, mask = _pair_and_mask()
    _, full = structural_similarity(gt[0, 0].numpy(), pred[0, 0].numpy(), data_range=1,
                                    gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, full=True)  # fmt: skip
    r = 5  # skimage's map is padded; the valid centres start 5 pixels in
    valid, keep = full[r:-r, r:-r], mask[0, 0].numpy()[r:-r, r:-r].astype(bool)
    assert ssim_masked(pred, gt, mask).item() == pytest.approx(valid[keep].mean(), abs=1e-10)


def test_masked_tasks_get_the_in_mask_columns() -> None:
    x = [torch.rand(1, 32, 32, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    task = synthetic_task("toy", x, "salt_pepper")
    results = evaluate([Method("median", torch.nn.Identity())], [task], keep=0)
    assert results.metrics() == ["psnr", "ssim", "psnr_mask", "ssim_mask"]
    row = results.summary()[0]
    assert math.isfinite(row["psnr_mask"]) and row["psnr_mask"] < row["psnr"]


def test_a_new_metric_is_one_function_and_one_registration(tmp_path: Path) -> None:
    @register_metric("mae", label="MAE", digits=3, description="mean absolute error")
    def mae(pred, target, *, mask=None, crop_border=0, y_channel=False, data_range=1.0):
        return (pred - target).abs().mean(dim=(1, 2, 3))

    try:
        x = [torch.full((1, 16, 16), 0.5)]
        task = synthetic_task("toy", x, "gaussian:sigma=0.1,clip=false")
        results = evaluate([Method("identity", torch.nn.Identity())], [task],
                           metrics=("psnr", "mae"), keep=0)  # fmt: skip
        rows = {r["method"]: r for r in results.summary()}
        assert rows["identity"]["mae"] == pytest.approx(0.08, abs=0.02)  # E|N(0, 0.1)|
        write_report(results, tmp_path / "report")
        md = (tmp_path / "report" / "report.md").read_text()
        assert "| method | images | PSNR dB | MAE | note |" in md
        assert "MAE: mean absolute error" in md
    finally:
        METRICS.remove("mae")
    assert "mae" not in METRICS
