"""FLOPs-to-learn: when a run first learned a task, right-censored at the run's cap.

Rare-task learning is abrupt and its timing random, so the outcome of a run is a time
to an event: the FLOPs at which a declared rule ("accuracy ≥ 0.9 at 2 consecutive
evaluations") first holds, or, if it never does, the FLOPs it was followed to (a
right-censored time). These feed Kaplan–Meier curves and survival models.

A run's FLOPs grow linearly in its steps (fixed batch and sequence length), so a
curve in steps converts with the run's `facts.flops_per_step`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from pydantic import Field

from raremix.configbase import Config
from raremix.errors import RaremixError

if TYPE_CHECKING:
    import pandas as pd


class LearnedRule(Config):
    """When a task counts as learned: accuracy ≥ threshold at `consecutive` evaluations in a row."""

    threshold: float = Field(0.9, ge=0, le=1)
    """Accuracy (in [0, 1]) a held-out evaluation must reach."""
    consecutive: int = Field(2, ge=1)
    """Evaluations in a row that must reach it; the onset is the first of them."""


@dataclass(frozen=True)
class Onset:
    """A time to learn: the onset when `observed`, else the time the run was followed to."""

    step: float
    """Step of the onset (or of censoring)."""
    flops: float
    """Training FLOPs at the onset (or at censoring)."""
    observed: bool
    """True when the rule held; False: right-censored (not learned by `step`)."""


def onset_index(acc: Sequence[float] | np.ndarray, rule: LearnedRule) -> int | None:
    """Index of the first of `rule.consecutive` evaluations in a row at ≥ `rule.threshold`."""
    hit = np.asarray(acc, dtype=float) >= rule.threshold  # NaN counts as not learned
    run = 0
    for i, ok in enumerate(hit):
        run = run + 1 if ok else 0
        if run == rule.consecutive:
            return i - rule.consecutive + 1
    return None


def flops_to_learn(
    steps: Sequence[int] | np.ndarray,
    acc: Sequence[float] | np.ndarray,
    rule: LearnedRule,
    flops_per_step: float,
    cap: float | None = None,
) -> Onset:
    """The FLOPs at which `acc` (evaluated at `steps`) first satisfies `rule`, censored at `cap`.

    Only evaluations at or below `cap` FLOPs count, so the rule must be confirmed by
    then (an onset at the last evaluation with `consecutive` > 1 is censored). Unlearned,
    the time is the cap, or the last evaluation when the curve stops short of it: a run
    is censored where it was last followed, never later. `cap` defaults to the last
    evaluation.
    """
    s, a = np.asarray(steps, dtype=float), np.asarray(acc, dtype=float)
    if s.ndim != 1 or s.shape != a.shape or s.size == 0:
        raise RaremixError(
            f"an accuracy curve needs equal-length, non-empty steps and acc (got {s.size} and {a.size}): pass one task's evaluations"
        )
    if np.any(np.diff(s) <= 0):
        raise RaremixError(
            "an accuracy curve's steps must increase: sort it and drop repeated evaluations"
        )
    if not flops_per_step > 0:
        raise RaremixError(
            f"flops_per_step must be positive (got {flops_per_step}): use the run's facts.flops_per_step"
        )
    if cap is not None and not cap >= flops_per_step:
        raise RaremixError(
            f"FLOPs cap {cap:.3g} is below one training step ({flops_per_step:.3g} FLOPs): raise the cap"
        )
    x = s * flops_per_step
    within = x <= cap if cap is not None else np.ones(x.size, dtype=bool)
    i = onset_index(a[within], rule)
    if i is not None:
        return Onset(float(s[i]), float(x[i]), True)
    at = float(x[-1]) if cap is None else min(cap, float(x[-1]))  # followed to here
    return Onset(at / flops_per_step, at, False)


def run_onsets(
    rows: pd.DataFrame, rule: LearnedRule, flops_per_step: float, cap: float | None = None
) -> dict[str, Onset]:
    """{task: Onset} from one run's metric rows (its `acc` rows), each censored at `cap`."""
    acc = rows[(rows.metric == "acc") & (rows.task != "")]
    if acc.run.nunique() > 1:
        raise RaremixError("run_onsets reads one run's rows: select a single run first")
    return {
        str(task): flops_to_learn(g.step.to_numpy(), g.value.to_numpy(), rule, flops_per_step, cap)
        for task, g in acc.sort_values("step").groupby("task", sort=True)
    }
