"""Compute-equivalence: what a designed mix is worth in training FLOPs, with a seed-bootstrap CI.

A declared target — every rare task learned (the declared rule) *and* each common task
within `tolerance` of its natural-mix level — is an event with a time in FLOPs, censored
at the run's cap like FLOPs-to-learn. Each option (an arm: a size × mix, possibly a view)
needs the Kaplan–Meier median of those times. The compute-equivalence is

    FLOPs of the cheapest natural-mix option ÷ FLOPs of the cheapest designed option,

so 4× says the best designed mix reaches the target with a quarter of the compute the
best of bigger / longer needs. Its CI resamples seeds within every arm (scipy's
bootstrap, percentile); a CI that includes 1 is printed "≈ (indistinguishable)".
It replaced the scale-equivalence factor, which compared mean accuracies at equal tokens
and ignored what the designed mix cost the common tasks. A study that declares no
`hypotheses.target` gets the default `Target()`: each run's rare tasks learned by the
declared (else default) rule, each common task within 0.05 of its natural-mix level.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field

from raremix.configbase import Config, load
from raremix.errors import RaremixError, unknown
from raremix.results.onset import LearnedRule, onset_index

if TYPE_CHECKING:
    import pandas as pd

LOG_CLIP = 30.0
"""|log ratio| beyond this (a factor of 1e13) stands for "one side never reached the target"."""


class Target(Config):
    """What an option must reach: the rare tasks learned, the common tasks kept."""

    rare: list[str] | None = None
    """Tasks that must be learned (declared rule); default: each run's rare tasks."""
    tolerance: float = Field(0.05, ge=0, le=1)
    """Each common task's accuracy may lie at most this far below its natural-mix level."""


def declared_target(spec: dict[str, Any]) -> tuple[LearnedRule, Target]:
    """A study's `hypotheses.learned` and `hypotheses.target` (the defaults where absent)."""
    raw = spec.get("hypotheses") or {}
    rule = load(LearnedRule, raw.get("learned") or {}, "hypotheses.learned")
    target = load(Target, raw.get("target") or {}, "hypotheses.target")
    return rule, target


def target_text(target: Target, rule: LearnedRule, rare: list[str]) -> str:
    """The target in words, e.g. 'compare learned (acc ≥ 0.9 at 2 consecutive evaluations)
    and each common task within 0.05 of its natural-mix level at that size'."""
    return (
        f"{', '.join(target.rare or rare)} learned (acc ≥ {rule.threshold} at "
        f"{rule.consecutive} consecutive evaluations) and each common task within "
        f"{target.tolerance} of its natural-mix level at that size"
    )


def is_natural(config: dict[str, Any] | str) -> bool:
    """A run on the natural mix: strategy natural (or none), drawn i.i.d. (no stratified mode,
    no source spaced by `every`/`window`), no schedule, curriculum or adaptive rule."""
    c = json.loads(config) if isinstance(config, str) else config
    mix = c.get("mixture") or {}
    if not isinstance(mix, dict):
        return False
    sources = [s for s in mix.get("sources") or [] if isinstance(s, dict)]
    return (
        mix.get("strategy") in (None, "natural")
        and mix.get("mode", "iid") == "iid"
        and not any(s.get("every") or s.get("window") for s in sources)
        and not mix.get("schedule")
        and not mix.get("curriculum")
        and not c.get("adaptive")
    )


def check_target(target: Target, tasks: list[str]) -> None:
    """Raise ValueError when the target names a task the study does not train."""
    for name in target.rare or []:
        if name not in tasks:
            raise ValueError(f"target: {unknown('task', name, tasks)}")


def natural_levels(final: pd.DataFrame, runs: pd.DataFrame) -> dict[float, dict[str, float]]:
    """{params: {common task: mean final acc}} over the natural-mix runs of each size."""
    nat = {str(r) for r, c in zip(runs.run_id, runs.config, strict=True) if is_natural(c)}
    common = final[(final.role == "common") & final.run_id.isin(nat)]
    return {
        float(str(p)): {str(k): float(v) for k, v in g.groupby("task")["acc"].mean().items()}
        for p, g in common.groupby("params")
    }


def target_times(
    curves: pd.DataFrame, final: pd.DataFrame, runs: pd.DataFrame, rule: LearnedRule, target: Target
) -> pd.DataFrame:
    """Per run: the FLOPs at which the target is first met (`reached`), else its cap.

    Met at the first evaluation, at or after every rare task's onset, where each common task
    is within `tolerance` of the natural-mix level at the run's size (the nearest size with
    natural runs when its own has none); only evaluations within the cap count, and the rule
    must be confirmed by then."""
    import pandas as pd

    from raremix.studies.flops_to_learn import run_caps, run_flops_per_step

    levels = natural_levels(final, runs)
    if not levels:
        raise RaremixError(
            "compute-equivalence needs natural-mix runs to set the common tasks' levels"
        )
    fps, caps = run_flops_per_step(runs), run_caps(runs)
    info = runs.set_index("run_id")
    out = []
    for run_id, c in curves.groupby("run_id", sort=False):
        r: Any = info.loc[run_id]
        rare = target.rare or list(r["rare"])
        wide = c.pivot_table(index="step", columns="task", values="acc").sort_index()
        per_step, cap = fps[str(run_id)], caps[str(run_id)]
        wide = wide[wide.index * per_step <= cap]
        missing = [t for t in rare if t not in wide]
        if missing:
            raise RaremixError(f"target: run {run_id} has no curve for task '{missing[0]}'")
        size = min(levels, key=lambda p: abs(math.log(p / float(r["params"]))))
        ok = np.ones(len(wide), dtype=bool)
        for task, level in levels[size].items():
            if task in wide:
                ok &= wide[task].to_numpy() >= level - target.tolerance
        onsets = [onset_index(wide[t].to_numpy(), rule) for t in rare]
        hit = None
        if all(i is not None for i in onsets):
            start = max(i for i in onsets if i is not None)
            after = np.flatnonzero(ok[start:])
            hit = start + int(after[0]) if len(after) else None
        reached = hit is not None
        t = (
            float(wide.index[hit] * per_step)
            if hit is not None
            else min(cap, float(wide.index[-1] * per_step))
        )
        out.append(
            {
                "run_id": run_id,
                "group": r["group"],
                "params": float(r["params"]),
                "natural": is_natural(r["config"]),
                "flops": t,
                "reached": reached,
            }
        )
    return pd.DataFrame(out)


def km_median(t: np.ndarray, e: np.ndarray) -> float:
    """The Kaplan–Meier median when censoring comes only at or after the last event (each
    arm followed to one cap): the first time more than half the seeds have met it (lifelines'
    `median_survival_time_`, where S(t) < 0.5); inf if never."""
    x = np.where(np.asarray(e, bool), np.asarray(t, float), np.inf)
    return float(np.sort(x)[len(x) // 2])


@dataclass(frozen=True)
class ComputeEquivalence:
    """FLOPs of the cheapest natural option ÷ FLOPs of the cheapest designed option."""

    ratio: float
    ci: tuple[float, float]
    natural: str
    """The cheapest natural-mix option (arm), '' when none reached the target."""
    designed: str
    natural_flops: float
    designed_flops: float

    @property
    def indistinguishable(self) -> bool:
        """The CI includes 1 (or is undefined)."""
        lo, hi = self.ci
        return not (lo > 1 or hi < 1)

    def text(self) -> str:
        """'≈ (indistinguishable) 1.2× [0.5×, 3.1×]' or '4.0× [1.8×, 9.5×]' (∞: never reached)."""
        if math.isnan(self.ratio):
            return "undefined (no option reached the target)"
        lo, hi = self.ci
        if math.isnan(lo) or math.isnan(hi):
            return f"≈ (indistinguishable: an arm has one seed, so no CI) {_x(self.ratio)}"
        said = f"{_x(self.ratio)} [{_x(lo)}, {_x(hi)}]"
        return f"≈ (indistinguishable) {said}" if self.indistinguishable else said


def _x(v: float) -> str:
    if math.isinf(v):
        return "∞" if v > 0 else "0×"
    return f"{v:.2g}×"


def compute_equivalence(
    times: pd.DataFrame, *, n_resamples: int = 999, seed: int = 0, alpha: float = 0.05
) -> ComputeEquivalence:
    """From `target_times` (columns group, natural, flops, reached): the ratio and its
    seed-bootstrap (1 − alpha) percentile CI, resampling seeds within each arm."""
    import scipy.stats

    arms = [
        (str(g), bool(d.natural.iloc[0]), d.flops.to_numpy(float), d.reached.to_numpy(bool))
        for g, d in times.groupby("group", sort=False)
    ]
    if not any(n for _, n, _, _ in arms) or all(n for _, n, _, _ in arms):
        raise RaremixError(
            "compute-equivalence needs at least one natural-mix and one designed arm"
        )

    def best(idx: tuple[np.ndarray, ...], natural: bool) -> tuple[float, str]:
        m = [
            (km_median(t[i], e[i]), g)
            for (g, n, t, e), i in zip(arms, idx, strict=True)
            if n == natural
        ]
        return min(m)

    def log_ratio(*idx: np.ndarray) -> float:
        idx = tuple(np.asarray(i, dtype=int) for i in idx)
        nat, des = best(idx, True)[0], best(idx, False)[0]
        if math.isinf(nat) and math.isinf(des):
            return 0.0  # neither reached: no information either way
        return float(np.clip(math.log(nat) - math.log(des), -LOG_CLIP, LOG_CLIP))

    full = tuple(np.arange(len(t)) for _, _, t, _ in arms)
    (nat, nat_arm), (des, des_arm) = best(full, True), best(full, False)
    if math.isinf(nat) and math.isinf(des):
        return ComputeEquivalence(math.nan, (math.nan, math.nan), "", "", nat, des)
    if all(len(i) >= 2 for i in full):
        res = scipy.stats.bootstrap(
            full,
            log_ratio,
            n_resamples=n_resamples,
            method="percentile",
            vectorized=False,
            paired=False,
            confidence_level=1 - alpha,
            rng=np.random.default_rng(seed),
        )
        lo, hi = (
            _unclip(float(res.confidence_interval.low)),
            _unclip(float(res.confidence_interval.high)),
        )
    else:
        lo, hi = math.nan, math.nan
    return ComputeEquivalence(
        nat / des,
        (lo, hi),
        nat_arm if math.isfinite(nat) else "",
        des_arm if math.isfinite(des) else "",
        nat,
        des,
    )


def _unclip(log_ratio: float) -> float:
    if log_ratio >= LOG_CLIP - 1e-9:
        return math.inf
    if log_ratio <= -LOG_CLIP + 1e-9:
        return 0.0
    return math.exp(log_ratio)


def option_flops(times: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Per arm: the KM median FLOPs to the target with lifelines' (1 − alpha) CI, and k of n."""
    import pandas as pd
    from lifelines import KaplanMeierFitter
    from lifelines.utils import median_survival_times

    rows = []
    for g, d in times.groupby("group", sort=False):
        kmf = KaplanMeierFitter(alpha=alpha).fit(d.flops, d.reached)
        ci = median_survival_times(kmf.confidence_interval_).to_numpy(float)[0]
        rows.append(
            {
                "group": g,
                "natural": bool(d.natural.iloc[0]),
                "params": d.params.iloc[0],
                "median": float(kmf.median_survival_time_),
                "ci_lower": float(ci[0]),
                "ci_upper": float(ci[1]),
                "reached": int(d.reached.sum()),
                "n": len(d),
            }
        )
    return pd.DataFrame(rows)
