"""Multi-process data-parallel training: the same loop under ``torchrun``.

``torchrun --nproc_per_node N`` sets ``RANK``, ``WORLD_SIZE`` and the rendezvous
variables; :func:`init_from_env` joins the process group (gloo on CPU, NCCL on CUDA).
Each global batch of the epoch's order is split into equal per-rank slices, so N
processes with batch B/N each take exactly the steps one process takes with batch B:
DistributedDataParallel averages the gradients of the equal-sized slices, which is the
gradient of the mean over the whole batch.

Reference: Li et al., "PyTorch Distributed: Experiences on Accelerating Data Parallel
Training", VLDB 2020, https://arxiv.org/abs/2006.15704
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Context:
    """Where this process stands: its rank among ``world`` processes."""

    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0 validates, logs and writes checkpoints."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def init_from_env(device: torch.device) -> Context:
    """Join the process group that ``torchrun`` describes in the environment, if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Context()
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return Context(rank=dist.get_rank(), world=dist.get_world_size())


def rank_slice(indices: list[int], *, global_batch: int, ctx: Context) -> list[int]:
    """This rank's share of each whole global batch in ``indices`` (a partial batch is
    dropped, as ``drop_last`` does).

    >>> rank_slice(list(range(8)), global_batch=4, ctx=Context(rank=1, world=2))
    [2, 3, 6, 7]
    """
    per_rank = global_batch // ctx.world
    out: list[int] = []
    for start in range(0, len(indices) - global_batch + 1, global_batch):
        lo = start + ctx.rank * per_rank
        out.extend(indices[lo : lo + per_rank])
    return out
