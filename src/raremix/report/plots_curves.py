"""Plots over training steps: rare-task learning curves, per-task curves, probe metrics.

Inputs are long tables with one row per (run, step, task) and the run's group, seed,
size, params and mix columns (`raremix.studies.analysis_final.task_curves`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from raremix.figures.plots import SEED_POINT, SEEDS_GID, mix_colors, params_axis, seed_offsets
from raremix.studies.analysis_final import LAST_EVALS, forgetting_events
from raremix.studies.summary import strongest_baseline

STYLES = ("-", "--", ":", "-.")
DROP = 0.2


SEED_LINE: dict[str, Any] = {"lw": 0.6, "alpha": 0.4}
"""Per-seed curves: thin, faint, in the group's colour, under the mean line."""


def _mean_and_seeds(ax: Axes, g: pd.DataFrame, value: str, **line: Any) -> None:
    """Mean over seeds as a line, and each seed's own curve as a thin line beside it."""
    s = g.groupby("step")[value].mean()
    (ln,) = ax.plot(s.index, s.to_numpy(), **line)
    if g.run_id.nunique() > 1:
        for _, run in g.groupby("run_id"):
            ax.plot(
                run.step,
                run[value],
                color=ln.get_color(),
                ls=ln.get_linestyle(),
                gid=SEEDS_GID,
                **SEED_LINE,
            )


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
    """Rare-task acc vs step, one line per group (mean over seeds, thin lines: each seed);
    one panel per rare task."""
    rare = curves[curves.role == "rare"]
    tasks = sorted(rare.task.unique())
    fig, axes = plt.subplots(
        1,
        len(tasks),
        figsize=(6.2 * len(tasks), 4.2),
        squeeze=False,
        layout="constrained",
        sharey=True,
    )
    styles = _group_styles(curves, mixes)
    order = group_order(curves, mixes)
    for ax, task in zip(axes[0], tasks, strict=True):
        for group in order:
            g = rare[(rare.task == task) & (rare.group == group)]
            if len(g):
                _mean_and_seeds(ax, g, "acc", **styles[group], lw=1.6)
        bar = float(strongest_baseline(rare[rare.task == task]).mean())
        if np.isfinite(bar):
            ax.axhline(bar, color="grey", ls=(0, (4, 3)), lw=1.1, label=f"best baseline {bar:.2f}")
        ax.set_title(f"rare task '{task}': held-out accuracy", fontsize=10)
        ax.set_xlabel("training step")
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("accuracy (thick: mean over seeds; thin: each seed)")
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
    """Per-task acc vs step for each of `groups` side by side (mean over seeds, thin lines:
    each seed).

    Rare tasks are drawn thick. Each x marks a drop of more than `drop` below an earlier
    peak in one run (acquire-then-forget), at the step where it was seen.
    """
    tasks = sorted(
        curves.task.unique(),
        key=lambda t: (curves.loc[curves.task == t, "role"].iloc[0] != "rare", t),
    )
    cmap = plt.get_cmap("tab10")
    colors = {t: cmap(i % 10) for i, t in enumerate(tasks)}
    fig, axes = plt.subplots(
        1,
        len(groups),
        figsize=(6.0 * len(groups), 4.3),
        squeeze=False,
        layout="constrained",
        sharey=True,
    )
    n_events = 0
    for ax, group in zip(axes[0], groups, strict=True):
        sel = curves[curves.group == group]
        for task in tasks:
            g = sel[sel.task == task]
            if g.empty:
                continue
            rare = g.role.iloc[0] == "rare"
            label = f"{task} (rare)" if rare else task
            _mean_and_seeds(ax, g, "acc", color=colors[task], lw=2.6 if rare else 1.2, label=label)
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
    axes[0, 0].set_ylabel("held-out accuracy (thick: mean; thin: each seed)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if n_events:
        handles.append(Line2D([], [], marker="x", ls="none", color="black", mew=2))
        labels.append(f"drop > {drop} below an earlier peak (one run)")
    axes[0, -1].legend(handles, labels, fontsize=7, loc="best")
    fig.suptitle("Per-task learning curves of the smallest model")
    return fig


PROBE_TEXT: dict[str, tuple[str, str]] = {
    "probe/interference": (
        "Gradient interference: cosine between the rare task's gradient and the common tasks'",
        "Above 0 the common tasks' updates also help the rare task; below 0 they undo its "
        "progress; near 0 the tasks no longer interact. The interference account expects more "
        "conflict, for longer, in small models on the natural mix.",
    ),
    "probe/grad_cos": (
        "Gradient cosine between pairs of tasks (the pairs that include the rare task)",
        "The same reading as interference, pair by pair, averaged over the rare task's pairs: "
        "positive, the two tasks pull the weights the same way; negative, they conflict.",
    ),
    "probe/grad_norm": (
        "Gradient norm of a task's loss",
        "How hard the task's loss still pulls on the weights: it falls as the task is learned. "
        "A rare task whose norm stays high has not been learned; common-task norms that stay "
        "large are what keep overwriting its features.",
    ),
    "probe/first_order": (
        "Predicted change in the rare task's loss from one common-task step (first order)",
        "⟨g_rare, Δθ⟩ for the update the run's own optimiser would make on the common tasks: "
        "above 0 a common step raises the rare loss (interference), below 0 lowers it "
        "(transfer). Compare with the measured change.",
    ),
    "probe/first_order_real": (
        "Measured change in the rare task's loss from one common-task step",
        "L_rare(θ + Δθ) − L_rare(θ) for the same step whose first-order prediction is the "
        "probe/first_order plot: where the two agree, the gradient picture explains the "
        "interference; above 0 the common step hurt the rare task.",
    ),
    "probe/neuron_share": (
        "Share of MLP neurons a task owns (its top attribution)",
        "Every task gets the same attribution budget, so shares sit near 1/#tasks: read the "
        "change over training and across sizes, not the level. A rare task starved of capacity "
        "keeps a small share.",
    ),
    "probe/dead_neurons": (
        "Share of MLP neurons never active on any probe token",
        "Capacity the model does not use: a rising share means neurons are dying. With GELU "
        "few neurons are ever fully dead, so this is usually near 0.",
    ),
    "probe/entropy": (
        "Entropy (nats) of the predictions at a task's answer tokens",
        "High: the model spreads its guess over many tokens (near log of the plausible "
        "tokens); near 0: it answers with confidence. A task the model has given up on stays "
        "high; a drop that comes before the accuracy rises is the onset beginning.",
    ),
    "probe/probe_task_acc": (
        "Linear-probe accuracy for task identity from the residual stream",
        "How well a linear read-out of the probed block's output tells the tasks apart (chance "
        "1/#tasks): high means the model represents which task it is doing.",
    ),
    "probe/probe_feature_acc": (
        "Linear-probe accuracy for a task's first answer token from the residual stream",
        "How well a linear read-out at the separator predicts the answer's first token (chance "
        "1/#distinct first tokens). It can rise before the task's accuracy does: the feature "
        "is there before the model uses it.",
    ),
}
"""metric → (what the plot measures, how to read it); a probe not listed is titled by name."""


def probe_text(metric: str) -> tuple[str, str]:
    """(title, how to read) of a probe metric; its name and no reading when not in PROBE_TEXT."""
    return PROBE_TEXT.get(metric, (metric, ""))


def probe_table(metrics: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """probe/* rows joined to their run's group, seed, size, params, mix and rare tasks."""
    p = metrics[metrics.metric.str.startswith("probe/")]
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


def flat_probe(p: pd.DataFrame, metric: str) -> float | None:
    """The one value a probe's plotted rows all take (NaN if none is finite), else None.

    A flat probe (e.g. probe/dead_neurons at 0 in every run and step) draws an empty-looking
    plot that says nothing about the runs; the report names it in words instead.
    """
    values = _probe_rows(p[p.metric == metric])[0]["value"].to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan
    spread = float(values.max() - values.min())
    return float(values[0]) if spread <= 1e-9 * max(1.0, float(np.abs(values).max())) else None


def probe_figure(p: pd.DataFrame, metric: str, mixes: Sequence[str]) -> Figure:
    """One probe metric, titled by what it measures: over training per group (left; thin lines:
    each seed), final value vs params per mix (right; circles: each seed)."""
    rows, which = _probe_rows(p[p.metric == metric])
    keys = ["run_id", "step", "group", "mix", "size", "params", "seed"]
    per_step = rows.groupby(keys, as_index=False).agg(value=("value", "mean"))
    tasks = _per_task(p[p.metric == metric])
    panels = 3 if tasks is not None else 2
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4.4), layout="constrained")
    left, right = axes[0], axes[1]
    styles = _group_styles(per_step, mixes)
    for group in group_order(per_step, mixes):
        _mean_and_seeds(left, per_step[per_step.group == group], "value", **styles[group], lw=1.5)
    if per_step.value.min() < 0 < per_step.value.max():
        for ax in (left, right):
            ax.axhline(0.0, color="grey", lw=0.8)
    left.set_xlabel("training step")
    left.set_ylabel(metric)
    left.set_title(f"over training ({which}; thick: mean over seeds, thin: each seed)", fontsize=9)
    left.grid(alpha=0.3)
    left.legend(fontsize=7)
    final = per_step.sort_values("step").groupby("run_id").tail(LAST_EVALS)
    final = final.groupby(["run_id", "group", "mix", "size", "params"], as_index=False).agg(
        value=("value", "mean")
    )
    colors = mix_colors(mixes)
    for mix in [m for m in mixes if m in set(final.mix)]:
        by_size = final[final.mix == mix].groupby(["size", "params"], as_index=False)
        s = by_size.agg(mean=("value", "mean")).sort_values("params")
        right.plot(s.params, s["mean"], marker="o", color=colors[mix], label=mix)
    offsets = seed_offsets(final)
    for name, r in final.groupby("group", sort=False):
        right.scatter(
            r.params * offsets[str(name)],
            r.value,
            facecolors="none",
            edgecolors=[colors.get(str(r.mix.iloc[0]), "grey")],
            gid=SEEDS_GID,
            **SEED_POINT,
        )
    params_axis(right, final.params.tolist(), final["size"].tolist())
    right.set_ylabel(f"{metric} (mean of last {LAST_EVALS})")
    right.set_title(f"final value vs model size ({which}; circles: each seed)", fontsize=9)
    right.grid(alpha=0.3)
    right.legend(fontsize=7, title="mix")
    if tasks is not None:
        _by_task(axes[2], tasks, metric, group_order(per_step, mixes))
    fig.suptitle(probe_text(metric)[0], fontsize=11)
    return fig


def _per_task(p: pd.DataFrame) -> pd.DataFrame | None:
    """Each run's final value per single task (mean of its last evaluations), when the probe
    has rows for two or more tasks; None for run-level probes and task pairs."""
    single = p[[bool(t) and t != "all" and "|" not in str(t) for t in p.task]]
    if single.task.nunique() < 2:
        return None
    last = single.sort_values("step").groupby(["run_id", "task"]).tail(LAST_EVALS)
    return last.groupby(["run_id", "group", "task"], as_index=False, sort=False).agg(
        value=("value", "mean")
    )


def _by_task(
    ax: Axes,
    tasks: pd.DataFrame,
    metric: str,
    groups: Sequence[str],
) -> None:
    """Final value per task (x) and group (its own colour, as the legend says): bars = mean
    over seeds, circles = each seed."""
    names = list(dict.fromkeys(tasks.task))
    shown = [g for g in groups if g in set(tasks.group)]
    width = 0.8 / max(1, len(shown))
    for j, group in enumerate(shown):
        g = tasks[tasks.group == group]
        shift = (j - (len(shown) - 1) / 2) * width
        x = np.array([names.index(t) for t in g.task], dtype=float) + shift
        color = plt.get_cmap("tab10")(j % 10)
        means = g.groupby("task", sort=False).value.mean().reindex(names)
        ax.bar(
            np.arange(len(names)) + shift,
            means.to_numpy(),
            width * 0.9,
            color=color,
            alpha=0.35,
            label=group,
        )
        ax.scatter(x, g.value, facecolors="none", edgecolors=[color], gid=SEEDS_GID, **SEED_POINT)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(f"{metric} (mean of last {LAST_EVALS})")
    ax.set_title("every task's final value (bars: mean over seeds; circles: each seed)", fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7)


def has_probes(metrics: pd.DataFrame) -> list[str]:
    """Names of the probe/* metrics present, sorted."""
    names = metrics.metric[metrics.metric.str.startswith("probe/")].unique()
    return sorted(str(n) for n in np.asarray(names))
