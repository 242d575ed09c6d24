"""The scale-vs-mix verdict (also the demo's): does a designed mix buy what scale buys?

Every number comes from the study's own runs. The scale-equivalence factor is a pure
function (`scale_equivalence`) of the natural-mix curve and a target accuracy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from raremix.errors import RaremixError
from raremix.studies.analysis import Verdict
from raremix.studies.analysis_final import LAST_EVALS, StudyResults, forgetting_events

NATURAL = "natural"
LEARNED = 0.9
"""A run whose rare acc reaches this has learned the rare task: onsets are abrupt and their
timing random, so seeds often split into learned / not learned, which the count shows."""


@dataclass(frozen=True)
class ScaleEquivalence:
    """How much larger a natural-mix model must be to reach a target rare-task accuracy."""

    status: Literal["reached", "already", "never"]
    factor: float
    """params at the target / params of the smallest (inf when never reached)."""
    params_at_target: float
    """Interpolated params at the target (nan when never reached)."""
    largest_factor: float
    """params of the largest / params of the smallest: the span that was tried."""

    def describe(self) -> str:
        """'3.1×', '1× (no gain …)' or '> 16.0× (the largest tried)'."""
        if self.status == "already":
            return "1× (no gain: the smallest natural-mix model already reaches it)"
        if self.status == "never":
            return f"> {self.largest_factor:.1f}× (the largest tried)"
        return f"{self.factor:.1f}×"


def scale_equivalence(
    params: np.ndarray | list[float], acc: np.ndarray | list[float], target: float
) -> ScaleEquivalence:
    """Walk the natural-mix curve (acc vs params, sorted by params) to `target`.

    The first segment whose far end reaches `target` is interpolated linearly in
    log(params); factor = params there / params of the smallest model. If the smallest
    already reaches it the factor is 1; if no size does, it is inf (status "never").
    """
    p, a = np.asarray(params, dtype=float), np.asarray(acc, dtype=float)
    if p.shape != a.shape or p.ndim != 1 or p.size == 0:
        raise RaremixError("scale_equivalence needs equal-length, non-empty params and acc")
    if np.any(~np.isfinite(p)) or np.any(p <= 0):
        raise RaremixError("scale_equivalence: params must be positive numbers")
    order = np.argsort(p, kind="stable")
    p, a = p[order], a[order]
    largest = float(p[-1] / p[0])
    if a[0] >= target:
        return ScaleEquivalence("already", 1.0, float(p[0]), largest)
    for i in range(p.size - 1):
        if a[i + 1] >= target > a[i]:
            t = (target - a[i]) / (a[i + 1] - a[i])
            at = math.exp(math.log(p[i]) + t * (math.log(p[i + 1]) - math.log(p[i])))
            return ScaleEquivalence("reached", at / p[0], at, largest)
    return ScaleEquivalence("never", math.inf, math.nan, largest)


def strongest_baseline(final: pd.DataFrame) -> pd.Series:
    """Per row of the final table: the best of its task's chance, majority and heuristic
    accuracies (NaN where none is recorded): what an accuracy must beat to mean anything."""
    cols = [c for c in ("chance", "majority", "heuristic") if c in final]
    return final[cols].max(axis=1, skipna=True) if cols else pd.Series(math.nan, final.index)


def per_run(final: pd.DataFrame) -> pd.DataFrame:
    """One row per run: rare and common acc, each pooled over its tasks weighted by held-out n;
    rare_n (the rare tasks' held-out examples) and rare_baseline (their `strongest_baseline`,
    pooled the same way)."""
    from raremix.studies.analysis_final import common_accuracy

    keys = ["run_id", "seed", "size", "params", "flops", "mix", "group"]
    out = final[keys].drop_duplicates("run_id").reset_index(drop=True)
    for role in ("rare", "common"):
        pooled = common_accuracy(final, role)
        acc: pd.Series = pooled.set_index("run_id")["acc"] if len(pooled) else pd.Series()
        out[f"{role}_acc"] = out.run_id.map(acc).astype(float)
        if role == "rare":
            n = pooled.set_index("run_id")["n"] if len(pooled) else pd.Series()
            out["rare_n"] = out.run_id.map(n).astype(float)
    # pool the baseline as the accuracy is pooled: common_accuracy over baseline-as-acc rows
    bars = final.assign(acc=strongest_baseline(final))
    bar = common_accuracy(bars[bars.acc.notna()], "rare")
    out["rare_baseline"] = out.run_id.map(
        bar.set_index("run_id")["acc"] if len(bar) else pd.Series()
    ).astype(float)
    share = final[final.role == "rare"].groupby("run_id")["share"].sum(min_count=1)
    return out.assign(rare_share=out.run_id.map(share))


def group_summary(final: pd.DataFrame) -> pd.DataFrame:
    """Per group (size × mix …): rare and common acc mean ± sd over seeds, params, FLOPs."""
    runs = per_run(final)
    g = runs.groupby(["group", "size", "mix"], sort=False)
    out = g.agg(
        params=("params", "median"),
        flops=("flops", "median"),
        rare_share=("rare_share", "mean"),
        rare_n=("rare_n", "median"),
        rare_baseline=("rare_baseline", "mean"),
        rare_mean=("rare_acc", "mean"),
        rare_sd=("rare_acc", "std"),
        rare_learned=("rare_acc", lambda a: int((a >= LEARNED).sum())),
        common_mean=("common_acc", "mean"),
        common_sd=("common_acc", "std"),
        seeds=("seed", "nunique"),
    ).reset_index()
    out["natural"] = out["mix"] == NATURAL
    return out.sort_values(["natural", "mix", "params"], ascending=[False, True, True]).reset_index(
        drop=True
    )


@dataclass(frozen=True)
class Group:
    """One row of `group_summary`, typed."""

    group: str
    size: str
    mix: str
    params: float
    flops: float
    rare_share: float
    rare_n: float
    """The rare tasks' held-out examples per seed (NaN for runs written before n was)."""
    rare_baseline: float
    """What the rare acc must beat: the strongest of chance, majority and heuristic."""
    rare_mean: float
    rare_sd: float
    rare_learned: int
    """Seeds whose rare acc reached `LEARNED`."""
    common_mean: float
    common_sd: float
    seeds: int
    natural: bool

    @property
    def rare(self) -> str:
        """Rare acc as 'mean ± sd'."""
        return pm(self.rare_mean, self.rare_sd)

    @property
    def learned(self) -> str:
        """'2 of 3': the seeds that learned the rare task."""
        return f"{self.rare_learned} of {self.seeds}"


def group_rows(groups: pd.DataFrame) -> list[Group]:
    """The rows of `group_summary` as `Group`s, in its order."""
    names = [f.name for f in fields(Group)]
    return [Group(**{k: r[k] for k in names}) for r in groups.to_dict("records")]


def best_designed(groups: pd.DataFrame) -> tuple[Group | None, Group | None]:
    """(natural, best designed) groups at the smallest size that has both; None if absent."""
    rows = group_rows(groups)
    nat = sorted((g for g in rows if g.natural), key=lambda g: (g.params, g.flops))
    des = [g for g in rows if not g.natural]
    both = sorted({g.params for g in nat} & {g.params for g in des})
    if not both:
        return (nat[0] if nat else None), None
    at_nat = next(g for g in nat if g.params == both[0])
    return at_nat, max((g for g in des if g.params == both[0]), key=lambda g: g.rare_mean)


def pm(mean: float, sd: float) -> str:
    """'0.56 ± 0.05' ('0.56' when the sd is unknown: one seed)."""
    return f"{mean:.2f}" if not np.isfinite(sd) else f"{mean:.2f} ± {sd:.2f}"


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
    headline_tail, target = "", None
    if base_nat is not None and best is not None:
        parts.append(f"{best.mix}: {best.size} {best.rare}")
        lines.append(_fix(runs, base_nat, best))
        eq = scale_equivalence([g.params for g in nat], [g.rare_mean for g in nat], best.rare_mean)
        tie = _tie_with_largest(runs, eq, best, nat[-1])
        lines.append(_factor_line(eq, best, p0) + tie)
        label = f"{best.mix} at {best.size}: scale-equivalent {eq.describe().split(' (')[0]}"
        target = (best.rare_mean, eq.params_at_target, label)
        worth = {
            "reached": f"worth ≈ {eq.describe()} scale",
            "already": "worth no scale (1×: the smallest natural-mix model already reaches it)",
            "never": f"worth > {eq.largest_factor:.1f}× scale (the largest tried)"
            + (", though not told apart from that model" if tie else ""),
        }[eq.status]
        headline_tail = (
            f" → the designed mix is {worth}; common tasks "
            f"{base_nat.common_mean:.2f} → {best.common_mean:.2f}"
        )
    else:
        lines.append(
            "No scale-equivalence factor: it needs a natural mix and a designed mix at the "
            "same size, and this study has " + ("no designed mix." if nat else "no natural mix.")
        )
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
    shown = frontier_figure(groups[drawn], name, target, runs[runs.group.isin(groups.group[drawn])])
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


def _tie_with_largest(runs: pd.DataFrame, eq: ScaleEquivalence, best: Group, largest: Group) -> str:
    """When no natural size reaches the designed mix's mean: is the largest one a tie, or
    are there too few seeds to tell? ('' when the designed mix is clearly ahead.)"""
    from raremix.stats import compare_means, min_seeds_for_exact

    a, b = _seeds(runs, best, "rare_acc"), _seeds(runs, largest, "rare_acc")
    if eq.status != "never":
        return ""
    floor = min_seeds_for_exact(0.05, paired=False, direction="two-sided")
    if min(len(a), len(b)) < floor:
        return (
            f" The factor compares means only, and {min(len(a), len(b))} seeds per arm are too "
            f"few for an exact test to tell the designed mix from the largest natural-mix model "
            f"({largest.size}; it needs {floor}), so read it as ≥ about {eq.largest_factor:.1f}×."
        )
    c = compare_means(a, b, direction="two-sided").within(-1.0, 1.0)
    if c.p < 0.05:
        return ""
    return (
        f" The factor compares means only: the designed mix and the largest natural-mix model "
        f"({largest.size}) are indistinguishable ({c.text()}), so read it as ≈ "
        f"{eq.largest_factor:.1f}×, not more."
    )


def _factor_line(eq: ScaleEquivalence, best: Group, p0: float) -> str:
    return (
        f"Scale-equivalence factor: {eq.describe()}. Method: target = the rare acc of the "
        f"smallest model ({best.size}) under the best designed mix ({best.rare_mean:.2f}); walk "
        f"the natural-mix curve (mean rare acc vs params, sorted by params) to the first segment "
        f"that reaches it and interpolate linearly in log(params); factor = params there / "
        f"{p0:,.0f} (the smallest natural-mix model)."
    )


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
