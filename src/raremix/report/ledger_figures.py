"""The mechanism figures of a study's probe section: the interference ledger and "satisfied early".

Pure functions of the study's metric rows and run table, returning matplotlib figures (or
None when there is nothing to show, e.g. every value is zero): the report draws them.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

LEDGER_TITLE = (
    "Interference ledger: cumulative first-order change of the rare task's held-out loss, "
    "from the batches' common vs rare examples"
)
LEDGER_HOW = (
    "Each panel is one model size. At sampled steps the actual AdamW update is split into the "
    "part made by the batch's common-task examples, by its rare-task examples (each weighted "
    "by its share of the batch, under the step's own preconditioner) and by momentum of "
    "earlier batches plus weight decay; each part's first-order effect ⟨∇L_rare, Δθ_part⟩ is "
    "summed over training. Below zero: those updates lowered the rare loss (transfer); above "
    "zero: they raised it (interference). Lines: mean over seeds; bands: min–max over seeds. "
    "Dotted: the measured change, summed the same way, which the three parts should track."
)
SATISFIED_TITLE = "Common-task gradient norm over training, by model size"
SATISFIED_HOW = (
    "The norm of the common tasks' gradient (tasks weighted as training weights them) against "
    "training FLOPs, log scale; thick: mean over seeds, thin: each seed. 'Satisfied early' "
    "means the larger model's line falls first; markers: where each run falls below the "
    "declared fraction of its start."
)
PARTS = {
    "ledger/cum_from_common": ("common examples", "tab:red", "-"),
    "ledger/cum_from_rare": ("rare examples", "tab:blue", "-"),
    "ledger/cum_from_history": ("momentum + decay", "tab:grey", "--"),
    "ledger/cum_measured": ("measured", "black", ":"),
}


def _victim_rows(metrics: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Cumulative ledger rows of each run's rare task(s), joined to the run's size and seed."""
    rows = metrics[metrics.metric.isin(list(PARTS))]
    rows = rows.merge(runs[["run_id", "seed", "size", "params", "rare"]], on="run_id")
    keep = [
        str(t) in (r if isinstance(r, list | tuple) else [r])
        for t, r in zip(rows.task, rows.rare, strict=True)
    ]
    return rows[keep]


def ledger_figure(metrics: pd.DataFrame, runs: pd.DataFrame) -> Figure | None:
    """Cumulative ΔL_rare by part over training, one panel per size (smallest and largest)."""
    rows = _victim_rows(metrics, runs)
    if rows.empty or not np.any(np.abs(rows.value.to_numpy(dtype=float)) > 0):
        return None
    sizes = rows.drop_duplicates("size").sort_values("params")["size"].tolist()
    sizes = sizes if len(sizes) <= 2 else [sizes[0], sizes[-1]]
    fig, axes = plt.subplots(
        1,
        len(sizes),
        figsize=(5.5 * len(sizes), 4.2),
        layout="constrained",
        sharey=True,
        squeeze=False,
    )
    for ax, size in zip(axes[0], sizes, strict=True):
        for metric, (label, color, style) in PARTS.items():
            r = rows[(rows["size"] == size) & (rows.metric == metric)]
            per_seed = r.groupby(["seed", "step"]).value.mean().unstack("seed")  # (steps, seeds)
            if per_seed.empty:
                continue
            x = per_seed.index.to_numpy()
            ax.plot(x, per_seed.mean(axis=1), color=color, ls=style, label=label)
            ax.fill_between(x, per_seed.min(axis=1), per_seed.max(axis=1), color=color, alpha=0.15)
        ax.axhline(0.0, color="grey", lw=0.8)
        n = rows[rows["size"] == size].seed.nunique()
        ax.set_title(
            f"{size} ({n} seed{'s' if n != 1 else ''}): below 0 = rare loss lowered", fontsize=9
        )
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("cumulative ΔL_rare (nats)")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(LEDGER_TITLE, fontsize=10)
    return fig


def satisfied_figure(metrics: pd.DataFrame, runs: pd.DataFrame) -> Figure | None:
    """Common gradient norm against FLOPs (a run's `flops` over its last step), one colour per
    size; None without such rows."""
    from raremix.probes.satisfied import METRICS, satisfied_step

    for metric in METRICS:
        rows = metrics[metrics.metric == metric]
        if len(rows):
            break
    else:
        return None
    rows = rows.merge(runs[["run_id", "seed", "size", "params"]], on="run_id")
    last = metrics.groupby("run_id").step.max()
    flops_per_step = (
        runs.set_index("run_id").flops / last.reindex(runs.run_id).to_numpy()
    ).dropna()
    rows = rows[rows.run_id.isin(list(flops_per_step.index))]
    if rows.empty or not np.any(rows.value.to_numpy(dtype=float) > 0):
        return None
    rows = rows.assign(flops=rows.step * rows.run_id.map(flops_per_step))
    fig, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
    sizes = rows.drop_duplicates("size").sort_values("params")["size"].tolist()
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.85, max(1, len(sizes))))
    for size, color in zip(sizes, colors, strict=True):
        r = rows[rows["size"] == size]
        for run_id, run in r.groupby("run_id"):
            step = satisfied_step(run.step.tolist(), run.value.tolist())
            if step is not None:
                ax.plot(
                    step * flops_per_step[run_id],
                    run.value[run.step == step].iloc[0],
                    marker="v",
                    color=color,
                    ms=5,
                )
            ax.plot(run.flops, run.value, color=color, lw=0.6, alpha=0.5)
        mean = r.groupby("step").agg(flops=("flops", "mean"), value=("value", "mean"))
        ax.plot(mean.flops, mean.value, color=color, lw=2, label=size)
    ax.set_yscale("log")
    ax.set_xlabel("training FLOPs")
    ax.set_ylabel(f"common gradient norm ({metric})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, title="size")
    fig.suptitle(SATISFIED_TITLE, fontsize=10)
    return fig
