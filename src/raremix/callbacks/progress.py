"""A rich progress bar: step, loss, and a per-task accuracy summary (rare targets first)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from raremix.callbacks import Callback

if TYPE_CHECKING:
    from raremix.trainer import TrainState


class ProgressBar(Callback):
    """Shows training progress; the summary line names the rare tasks and the mean of the rest."""

    def __init__(self, every: int = 10) -> None:
        self.every = every
        self.summary = ""
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def on_start(self, state: TrainState) -> None:
        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            transient=False,
        )
        self._bar.start()
        self._task = self._bar.add_task(
            "train", total=state.cfg.steps, completed=state.step, info=""
        )

    def on_step_end(self, state: TrainState) -> None:
        if (
            self._bar is not None
            and self._task is not None
            and (state.step % self.every == 0 or state.step == state.cfg.steps)
        ):
            self._bar.update(
                self._task, completed=state.step, info=f"loss {state.loss:.3f}{self.summary}"
            )

    def on_eval(self, state: TrainState, metrics: dict[str, dict[str, float]]) -> None:
        self.summary = "  " + accuracy_summary(metrics, state.cfg.rare)

    def on_end(self, state: TrainState) -> None:
        if self._bar is not None:
            self._bar.stop()


def accuracy_summary(metrics: dict[str, dict[str, float]], rare: list[str]) -> str:
    """'rare modadd 0.42 | common 0.97 (9 tasks)' — or the mean over all tasks when none is rare."""
    common = [m["acc"] for t, m in metrics.items() if t not in rare]
    parts = [f"{t} {metrics[t]['acc']:.2f}" for t in rare if t in metrics]
    mean = sum(common) / len(common) if common else float("nan")
    label = "common" if rare else "mean acc"
    return (
        f"rare {' '.join(parts)} | " if parts else ""
    ) + f"{label} {mean:.2f} ({len(common)} tasks)"
