"""Data-parallel training over several processes with torch.distributed (`rag train --nproc N`,
or any `torchrun` launch): one process per CPU group or GPU, gradients averaged by
DistributedDataParallel over gloo (CPU) or NCCL (GPU); only rank 0 evaluates and writes.

Example::

    launch(["train", "qa.jsonl", "--kb", "kb", "--out", "r"], nproc=2)  # re-runs under torchrun
    world = World.from_env()   # in each process: rank, size, backend; set up the group
"""
from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class World:
    """This process's place among the training processes (size 1: not distributed)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device: str = "cpu") -> "World":
        """Join the process group torchrun describes in the environment (WORLD_SIZE, RANK,
        MASTER_ADDR, ...); without it, a world of one."""
        size = int(os.environ.get("WORLD_SIZE", "1"))
        if size <= 1:
            return cls()
        import torch
        import torch.distributed as dist

        local = int(os.environ.get("LOCAL_RANK", "0"))
        if not dist.is_initialized():
            cuda = device.startswith("cuda")
            if cuda:
                torch.cuda.set_device(local)
            dist.init_process_group("nccl" if cuda else "gloo")
        if not device.startswith("cuda"):  # share the cores, do not oversubscribe them
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(
                os.environ.get("LOCAL_WORLD_SIZE", size))))
        return cls(dist.get_rank(), dist.get_world_size(), local)

    def device(self, device: str) -> str:
        """This process's device: its own GPU under a multi-GPU launch."""
        return f"cuda:{self.local_rank}" if device == "cuda" and self.size > 1 else device

    def shard(self, items: list) -> list:
        """This process's share of a global batch (every size-th item from its rank)."""
        return items[self.rank::self.size]

    def mean(self, value: float) -> float:
        """The mean of a number over all processes."""
        if self.size == 1:
            return value
        import torch
        import torch.distributed as dist

        t = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(t)
        return float(t) / self.size

    def agree(self, flag: bool) -> bool:
        """Rank 0's decision, for every process (stopping must happen everywhere at once)."""
        if self.size == 1:
            return flag
        import torch
        import torch.distributed as dist

        t = torch.tensor([int(flag)])
        dist.broadcast(t, 0)
        return bool(t)

    def barrier(self) -> None:
        if self.size > 1:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        if self.size > 1:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def launch(argv: list[str], nproc: int) -> int:
    """Run ``rag ARGV`` in ``nproc`` processes on this machine through torchrun (its
    standalone rendezvous on a free local port); the exit code is the worst of theirs."""
    from torch.distributed.run import get_args_parser, run

    args = get_args_parser().parse_args(
        ["--standalone", f"--nproc-per-node={nproc}", "--module", "rag", *argv])
    try:
        run(args)
    except Exception as e:  # torchrun's ChildFailedError: the failing rank printed its error
        first = str(e).strip().splitlines()
        raise SystemExit(f"error: rag train --nproc {nproc}: a training process failed"
                         f"{': ' + first[0] if first else ''}") from None
    return 0
