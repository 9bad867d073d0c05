"""Data-parallel training of one run: ``torchrun --nproc_per_node N -m ascbench run ...``.

torchrun sets ``WORLD_SIZE``/``RANK``; :func:`setup` then joins the process group (gloo for CPU runs,
nccl for ``--device cuda``, each rank on the GPU of its ``LOCAL_RANK``). Every rank loads the same data and draws
the same batch order from the run's seed; each trains on its share of every batch and
DistributedDataParallel averages the gradients, so a step sees the whole batch as a single process
would (batch-norm statistics are per share, hence "within
noise" rather than bit-equal). After every epoch rank 0's buffers are broadcast, so validation,
early stopping and pseudo-labels are decided identically everywhere. Only rank 0 writes anything.
"""

from __future__ import annotations

import logging
import os

import torch
import torch.distributed as dist
import torch.nn as nn

log = logging.getLogger("ascbench")


def requested() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(backend: str = "gloo") -> None:
    """Join the process group torchrun prepared (no-op for a single process or if already joined).

    ``nccl`` for CUDA runs (each rank then computes on the GPU of its ``LOCAL_RANK``), ``gloo`` on the CPU.
    """
    if requested() and not dist.is_initialized():
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend)
        log.info("data-parallel: rank %d of %d (%s)", rank(), world_size(), backend)


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def wrap(model: nn.Module) -> nn.Module:
    """The model to train with: DistributedDataParallel around ``model`` when data-parallel, else ``model``."""
    if not active():
        return model
    return nn.parallel.DistributedDataParallel(model)


def share(positions):
    """This rank's share of one batch (every rank holds the same batch)."""
    return positions[rank()::world_size()] if active() else positions


@torch.no_grad()
def sync_buffers(model: nn.Module) -> None:
    """Make every rank's buffers (batch-norm running statistics) rank 0's."""
    if active():
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)
