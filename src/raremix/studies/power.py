"""How many seeds a study needs: each declared hypothesis's power from a pilot's spread.

`seeds_table(declaration, table)` takes the per-run metrics of a pilot (any finished run of
the study: calibration seeds are the usual pilot) and, per declared hypothesis, the sd of
its metric in the two arms, the effect to detect (the published one, else the pilot's
own, else a stated `effect`) and the seeds per arm a t-test needs for the stated power
(`raremix.stats.seeds_needed`, statsmodels). For "k of n learned" metrics the effect is
the difference of learned proportions, through Cohen's h (statsmodels).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from raremix.errors import RaremixError
from raremix.studies.hypotheses import Declaration, metric_kind
from raremix.studies.outcomes import arm_values


def seeds_table(
    declaration: Declaration,
    table: pd.DataFrame,
    *,
    power: float = 0.8,
    effect: float | None = None,
) -> pd.DataFrame:
    """One row per hypothesis: sd, effect used, seeds needed per arm, seeds declared."""
    from raremix.stats import min_seeds_for_exact, seeds_needed

    declared = len(declaration.confirmation_seeds)
    alpha = declaration.alpha / (len(declaration.tests) if declaration.family == "study" else 1)
    rows: list[dict[str, Any]] = []
    for h in declaration.tests:
        treat, ctrl = arm_values(table, h)
        row: dict[str, Any] = {"hypothesis": h.id, "metric": h.metric, "pilot seeds": len(treat)}
        observed = float(treat.mean() - ctrl.mean()) if len(treat) and len(ctrl) else math.nan
        wanted = effect if effect is not None else (h.published.effect if h.published else None)
        size = wanted if wanted is not None else observed
        row["effect"] = size
        row["source"] = "stated" if effect is not None else "published" if h.published else "pilot"
        needed: float
        floor = min_seeds_for_exact(alpha, paired=h.paired, direction=h.direction)
        try:
            if metric_kind(h.metric) == "survival":
                raise RaremixError(
                    "no seed estimate for FLOPs-to-learn here (a censored time, not a mean): "
                    "size it by the learned counts (rare_learned)"
                )
            if metric_kind(h.metric) == "count":
                needed, sd = _count_seeds(ctrl.mean(), size, alpha, power, h.direction), math.nan
            else:
                sd = _pooled_sd(treat, ctrl, h.paired)
                needed = seeds_needed(
                    size, sd, alpha=alpha, power=power, paired=h.paired, direction=h.direction
                )
            needed = max(needed, floor)
        except RaremixError as err:
            needed, sd = math.nan, math.nan
            row["note"] = str(err)
        row |= {"sd": sd, "seeds needed": needed, "seeds declared": declared}
        row["enough"] = bool(declared >= needed) if math.isfinite(needed) else False
        rows.append(row)
    return pd.DataFrame(rows)


def _pooled_sd(treat: pd.Series, ctrl: pd.Series, paired: bool) -> float:
    if paired:
        common = treat.index.intersection(ctrl.index)
        return float((treat.loc[common] - ctrl.loc[common]).std(ddof=1))
    if len(treat) < 2 or len(ctrl) < 2:
        raise RaremixError("a pilot needs ≥ 2 seeds in each arm to estimate the spread")
    var = ((len(treat) - 1) * treat.var() + (len(ctrl) - 1) * ctrl.var()) / (
        len(treat) + len(ctrl) - 2
    )
    return float(math.sqrt(var))


def _count_seeds(p_ctrl: float, effect: float, alpha: float, power: float, direction: str) -> int:
    """Seeds per arm to tell learned proportions p_ctrl + effect and p_ctrl apart (Cohen's h)."""
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    p_treat = min(max(p_ctrl + effect, 0.0), 1.0)
    h = abs(float(proportion_effectsize(p_treat, p_ctrl)))
    if not math.isfinite(h) or h == 0:
        raise RaremixError("the learned proportions do not differ: state an --effect to plan for")
    alternative = "two-sided" if direction == "two-sided" else "larger"
    n = NormalIndPower().solve_power(
        effect_size=h, alpha=alpha, power=power, alternative=alternative
    )
    return math.ceil(float(n))
