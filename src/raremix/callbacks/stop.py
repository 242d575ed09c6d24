"""Stop a run once it has learned its target tasks (`stop_when_learned`).

After each evaluation the callback applies the run's `LearnedRule` to each watched
task's accuracy so far; once every one has an onset it writes why it stopped as rows
(`onset_step` per task, `stopped_learned` for the run) and sets `state.stop`, so the
trainer checkpoints and ends. A rerun of the same config resumes from that checkpoint,
finds the rule already held in the run's rows, and stops again without training.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from raremix.callbacks import Callback
from raremix.errors import RaremixError
from raremix.results.onset import LearnedRule, onset_index
from raremix.results.rows import load_rows

if TYPE_CHECKING:
    from raremix.state import TrainState


class StopWhenLearned(LearnedRule):
    """End the run once every listed task is learned by the rule."""

    tasks: list[str] = Field(min_length=1)
    """Tasks that must all be learned (names from the run's `tasks`)."""


class StopWhenLearnedCallback(Callback):
    """Sets `state.stop` once every watched task satisfies the rule."""

    def __init__(self, cfg: StopWhenLearned) -> None:
        self.cfg = cfg
        self.steps: list[int] = []
        self.acc: dict[str, list[float]] = {t: [] for t in cfg.tasks}

    all_ranks = True  # so that every rank refuses DDP below, not rank 0 alone

    def on_start(self, state: TrainState) -> None:
        if state.dist.world_size > 1:  # it decides on rank 0's evaluations; the others would wait
            raise RaremixError(
                "stop_when_learned runs in one process only: remove it or run without torchrun"
            )
        # a resumed run: the evaluations before its checkpoint are in its rows
        for row in load_rows(state.writer.path, missing_ok=True):
            if row["metric"] == "acc" and row["task"] in self.acc:
                self.acc[row["task"]].append(row["value"])
                if not self.steps or self.steps[-1] != row["step"]:
                    self.steps.append(row["step"])
        if self._onsets() is not None and state.step > 0:
            state.stop = True
            state.facts["stopped"] = self._reason()

    def on_eval(self, state: TrainState, metrics: dict[str, dict[str, float]]) -> None:
        self.steps.append(state.step)
        for task, acc in self.acc.items():
            acc.append(metrics[task]["acc"])
        onsets = self._onsets()
        if onsets is None:
            return
        why = {t: {"onset_step": float(s)} for t, s in onsets.items()}
        state.writer.log_metrics(state.step, {**why, "": {"stopped_learned": 1.0}})
        state.stop = True
        state.facts["stopped"] = self._reason()

    def _onsets(self) -> dict[str, int] | None:
        """{task: onset step} when every watched task has one, else None."""
        found = {t: onset_index(acc, self.cfg) for t, acc in self.acc.items()}
        if any(i is None for i in found.values()):
            return None
        return {t: self.steps[i] for t, i in found.items() if i is not None}

    def _reason(self) -> str:
        return (
            f"learned {', '.join(self.cfg.tasks)} (acc ≥ {self.cfg.threshold} "
            f"at {self.cfg.consecutive} consecutive evaluations)"
        )
