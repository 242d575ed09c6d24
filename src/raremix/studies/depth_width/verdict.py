"""The depth-width verdict: at equal parameters, does deeper-and-thinner beat wider-and-shallower?

Runs are labelled by the study's `shape` axis, "<budget> · L<depth>". For each budget,
accuracy (each run: the mean over tasks of its final held-out accuracy) of the deepest
shape is compared with the shallowest's, on all tasks and on the compositional ones: a
two-sided exact permutation test over seeds with a Welch t CI, Holm-adjusted over every
budget × view (`raremix.stats.judge`). "Deeper wins" needs every one significant.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from raremix.errors import RaremixError
from raremix.stats import Judged, claim_outcome, effect_said, floor_note, judge
from raremix.studies.analysis import Verdict
from raremix.studies.analysis_final import LAST_EVALS, StudyResults
from raremix.studies.summary import pm

COMPOSITIONAL = ("chain", "state", "add")
"""Tasks that compose steps: chain = reverse then inc, state = step repeated, add (carries)."""
SHAPE_AXIS = "shape"


def shapes(final: pd.DataFrame, labels: dict[str, str]) -> pd.DataFrame:
    """`final` with budget and depth per run, from the shape label '<budget> · L<depth>'."""
    out = final.copy()
    label = out.run_id.map(labels)
    if label.isna().any():
        raise RaremixError(
            "depth-width runs need a 'shape' axis labelled '<budget> · L<depth>': see "
            "studies/depth_width/depth-width.yaml"
        )
    parts = label.str.split("·", n=1, expand=True)
    out["budget"] = parts[0].str.strip()
    out["depth"] = parts[1].str.strip().str.lstrip("L").astype(int)
    return out


def run_accuracy(final: pd.DataFrame, tasks: tuple[str, ...] | None = None) -> pd.DataFrame:
    """One row per run: budget, depth, run_id, seed, params, size and acc (its mean over
    `tasks`, all if None)."""
    rows = final if tasks is None else final[final.task.isin(tasks)]
    return rows.groupby(["budget", "depth", "run_id", "seed"], as_index=False).agg(
        acc=("acc", "mean"), params=("params", "first"), size=("size", "first")
    )


def depth_summary(final: pd.DataFrame, tasks: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Per budget × depth: acc mean ± sd over seeds of each run's mean over `tasks` (all if None).

    Columns: budget, depth, params, size, mean, sd, seeds; sorted by budget, then depth.
    """
    g = (
        run_accuracy(final, tasks)
        .groupby(["budget", "depth"], as_index=False)
        .agg(
            params=("params", "median"),
            size=("size", "first"),
            mean=("acc", "mean"),
            sd=("acc", "std"),
            seeds=("seed", "nunique"),
        )
    )
    order = [budget_value(b, p) for b, p in zip(g.budget, g.params, strict=True)]
    return g.assign(_o=order).sort_values(["_o", "depth"]).drop(columns="_o").reset_index(drop=True)


def budget_value(label: str, fallback: float) -> float:
    """'25k' → 25000, '1m' → 1e6; a label that is no number gives `fallback`."""
    scale = {"k": 1e3, "m": 1e6}.get(label[-1:].lower(), 1.0)
    try:
        return float(label[:-1] if scale != 1.0 else label) * scale
    except ValueError:
        return fallback


def compare_depths(final: pd.DataFrame, views: dict[str, tuple[str, ...] | None]) -> list[Judged]:
    """Per view (name → tasks, all if None) × budget: the deepest − the shallowest shape's
    per-seed accuracy, two-sided, Holm over all of them. Named '<budget> <view>: L<deep> − L<shallow>'."""
    pairs = {}
    for view, tasks in views.items():
        runs = run_accuracy(final, tasks)
        for budget, g in runs.groupby("budget", sort=False):
            lo, hi = int(g.depth.min()), int(g.depth.max())
            pairs[f"{budget} {view}: L{hi} − L{lo}"] = (
                g[g.depth == hi].acc.to_numpy(),
                g[g.depth == lo].acc.to_numpy(),
            )
    return judge(pairs, family="deeper-and-thinner beats wider-and-shallower")


def depth_width_verdict(results: StudyResults, out: Path) -> Verdict:
    """Accuracy vs depth per budget (all tasks, compositional tasks); figures in `out/figures`."""
    final = results.final
    runs = results.runs
    if SHAPE_AXIS not in runs:
        raise RaremixError(
            f"{results.study_dir}: no '{SHAPE_AXIS}' axis in the runs: the depth-width verdict needs it"
        )
    final = shapes(final, dict(zip(runs.run_id, runs[SHAPE_AXIS], strict=True)))
    comp = tuple(t for t in COMPOSITIONAL if t in set(final.task))
    tasks_of: dict[str, tuple[str, ...] | None] = {"all tasks": None}
    if comp:
        tasks_of["compositional"] = comp
    views = {name: depth_summary(final, tasks) for name, tasks in tasks_of.items()}
    judged = compare_depths(final, tasks_of)
    finding, why = claim_outcome(judged, "greater")

    lines, heads = [], []
    for j in judged:
        budget, view = j.name.split(":")[0].split(" ", 1)
        at = views[view][views[view].budget == budget].set_index("depth")
        shown = ", ".join(f"L{d} {pm(at.loc[d, 'mean'], at.loc[d, 'sd'])}" for d in at.index)
        word = {"greater": "deeper wins", "less": "wider wins"}.get(j.call, "no winner shown")
        best = int(at.index[int(np.argmax(at["mean"].to_numpy()))])
        lines.append(f"{budget}, {view}: {shown}; {j.text()}: {word}; highest mean L{best}.")
        heads.append(f"{j.name.replace(':', '')} {effect_said(j)}")
    seeds = int(views["all tasks"].seeds.min())
    lines.append(
        f"Each run's accuracy is the mean over tasks of its held-out exact match (mean of the last "
        f"{LAST_EVALS} evaluations); {seeds}+ seeds per shape. Deepest vs shallowest per budget: "
        "two-sided exact permutation tests with Welch t 95% CIs, unpaired (shapes differ, so "
        f"no initialisation is shared), Holm over the {len(judged)} comparisons; 'deeper wins' "
        f"needs Holm-adjusted p < 0.05. Compositional: {', '.join(comp) or 'none'}."
    )
    if note := floor_note(judged):
        lines.append(note)
    lines.append(_per_task_line(final))

    from raremix.figures.plots import save_figure

    save_figure(_depth_figure(views), out / "figures" / "depth_width.png")
    save_figure(_task_figure(final), out / "figures" / "depth_width_tasks.png")
    how = (
        "Each point is one shape (depth L, width = the widest within the budget): the mean "
        "over seeds of its held-out accuracy, error bars one sd over seeds; one line per "
        "budget. Lines rising to the right: deeper-and-thinner wins at equal size."
    )
    return Verdict(
        study=results.name,
        title="depth-width: deeper-and-thinner vs wider-and-shallower at equal parameters",
        headline=f"{finding}: deeper-and-thinner beats wider-and-shallower ({why}) — "
        + "; ".join(heads),
        lines=lines,
        table=_table(final, views),
        finding=finding,
        comparisons=[j.as_dict() for j in judged],
        figures=[
            {
                "file": "figures/depth_width.png",
                "how": how,
                "caption": "Mean held-out accuracy vs depth at equal parameters: all tasks and the compositional ones.",
            },
            {
                "file": "figures/depth_width_tasks.png",
                "how": how,
                "caption": "Per-task held-out accuracy vs depth, one line per budget.",
            },
        ],
    )


def _per_task_line(final: pd.DataFrame) -> str:
    """Which depth is best per task, per budget (means over seeds)."""
    acc = final.groupby(["budget", "task", "depth"], as_index=False, sort=False)["acc"].mean()
    parts = []
    for (budget, task), g in acc.groupby(["budget", "task"], sort=False):
        i = int(np.argmax(g.acc.to_numpy()))
        parts.append(f"{task}@{budget} L{int(g.depth.to_numpy()[i])} ({g.acc.to_numpy()[i]:.2f})")
    return "Best depth per task (mean acc): " + ", ".join(parts) + "."


def _table(final: pd.DataFrame, views: dict[str, pd.DataFrame]) -> dict[str, list[Any]]:
    """One row per shape: params, mean ± sd on all / compositional tasks, and each
    compositional task's mean."""
    comp = [t for t in COMPOSITIONAL if t in set(final.task)]
    per_task = final.groupby(["budget", "depth", "task"])["acc"].mean().to_dict()
    cols = ["shape", "params", *views, *comp, "seeds"]
    rows = []
    for r in views["all tasks"].to_dict("records"):
        key = (r["budget"], r["depth"])
        cells = []
        for s in views.values():
            hit = s[(s.budget == key[0]) & (s.depth == key[1])].iloc[0]
            cells.append(pm(hit["mean"], hit["sd"]))
        d_model = str(r["size"]).split("·")[0]
        rows.append(
            [
                f"{r['budget']} · L{r['depth']} · {d_model}",
                f"{r['params']:,.0f}",
                *cells,
                *(f"{per_task.get((*key, t), math.nan):.2f}" for t in comp),
                int(r["seeds"]),
            ]
        )
    return {"columns": cols, "rows": rows}


def _depth_figure(views: dict[str, pd.DataFrame]) -> Any:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(views), figsize=(4.2 * len(views), 3.4), layout="constrained")
    for ax, (name, s) in zip(np.atleast_1d(axes), views.items(), strict=True):
        for i, (budget, g) in enumerate(s.groupby("budget", sort=False)):
            ax.errorbar(
                g.depth,
                g["mean"],
                yerr=g["sd"].fillna(0),
                marker="o",
                capsize=3,
                color=f"C{i}",
                label=f"{budget} ({g.params.median():,.0f} params)",
            )
        ax.set_xticks(sorted(s.depth.unique()))
        ax.set_xlabel("layers (width shrinks to keep the budget)")
        ax.set_ylabel("held-out accuracy")
        ax.set_title(name)
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=7)
    return fig


def _task_figure(final: pd.DataFrame) -> Any:
    import matplotlib.pyplot as plt

    tasks = sorted(set(final.task), key=lambda t: (t not in COMPOSITIONAL, t))
    cols = min(4, len(tasks))
    nrows = math.ceil(len(tasks) / cols)
    fig, axes = plt.subplots(
        nrows,
        cols,
        figsize=(3 * cols, 2.5 * nrows),
        layout="constrained",
        sharey=True,
        squeeze=False,
    )
    acc = final.groupby(["task", "budget", "depth"])["acc"].agg(["mean", "std"]).reset_index()
    params = final.groupby("budget")["params"].median()
    budgets = sorted(params.index, key=lambda b: budget_value(str(b), float(params[b])))
    for ax, task in zip(axes.flat, tasks, strict=False):
        for i, budget in enumerate(budgets):  # the same colour per budget as in _depth_figure
            g = acc[(acc.task == task) & (acc.budget == budget)]
            ax.errorbar(
                g.depth,
                g["mean"],
                yerr=g["std"].fillna(0),
                marker="o",
                capsize=2,
                label=budget,
                color=f"C{i}",
            )
        ax.set_title(task + (" (compositional)" if task in COMPOSITIONAL else ""), fontsize=9)
        ax.set_xticks(sorted(acc.depth.unique()))
        ax.set_ylim(-0.02, 1.02)
    for ax in axes.flat[len(tasks) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.supxlabel("layers", fontsize=9)
    return fig
