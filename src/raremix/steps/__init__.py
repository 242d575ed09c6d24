"""Step modules: what one model family brings to the one training loop (`raremix.loop`).

In the spirit of OLMo-core's `TrainModule`: the *step* — what a batch is for the
family, the forward pass, the loss, the backward pass and the optimiser update, the
evaluation, and per-task batches for probes and adaptive signals — is apart from the
*loop* — sampling cadence, evaluations, checkpoints, callbacks, DDP and resume.

* `raremix.steps.gpt.GPTStep` — raremix's own GPT on its synthetic tasks;
* `raremix.hf.step.HFStep` — any Hugging Face causal LM on tagged rows or synthetic tasks;
* the distillation student (`raremix.studies.distillation.run`) is a `GPTStep` with its own
  batches (teacher-labelled) and objective.

A new family is one class with these members; the loop never asks which family it runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch

from raremix.loss import Batches

if TYPE_CHECKING:
    from raremix.state import TrainState


class Stream(Protocol):
    """Training batches in order, resumable: `raremix.data.BatchStream` is the usual one."""

    def next(self, step: int) -> Any | None:
        """The batch for `step` (0-based), or None once the stream has ended."""

    @property
    def exhausted(self) -> bool:
        """Every batch was handed out and no more will come (sources under a `stop` policy)."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class TrainModule(Protocol):
    """One model family's step, built for one run on one device (see the module docstring)."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    device: torch.device
    stream: Stream
    data: Any
    """The family's examples (`TaskData`, Hugging Face `Examples`); callbacks may read it."""
    sampler: Any
    """The mixture sampler behind `stream` (None where batches come from elsewhere)."""
    facts: dict[str, Any]
    """What the run record and summary report: params, flops, lr_peak …"""

    def expect(self) -> dict[str, Any]:
        """What a checkpoint must match to be resumed by this run."""

    def record(self) -> tuple[Any, dict[str, str]]:
        """The config to write as the run's record, and library versions to add to it."""

    def eval_steps(self) -> list[int]:
        """Steps in 1..steps after which the run evaluates (it also evaluates at step 0)."""

    def train_step(self, net: torch.nn.Module, batch: Any) -> torch.Tensor:
        """Forward, loss, backward and optimiser step on `batch` through `net` (the model, or
        its DDP wrapper); returns the loss to report (detached, the global mean under DDP)."""

    def evaluate(self) -> dict[str, dict[str, float]]:
        """{task: {metric: value}} on each task's held-out set."""

    def heldout_batches(self, n: int) -> Batches:
        """{task: (idx, targets)}: the first `n` held-out examples of each task (probes)."""

    def train_batches(self, n: int, seed: int, rank: int = 0, world: int = 1) -> Batches:
        """{task: (idx, targets)}: this rank's share (every world-th) of `n` fixed training
        examples per task, drawn with `seed` (adaptive mixing's signals)."""

    def load_trained(self, run_dir: Path) -> torch.nn.Module:
        """The model of another finished run of this family (DoReMi's reference)."""

    def state_dict(self) -> dict[str, Any]:
        """The step's own resumable counters (JSON-able), saved with each checkpoint."""

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def finish(self, state: TrainState) -> None:
        """After the last step, on every rank: final facts, and files the family writes."""
