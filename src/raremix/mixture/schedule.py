"""Schedules: target weights as a pure function of the step.

A schedule is a list of phases, each with a weight vector. A phase either switches
to its vector at its start (`anneal: none`) or moves there from the previous
phase's vector, linearly or along a half cosine, reaching it when the next phase
starts (or at the end of training). Rare-task replay lifts each replayed task to at
least `fraction` of every phase after the first one that trains it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from raremix.errors import RaremixError
from raremix.mixture.spec import ScheduleSpec
from raremix.mixture.weights import SourceStats, check_params, compute, lift, normalise


@dataclass(frozen=True)
class Schedule:
    """Compiled schedule: `weights_at(step)` is a pure function of the step."""

    starts: np.ndarray
    """First step of each phase (int64, starts[0] == 0)."""
    vectors: np.ndarray
    """(phases, sources) target weights each phase reaches; rows sum to 1."""
    anneals: tuple[str, ...]
    """Per phase: none | linear | cosine."""
    end: int | None = None
    """Total steps: where a last-phase anneal finishes."""

    def phase_at(self, step: int) -> int:
        """Index of the phase that contains `step`."""
        return int(np.searchsorted(self.starts, step, side="right")) - 1

    def phase_end(self, phase: int) -> int | None:
        """First step after `phase` (None for an open-ended last phase)."""
        return int(self.starts[phase + 1]) if phase + 1 < len(self.starts) else self.end

    def alpha(self, step: int) -> float:
        """How far the current phase's anneal has progressed at `step` (0..1)."""
        k = self.phase_at(step)
        if self.anneals[k] == "none":
            return 1.0
        end = self.phase_end(k)
        assert end is not None  # compile_schedule refuses an open-ended anneal
        t = min(max((step - int(self.starts[k])) / (end - int(self.starts[k])), 0.0), 1.0)
        return t if self.anneals[k] == "linear" else 0.5 - 0.5 * math.cos(math.pi * t)

    def weights_at(self, step: int) -> np.ndarray:
        """Target weights at `step` (a read-only vector summing to 1)."""
        k = self.phase_at(step)
        if self.anneals[k] == "none":
            return self.vectors[k]
        a = self.alpha(step)
        out = (1.0 - a) * self.vectors[k - 1] + a * self.vectors[k]
        out.flags.writeable = False
        return out

    def cumulative(self, steps: int) -> np.ndarray:
        """Σ_{s < steps} weights_at(s), in closed form (O(phases × sources))."""
        total = np.zeros(self.vectors.shape[1])
        for k in range(len(self.starts)):
            start = int(self.starts[k])
            stop = min(int(self.starts[k + 1]), steps) if k + 1 < len(self.starts) else steps
            if stop <= start:
                break
            if self.anneals[k] == "none":
                total += (stop - start) * self.vectors[k]
                continue
            end = self.phase_end(k)
            assert end is not None
            m = min(stop, end) - start  # steps inside the anneal; later ones have arrived
            a = _alpha_sum(self.anneals[k], m, end - start)
            total += (m - a) * self.vectors[k - 1] + (a + (stop - start - m)) * self.vectors[k]
        return total


def _alpha_sum(kind: str, m: int, length: int) -> float:
    """Σ_{j < m} α(j / length) for a linear or cosine anneal."""
    if kind == "linear":
        return m * (m - 1) / (2 * length)
    theta = math.pi / length
    # Σ cos(jθ) for j < m, by the Lagrange identity
    cos_sum = math.sin(m * theta / 2) * math.cos((m - 1) * theta / 2) / math.sin(theta / 2)
    return 0.5 * m - 0.5 * cos_sum


def constant(weights: np.ndarray) -> Schedule:
    """A one-phase schedule that never changes."""
    vectors = np.asarray(weights, dtype=np.float64)[None, :].copy()
    vectors.flags.writeable = False
    return Schedule(np.zeros(1, dtype=np.int64), vectors, ("none",))


def compile_schedule(
    spec: ScheduleSpec | None,
    base: np.ndarray,
    stats: SourceStats,
    total_steps: int | None,
    where: str = "mixture.schedule",
) -> Schedule:
    """Turn a schedule spec into a `Schedule` over steps; `base` fills phases without weights."""
    if spec is None:
        return constant(base)
    if spec.unit == "fraction":
        if total_steps is None:
            raise RaremixError(
                f"{where}: phase starts are fractions of training: pass total_steps, or use unit: steps"
            )
        starts = [round(p.start * total_steps) for p in spec.phases]
    else:
        starts = [int(p.start) for p in spec.phases]
    for i in range(1, len(starts)):
        if starts[i] <= starts[i - 1]:
            raise RaremixError(
                f"{where}: phases {i - 1} and {i} both start at step {starts[i - 1]}: "
                "train for more steps or merge the phases"
            )
    if total_steps is not None and spec.phases[-1].anneal == "none" and starts[-1] >= total_steps:
        raise RaremixError(
            f"{where}: phases[{len(starts) - 1}] starts at step {starts[-1]}, but the run has "
            f"{total_steps} steps, so it would never run: start it earlier or train longer"
        )
    if spec.phases[-1].anneal != "none" and (total_steps is None or total_steps <= starts[-1]):
        raise RaremixError(
            f"{where}: the last phase anneals until the end of training, which must come after "
            f"its start (step {starts[-1]}): pass a larger total_steps"
        )
    rows = []
    for i, phase in enumerate(spec.phases):
        try:
            if phase.weights is not None:
                rows.append(normalise(np.array([phase.weights[n] for n in stats.names])))
            elif phase.strategy is not None:
                params = check_params(phase.strategy, phase.params, stats.names)
                rows.append(compute(phase.strategy, params, stats))
            else:
                rows.append(np.asarray(base, dtype=np.float64))
        except (RaremixError, ValueError) as err:
            raise RaremixError(f"{where}.phases[{i}]: {err}") from None
    vectors = np.stack(rows)
    if spec.replay is not None:
        vectors = _replay(vectors, stats.names, spec.replay.tasks, spec.replay.fraction, where)
    vectors.flags.writeable = False
    return Schedule(
        np.array(starts, dtype=np.int64), vectors, tuple(p.anneal for p in spec.phases), total_steps
    )


def _replay(
    vectors: np.ndarray, names: tuple[str, ...], tasks: list[str], fraction: float, where: str
) -> np.ndarray:
    """Lift each replayed task to >= `fraction` in every phase after its first trained phase."""
    first = {}
    for t in tasks:
        trained = np.flatnonzero(vectors[:, names.index(t)] > 0)
        if len(trained) == 0:
            raise RaremixError(
                f"{where}.replay: task '{t}' has zero weight in every phase: nothing to replay"
            )
        first[t] = int(trained[0])
    out = vectors.copy()
    for k in range(len(vectors)):
        idx = np.array([names.index(t) for t in tasks if first[t] < k], dtype=np.int64)
        if len(idx):
            try:
                out[k] = lift(vectors[k], idx, np.maximum(vectors[k, idx], fraction), "replay")
            except RaremixError as err:
                raise RaremixError(f"{where}.phases[{k}]: {err}") from None
    return out
