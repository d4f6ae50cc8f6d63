"""Data parallel training: 2 CPU processes under torchrun equal 1 process, same global batch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from restorekit.train.checkpoint import load_checkpoint

# Run as a script: one process plainly, or two under torchrun (gloo on CPU).
SCRIPT = """
import sys
import torch
from torch import nn
from torch.utils.data import TensorDataset
from restorekit.models.base import Restorer
from restorekit.train.trainer import Stage, Trainer, TrainOptions

torch.set_num_threads(1)


class Pairs(torch.utils.data.Dataset):
    def __init__(self, n, seed):
        g = torch.Generator().manual_seed(seed)
        self.gt = torch.rand(n, 1, 12, 12, generator=g)
        self.lq = self.gt + 0.1 * torch.randn(n, 1, 12, 12, generator=g)

    def __len__(self):
        return len(self.gt)

    def __getitem__(self, i):
        return {"lq": self.lq[i], "gt": self.gt[i]}


class Net(Restorer):  # no dropout or BatchNorm: those differ per process by design
    in_channels = 1

    def __init__(self):
        super().__init__()
        conv = nn.Conv2d
        self.body = nn.Sequential(conv(1, 8, 3, padding=1), nn.ReLU(), conv(8, 1, 3, padding=1))

    def restore(self, x):
        return x + self.body(x)


torch.manual_seed(0)
stage = Stage(steps=10, lr=1e-2, scheduler="step", step_size=4)
opts = TrainOptions(stages=(stage,), batch_size=4, val_every=5, progress=False, amp="fp32")
Trainer(Net(), Pairs(20, 0), Pairs(2, 1), opts, sys.argv[1]).fit()
"""


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed missing")
def test_two_processes_equal_one_with_the_same_global_batch(tmp_path: Path) -> None:
    script = tmp_path / "train_toy.py"
    script.write_text(SCRIPT)
    single, double = tmp_path / "single", tmp_path / "double"
    subprocess.run([sys.executable, str(script), str(single)], check=True, timeout=300)
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
    ]
    done = subprocess.run(
        [*torchrun, str(script), str(double)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    a, b = load_checkpoint(single), load_checkpoint(double)
    assert a.step == b.step == 10
    for key, value in a.weights["model"].items():
        torch.testing.assert_close(b.weights["model"][key], value, rtol=1e-5, atol=1e-6)
    assert (
        a.state["optimizer"]["param_groups"][0]["lr"]
        == b.state["optimizer"]["param_groups"][0]["lr"]
    )
