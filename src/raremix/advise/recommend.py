"""The search: every (piloted size, up-weighting factor of the targets) scored by the fitted
law, and the cheapest one whose lower band reaches the target on every rare task while the
common tasks lose no more than the tolerance against the natural mix at that size.

Candidates stay inside what the pilot saw (its sizes; task shares within the pilot's
range), so the law interpolates and never extrapolates.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from raremix.advise.law import LawFit, band
from raremix.mixture.weights import SourceStats, natural, upweight

FACTORS = (1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 70, 100)
"""The up-weighting factors searched (within the pilot's range of shares)."""
SLACK = 1.02
"""A candidate's shares may exceed the pilot's range by 2% (rounding of the grid)."""


@dataclass(frozen=True)
class Goal:
    """What the recommendation must satisfy (from the inventory)."""

    targets: list[str]
    target_acc: float
    common_tolerance: float
    band: float = 0.8
    max_flops: float | None = None
    max_minutes: float | None = None


@dataclass(frozen=True)
class Size:
    """A piloted model size with its cost, as measured in the pilot runs."""

    name: str
    params: float
    flops: float
    minutes: float


@dataclass
class Candidate:
    """One (size, factor) with the law's predictions and whether it meets the goal."""

    size: str
    params: float
    flops: float
    minutes: float
    factor: float
    target_share: float
    """Total share of the targets in the mix."""
    rare: tuple[float, float, float]
    """Mean accuracy over the targets: (prediction, band low, band high)."""
    rare_low_worst: float
    """The lowest band edge among the targets (what must reach target_acc)."""
    common: tuple[float, float, float]
    """Mean accuracy over the common tasks: (prediction, band low, band high)."""
    drop: tuple[float, float, float]
    """Common accuracy lost vs the natural mix at this size: (prediction, low, high)."""
    feasible: bool = False
    why: str = ""
    """Why it does not meet the goal ('' when it does)."""

    @property
    def mix(self) -> str:
        return "natural" if self.factor == 1 else f"rare ×{self.factor:g}"


@dataclass
class Advice:
    """The recommendation (None when nothing meets the goal), the alternatives and a message."""

    chosen: Candidate | None
    message: str
    candidates: list[Candidate] = field(default_factory=list)
    alternatives: list[Candidate] = field(default_factory=list)
    """Per size: the natural mix and the best designed mix (the core question, side by side)."""
    lines: list[str] = field(default_factory=list)
    """The bigger-model-vs-designed-mix comparison, in words."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def mix_shares(
    names: list[str], counts: np.ndarray, targets: list[str], factor: float
) -> np.ndarray:
    """Each task's share when the targets get `factor` × their natural share."""
    stats = SourceStats(tuple(names), np.asarray(counts, dtype=np.float64))
    if factor == 1:
        return natural(stats)
    return upweight(stats, tasks=targets, factor=factor)


def candidates(
    law: LawFit,
    sizes: list[Size],
    counts: np.ndarray,
    goal: Goal,
    factors: tuple[float, ...] = FACTORS,
) -> list[Candidate]:
    """Every (size, factor) inside the pilot's share range, scored by the law."""
    names = list(law.tasks)
    t_idx = [names.index(t) for t in goal.targets]
    c_idx = [i for i in range(len(names)) if i not in t_idx]
    lo_ok, hi_ok = law.share_range[:, 0] / SLACK, law.share_range[:, 1] * SLACK
    grid: list[tuple[float, np.ndarray]] = []
    for f in factors:
        try:
            s = mix_shares(names, counts, goal.targets, f)
        except Exception:  # the targets would take the whole mix
            continue
        if f == 1 or np.all((s >= lo_ok) & (s <= hi_ok)):
            grid.append((f, s))
    assert grid and grid[0][0] == 1, "the natural mix comes first: drops are measured from it"
    shares = np.stack([s for _, s in grid])  # (F, tasks)
    out: list[Candidate] = []
    for size in sizes:
        params = np.full(len(grid), size.params)
        mean, draws = law.predict(shares, params)  # (F, tasks), (B, F, tasks)
        rare_m, rare_d = _avg(mean, draws, t_idx)
        com_m, com_d = _avg(mean, draws, c_idx)
        drop_m, drop_d = com_m[0] - com_m, com_d[:, :1] - com_d  # grid[0] is the natural mix
        worst = band(draws[:, :, t_idx], goal.band)[0].min(axis=-1)
        worst = np.minimum(worst, mean[:, t_idx].min(axis=-1))
        for j, (f, s) in enumerate(grid):
            cand = Candidate(
                size.name, size.params, size.flops, size.minutes, float(f),
                float(s[t_idx].sum()), _triple(rare_m[j], rare_d[:, j], goal.band),
                float(worst[j]), _triple(com_m[j], com_d[:, j], goal.band),
                _triple(drop_m[j], drop_d[:, j], goal.band),
            )  # fmt: skip
            cand.why = _why(cand, goal)
            cand.feasible = not cand.why
            out.append(cand)
    return out


def _avg(mean: np.ndarray, draws: np.ndarray, idx: list[int]) -> tuple[np.ndarray, np.ndarray]:
    if not idx:
        return np.ones(mean.shape[0]), np.ones(draws.shape[:2])
    return mean[:, idx].mean(axis=-1), draws[:, :, idx].mean(axis=-1)


def _triple(point: float, draws: np.ndarray, coverage: float) -> tuple[float, float, float]:
    lo, hi = band(draws, coverage)
    p = float(point)
    return p, min(float(lo), p), max(float(hi), p)


def _why(c: Candidate, goal: Goal) -> str:
    if goal.max_flops is not None and c.flops > goal.max_flops:
        return f"over the FLOP budget ({c.flops:.3g} > {goal.max_flops:.3g})"
    if goal.max_minutes is not None and c.minutes > goal.max_minutes:
        return f"over the time budget ({c.minutes:.1f} > {goal.max_minutes:g} min)"
    if c.rare_low_worst < goal.target_acc:
        return f"rare band low {c.rare_low_worst:.2f} < target {goal.target_acc:g}"
    if c.drop[0] > goal.common_tolerance:
        return f"common tasks drop {c.drop[0]:.3f} > tolerance {goal.common_tolerance:g}"
    return ""


def recommend(law: LawFit, sizes: list[Size], counts: np.ndarray, goal: Goal) -> Advice:
    """The cheapest feasible candidate (fewest FLOPs, then the smallest factor), or a message
    saying which constraint no candidate meets and what to change."""
    cands = candidates(law, sizes, counts, goal)
    feasible = [c for c in cands if c.feasible]
    alts = _alternatives(cands, sizes)
    lines = _core_question(cands, sizes)
    if feasible:
        best = min(feasible, key=lambda c: (c.flops, c.factor))
        # the drop printed after a minus sign: never negative, and + 0.0 makes -0.0 plain 0.0
        msg = (
            f"train {best.size} with {best.mix} (the targets {best.target_share:.1%} of the mix): "
            f"rare acc {best.rare[0]:.2f} [{best.rare[1]:.2f}, {best.rare[2]:.2f}], "
            f"common {best.common[0]:.2f} (−{max(best.drop[0], 0.0) + 0.0:.3f} vs natural)"
        )
        return Advice(best, msg, cands, alts, lines)
    return Advice(None, _infeasible(cands, goal), cands, alts, lines)


def _infeasible(cands: list[Candidate], goal: Goal) -> str:
    """Which constraint binds, the closest candidate, and what to change."""
    in_budget = [c for c in cands if not c.why.startswith("over the")]
    reach = [c for c in in_budget if c.rare_low_worst >= goal.target_acc]
    target = f"rare acc ≥ {goal.target_acc:g} (band low)"
    if not in_budget:
        cheapest = min(cands, key=lambda c: c.flops)
        return f"no piloted size fits the budget (cheapest: {cheapest.size}, {cheapest.why}): raise the budget or pilot smaller sizes"
    if reach:
        best = min(reach, key=lambda c: c.drop[0])
        return (
            f"no candidate reaches {target} while holding the common tasks: the closest, {best.size} with "
            f"{best.mix}, drops them {best.drop[0]:.3f} (tolerance {goal.common_tolerance:g}): "
            "raise common_tolerance or pilot larger sizes"
        )
    big = [c for c in cands if c.why.startswith("over the")]
    best = max(in_budget, key=lambda c: c.rare_low_worst)
    hint = (
        "raise the budget (a size over it might reach it)"
        if any(c.rare_low_worst >= goal.target_acc for c in big)
        else "lower target_acc, or pilot larger sizes or factors"
    )
    return (
        f"no candidate reaches {target}: the best, {best.size} with {best.mix}, predicts "
        f"{best.rare[0]:.2f} [{best.rare[1]:.2f}, {best.rare[2]:.2f}]: {hint}"
    )


def _alternatives(cands: list[Candidate], sizes: list[Size]) -> list[Candidate]:
    """Per size: the natural mix, and the designed mix to compare it with (the cheapest
    feasible factor, else the one with the highest rare band low that holds the common tasks)."""
    out: list[Candidate] = []
    for size in sorted(sizes, key=lambda s: s.params):
        here = [c for c in cands if c.size == size.name]
        out += [c for c in here if c.factor == 1]
        designed = [c for c in here if c.factor != 1]
        if not designed:
            continue
        ok = [c for c in designed if c.feasible]
        holding = [c for c in designed if not c.why.startswith("common")]
        pick = (
            min(ok, key=lambda c: c.factor)
            if ok
            else max(holding or designed, key=lambda c: c.rare_low_worst)
        )
        out.append(pick)
    return out


def _core_question(cands: list[Candidate], sizes: list[Size]) -> list[str]:
    """Bigger model on the natural mix vs the smallest model on a designed mix, in words."""
    order = sorted(sizes, key=lambda s: s.params)
    nat = [c for s in order for c in cands if c.size == s.name and c.factor == 1 and c.feasible]
    smallest = order[0].name
    designed = [c for c in cands if c.size == smallest and c.factor != 1 and c.feasible]
    lines = []
    if nat:
        lines.append(
            f"Bigger model, natural mix: {nat[0].size} is the smallest that reaches the goal "
            f"({nat[0].flops:.3g} FLOPs)."
        )
    else:
        largest = max((c for c in cands if c.factor == 1), key=lambda c: c.params)
        lines.append(
            f"Bigger model, natural mix: no piloted size reaches the goal (largest, {largest.size}: "
            f"rare {largest.rare[0]:.2f} [{largest.rare[1]:.2f}, {largest.rare[2]:.2f}])."
        )
    if designed:
        d = min(designed, key=lambda c: c.factor)
        ratio = (
            f"; {nat[0].flops / d.flops:.1f}× fewer FLOPs than the natural-mix model" if nat else ""
        )
        lines.append(
            f"Small model, designed mix: {smallest} with {d.mix} reaches it ({d.flops:.3g} FLOPs{ratio})."
        )
    else:
        lines.append(f"Small model, designed mix: no factor brings {smallest} to the goal.")
    return lines
