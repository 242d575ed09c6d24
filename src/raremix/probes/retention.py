"""Retention: pure functions of a task's accuracy curve (steps, acc), as stored in metric rows.

- `time_to_learn`: the first step the curve reaches a threshold.
- `peak_final`: the best accuracy and the final one (mean of the last few evaluations).
- `acquire_then_forget`: each time the task is learned (≥ threshold) and then lost
  (falls `drop` below the peak since it was learned).
- `bwt`: backward transfer across the phases of a schedule (Lopez-Paz & Ranzato 2017).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from raremix.errors import RaremixError

if TYPE_CHECKING:
    import pandas as pd

Curve = Sequence[float] | npt.NDArray[np.floating]


@dataclass(frozen=True)
class Event:
    """One acquire-then-forget episode of a task's accuracy curve."""

    acquired_step: int
    """First evaluation at or above the threshold."""
    peak_step: int
    peak: float
    """Best accuracy between acquisition and forgetting."""
    forgot_step: int
    """First evaluation at or below peak − drop."""
    low: float
    """Lowest accuracy after forgetting, before the task was re-learned (or the run ended)."""
    relearned_step: int | None
    """When accuracy climbed back (≥ threshold and ≥ low + drop); None if it never did."""


def _arrays(steps: Curve, acc: Curve) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    s, a = np.asarray(steps, dtype=np.int64), np.asarray(acc, dtype=np.float64)
    if s.shape != a.shape or s.ndim != 1:
        raise RaremixError(f"steps {s.shape} and acc {a.shape} must be 1-D and the same length")
    if len(s) > 1 and (np.diff(s) <= 0).any():
        raise RaremixError("steps must be strictly increasing: sort the curve by step first")
    return s, a


def time_to_learn(steps: Curve, acc: Curve, threshold: float = 0.9) -> int | None:
    """The first step whose accuracy is ≥ threshold; None if the curve never gets there."""
    s, a = _arrays(steps, acc)
    hit = np.flatnonzero(a >= threshold)
    return int(s[hit[0]]) if len(hit) else None


@dataclass(frozen=True)
class PeakFinal:
    peak: float
    peak_step: int
    final: float
    """Mean of the last `window` evaluations (single checkpoints are noisy)."""

    @property
    def lost(self) -> float:
        """How much of the peak is gone at the end."""
        return self.peak - self.final


def peak_final(steps: Curve, acc: Curve, window: int = 1) -> PeakFinal:
    """Peak accuracy (and where), and the final accuracy averaged over the last `window` evaluations."""
    s, a = _arrays(steps, acc)
    if not len(a):
        raise RaremixError("empty accuracy curve: it needs at least one evaluation")
    i = int(np.argmax(a))
    return PeakFinal(float(a[i]), int(s[i]), float(a[-max(1, window) :].mean()))


def acquire_then_forget(
    steps: Curve, acc: Curve, threshold: float = 0.5, drop: float = 0.2
) -> list[Event]:
    """Episodes where accuracy rises to ≥ threshold and later falls to ≤ (peak since then) − drop.

    After a fall, a new episode starts only when accuracy climbs back to ≥ threshold and
    ≥ low + drop (hysteresis, so evaluation noise near a level is not counted twice).
    """
    s, a = _arrays(steps, acc)
    events: list[Event] = []
    learned = False
    acquired = peak_i = 0
    low_i: int | None = None  # set while forgotten
    forgot_i = 0
    for i, v in enumerate(a):
        if learned:
            if v > a[peak_i]:
                peak_i = i
            if v <= a[peak_i] - drop:
                learned, forgot_i, low_i = False, i, i
        elif low_i is not None:
            if v < a[low_i]:
                low_i = i
            if v >= threshold and v >= a[low_i] + drop:
                events.append(
                    Event(
                        int(s[acquired]),
                        int(s[peak_i]),
                        float(a[peak_i]),
                        int(s[forgot_i]),
                        float(a[low_i]),
                        int(s[i]),
                    )
                )
                learned, acquired, peak_i, low_i = True, i, i, None
        elif v >= threshold:
            learned, acquired, peak_i = True, i, i
    if low_i is not None:
        events.append(
            Event(
                int(s[acquired]),
                int(s[peak_i]),
                float(a[peak_i]),
                int(s[forgot_i]),
                float(a[low_i]),
                None,
            )
        )
    return events


def bwt(r: npt.ArrayLike) -> float:
    """Backward transfer 1/(T−1) Σ_{i<T} (R[T,i] − R[i,i]) of a (T, T) matrix R[phase, task]:
    accuracy on phase i's task after the last phase minus right after phase i (negative = forgetting)."""
    m = np.asarray(r, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] < 2:
        raise RaremixError(f"bwt needs a square matrix of at least 2 phases, got shape {m.shape}")
    t = m.shape[0]
    return float(np.mean([m[-1, i] - m[i, i] for i in range(t - 1)]))


def phase_matrix(
    steps: Curve, curves: Mapping[str, Curve], phase_ends: Sequence[int], phase_tasks: Sequence[str]
) -> npt.NDArray[np.float64]:
    """R[i, j]: accuracy on `phase_tasks[j]` at the last evaluation at or before `phase_ends[i]`."""
    s = np.asarray(steps, dtype=np.int64)
    if len(phase_ends) != len(phase_tasks):
        raise RaremixError(
            f"{len(phase_ends)} phase ends for {len(phase_tasks)} phase tasks: give one of each per phase"
        )
    rows = []
    for end in phase_ends:
        k = int(np.searchsorted(s, end, side="right")) - 1
        if k < 0:
            raise RaremixError(f"no evaluation at or before phase end {end}: evaluate more often")
        rows.append([float(np.asarray(curves[t], dtype=np.float64)[k]) for t in phase_tasks])
    return np.array(rows)


def retention_table(
    rows: pd.DataFrame,
    metric: str = "acc",
    learn: float = 0.9,
    threshold: float = 0.5,
    drop: float = 0.2,
    window: int = 3,
) -> pd.DataFrame:
    """Per (run, task) of metric rows: time_to_learn, peak, peak_step, final, forget_events, first_forget_step."""
    import pandas as pd

    out = []
    sel = rows[rows["metric"] == metric].sort_values("step")
    for (run, task), g in sel.groupby(["run", "task"], sort=True):
        steps, acc = g["step"].to_numpy(), g["value"].to_numpy()
        pf = peak_final(steps, acc, window)
        ev = acquire_then_forget(steps, acc, threshold, drop)
        out.append(
            {
                "run": run,
                "task": task,
                "time_to_learn": time_to_learn(steps, acc, learn),
                "peak": pf.peak,
                "peak_step": pf.peak_step,
                "final": pf.final,
                "forget_events": len(ev),
                "first_forget_step": ev[0].forgot_step if ev else None,
            }
        )
    return pd.DataFrame(out)
