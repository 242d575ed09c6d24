"""The scale-vs-mix verdict (also any study with the default analysis, e.g. spacing).

Every number comes from the study's own runs: bigger vs smaller, longer, and the best
designed mix as tested differences over seeds, and the compute-equivalence
(`studies.equivalence`): FLOPs to the study's target of the cheapest natural-mix option ÷
the cheapest designed option, with a seed-bootstrap CI. The target is `hypotheses.target`
where declared, else the default: every rare task learned by the declared (else default)
rule and each common task within 0.05 of its natural-mix level at that size.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from raremix.errors import RaremixError
from raremix.studies.analysis import Verdict
from raremix.studies.analysis_final import LAST_EVALS, StudyResults, forgetting_events
from raremix.studies.equivalence import (
    compute_equivalence,
    declared_target,
    option_flops,
    target_text,
    target_times,
)
from raremix.studies.summary import (
    LEARNED,
    Group,
    best_designed,
    group_rows,
    group_summary,
    per_run,
    pm,
)


def scale_verdict(results: StudyResults, out: Path) -> Verdict:
    """The verdict of a scale-vs-mix (or demo) study; draws `figures/frontier.png`."""
    final = results.final
    groups = group_summary(final)
    rows = group_rows(groups)
    runs = per_run(final)
    # the natural-mix curve at the study's base budget; natural runs trained longer than that
    # at the same size are the "longer" option, reported on their own
    nat_all = sorted((g for g in rows if g.natural), key=lambda g: (g.params, g.flops))
    nat = [g for i, g in enumerate(nat_all) if i == 0 or g.params != nat_all[i - 1].params]
    longer = [g for g in nat_all if g not in nat]
    base_nat, best = best_designed(groups)
    p0 = nat[0].params if nat else math.nan
    lines, parts = [], []
    if nat:
        curve = ", ".join(
            f"{g.size}{'' if g.params == p0 else f' ({g.params / p0:.1f}×)'} {g.rare}" for g in nat
        )
        parts.append(f"natural mix: {curve}")
    if len(nat) >= 2:
        lines.append(_phenomenon(runs, nat[0], nat[-1]))
    if nat and longer:
        lines += _longer(runs, nat[0], [g for g in longer if g.params == nat[0].params])
    eq_line, eq_clause = _compute_equivalence(results)
    headline_tail = eq_clause
    if base_nat is not None and best is not None:
        parts.append(f"{best.mix}: {best.size} {best.rare}")
        lines.append(_fix(runs, base_nat, best))
        headline_tail += (
            f"; common tasks {base_nat.common_mean:.2f} → {best.common_mean:.2f} "
            f"({best.mix} at {best.size})"
        )
    lines.append(eq_line)
    if not parts:  # no natural mix: list the groups
        parts.append(", ".join(f"{g.group} {g.rare}" for g in rows))
    if line := _forgetting_line(results.curves):
        lines.append(line)
    seeds = max(g.seeds for g in rows)
    commons = ", ".join(sorted(set(final[final.role == "common"].task)))
    lines.append(
        f"Accuracy is held-out exact match, each run summarised by the mean of its last "
        f"{LAST_EVALS} evaluations; ± is the sd over {seeds} seed{'s' if seeds > 1 else ''}"
        f"{' (one seed: no spread measured)' if seeds < 2 else ''}; common = mean over the "
        f"common tasks ({commons}), weighted by held-out n where recorded; rare n = held-out "
        f"rare-task examples per seed, rare baseline = the best of chance, majority and the "
        f"task's heuristic rule on them (an acc at or below it shows nothing). Differences are "
        f"two-sided permutation tests over seeds with a 95% CI (docs/statistics.md); they are "
        f"descriptive — a study's claims are its declared hypotheses."
    )
    from raremix.figures.plots import frontier_figure, save_figure

    name = results.name
    fig_file = "figures/frontier.png"
    # the frontier is accuracy against size at the base budget: longer runs are told apart
    # in the text and the learning curves, not drawn as a second point of the same size
    drawn = ~groups.group.isin([g.group for g in longer])
    shown = frontier_figure(groups[drawn], name, runs[runs.group.isin(groups.group[drawn])])
    save_figure(shown, out / fig_file)
    caption = (
        "Rare- and common-task accuracy (mean ± sd over seeds) vs parameters, one line per mix"
        + (" (at the base budget; the longer runs are in the learning curves)." if longer else ".")
    )
    return Verdict(
        study=name,
        title=f"{name}: rare-task accuracy by model size and mix",
        headline="; ".join(parts) + headline_tail,
        lines=lines,
        table=_table(rows),
        figures=[{"file": fig_file, "caption": caption}],
    )


def _compute_equivalence(results: StudyResults) -> tuple[str, str]:
    """The compute-equivalence line and its headline clause (the clause '' when there is none)."""
    rule, target = declared_target(results.spec)
    declared = bool((results.spec.get("hypotheses") or {}).get("target"))
    rare = sorted(set(results.final[results.final.role == "rare"].task))
    said = target_text(target, rule, rare) + (
        "" if declared else " (the default: the study declares no hypotheses.target)"
    )
    try:
        times = target_times(results.curves, results.final, results.runs, rule, target)
        eq = compute_equivalence(times)
    except RaremixError as err:
        return f"Compute-equivalence: none — {err}.", ""
    per = "; ".join(
        f"{o['group']} {_flops(float(o['median']))} ({o['reached']} of {o['n']} reached it)"
        for o in option_flops(times).to_dict("records")
    )
    nat = f"{eq.natural}, {_flops(eq.natural_flops)}" if eq.natural else "none reached it"
    des = f"{eq.designed}, {_flops(eq.designed_flops)}" if eq.designed else "none reached it"
    line = (
        f"Compute-equivalence: {eq.text()} = FLOPs to the target of the cheapest natural-mix "
        f"option ({nat}) ÷ the cheapest designed option ({des}). Target: {said}. Kaplan–Meier "
        f"median FLOPs to it per option: {per}. The CI resamples seeds within each option "
        f"(95% percentile bootstrap); ≈ when it includes 1 (docs/statistics.md)."
    )
    clause = (
        f" → compute-equivalence {eq.text()}: cheapest designed "
        f"{eq.designed or 'none reached the target'} vs cheapest natural "
        f"{eq.natural or 'none reached the target'}"
    )
    return line, clause


def _flops(x: float) -> str:
    return "not reached by half its seeds" if math.isinf(x) else f"{x:.2e} FLOPs"


def _seeds(runs: pd.DataFrame, group: Group, metric: str) -> np.ndarray:
    """One group's per-seed values of `metric` (a `per_run` column)."""
    return runs.loc[runs.group == group.group, metric].dropna().to_numpy()


def versus(runs: pd.DataFrame, treat: Group, ctrl: Group, metric: str = "rare_acc") -> str:
    """'+0.81 [+0.52, +1.00], p = 0.004 (permutation …)': treatment − control over seeds."""
    from raremix.stats import compare_means

    a, b = _seeds(runs, treat, metric), _seeds(runs, ctrl, metric)
    if min(len(a), len(b)) < 2:
        return f"{np.mean(a) - np.mean(b):+.2f} (one seed per arm: no test possible)"
    return compare_means(a, b, direction="two-sided").within(-1.0, 1.0).text()


def _phenomenon(runs: pd.DataFrame, small: Group, big: Group) -> str:
    return (
        f"Larger vs smaller on the natural mix: rare acc {big.size} ({big.params / small.params:.1f}× "
        f"params) {big.rare} vs {small.size} {small.rare}: {versus(runs, big, small)}. Seeds "
        f"with rare acc ≥ {LEARNED}: {big.learned} vs {small.learned}."
    )


def _fix(runs: pd.DataFrame, nat: Group, best: Group) -> str:
    return (
        f"Designed mix at {nat.size}: {best.mix} (the best designed mix by mean) rare acc "
        f"{best.rare} vs natural {nat.rare}: {versus(runs, best, nat)} (rare acc ≥ {LEARNED} "
        f"in {best.learned} seeds vs {nat.learned}); common tasks {nat.common_mean:.2f} → "
        f"{best.common_mean:.2f}: {versus(runs, best, nat, 'common_acc')}."
    )


def _longer(runs: pd.DataFrame, nat: Group, longer: list[Group]) -> list[str]:
    return [
        f"Longer at {g.size}: {g.group} ({g.flops / nat.flops:.1f}× the FLOPs) rare acc {g.rare} "
        f"vs {nat.rare}: {versus(runs, g, nat)}."
        for g in longer
    ]


def _forgetting_line(curves: pd.DataFrame | None) -> str:
    if curves is None or curves.empty:
        return ""
    hits: list[str] = []
    rare = curves[curves.role == "rare"]
    for (_, task), c in rare.groupby(["run_id", "task"]):
        if ev := forgetting_events(c.step.to_numpy(), c.acc.to_numpy()):
            peak_step, peak, step, acc = ev[0]
            where = f"{c.group.iloc[0]} seed {c.seed.iloc[0]} {task}"
            hits.append(f"{where}: {peak:.2f}@{peak_step} → {acc:.2f}@{step}")
    n_runs = rare.run_id.nunique()
    what = "Acquire-then-forget (rare acc falling > 0.2 below an earlier peak)"
    if not hits:
        return f"{what}: none in {n_runs} runs."
    shown = "; ".join(hits[:4]) + ("; …" if len(hits) > 4 else "")
    return f"{what} in {len(hits)} of {n_runs} runs: {shown}."


def _table(rows: list[Group]) -> dict[str, list[Any]]:
    cols = [
        "group",
        "params",
        "train FLOPs",
        "rare share",
        "rare n",
        "rare baseline",
        "rare acc",
        f"rare ≥ {LEARNED}",
        "common acc",
        "seeds",
    ]
    return {
        "columns": cols,
        "rows": [
            [
                g.group,
                f"{g.params:,.0f}" if np.isfinite(g.params) else "",
                f"{g.flops:.2e}" if np.isfinite(g.flops) else "",
                f"{g.rare_share:.1%}" if np.isfinite(g.rare_share) else "",
                f"{g.rare_n:.0f}" if np.isfinite(g.rare_n) else "",
                f"{g.rare_baseline:.2f}" if np.isfinite(g.rare_baseline) else "",
                g.rare,
                g.learned,
                pm(g.common_mean, g.common_sd),
                int(g.seeds),
            ]
            for g in rows
        ],
    }
