"""The bigger-longer-remixed verdict: what each option costs in FLOPs to learn a rare task.

Per Zipf exponent (the `zipf` axis, when the study has one) and per rare task: Kaplan–Meier
curves of FLOPs-to-learn per arm, the log-rank test of each arm against the small model's
equal-tokens natural run, a Weibull AFT fit on log-params × log-share, and the
compute-equivalence of the best designed mix against the best of bigger / longer, with its
seed-bootstrap CI. Each slice gets an outcome word: `supported` when the designed mix is
cheaper (CI above 1), `contradicted` when a natural-mix option is (CI below 1),
`inconclusive` otherwise — so the verdict says where the phenomenon holds and where not.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from raremix.figures.km import KmArm, save_km_figure
from raremix.results.onset import LearnedRule
from raremix.results.store import label_column
from raremix.stats import Outcome
from raremix.studies.analysis import Verdict
from raremix.studies.analysis_final import StudyResults
from raremix.studies.equivalence import (
    ComputeEquivalence,
    Target,
    compute_equivalence,
    declared_target,
    is_natural,
    target_times,
)
from raremix.studies.flops_to_learn import aft_fit, km_by_arm, logrank_vs, onset_table

FIGURE = "figures/km_flops.png"


def equivalence_outcome(eq: ComputeEquivalence) -> Outcome:
    """supported: designed cheaper (CI > 1); contradicted: natural cheaper (CI < 1); else inconclusive."""
    lo, hi = eq.ci
    if lo > 1:
        return "supported"
    if hi < 1:
        return "contradicted"
    return "inconclusive"


def _slices(runs: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    col = label_column("zipf")
    if col not in runs:
        return [("", runs)]
    return [(f"zipf {z}", g) for z, g in runs.groupby(col, sort=False)]


def _reference(runs: pd.DataFrame) -> str:
    """The small model's natural arm followed least far: its equal-tokens run (or view)."""
    nat = runs[[is_natural(c) for c in runs.config]]
    small = nat[nat.params == nat.params.min()]
    return str(small.groupby("group").flops.median().idxmin())


def bigger_longer_verdict(results: StudyResults, out: Path) -> Verdict:
    """The verdict of a bigger-longer-remixed study; draws `figures/km_flops.png`."""
    runs, curves, final = results.runs, results.curves, results.final
    rule, target = declared_target(results.spec)
    rows: list[list[Any]] = []
    lines: list[str] = []
    panels: list[tuple[str, pd.DataFrame, dict[str, dict[str, Any]], str]] = []
    calls: list[Outcome] = []
    for where, r in _slices(runs):
        c, f = curves[curves.run_id.isin(r.run_id)], final[final.run_id.isin(r.run_id)]
        onsets = onset_table(c, r, rule)
        ref = _reference(r)
        rare = target.rare or sorted(set(onsets[onsets.role == "rare"].task))
        for task in rare:
            ranks = logrank_vs(onsets, task, ref)
            km = km_by_arm(onsets, task)
            panels.append((f"{where} {task}".strip(), onsets[onsets.task == task], ranks, ref))
            rows += _arm_rows(where, task, onsets[onsets.task == task], km, ranks)
            fit = aft_fit(onsets, task)
            lines.append(f"{where} {task}: Weibull AFT of FLOPs-to-learn: " + _aft_text(fit))
        for task in rare if len(rare) > 1 else []:
            lines.append(_equivalence_line(where, [task], c, f, r, rule, target, calls=None))
        lines.append(_equivalence_line(where, rare, c, f, r, rule, target, calls=calls))
        lines.append(_commons_line(where, f, r, rule))
    finding: Outcome = calls[0] if calls and all(x == calls[0] for x in calls) else "inconclusive"
    fig_caption = _figure(panels, out / FIGURE)
    lines.append(
        f"FLOPs-to-learn = training FLOPs at the first of {rule.consecutive} consecutive "
        f"evaluations with accuracy ≥ {rule.threshold}, right-censored at the run's cap (its "
        "planned FLOPs, a view's cap, or where it stopped); medians are Kaplan–Meier with "
        "lifelines' 95% CI; log-rank against the small model's equal-tokens natural arm; "
        "compute-equivalence per docs/statistics.md."
    )
    name = results.name
    headline = (
        f"{finding.upper()}: compute-equivalence of the best designed mix vs the best natural-mix "
        f"option, per slice: " + "; ".join(x for x in lines if x.startswith("Compute-equivalence"))
    )
    return Verdict(
        study=name,
        title=f"{name}: FLOPs to learn each rare task — bigger, longer or remixed",
        headline=headline,
        lines=lines,
        table={
            "columns": [
                "slice",
                "task",
                "arm",
                "learned",
                "median FLOPs-to-learn [95% CI]",
                "log-rank p",
                "final acc",
                "AUC acc",
            ],
            "rows": rows,
        },
        figures=[
            {
                "file": FIGURE,
                "caption": fig_caption,
                "how": "A curve is the share of seeds that have learned the task; it rises at "
                "each onset (ticks below the axis). Up and left is better: more seeds learned, "
                "with less compute. A curve ends where its arm's runs stopped.",
            }
        ],
        finding=finding,
    )


def _arm_rows(
    where: str, task: str, onsets: pd.DataFrame, km: pd.DataFrame, ranks: dict[str, dict[str, Any]]
) -> list[list[Any]]:
    from lifelines import KaplanMeierFitter
    from lifelines.utils import median_survival_times

    out = []
    for arm, g in onsets.groupby("group", sort=False):
        kmf = KaplanMeierFitter().fit(g.flops_to_learn, g.learned)
        lo, hi = median_survival_times(kmf.confidence_interval_).to_numpy(float)[0]
        med = float(kmf.median_survival_time_)
        p = ranks.get(str(arm), {}).get("p", math.nan)
        out.append(
            [
                where,
                task,
                arm,
                f"{int(g.learned.sum())} of {len(g)}",
                f"{_e(med)} [{_e(lo)}, {_e(hi)}]",
                "ref" if str(arm) not in ranks else (f"{p:.3g}" if math.isfinite(p) else "–"),
                f"{g.final_acc.mean():.2f}",
                f"{g.auc.mean():.2f}",
            ]
        )
    return out


def _e(x: float) -> str:
    return "> cap" if math.isinf(x) else ("?" if math.isnan(x) else f"{x:.2e}")


def _aft_text(fit: pd.DataFrame | str) -> str:
    if isinstance(fit, str):
        return f"no fit ({fit})."
    lam = fit[(fit.param == "lambda_") & (fit.covariate != "Intercept")]
    parts = [
        f"{cov}: time ratio {math.exp(coef):.2f} [{math.exp(lo):.2f}, {math.exp(hi):.2f}], p = {p:.3g}"
        for cov, coef, lo, hi, p in zip(
            lam.covariate,
            lam.coef.astype(float),
            lam.ci_lower.astype(float),
            lam.ci_upper.astype(float),
            lam.p.astype(float),
            strict=True,
        )
    ]
    return "; ".join(parts) + " (per e-fold of the covariate)."


def _equivalence_line(
    where: str,
    rare: list[str],
    curves: pd.DataFrame,
    final: pd.DataFrame,
    runs: pd.DataFrame,
    rule: LearnedRule,
    target: Target,
    calls: list[Outcome] | None,
) -> str:
    from raremix.errors import RaremixError

    what = f"{where} {'+'.join(rare)}".strip()
    try:
        times = target_times(curves, final, runs, rule, target.model_copy(update={"rare": rare}))
        eq = compute_equivalence(times)
    except RaremixError as err:
        return f"Compute-equivalence ({what}): none — {err}."
    outcome = equivalence_outcome(eq)
    if calls is not None:
        calls.append(outcome)
    who = f"{eq.natural or 'no natural option'} ({_e(eq.natural_flops)}) vs {eq.designed or 'no designed option'} ({_e(eq.designed_flops)})"
    return f"Compute-equivalence ({what}): {eq.text()}; {who}: {outcome}."


def _commons_line(where: str, final: pd.DataFrame, runs: pd.DataFrame, rule: LearnedRule) -> str:
    nat = {str(r) for r, c in zip(runs.run_id, runs.config, strict=True) if is_natural(c)}
    common = final[(final.role == "common") & final.run_id.isin(nat)]
    levels = common.groupby(["size", "task"]).acc.mean()
    short = [f"{k[0]} {k[1]} {a:.2f}" for k, a in levels.items() if a < rule.threshold]  # type: ignore[index]
    head = f"{where} common tasks on the natural mix, per size and task".strip()
    if not short:
        return f"{head}: every one reaches {rule.threshold} (mean final acc)."
    return f"{head}: below {rule.threshold} — {', '.join(short)}; the target compares with these levels."


def _figure(
    panels: list[tuple[str, pd.DataFrame, dict[str, dict[str, Any]], str]], path: Path
) -> str:
    """KM curves of FLOPs-to-learn per arm, one panel per slice × rare task; returns the caption."""
    drawn, notes = [], []
    for title, onsets, ranks, ref in panels:
        arms = [
            KmArm(str(arm), g.flops_to_learn.to_numpy(float), g.learned.to_numpy(bool))
            for arm, g in onsets.groupby("group", sort=False)
        ]
        drawn.append((title, arms))
        ps = ", ".join(
            f"{a} {v['p']:.2g}" for a, v in ranks.items() if math.isfinite(v.get("p", math.nan))
        )
        notes.append(f"{title}: {ps or 'no testable arm'} (vs {ref})")
    save_km_figure(drawn, path)
    return (
        "Kaplan–Meier curves of the share of seeds that learned, over FLOPs-to-learn, per arm "
        "(ticks: each seed's onset). Log-rank p — " + "; ".join(notes) + "."
    )
