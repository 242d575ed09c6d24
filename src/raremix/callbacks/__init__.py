"""Trainer callbacks: behaviour added to a run without touching the training loop.

A callback implements any of the five hooks; the trainer calls them in list order.
One callback per module (progress bar, probes, loggers …).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from raremix.state import TrainState


class Callback:
    """Base with no-op hooks: override the ones you need."""

    def on_start(self, state: TrainState) -> None:
        """Before the first step (after a resume, at the resumed step)."""

    def on_step_begin(self, state: TrainState) -> None:
        """Before each optimiser step, with `state.batch` the batch it is about to take."""

    def on_step_end(self, state: TrainState) -> None:
        """After each optimiser step; `state.step` is the number of steps done."""

    def on_eval(self, state: TrainState, metrics: dict[str, dict[str, float]]) -> None:
        """After each evaluation, with {task: {metric: value}}."""

    def on_end(self, state: TrainState) -> None:
        """After the last step and the final evaluation and checkpoint."""
