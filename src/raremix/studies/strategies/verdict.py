"""The strategies verdict (issue #6): simple mixes vs adaptive rules at the same token budget.

Each strategy (an `arm` of the study) is ranked on rare-task accuracy, common-task
accuracy and compute (training FLOPs, plus a DoReMi reference run's and the adaptive
signal passes'), each as mean ± sd over seeds. Every adaptive strategy is compared with
every simple one on rare and on common accuracy (two-sided exact permutation tests, Welch
t CIs, Holm over all of them: `raremix.stats.judge`); it *beats* a simple strategy when it
is significantly better on one and significantly worse on neither, and the claim "an
adaptive strategy beats the simple ones" is supported only if one beats every simple
strategy. Everything comes from the study's own runs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from raremix.stats import Judged, floor_note, judge
from raremix.studies.analysis import Verdict
from raremix.studies.analysis_final import LAST_EVALS, StudyResults
from raremix.studies.summary import per_run, pm

FIGURE = "figures/strategies.png"


@dataclass(frozen=True)
class Arm:
    """One strategy's runs, summarised over seeds."""

    name: str
    kind: str
    """simple | adaptive | bigger model."""
    size: str
    rare: float
    rare_sd: float
    common: float
    common_sd: float
    compute: float
    """Mean FLOPs per run: training + reference run + adaptive signal passes."""
    compute_sd: float
    wall: float
    rare_share: float
    """Mean share of the rare task(s) over training (time-averaged weights for adaptive arms)."""
    seeds: int
    rare_values: tuple[float, ...] = ()
    """Rare-task accuracy per seed (what the tests compare)."""
    common_values: tuple[float, ...] = ()
    """Common-task accuracy per seed."""


CLAIM = "an adaptive strategy beats every simple one"
UNPAIRED = (
    "unpaired: the small-model arms share each seed's initialisation but not its data "
    "stream, which the strategy changes"
)


def compare_arms(adaptive: list[Arm], simple: list[Arm]) -> list[Judged]:
    """Every adaptive − simple difference on rare and common accuracy, Holm over them all."""
    return judge(
        {
            f"{a.name} − {s.name}, {what} acc": (
                getattr(a, f"{what}_values"),
                getattr(s, f"{what}_values"),
            )
            for a in adaptive
            for s in simple
            for what in ("rare", "common")
        },
        family=CLAIM,
    )


def beats(a: str, b: str, calls: Mapping[str, str]) -> bool:
    """Whether arm `a` is significantly better than `b` on rare or common accuracy and
    significantly worse on neither, by the calls of `compare_arms` (either order of a, b)."""
    wins, losses = 0, 0
    for what in ("rare", "common"):
        if (call := calls.get(f"{a} − {b}, {what} acc")) is not None:
            wins, losses = wins + (call == "greater"), losses + (call == "less")
        elif (call := calls.get(f"{b} − {a}, {what} acc")) is not None:
            wins, losses = wins + (call == "less"), losses + (call == "greater")
    return wins > 0 and losses == 0


def strategies_verdict(results: StudyResults, out: Path) -> Verdict:
    """Rank the study's arms; headline: does any adaptive strategy beat the simple ones?"""
    final = results.final
    runs = results.runs[results.runs.run_id.isin(set(final.run_id))].reset_index(drop=True)
    weights = _weight_rows(results.metrics, runs)
    arms = summarise(final, runs, weights)
    name = results.name
    simple = [a for a in arms if a.kind == "simple"]
    adaptive = [a for a in arms if a.kind == "adaptive"]
    lines = [
        _ranking_line(arms, "rare", "rare-task accuracy"),
        _ranking_line(arms, "common", "common-task accuracy"),
    ]
    cheap = sorted(arms, key=lambda a: a.compute)
    lines.append(
        "Ranking on compute (FLOPs per run, least first): "
        + ", ".join(f"{a.name} {a.compute:.2e}" for a in cheap)
        + "."
    )
    judged = compare_arms(adaptive, simple)
    calls = {j.name: j.call for j in judged}
    tested = sum(j.comparison is not None for j in judged)
    finding, headline = _headline(simple, adaptive, calls, tested)
    lines += [_adaptive_line(a, simple, judged, calls) for a in adaptive]
    if note := floor_note(judged):
        lines.append(note)
    if big := [a for a in arms if a.kind == "bigger model"]:
        versus_big = _versus_bigger(big[0], [a for a in arms if a.kind != "bigger model"])
        judged += versus_big
        lines.append(_bigger_line(big[0], versus_big))
    base = next((a for a in arms if a.name == "natural"), None)
    lines.append(
        "Compute = training FLOPs (6N + attention per token) plus, for DoReMi, its reference "
        "run and, for adaptive rules, the signal passes (estimated); "
        + (f"relative to natural ({base.compute:.2e} FLOPs). " if base else "")
        + "Wall times are inflated by other jobs on a shared machine."
    )
    seeds = max((a.seeds for a in arms), default=0)
    lines.append(
        f"Accuracy is held-out exact match, each run summarised by the mean of its last "
        f"{LAST_EVALS} evaluations; ± is the sd over {seeds} seed{'s' if seeds != 1 else ''}"
        f"{' (one seed: no spread measured, so nothing can be tested)' if seeds < 2 else ''}. "
        "Differences are two-sided exact permutation tests with Welch t 95% CIs "
        f"({UNPAIRED}); 'beats' and 'significantly' mean Holm-adjusted p < 0.05 within the "
        "family (adaptive vs simple: all of them; small models vs the bigger one: those)."
    )
    save_strategies_figure(arms, weights, runs, out / FIGURE, name)
    return Verdict(
        study=name,
        title=f"{name}: simple and adaptive mixing strategies at the same token budget",
        headline=headline,
        lines=lines,
        table=_table(arms, base),
        finding=finding,
        comparisons=[j.as_dict() for j in judged],
        figures=[
            {
                "file": FIGURE,
                "caption": (
                    "Left: rare vs common accuracy per strategy (mean ± sd over seeds). Middle: the rare "
                    "task's weight over training for the adaptive rules (mean over seeds, band min–max; "
                    "dotted: the static mixes' shares). Right: every task's weight under each adaptive rule "
                    "(mean over seeds)."
                ),
            }
        ],
    )


def summarise(final: pd.DataFrame, runs: pd.DataFrame, weights: pd.DataFrame) -> list[Arm]:
    """One `Arm` per strategy, in order of rare-task accuracy (best first)."""
    per = per_run(final)
    info = runs.set_index("run_id")
    configs = {r: json.loads(c) for r, c in zip(runs.run_id, runs.config, strict=True)}
    per["arm"] = [
        str(info.at[r, "arm"]) if "arm" in info else final.group.iloc[0] for r in per.run_id
    ]
    per["adaptive"] = [bool(configs[r].get("adaptive")) for r in per.run_id]
    extra = pd.Series(0.0, index=info.index)
    for col in ("reference_flops", "adaptive_flops"):  # facts only some runs have
        if col in info:
            extra += pd.to_numeric(info[col], errors="coerce").fillna(0.0)
    per["compute"] = per.flops.to_numpy() + per.run_id.map(extra).fillna(0.0).to_numpy()
    per["wall"] = per.run_id.map(pd.to_numeric(info.wall_s, errors="coerce"))
    shares = _rare_shares(per, weights, configs)
    per["rare_share"] = per.run_id.map(shares).fillna(per.rare_share)
    sizes = per.groupby("size").run_id.count()
    main_size = str(sizes.idxmax()) if len(sizes) else ""
    arms = []
    for arm, g in per.groupby("arm", sort=False):
        size = str(g["size"].iloc[0])
        kind = (
            "adaptive" if g.adaptive.any() else ("simple" if size == main_size else "bigger model")
        )
        arms.append(
            Arm(
                name=str(arm),
                kind=kind,
                size=size,
                rare=float(g.rare_acc.mean()),
                rare_sd=float(g.rare_acc.std()),
                common=float(g.common_acc.mean()),
                common_sd=float(g.common_acc.std()),
                compute=float(g.compute.mean()),
                compute_sd=float(g.compute.std()),
                wall=float(g.wall.mean()),
                rare_share=float(g.rare_share.mean()),
                seeds=int(g.seed.nunique()),
                rare_values=tuple(g.rare_acc.astype(float)),
                common_values=tuple(g.common_acc.astype(float)),
            )
        )
    return sorted(arms, key=lambda a: -a.rare)


def _weight_rows(metrics: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """The `weight` rows of the runs (step, task, value) with each run's arm, seed and steps."""
    if runs.empty:
        return pd.DataFrame(columns=["run_id", "step", "task", "value", "arm", "steps"])
    mine = (metrics.metric == "weight") & metrics.run_id.isin(set(runs.run_id))
    rows = metrics.loc[mine, ["run_id", "step", "task", "value"]].reset_index(drop=True)
    labels = runs["arm"] if "arm" in runs.columns else pd.Series("", index=runs.index)
    arm = dict(zip(runs.run_id, labels, strict=True))
    steps = {
        r: int(json.loads(c).get("steps", 0)) for r, c in zip(runs.run_id, runs.config, strict=True)
    }
    return rows.assign(arm=rows.run_id.map(arm), steps=rows.run_id.map(steps)).sort_values(
        ["run_id", "task", "step"]
    )


def _rare_shares(
    per: pd.DataFrame, weights: pd.DataFrame, configs: dict[str, dict[str, Any]]
) -> dict[str, float]:
    """Per adaptive run: the rare tasks' weight averaged over training (weights hold from
    each update to the next)."""
    out: dict[str, float] = {}
    for run, w in weights.groupby("run_id"):
        rare = configs[str(run)].get("rare", [])
        total = 0.0
        for _, t in w[w.task.isin(rare)].groupby("task"):
            steps = np.append(t.step.to_numpy(), t.steps.iloc[0])
            total += float(np.sum(t.value.to_numpy() * np.diff(steps)) / max(1, steps[-1]))
        out[str(run)] = total
    return out


def _headline(
    simple: list[Arm], adaptive: list[Arm], calls: Mapping[str, str], tested: int
) -> tuple[str, str]:
    """(finding, headline): does an adaptive strategy beat every simple one?"""
    if not simple or not adaptive:
        return "inconclusive", (
            "inconclusive: nothing to compare — the study needs simple and adaptive strategies "
            "at one size."
        )
    best_s = max(simple, key=lambda a: a.rare)
    best_a = max(adaptive, key=lambda a: a.rare)
    pair = (
        f"highest-mean simple {best_s.name} rare {pm(best_s.rare, best_s.rare_sd)} / common "
        f"{pm(best_s.common, best_s.common_sd)}; highest-mean adaptive {best_a.name} rare "
        f"{pm(best_a.rare, best_a.rare_sd)} / common {pm(best_a.common, best_a.common_sd)}"
    )
    if min(a.seeds for a in simple + adaptive) < 2:
        return "inconclusive", f"inconclusive: nothing can be tested from one seed per arm: {pair}."
    winners = [a for a in adaptive if all(beats(a.name, s.name, calls) for s in simple)]
    if winners:
        names = ", ".join(a.name for a in winners)
        return "supported", (
            f"supported: {names} beats every simple strategy (significantly better on rare or "
            f"common accuracy and significantly worse on neither, Holm over {tested} "
            f"comparisons): {pair}."
        )
    if winner := next((s for s in simple if beats(s.name, best_a.name, calls)), None):
        return "inconclusive", (
            f"inconclusive: no adaptive strategy beats the simple ones — {winner.name} beats "
            f"{best_a.name} (significantly better on one accuracy, worse on neither): {pair}."
        )
    return "inconclusive", (
        "inconclusive: no adaptive strategy beats every simple one (after Holm over "
        f"{tested} comparisons): {pair}."
    )


def _ranking_line(arms: list[Arm], key: str, what: str) -> str:
    order = sorted(arms, key=lambda a: -getattr(a, key))
    ranked = ", ".join(f"{a.name} {pm(getattr(a, key), getattr(a, key + '_sd'))}" for a in order)
    return f"Ranking on {what}: {ranked}."


def _adaptive_line(
    a: Arm, simple: list[Arm], judged: list[Judged], calls: Mapping[str, str]
) -> str:
    head = (
        f"{a.name} ({a.kind}): rare {pm(a.rare, a.rare_sd)}, common {pm(a.common, a.common_sd)}, "
        f"rare share {a.rare_share:.1%} over training"
    )
    if a.seeds < 2:
        return f"{head}; one seed: not tested."
    won = [s.name for s in simple if beats(a.name, s.name, calls)]
    lost = [s.name for s in simple if beats(s.name, a.name, calls)]
    neither = [s.name for s in simple if s.name not in won + lost]
    parts = []
    if won:
        parts.append(f"beats {', '.join(won)}")
    if lost:
        parts.append(f"is beaten by {', '.join(lost)}")
    if neither:
        parts.append(f"neither beats nor is beaten by {', '.join(neither)}")
    tests = "; ".join(j.text() for j in judged if j.name.startswith(f"{a.name} − "))
    return f"{head}; " + "; ".join(parts) + f". {tests}."


def _versus_bigger(big: Arm, small: list[Arm]) -> list[Judged]:
    return judge(
        {f"{a.name} − {big.name}, rare acc": (a.rare_values, big.rare_values) for a in small},
        family=f"small-model strategies vs {big.name}",
    )


def _bigger_line(big: Arm, judged: list[Judged]) -> str:
    below = [j.name.split(" − ")[0] for j in judged if j.call == "less"]
    above = [j.name.split(" − ")[0] for j in judged if j.call == "greater"]
    return (
        f"Bigger model: {big.name} ({big.size}) reaches rare {pm(big.rare, big.rare_sd)}, common "
        f"{pm(big.common, big.common_sd)} at {big.compute:.2e} FLOPs; small-model strategies "
        f"significantly below it on the rare task: {', '.join(below) or 'none'}; above it: "
        f"{', '.join(above) or 'none'}. " + "; ".join(j.text() for j in judged) + "."
    )


def _table(arms: list[Arm], base: Arm | None) -> dict[str, list[Any]]:
    cols = [
        "rank",
        "strategy",
        "kind",
        "rare acc",
        "common acc",
        "rare share",
        "FLOPs",
        "vs natural",
        "wall s",
        "seeds",
    ]
    rows = [
        [
            i + 1,
            a.name,
            a.kind,
            pm(a.rare, a.rare_sd),
            pm(a.common, a.common_sd),
            f"{a.rare_share:.1%}" if math.isfinite(a.rare_share) else "",
            f"{a.compute:.2e}",
            f"{a.compute / base.compute:.2f}×" if base and base.compute else "",
            f"{a.wall:.0f}" if math.isfinite(a.wall) else "",
            a.seeds,
        ]
        for i, a in enumerate(arms)
    ]
    return {"columns": cols, "rows": rows}


def save_strategies_figure(
    arms: list[Arm], weights: pd.DataFrame, runs: pd.DataFrame, path: Path, title: str
) -> Path:
    """Rare vs common accuracy per strategy, and the adaptive rules' weight trajectories."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from raremix.figures.plots import mix_colors, save_figure

    colors = mix_colors([a.name for a in arms])
    adaptive = [a for a in arms if a.kind == "adaptive"]
    fig = plt.figure(figsize=(15, 4.6), layout="constrained")
    grid = fig.add_gridspec(
        1, 2 + max(1, len(adaptive)), width_ratios=[1.3, 1.2] + [1] * max(1, len(adaptive))
    )
    ax = fig.add_subplot(grid[0, 0])
    marker = {"simple": "o", "adaptive": "D", "bigger model": "s"}
    for a in arms:
        ax.errorbar(
            a.common,
            a.rare,
            xerr=_sd(a.common_sd),
            yerr=_sd(a.rare_sd),
            fmt=marker[a.kind],
            color=colors[a.name],
            capsize=3,
            label=f"{a.name} ({a.kind})",
        )
    ax.set_xlabel("common-task accuracy")
    ax.set_ylabel("rare-task accuracy")
    ax.set_title("accuracy per strategy (mean ± sd)")
    ax.legend(fontsize=7, loc="lower left")
    ax.grid(alpha=0.3)

    ax = fig.add_subplot(grid[0, 1])
    rare = set(json.loads(runs.config.iloc[0]).get("rare", [])) if len(runs) else set()
    for a in adaptive:
        w = weights[(weights.arm == a.name) & weights.task.isin(rare)]
        if w.empty:
            continue
        by_step = _to_end(w.groupby(["run_id", "step"]).value.sum().unstack(0), w)  # (steps, runs)
        ax.step(
            by_step.index, by_step.mean(axis=1), where="post", color=colors[a.name], label=a.name
        )
        ax.fill_between(
            by_step.index,
            by_step.min(axis=1),
            by_step.max(axis=1),
            step="post",
            color=colors[a.name],
            alpha=0.15,
        )
    for a in arms:
        if a.kind != "adaptive" and math.isfinite(a.rare_share):
            ax.axhline(a.rare_share, color=colors[a.name], ls=":", lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("rare-task weight")
    ax.set_title("rare-task weight (dotted: static mixes)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)

    for i, a in enumerate(adaptive):
        ax = fig.add_subplot(grid[0, 2 + i])
        w = weights[weights.arm == a.name]
        mean = _to_end(w.groupby(["task", "step"]).value.mean().unstack(0), w)  # (steps, tasks)
        for task in mean.columns:
            ax.step(
                mean.index, mean[task], where="post", lw=2.2 if task in rare else 1.1, label=task
            )
        ax.set_ylim(0, 1)
        ax.set_xlabel("step")
        ax.set_title(f"{a.name}: weight per task")
        ax.legend(fontsize=6, ncol=2)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return save_figure(fig, path)


def _to_end(frame: pd.DataFrame, w: pd.DataFrame) -> pd.DataFrame:
    """The last weights held to the end of training (updates stop before the last step)."""
    end = int(w.steps.max()) if len(w) else 0
    if len(frame) and end > frame.index.max():
        frame.loc[end] = frame.iloc[-1]
    return frame


def _sd(value: float) -> float:
    return float(value) if np.isfinite(value) else 0.0
