"""Data-parallel training over the processes that torchrun starts (DDP): NCCL on GPUs, gloo on CPUs.

    torchrun --standalone --nproc_per_node 4 -m gnnjec train ...

Every process reads the same clouds, takes its own share of each epoch's shuffled jets, and
averages gradients with the others; losses are averaged over the processes so that all of them
take the same scheduling and early-stopping decisions; only rank 0 writes files. One process (no
torchrun) is the plain case and needs none of this.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Group:
    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def mean(self, value: float, device: torch.device) -> float:
        """The mean of ``value`` over the processes (``value`` itself for one process)."""
        if self.size == 1:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=device)
        dist.all_reduce(tensor)
        return tensor.item() / self.size

    def share(self, rows):
        """This process's equal share of ``rows`` (the same count for every process)."""
        n = len(rows) // self.size
        return rows[self.rank * n : (self.rank + 1) * n]

    def barrier(self) -> None:
        if self.size > 1:
            dist.barrier()


def join(device: torch.device) -> tuple[Group, torch.device]:
    """Join the process group torchrun describes in the environment; on CUDA, one GPU per process."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return Group(), device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Group(dist.get_rank(), dist.get_world_size()), device


def leave(group: Group) -> None:
    if group.size > 1 and dist.is_initialized():
        dist.destroy_process_group()
