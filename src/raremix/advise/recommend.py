"""The search: every (piloted size, up-weighting factor of the targets) priced in FLOPs.

For each candidate the onset law gives the budget at which every target is learned with
the stated probability (FLOPs-to-learn's p-quantile, with a bootstrap band); the run is
trained to that budget, so "train longer" is part of every candidate rather than a grid
axis. A candidate is an *option* relative to the reference (the smallest size, the natural
mix, the base's steps): bigger, longer, remixed, or a combination. The recommendation is
the cheapest feasible one: within the pilot's budgets (the law interpolates, never
extrapolates), the FLOPs cap and the time budget, with the common tasks losing no more
than the tolerance against the natural mix at the same size and FLOPs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from raremix.advise.law import LawFit, band
from raremix.mixture.weights import SourceStats, natural, upweight

FACTORS = (1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 70, 100)
"""The up-weighting factors searched (within the pilot's range of shares)."""
SLACK = 1.02
"""A candidate's shares and budget may exceed the pilot's range by 2% (grid rounding)."""


@dataclass(frozen=True)
class Goal:
    """What the recommendation must satisfy (from the inventory)."""

    targets: list[str]
    probability: float
    """Each target learned by the recommended budget with at least this probability."""
    common_tolerance: float
    base_steps: int
    """The reference run's steps: more than this is 'longer'."""
    band: float = 0.8
    max_flops: float | None = None
    max_minutes: float | None = None


@dataclass(frozen=True)
class Size:
    """A piloted model size with its cost per step, as measured in the pilot runs."""

    name: str
    params: float
    flops_per_step: float
    sec_per_step: float


@dataclass(frozen=True)
class Laws:
    """The onset law of the targets and the accuracy law of the common tasks (None: none)."""

    onset: LawFit
    accuracy: LawFit | None


@dataclass
class Candidate:
    """One (size, factor), trained to the budget at which its targets are learned."""

    size: str
    params: float
    factor: float
    target_share: float
    """Total share of the targets in the mix."""
    option: str
    """'bigger', 'longer', 'remixed', a combination ('bigger + remixed'), or 'as is'."""
    steps: int
    flops: tuple[float, float, float]
    """FLOPs to learn every target with the stated probability: (fit, band low, band high)."""
    median: tuple[float, float, float]
    """The median FLOPs-to-learn of the slowest target: (fit, band low, band high)."""
    common: tuple[float, float, float]
    """Mean common-task accuracy at that budget: (prediction, band low, band high)."""
    drop: tuple[float, float, float]
    """Common accuracy lost vs the natural mix at this size and FLOPs: (prediction, low, high)."""
    minutes: float
    feasible: bool = False
    why: str = ""
    """Why it does not meet the goal ('' when it does)."""
    draws: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False, compare=False)
    """(B,) bootstrap draws of `flops[0]` (not saved)."""

    @property
    def mix(self) -> str:
        return "natural" if self.factor == 1 else f"rare ×{self.factor:g}"

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("draws")
        return {k: _finite(v) for k, v in out.items()}


@dataclass
class Advice:
    """The recommendation (None when nothing meets the goal), the options and a message."""

    chosen: Candidate | None
    message: str
    candidates: list[Candidate] = field(default_factory=list)
    options: list[Candidate] = field(default_factory=list)
    """Per option (bigger, longer, remixed, …): its cheapest candidate, side by side."""
    lines: list[str] = field(default_factory=list)
    """The compute-equivalence of mixing vs not, in words."""
    equivalence: tuple[float, float, float] | None = None
    """Cheapest natural-mix FLOPs ÷ cheapest designed-mix FLOPs: (fit, band low, band high)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "chosen": self.chosen.to_json() if self.chosen else None,
            "message": self.message,
            "options": [c.to_json() for c in self.options],
            "candidates": [c.to_json() for c in self.candidates],
            "lines": self.lines,
            "equivalence": _finite(self.equivalence),
        }


def _finite(v: Any) -> Any:
    """JSON has no inf: an unreachable budget is null."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, tuple | list):
        return [_finite(x) for x in v]
    return v


def mix_shares(
    names: list[str], counts: np.ndarray, targets: list[str], factor: float
) -> np.ndarray:
    """Each task's share when the targets get `factor` × their natural share."""
    stats = SourceStats(tuple(names), np.asarray(counts, dtype=np.float64))
    if factor == 1:
        return natural(stats)
    return upweight(stats, tasks=targets, factor=factor)


def option_of(size: Size, smallest: Size, factor: float, steps: int, base_steps: int) -> str:
    """The option a candidate is, relative to the smallest size on the natural mix at the
    base's steps."""
    parts = [
        name
        for name, on in (
            ("bigger", size.name != smallest.name),
            ("longer", steps > base_steps),
            ("remixed", factor != 1),
        )
        if on
    ]
    return " + ".join(parts) or "as is"


def candidates(
    laws: Laws,
    names: list[str],
    sizes: list[Size],
    counts: np.ndarray,
    goal: Goal,
    factors: tuple[float, ...] = FACTORS,
) -> list[Candidate]:
    """Every (size, factor) inside the pilot's share range, priced by the onset law."""
    t_idx = [names.index(t) for t in goal.targets]
    c_idx = [names.index(t) for t in laws.accuracy.tasks] if laws.accuracy else []
    grid: list[tuple[float, np.ndarray]] = []
    for f in factors:
        try:
            s = mix_shares(names, counts, goal.targets, f)
        except Exception:  # the targets would take the whole mix
            continue
        if f == 1 or _inside(laws, s, t_idx, c_idx):
            grid.append((f, s))
    assert grid and grid[0][0] == 1, "the natural mix comes first: drops are measured from it"
    shares = np.stack([s for _, s in grid])  # (F, tasks)
    smallest = min(sizes, key=lambda s: s.params)
    top = laws.onset.flops_range[1] * SLACK
    out: list[Candidate] = []
    for size in sorted(sizes, key=lambda s: s.params):
        params = np.full(len(grid), size.params)
        need, need_d = laws.onset.flops_for(goal.probability, shares[:, t_idx], params)
        med, med_d = laws.onset.flops_for(0.5, shares[:, t_idx], params)
        need, need_d = need.max(axis=-1), need_d.max(axis=-1)  # (F,), (B, F): the slowest target
        med, med_d = med.max(axis=-1), med_d.max(axis=-1)
        # a run is whole steps: round the budget up to the next step
        steps = np.ceil(np.minimum(need, 1e30) / size.flops_per_step).clip(1)
        budget = steps * size.flops_per_step
        common, drop = _common(laws, shares, c_idx, params, budget, goal.band)
        for j, (f, s) in enumerate(grid):
            n_steps = int(steps[j]) if math.isfinite(need[j]) else 0
            cand = Candidate(
                size.name,
                size.params,
                float(f),
                float(s[t_idx].sum()),
                option_of(size, smallest, float(f), n_steps, goal.base_steps),
                n_steps,
                _triple(budget[j] if math.isfinite(need[j]) else math.inf, need_d[:, j], goal.band),
                _triple(med[j], med_d[:, j], goal.band),
                common[j],
                drop[j],
                n_steps * size.sec_per_step / 60,
                draws=need_d[:, j],
            )
            cand.why = _why(cand, goal, top)
            cand.feasible = not cand.why
            out.append(cand)
    return out


def _inside(laws: Laws, s: np.ndarray, t_idx: list[int], c_idx: list[int]) -> bool:
    """Whether every task's share lies within what the pilot saw."""
    ok = True
    for law, idx in ((laws.onset, t_idx), (laws.accuracy, c_idx)):
        if law is not None and idx:
            lo, hi = law.share_range[:, 0] / SLACK, law.share_range[:, 1] * SLACK
            ok &= bool(np.all((s[idx] >= lo) & (s[idx] <= hi)))
    return ok


def _common(
    laws: Laws,
    shares: np.ndarray,
    c_idx: list[int],
    params: np.ndarray,
    flops: np.ndarray,
    coverage: float,
) -> tuple[list[tuple[float, float, float]], list[tuple[float, float, float]]]:
    """Per factor: mean common accuracy at its budget, and its drop vs the natural mix at
    the same size and budget (factor 1 is row 0 of `shares`)."""
    if laws.accuracy is None or not c_idx:
        one = [(1.0, 1.0, 1.0)] * len(shares)
        return one, [(0.0, 0.0, 0.0)] * len(shares)
    cs = shares[:, c_idx]
    mean, draws = laws.accuracy.predict(cs, params, flops)  # (F, c), (B, F, c)
    nat, nat_d = laws.accuracy.predict(np.broadcast_to(cs[:1], cs.shape), params, flops)
    m, d = mean.mean(axis=-1), draws.mean(axis=-1)
    dm, dd = nat.mean(axis=-1) - m, nat_d.mean(axis=-1) - d
    return (
        [_triple(m[j], d[:, j], coverage) for j in range(len(m))],
        [_triple(dm[j], dd[:, j], coverage) for j in range(len(m))],
    )


def _triple(point: float, draws: np.ndarray, coverage: float) -> tuple[float, float, float]:
    with np.errstate(invalid="ignore"):
        lo, hi = (float(v) for v in band(draws, coverage))
    p = float(point)
    lo, hi = (math.inf if math.isnan(v) else v for v in (lo, hi))  # inf − inf between draws
    return p, min(lo, p), max(hi, p)


def _why(c: Candidate, goal: Goal, top: float) -> str:
    f = c.flops[0]
    if not math.isfinite(f):
        return "the law says more FLOPs do not help: never learned"
    if f > top:
        return f"needs {f:.3g} FLOPs, beyond the pilot's budgets ({top / SLACK:.3g}): pilot longer"
    if goal.max_flops is not None and f > goal.max_flops:
        return f"over the FLOPs cap ({f:.3g} > {goal.max_flops:.3g})"
    if goal.max_minutes is not None and c.minutes > goal.max_minutes:
        return f"over the time budget ({c.minutes:.1f} > {goal.max_minutes:g} min)"
    if c.drop[0] > goal.common_tolerance:
        return f"common tasks drop {c.drop[0]:.3f} > tolerance {goal.common_tolerance:g}"
    return ""


def recommend(
    laws: Laws, names: list[str], sizes: list[Size], counts: np.ndarray, goal: Goal
) -> Advice:
    """The cheapest feasible candidate (fewest FLOPs, then the smallest factor), or a
    message saying which constraint no candidate meets and what to change."""
    cands = candidates(laws, names, sizes, counts, goal)
    feasible = [c for c in cands if c.feasible]
    options = _options(cands)
    lines, ratio = _equivalence(cands)
    if feasible:
        best = min(feasible, key=lambda c: (c.flops[0], c.factor))
        msg = (
            f"{best.option}: train {best.size} with {best.mix} for {best.steps:,} steps "
            f"({best.flops[0]:.3g} FLOPs [{best.flops[1]:.3g}, {best.flops[2]:.3g}]); every target "
            f"learned with probability ≥ {goal.probability:g}, common tasks "
            f"−{max(best.drop[0], 0.0) + 0.0:.3f} vs natural"
        )
        return Advice(best, msg, cands, options, lines, ratio)
    return Advice(None, _infeasible(cands, goal), cands, options, lines, ratio)


def _infeasible(cands: list[Candidate], goal: Goal) -> str:
    """Which constraint binds, the closest candidate, and what to change."""
    reach = [c for c in cands if math.isfinite(c.flops[0])]
    if not reach:
        return "no candidate's targets are learned at any budget by the law: pilot larger sizes or factors, or relax the learned rule"
    best = min(reach, key=lambda c: c.flops[0])
    fix = {
        "needs": "raise pilot.flops_cap (pilot longer) or pilot larger sizes or factors",
        "over the FLOPs": "raise max_flops",
        "over the time": "raise max_minutes",
        "common": "raise common_tolerance or pilot larger sizes",
    }
    hint = next((v for k, v in fix.items() if best.why.startswith(k)), "relax the goal")
    return (
        f"no candidate meets the goal (p ≥ {goal.probability:g}): the cheapest, {best.size} with "
        f"{best.mix}, {best.why}: {hint}"
    )


def _options(cands: list[Candidate]) -> list[Candidate]:
    """Per option: the cheapest feasible candidate, else its cheapest reachable one."""
    out = []
    for option in dict.fromkeys(c.option for c in cands):
        here = [c for c in cands if c.option == option]
        ok = [c for c in here if c.feasible] or here
        out.append(min(ok, key=lambda c: (c.flops[0], c.factor)))
    return sorted(out, key=lambda c: (not c.feasible, c.flops[0]))


def _equivalence(cands: list[Candidate]) -> tuple[list[str], tuple[float, float, float] | None]:
    """Compute-equivalence: the cheapest natural-mix option's FLOPs ÷ the cheapest
    designed-mix option's, with a bootstrap band (the draws share their refits)."""
    ok = [c for c in cands if c.feasible]
    nat = [c for c in ok if c.factor == 1]
    des = [c for c in ok if c.factor != 1]
    if not nat or not des:
        side = "natural-mix" if not nat else "designed-mix"
        return [f"compute-equivalence: no feasible {side} option to compare with"], None
    n, d = min(nat, key=lambda c: c.flops[0]), min(des, key=lambda c: c.flops[0])
    with np.errstate(invalid="ignore"):
        draws = np.min([c.draws for c in nat], axis=0) / np.min([c.draws for c in des], axis=0)
    lo, hi = band(draws[~np.isnan(draws)], 0.95)
    ratio = n.flops[0] / d.flops[0]
    said = "≈ (indistinguishable)" if lo <= 1 <= hi else f"{ratio:.2g}×"
    line = (
        f"compute-equivalence: cheapest natural mix ({n.size}, {n.flops[0]:.3g} FLOPs) ÷ cheapest "
        f"designed mix ({d.size} {d.mix}, {d.flops[0]:.3g}) = {ratio:.2g} [95% band {lo:.2g}, {hi:.2g}]: {said}"
    )
    return [line], (float(ratio), min(float(lo), ratio), max(float(hi), ratio))
