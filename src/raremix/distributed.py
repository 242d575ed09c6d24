"""Data-parallel training across processes with PyTorch's own `torchrun` / DDP.

    torchrun --nproc_per_node=2 -m raremix train CONFIG.yaml

`torchrun` sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; `setup()`
reads them and joins the process group (gloo on CPU, NCCL on CUDA). Without them it
returns a single-process `Dist` and nothing changes. Each rank draws its contiguous
slice of the *global* batch from the mixture sampler (whose state is global), the
gradients are averaged by `DistributedDataParallel`, and the loss is normalised by the
global number of answer tokens, so a step equals the single-process step on the whole
batch. Model and optimiser states are replicated, so a checkpoint resumes on any world
size.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as tdist

from raremix.errors import RaremixError
from raremix.loss import IGNORE, answer_loss


@dataclass(frozen=True)
class Dist:
    """This process's place in the job: rank, world size, and the device it trains on."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False
    """Whether `setup` started the process group (and `shutdown` should end it)."""

    @property
    def enabled(self) -> bool:
        """Whether there is more than one process (collectives are needed)."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes metrics, checkpoints and the run record; it alone evaluates."""
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """On CUDA each local rank gets its own GPU; CPU processes share the host."""
        if device.type == "cuda" and self.enabled:
            torch.cuda.set_device(self.local_rank)
            return torch.device("cuda", self.local_rank)
        return device

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """`model` inside DistributedDataParallel (itself when single-process)."""
        if not self.enabled:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def loss(
        self, logits: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss to backpropagate, global mean answer loss to report); logits (B, T, V).

        Single-process: `answer_loss`, unchanged. Data-parallel: this rank's summed
        cross-entropy over the global answer-token count, times world size (DDP
        averages gradients over ranks), so the step is the one-process step on the
        global batch, whatever the split of answer tokens between ranks.
        """
        if not self.enabled:
            loss = answer_loss(logits, targets)
            return loss, loss.detach()
        total = answer_loss(logits, targets, reduction="sum")
        sums = torch.stack([total.detach(), (targets != IGNORE).sum().to(total.dtype)])  # (2,)
        tdist.all_reduce(sums)
        count = sums[1].clamp(min=1)
        return total * self.world_size / count, sums[0] / count

    def barrier(self) -> None:
        """Wait until every rank gets here."""
        if self.enabled:
            tdist.barrier()

    def find_checkpoint(self, run_dir: Path) -> Path | None:
        """`checkpoint.find_checkpoint`, rank 0 first: finding one may repair a crash
        mid-swap, and the other ranks must then see the repaired folder."""
        from raremix.checkpoint import find_checkpoint

        if not self.is_main:
            self.barrier()
        found = find_checkpoint(run_dir)
        if self.is_main:
            self.barrier()
        return found


def setup(device: torch.device | None = None) -> Dist:
    """Join the process group that `torchrun` describes in the environment, if any.

    Reads RANK, WORLD_SIZE and LOCAL_RANK; with WORLD_SIZE > 1 initialises
    `torch.distributed` (NCCL for CUDA devices, gloo otherwise) unless it already is.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    try:
        rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    except (KeyError, ValueError):
        raise RaremixError(
            f"WORLD_SIZE is {world} but RANK is missing or not a number: launch with torchrun"
        ) from None
    owns = not tdist.is_initialized()
    if owns:
        if "MASTER_ADDR" not in os.environ or "MASTER_PORT" not in os.environ:
            raise RaremixError(
                "WORLD_SIZE > 1 but MASTER_ADDR/MASTER_PORT are not set: launch with torchrun"
            )
        backend = "nccl" if device is not None and device.type == "cuda" else "gloo"
        # the other ranks wait at the next all-reduce while rank 0 evaluates: allow an hour
        tdist.init_process_group(backend, rank=rank, world_size=world, timeout=timedelta(hours=1))
    return Dist(rank=rank, world_size=world, local_rank=local, owns_group=owns)


def shutdown(dist: Dist) -> None:
    """Wait for every rank, then leave the process group if `setup` started it."""
    if dist.enabled and tdist.is_initialized():
        tdist.barrier()
        if dist.owns_group:
            tdist.destroy_process_group()


def scratch_path() -> Path:
    """A throwaway metrics file for ranks other than 0 (they write no rows of their own)."""
    return Path(tempfile.mkdtemp(prefix="raremix-rank-")) / "metrics.jsonl"


def remove_scratch(path: Path) -> None:
    """Delete a `scratch_path` file and its folder."""
    shutil.rmtree(path.parent, ignore_errors=True)
