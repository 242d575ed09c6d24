"""`TrainState`: what the loop and its callbacks share while a run trains, for every model family.

Callbacks see this state and nothing of the loop: the live objects (through the run's
step module), the progress, and the run's facts. It imports neither the loop nor any
callback, so callbacks depend on it and no import goes round in a circle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from raremix.distributed import Dist
from raremix.results.rows import MetricWriter
from raremix.schedules import lr_at

if TYPE_CHECKING:
    from raremix.steps import TrainModule


@dataclass
class TrainState:
    """The run's config, step module, metrics writer and progress."""

    cfg: Any
    """The run's config (`TrainConfig`, `HFTrainConfig`): steps, seed, optim, rare, batch_size …"""
    run_dir: Path
    module: TrainModule
    """The family's step module: the model, optimiser, data stream and evaluation."""
    writer: MetricWriter
    dist: Dist = field(default_factory=Dist)
    """Rank and world size under torchrun."""
    step: int = 0
    loss: float = float("nan")
    lr: float = 0.0
    last_eval: dict[str, dict[str, float]] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    stop: bool = False
    """A callback may set it to end the run early (after a checkpoint)."""
    batch: Any = None
    """This rank's batch of the step just taken (its type is the step module's)."""

    @property
    def run_id(self) -> str:
        """The id in the run's metric rows."""
        return self.writer.run

    @property
    def model(self) -> torch.nn.Module:
        return self.module.model

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self.module.optimizer

    @property
    def device(self) -> torch.device:
        return self.module.device

    @property
    def data(self) -> Any:
        """The family's examples (`TaskData` for raremix's GPT)."""
        return self.module.data

    @property
    def sampler(self) -> Any:
        """The mixture sampler deciding every batch (None where the family has none)."""
        return self.module.sampler

    def lr_at(self, step: int) -> float:
        """The learning rate the schedule gives step `step` (0-based)."""
        return lr_at(step, self.cfg.steps, self.cfg.optim, self.facts.get("params"))
