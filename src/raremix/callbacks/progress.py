"""Training progress: step, loss, and a per-task accuracy summary (rare targets first).

On a terminal it is a live rich bar; piped or logged (stdout not a TTY) a bar draws
nothing until the end, so it prints plain lines instead: one per evaluation, and one
every tenth of the run between them.
"""

from __future__ import annotations

import time
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
from raremix.display import safe

if TYPE_CHECKING:
    from rich.console import Console

    from raremix.state import TrainState


class ProgressBar(Callback):
    """Shows training progress; the summary line names the rare tasks and the mean of the rest."""

    def __init__(self, every: int = 10, console: Console | None = None, header: str = "") -> None:
        """`header` (rich markup) is printed when training starts: after every check passed."""
        from rich.console import Console

        self.every = every
        self.header = header
        self.console = console or Console()
        self.summary = ""
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._t0 = 0.0

    def on_start(self, state: TrainState) -> None:
        self._t0 = time.perf_counter()
        if self.header:
            self.console.print(self.header)
        if not self.console.is_terminal:
            return  # plain lines, from on_step_end / on_eval
        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}", markup=False),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self._bar.start()
        self._task = self._bar.add_task(
            "train", total=state.cfg.steps, completed=state.step, info=""
        )

    def on_step_end(self, state: TrainState) -> None:
        cfg = state.cfg
        # between evaluations (which print their own line from on_eval), every tenth of the run
        evaluates = state.step % cfg.eval_every == 0 or state.step == cfg.steps
        if self._bar is None and state.step % max(1, cfg.steps // 10) == 0 and not evaluates:
            self._line(state)
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
        if self._bar is None:
            self._line(state)

    def _line(self, state: TrainState) -> None:
        elapsed = time.perf_counter() - self._t0
        loss = "-" if state.step == 0 else f"{state.loss:.3f}"
        self.console.print(
            f"step {state.step:,}/{state.cfg.steps:,}  loss {loss}{self.summary}  {elapsed:.0f}s",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )

    def on_end(self, state: TrainState) -> None:
        if self._bar is not None:
            self._bar.stop()


def accuracy_summary(metrics: dict[str, dict[str, float]], rare: list[str]) -> str:
    """'rare modadd 0.42 | common 0.97 (9 tasks)' — or the mean over all tasks when none is rare."""
    common = [m["acc"] for t, m in metrics.items() if t not in rare]
    parts = [f"{safe(t, markup=False)} {metrics[t]['acc']:.2f}" for t in rare if t in metrics]
    mean = sum(common) / len(common) if common else float("nan")
    label = "common" if rare else "mean acc"
    return (
        f"rare {' '.join(parts)} | " if parts else ""
    ) + f"{label} {mean:.2f} ({len(common)} tasks)"
