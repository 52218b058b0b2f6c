"""Data-parallel training under ``torchrun``: the process group and this process's place in it.

Under ``torchrun`` (``WORLD_SIZE`` > 1) training is data-parallel (DDP: NCCL on CUDA, gloo on
CPU); only rank 0 writes the checkpoint and the artifact (:func:`genre_cli.stage.execute` with
``writer=False`` on the other ranks).
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass
class Dist:
    """Data-parallel context from torchrun's environment (world 1 = plain run)."""

    world: int = 1
    rank: int = 0
    local_rank: int = 0
    owns_group: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> Dist:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        return cls(world, int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))) if world > 1 else cls()

    def init(self, device) -> None:
        """Join the process group (NCCL on CUDA, gloo on CPU) unless already joined."""
        if self.world == 1:
            return
        import torch.distributed as td

        if not td.is_initialized():
            td.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
            self.owns_group = True

    def close(self) -> None:
        if self.owns_group:
            import torch.distributed as td

            td.destroy_process_group()
            self.owns_group = False

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as td

            td.barrier()

    def all_reduce(self, tensor) -> None:
        """Sum ``tensor`` over all ranks, in place (nothing to do in a plain run)."""
        if self.world > 1:
            import torch.distributed as td

            td.all_reduce(tensor)
