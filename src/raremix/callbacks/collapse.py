"""A collapse alarm: flag acquire-then-forget while a run trains, and optionally respond.

A watched task *collapses* when its held-out accuracy, having reached `acquired`, stays
below `below` for `consecutive` evaluations in a row (declared thresholds, checked at
every evaluation). Each alarm is written as metric rows (`collapse_alarm` = the accuracy
that set it off, `collapse_peak` = the best accuracy before it) and as an event in the
run's facts (`facts["events"]`, kept in summary.json). The task is re-armed once it is
re-acquired. An alarm can hand control to the mix:

* `respond: boost` — the collapsed task's share (now, or when it peaked if that was more)
  × `boost`, at most 0.5, from the next batch on (the others keep their proportions): a
  weight override that replaces any schedule from then on, kept in the sampler's state;
* `respond: adaptive` — an adaptive rule (`raremix.mixture.adaptive`, e.g. `protect`)
  takes over the mix from the first alarm on, as `AdaptiveCallback` runs it.

The alarms follow from the run's own accuracy rows, so a resumed run finds the ones
before its checkpoint there and goes on exactly as the uninterrupted run would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field, model_validator

from raremix.callbacks import Callback
from raremix.configbase import Config
from raremix.errors import RaremixError
from raremix.mixture.adaptive import AdaptiveConfig
from raremix.mixture.weights import lift
from raremix.results.rows import load_rows

if TYPE_CHECKING:
    from raremix.trainer import TrainState

MAX_BOOSTED_SHARE = 0.5
"""A boost never gives one task more than this share of the mix."""


class CollapseAlarm(Config):
    """The `collapse_alarm:` section: which tasks to watch, when to call it collapse, what to do."""

    tasks: list[str] | None = None
    """Tasks to watch; null: the run's `rare` tasks."""
    acquired: float = Field(0.8, gt=0, le=1)
    """Accuracy at which a task counts as acquired (the alarm is armed)."""
    below: float = Field(0.5, ge=0, lt=1)
    """Accuracy under which an acquired task counts as lost."""
    consecutive: int = Field(2, ge=1)
    """Evaluations in a row below `below` that raise the alarm."""
    respond: Literal["none", "boost", "adaptive"] = "none"
    """What an alarm does: only log it, boost the collapsed task, or hand the mix to `adaptive`."""
    boost: float = Field(4.0, gt=1)
    """respond: boost — the collapsed task's weight is multiplied by this (its share at most 0.5)."""
    adaptive: AdaptiveConfig | None = None
    """respond: adaptive — the rule that steers the mix from the first alarm on."""

    @model_validator(mode="after")
    def _consistent(self) -> CollapseAlarm:
        if self.below >= self.acquired:
            raise ValueError(
                f"below ({self.below:g}) must be under acquired ({self.acquired:g}): "
                "a task is lost only when it falls below where it was acquired"
            )
        if (self.respond == "adaptive") != (self.adaptive is not None):
            raise ValueError(
                "respond: adaptive goes with an adaptive: {rule: ...} section, and only with it: "
                "set both or neither"
            )
        return self


@dataclass(frozen=True)
class Collapse:
    """One alarm on one task's accuracy curve."""

    peak_step: int
    peak: float
    """Best accuracy since the task was (re-)acquired."""
    step: int
    """The evaluation that raised the alarm (the `consecutive`-th low one)."""
    acc: float


def collapses(steps: Sequence[int], acc: Sequence[float], rule: CollapseAlarm) -> list[Collapse]:
    """Every alarm `rule` raises on the curve: acquired (≥ acquired), then `consecutive`
    evaluations in a row below `below`; re-armed when the task is acquired again."""
    out: list[Collapse] = []
    armed, low, peak_i = False, 0, 0
    for i, a in enumerate(np.asarray(acc, dtype=float)):
        if a >= rule.acquired and not armed:
            armed, low, peak_i = True, 0, i
        if not armed:
            continue
        if a > acc[peak_i]:
            peak_i = i
        low = low + 1 if a < rule.below else 0
        if low == rule.consecutive:
            out.append(Collapse(int(steps[peak_i]), float(acc[peak_i]), int(steps[i]), float(a)))
            armed = False
    return out


class CollapseAlarmCallback(Callback):
    """Raises `CollapseAlarm`'s alarms at each evaluation; responds through the run's stream."""

    all_ranks = True  # so that every rank refuses a response it cannot share under torchrun

    def __init__(self, cfg: CollapseAlarm) -> None:
        self.cfg = cfg
        self.stream: Any = None  # the run's batch stream, set at the start
        self.steps: list[int] = []
        self.acc: dict[str, list[float]] = {}
        self.raised: dict[str, int] = {}  # alarms raised so far, per task
        self.delegate: Callback | None = None  # the adaptive rule, once it has taken over

    def on_start(self, state: TrainState) -> None:
        self.stream = state.module.stream
        if self.cfg.respond != "none" and state.dist.world_size > 1:
            raise RaremixError(
                "collapse_alarm.respond acts on rank 0's evaluations, so ranks would diverge under "
                "torchrun: set respond: none or run in one process"
            )
        tasks = list(state.cfg.rare) if self.cfg.tasks is None else self.cfg.tasks
        if not tasks:
            raise RaremixError(
                "collapse_alarm has no task to watch: set the run's rare tasks or collapse_alarm.tasks"
            )
        self.acc = {t: [] for t in tasks}
        # resumed: the evaluations before the checkpoint, and the alarms they raised
        for row in load_rows(state.writer.path, missing_ok=True):
            if row["metric"] == "acc" and row["task"] in self.acc:
                if not self.steps or self.steps[-1] != row["step"]:
                    self.steps.append(row["step"])
                self.acc[row["task"]].append(row["value"])
        events = []
        for task in tasks:
            found = collapses(self.steps, self.acc[task], self.cfg)
            self.raised[task] = len(found)
            events += [_event(task, c) for c in found]
        state.facts["events"] = sorted(events, key=lambda e: e["step"])
        if events and self.cfg.respond == "adaptive":
            self._hand_over(state)

    def on_step_end(self, state: TrainState) -> None:
        if self.delegate is not None:
            self.delegate.on_step_end(state)

    def on_eval(self, state: TrainState, metrics: dict[str, dict[str, float]]) -> None:
        self.steps.append(state.step)
        for task, acc in self.acc.items():
            acc.append(metrics[task]["acc"])
        for task, acc in self.acc.items():
            found = collapses(self.steps, acc, self.cfg)
            for c in found[self.raised[task] :]:
                self._alarm(state, task, c)
            self.raised[task] = len(found)

    def on_end(self, state: TrainState) -> None:
        if self.delegate is not None:
            self.delegate.on_end(state)

    def _alarm(self, state: TrainState, task: str, c: Collapse) -> None:
        state.writer.log_metrics(
            state.step, {task: {"collapse_alarm": c.acc, "collapse_peak": c.peak}}
        )
        state.facts.setdefault("events", []).append(_event(task, c))
        if self.cfg.respond == "boost":
            names = list(state.sampler.names)
            w = np.asarray(state.sampler.weights_at(state.step), dtype=np.float64)
            i = np.array([names.index(task)])
            # a task switched off (a schedule) is boosted from its share when it peaked
            was = max(float(w[i][0]), float(state.sampler.weights_at(c.peak_step)[i][0]))
            share = np.array([min(was * self.cfg.boost, max(MAX_BOOSTED_SHARE, float(w[i][0])))])
            self.stream.set_weights(lift(w, i, share, what="collapse_alarm boost"))
        elif self.cfg.respond == "adaptive" and self.delegate is None:
            self._hand_over(state)

    def _hand_over(self, state: TrainState) -> None:
        from raremix.callbacks.adaptive import AdaptiveCallback

        assert self.cfg.adaptive is not None
        self.delegate = AdaptiveCallback(self.cfg.adaptive, rare=list(self.acc))
        self.delegate.on_start(state)


def _event(task: str, c: Collapse) -> dict[str, Any]:
    return {
        "kind": "collapse",
        "task": task,
        "step": c.step,
        "acc": c.acc,
        "peak": c.peak,
        "peak_step": c.peak_step,
    }
