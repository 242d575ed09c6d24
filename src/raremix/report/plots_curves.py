"""Plots over training steps: rare-task learning curves, per-task curves, probe metrics.

Inputs are long tables with one row per (run, step, task) and the run's group, seed,
size, params and mix columns (`raremix.studies.analysis_final.task_curves`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from raremix.report.plots import mix_colors, params_axis
from raremix.studies.analysis_final import LAST_EVALS, forgetting_events

STYLES = ("-", "--", ":", "-.")
DROP = 0.2


def _band(ax: Axes, g: pd.DataFrame, value: str, **line: object) -> None:
    """Mean over seeds as a line, min–max over seeds as a shaded band."""
    s = g.groupby("step")[value].agg(["mean", "min", "max"])
    (ln,) = ax.plot(s.index, s["mean"], **line)  # type: ignore[arg-type]
    if g.run_id.nunique() > 1:
        ax.fill_between(s.index, s["min"], s["max"], color=ln.get_color(), alpha=0.15, lw=0)


def _group_styles(curves: pd.DataFrame, mixes: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per group: colour by mix, line style by size (ordered by params)."""
    colors = mix_colors(mixes)
    sizes = list(curves.groupby("size")["params"].median().sort_values().index)
    out: dict[str, dict[str, Any]] = {}
    for group, g in curves.groupby("group"):
        mix, size = g.mix.iloc[0], g["size"].iloc[0]
        style = STYLES[sizes.index(size) % len(STYLES)]
        out[str(group)] = {"color": colors.get(str(mix), "grey"), "ls": style, "label": str(group)}
    return out


def rare_curves_figure(curves: pd.DataFrame, mixes: Sequence[str]) -> Figure:
    """Rare-task acc vs step, one line per group (mean over seeds, min–max band);
    one panel per rare task."""
    rare = curves[curves.role == "rare"]
    tasks = sorted(rare.task.unique())
    fig, axes = plt.subplots(1, len(tasks), figsize=(6.2 * len(tasks), 4.2), squeeze=False,
                             layout="constrained", sharey=True)  # fmt: skip
    styles = _group_styles(curves, mixes)
    order = group_order(curves, mixes)
    for ax, task in zip(axes[0], tasks, strict=True):
        for group in order:
            g = rare[(rare.task == task) & (rare.group == group)]
            if len(g):
                _band(ax, g, "acc", **styles[group], lw=1.6)
        ax.set_title(f"rare task '{task}': held-out accuracy", fontsize=10)
        ax.set_xlabel("training step")
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("accuracy (mean over seeds; band: min–max)")
    axes[0, -1].legend(fontsize=7, title="group (size · mix)", loc="best")
    return fig


def group_order(curves: pd.DataFrame, mixes: Sequence[str]) -> list[str]:
    """Groups ordered by mix (as in `mixes`), then by params."""
    info = curves.groupby("group").agg(mix=("mix", "first"), params=("params", "median"))
    rank = {m: i for i, m in enumerate(mixes)}
    keys = {
        str(r["group"]): (rank.get(str(r["mix"]), len(rank)), float(r["params"]), str(r["group"]))
        for r in info.reset_index().to_dict("records")
    }
    return sorted(keys, key=keys.__getitem__)


def task_curves_figure(curves: pd.DataFrame, groups: Sequence[str], drop: float = DROP) -> Figure:
    """Per-task acc vs step for each of `groups` side by side (mean over seeds).

    Rare tasks are drawn thick. Each x marks a drop of more than `drop` below an earlier
    peak in one run (acquire-then-forget), at the step where it was seen.
    """
    tasks = sorted(
        curves.task.unique(),
        key=lambda t: (curves.loc[curves.task == t, "role"].iloc[0] != "rare", t),
    )
    cmap = plt.get_cmap("tab10")
    colors = {t: cmap(i % 10) for i, t in enumerate(tasks)}
    fig, axes = plt.subplots(1, len(groups), figsize=(6.0 * len(groups), 4.3), squeeze=False,
                             layout="constrained", sharey=True)  # fmt: skip
    n_events = 0
    for ax, group in zip(axes[0], groups, strict=True):
        sel = curves[curves.group == group]
        for task in tasks:
            g = sel[sel.task == task]
            if g.empty:
                continue
            rare = g.role.iloc[0] == "rare"
            label = f"{task} (rare)" if rare else task
            _band(ax, g, "acc", color=colors[task], lw=2.6 if rare else 1.2, label=label)
            for _, run in g.groupby("run_id"):
                for _, _, step, acc in forgetting_events(
                    run.step.to_numpy(), run.acc.to_numpy(), drop
                ):
                    ax.plot(step, acc, "x", color=colors[task], ms=9, mew=2.2)
                    n_events += 1
        seeds = sel.run_id.nunique()
        ax.set_title(f"{group} ({seeds} seed{'s' if seeds != 1 else ''})", fontsize=10)
        ax.set_xlabel("training step")
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("held-out accuracy (mean over seeds)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if n_events:
        handles.append(Line2D([], [], marker="x", ls="none", color="black", mew=2))
        labels.append(f"drop > {drop} below an earlier peak (one run)")
    axes[0, -1].legend(handles, labels, fontsize=7, loc="best")
    fig.suptitle("Per-task learning curves of the smallest model")
    return fig


def probe_table(metrics: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """probe/* rows joined to their run's group, seed, size, params, mix and rare tasks."""
    p = metrics[metrics.metric.str.startswith("probe/")].rename(columns={"run": "run_id"})
    keys = ["run_id", "seed", "size", "params", "mix", "group", "rare"]
    return p.merge(runs[keys], on="run_id")


def _probe_rows(p: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The rows a probe plot shows: the rare tasks' (or pairs with one) if it has any, else
    run-level, else all tasks averaged; with a phrase saying which."""
    # a pair "a|b" (e.g. probe/grad_cos) counts when either side is a rare task
    rare = p[[bool(set(str(t).split("|")) & set(r)) for t, r in zip(p.task, p.rare, strict=True)]]
    if len(rare):
        return rare, "rare task" if rare.task.nunique() == 1 else "rare tasks or pairs, mean"
    level = p[p.task.isin(("", "all"))]
    if len(level):
        return level, "run level"
    return p, "all tasks, mean"


def probe_figure(p: pd.DataFrame, metric: str, mixes: Sequence[str]) -> Figure:
    """One probe metric: over training per group (left), final value vs params per mix (right)."""
    rows, which = _probe_rows(p[p.metric == metric])
    keys = ["run_id", "step", "group", "mix", "size", "params", "seed"]
    per_step = rows.groupby(keys, as_index=False).agg(value=("value", "mean"))
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    styles = _group_styles(per_step, mixes)
    for group in group_order(per_step, mixes):
        _band(left, per_step[per_step.group == group], "value", **styles[group], lw=1.5)
    if per_step.value.min() < 0 < per_step.value.max():
        for ax in (left, right):
            ax.axhline(0.0, color="grey", lw=0.8)
    left.set_xlabel("training step")
    left.set_ylabel(metric)
    left.set_title(f"{metric} over training ({which})", fontsize=10)
    left.grid(alpha=0.3)
    left.legend(fontsize=7)
    final = per_step.sort_values("step").groupby("run_id").tail(LAST_EVALS)
    final = final.groupby(["run_id", "mix", "size", "params"], as_index=False).agg(
        value=("value", "mean")
    )
    colors = mix_colors(mixes)
    for mix in [m for m in mixes if m in set(final.mix)]:
        by_size = final[final.mix == mix].groupby(["size", "params"], as_index=False)
        s = by_size.agg(mean=("value", "mean"), std=("value", "std")).sort_values("params")
        right.errorbar(s.params, s["mean"], yerr=s["std"].fillna(0.0), marker="o", capsize=4,
                       color=colors[mix], label=mix)  # fmt: skip
    params_axis(right, final.params.tolist(), final["size"].tolist())
    right.set_ylabel(f"{metric} (mean of last {LAST_EVALS})")
    right.set_title(f"final {metric} vs model size ({which})", fontsize=10)
    right.grid(alpha=0.3)
    right.legend(fontsize=7, title="mix")
    return fig


def has_probes(metrics: pd.DataFrame) -> list[str]:
    """Names of the probe/* metrics present, sorted."""
    names = metrics.metric[metrics.metric.str.startswith("probe/")].unique()
    return sorted(str(n) for n in np.asarray(names))
