"""Declared hypotheses, evaluated: one typed outcome per hypothesis from the study's runs.

`per_run_metrics` turns the final table and the learning curves into one row per run
(its axis labels, seed and every metric a hypothesis may name); `evaluate` selects each
hypothesis's two arms, compares them with `raremix.stats` (a permutation test on means,
Barnard's exact test on learned counts, the restricted mean of log10 FLOPs-to-learn by
permutation with the log-rank p beside it), applies Holm's correction within the family and
decides `supported` / `contradicted` / `inconclusive` / `out of regime` (PROTOCOL §4–5).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from raremix.errors import RaremixError
from raremix.results.onset import LearnedRule, onset_index
from raremix.results.store import label_column
from raremix.studies.hypotheses import Declaration, Hypothesis, metric_kind


@dataclass(frozen=True)
class HypothesisResult:
    """One declared hypothesis and what the runs said about it."""

    id: str
    claim: str
    metric: str
    treatment: str
    """The treatment arm as 'axis=label, …'."""
    control: str
    direction: str
    outcome: str
    """supported | contradicted | inconclusive | out of regime."""
    reason: str
    """One sentence: why this outcome, with the numbers."""
    effect: float
    ci: tuple[float, float]
    p: float
    p_adjusted: float
    test: str
    n: tuple[int, int]
    means: tuple[float, float]
    published: float | None = None
    source: str = ""
    flops: tuple[float, float] = (math.nan, math.nan)
    """Mean training FLOPs of a run in the treatment and in the control arm (PROTOCOL §1)."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-able."""
        return asdict(self)

    def effect_text(self) -> str:
        """'+0.81 [+0.52, +1.00]' (nan-safe)."""
        if not math.isfinite(self.effect):
            return "n/a"
        lo, hi = self.ci
        return f"{self.effect:+.2f} [{lo:+.2f}, {hi:+.2f}]"


def per_run_metrics(
    final: pd.DataFrame, curves: pd.DataFrame, runs: pd.DataFrame, rule: LearnedRule
) -> pd.DataFrame:
    """One row per run: run_id, seed, the runs' axis-label columns and every metric.

    Accuracies pool a role's tasks weighted by held-out n (`common_accuracy`)."""
    from raremix.studies.analysis_final import common_accuracy

    out = runs.drop(columns=["config", "shares", "rare"], errors="ignore").copy()
    metrics: dict[str, dict[str, float]] = {str(r): {} for r in out["run_id"]}
    for role in ("rare", "common"):
        for r in common_accuracy(final, role).to_dict("records"):
            metrics.setdefault(str(r["run_id"]), {})[f"{role}_acc"] = float(r["acc"])
    for run_id, task, acc in zip(final["run_id"], final["task"], final["acc"], strict=True):
        metrics.setdefault(str(run_id), {})[f"acc:{task}"] = float(acc)
    for (run_id, task), c in curves.groupby(["run_id", "task"]):
        c = c.sort_values("step")
        learned = onset_index(c["acc"].to_numpy(), rule) is not None  # the declared rule
        metrics.setdefault(str(run_id), {})[f"learned:{task}"] = float(learned)
    rare = {str(r): list(t) for r, t in zip(runs["run_id"], runs["rare"], strict=True)}
    for run_id, m in metrics.items():
        tasks = rare.get(run_id, [])
        if tasks and all(f"learned:{t}" in m for t in tasks):
            m["rare_learned"] = float(all(m[f"learned:{t}"] for t in tasks))
    _flops_to_learn(metrics, curves, runs, rule, rare)
    table = pd.DataFrame.from_dict(metrics, orient="index")
    return out.merge(table, left_on="run_id", right_index=True, how="left")


EVENT = ".observed"
"""Suffix of a FLOPs-to-learn column's event flag (False: censored at the run's cap)."""


def _flops_to_learn(
    metrics: dict[str, dict[str, float]],
    curves: pd.DataFrame,
    runs: pd.DataFrame,
    rule: LearnedRule,
    rare: dict[str, list[str]],
) -> None:
    """Add `flops_to_learn[:TASK]` and their event flags to each run's metrics (runs that
    record no FLOPs per step, e.g. Hugging Face runs or a distillation teacher, get none)."""
    from raremix.studies.flops_to_learn import onset_table

    if curves.empty or "flops_per_step" not in runs:
        return
    per_step = pd.to_numeric(runs["flops_per_step"], errors="coerce")
    timed = runs[per_step.notna() & (per_step > 0)]  # e.g. a distillation teacher records none
    if timed.empty:
        return
    onsets = onset_table(curves[curves.run_id.isin(timed.run_id)], timed, rule)
    for r in onsets.to_dict("records"):
        m = metrics.setdefault(str(r["run_id"]), {})
        m[f"flops_to_learn:{r['task']}"] = float(r["flops_to_learn"])
        m[f"flops_to_learn:{r['task']}{EVENT}"] = float(r["learned"])
    for run_id, m in metrics.items():
        tasks = rare.get(run_id, [])
        if not tasks or not all(f"flops_to_learn:{t}" in m for t in tasks):
            continue
        done = [bool(m[f"flops_to_learn:{t}{EVENT}"]) for t in tasks]
        times = [m[f"flops_to_learn:{t}"] for t in tasks]
        # all learned: the last onset; else censored where the first unlearned one was
        m["flops_to_learn"] = (
            max(times) if all(done) else min(t for t, d in zip(times, done, strict=True) if not d)
        )
        m[f"flops_to_learn{EVENT}"] = float(all(done))


def _arm_text(arm: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in arm.items())


def _select(table: pd.DataFrame, arm: dict[str, str]) -> pd.DataFrame:
    mask = pd.Series(True, index=table.index)
    for axis, label in arm.items():
        col = label_column(axis)
        if col not in table:
            return table.iloc[0:0]
        mask &= table[col].astype(str) == label
    return table[mask]


def _arm_flops(table: pd.DataFrame, arm: dict[str, str]) -> float:
    """Mean training FLOPs of the arm's runs (NaN when the runs do not report them)."""
    rows = _select(table, arm)
    if "flops" not in rows or rows.empty:
        return math.nan
    return float(pd.to_numeric(rows["flops"], errors="coerce").mean())


def arm_values(table: pd.DataFrame, h: Hypothesis) -> tuple[pd.Series, pd.Series]:
    """The metric per seed in the treatment and the control arm (index: seed)."""
    out = []
    for arm in (h.treatment, h.control):
        rows = _select(table, arm)
        if h.metric not in rows:
            out.append(pd.Series(dtype=float))
            continue
        out.append(rows.set_index("seed")[h.metric].dropna().astype(float).sort_index())
    return out[0], out[1]


def _events(table: pd.DataFrame, h: Hypothesis) -> tuple[pd.Series, pd.Series]:
    """The event flags (learned, not censored) beside a FLOPs-to-learn metric, per seed."""
    flag = h.metric + EVENT
    out = []
    for arm in (h.treatment, h.control):
        rows = _select(table, arm)
        rows = rows[rows[h.metric].notna()] if h.metric in rows else rows.iloc[0:0]
        out.append(
            rows.set_index("seed")[flag].astype(bool).sort_index()
            if len(rows)
            else pd.Series(dtype=bool)
        )
    return out[0], out[1]


def _compare(
    h: Hypothesis, treat: pd.Series, ctrl: pd.Series, alpha: float, table: pd.DataFrame
) -> Any:
    from raremix.stats import compare_counts, compare_means

    if metric_kind(h.metric) == "survival":
        from raremix.studies.flops_to_learn import compare_flops_to_learn

        te, ce = _events(table, h)
        if h.paired:
            common = treat.index.intersection(ctrl.index)
            treat, ctrl, te, ce = (
                treat.loc[common],
                ctrl.loc[common],
                te.loc[common],
                ce.loc[common],
            )
        return compare_flops_to_learn(
            (treat.to_numpy(), te.to_numpy()),
            (ctrl.to_numpy(), ce.to_numpy()),
            direction=h.direction,
            alpha=alpha,
            paired=h.paired,
        )
    if metric_kind(h.metric) == "count":
        return compare_counts(
            int(treat.sum()),
            len(treat),
            int(ctrl.sum()),
            len(ctrl),
            direction=h.direction,
            alpha=alpha,
        )
    if h.paired:
        common = treat.index.intersection(ctrl.index)
        treat, ctrl = treat.loc[common], ctrl.loc[common]
    return compare_means(
        treat.to_numpy(), ctrl.to_numpy(), paired=h.paired, direction=h.direction, alpha=alpha
    )


def evaluate(declaration: Declaration, table: pd.DataFrame) -> list[HypothesisResult]:
    """Every declared hypothesis, compared, Holm-corrected within the family, and decided."""
    from raremix.stats import decide, holm

    alpha = declaration.alpha
    compared: list[tuple[Hypothesis, Any, str]] = []
    for h in declaration.tests:
        treat, ctrl = arm_values(table, h)
        if min(len(treat), len(ctrl)) < 2:
            why = (
                f"too few runs to test ({len(treat)} treatment, {len(ctrl)} control; need ≥ 2 each)"
            )
            compared.append((h, None, why))
            continue
        try:
            compared.append((h, _compare(h, treat, ctrl, alpha, table), ""))
        except RaremixError as err:
            compared.append((h, None, str(err)))
    ps = [c.p for _, c, _ in compared if c is not None]
    adjusted = iter(holm(ps) if declaration.family == "study" and ps else ps)
    results = []
    for h, c, why in compared:
        pub = h.published.effect if h.published else None
        source = h.published.source if h.published else ""
        base: dict[str, Any] = {
            "id": h.id,
            "claim": h.claim,
            "metric": h.metric,
            "treatment": _arm_text(h.treatment),
            "control": _arm_text(h.control),
            "direction": h.direction,
            "published": pub,
            "source": source,
            "flops": (_arm_flops(table, h.treatment), _arm_flops(table, h.control)),
        }
        if c is None:
            outcome = "out of regime" if h.regime else "inconclusive"
            reason = f"out of regime: {h.regime}" if h.regime else why
            nan = math.nan
            results.append(
                HypothesisResult(
                    **base,
                    outcome=outcome,
                    reason=reason,
                    effect=nan,
                    ci=(nan, nan),
                    p=nan,
                    p_adjusted=nan,
                    test="",
                    n=(0, 0),
                    means=(nan, nan),
                )
            )
            continue
        p_adj = float(next(adjusted))
        if metric_kind(h.metric) != "survival":  # accuracies and proportions lie in [0, 1]
            c = c.within(-1.0, 1.0)
        outcome, reason = decide(
            c,
            direction=h.direction,
            alpha=alpha,
            p_adjusted=p_adj,
            published=pub,
            in_regime=h.regime is None,
            regime_reason=h.regime or "",
        )
        results.append(
            HypothesisResult(
                **base,
                outcome=outcome,
                reason=reason,
                effect=float(c.effect),
                ci=(float(c.ci[0]), float(c.ci[1])),
                p=float(c.p),
                p_adjusted=p_adj,
                test=c.test,
                n=(int(c.n[0]), int(c.n[1])),
                means=(float(c.means[0]), float(c.means[1])),
            )
        )
    return results
