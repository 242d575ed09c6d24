"""The long-tail plot: rows per task on a log scale, most common first, starved tasks marked."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

MAX_LABELS = 40  # beyond this, bars are numbered by rank instead of named


def longtail_figure(frame: pd.DataFrame, title: str = "") -> Figure:
    """Bar chart of `count` per task from `task_stats` (log y), starved tasks in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    frame = frame.sort_values(["count", "task"], ascending=[False, True])
    k = len(frame)
    starved = (frame["starved"] != "").to_numpy()
    fig, ax = plt.subplots(figsize=(min(3 + 0.45 * k, 14), 4.2), layout="constrained")
    x = np.arange(k)
    colors = np.where(starved, "tab:red", "tab:blue")
    ax.bar(x, frame["count"], color=colors)
    ax.set_yscale("log")
    if k <= MAX_LABELS:
        ax.set_xticks(x, frame["task"].tolist(), rotation=45, ha="right", fontsize=8)
        for xi, (n, share) in enumerate(zip(frame["count"], frame["share"], strict=True)):
            ax.annotate(f"{share:.1%}", (xi, n), ha="center", va="bottom", fontsize=7)
    else:
        ax.set_xlabel("task, by rank (most common first)")
    ax.set_ylabel("rows (log scale)")
    ax.set_title(
        title or f"{k} tasks: rows per task (red: starved by the natural mix)", fontsize=10
    )
    ax.grid(axis="y", alpha=0.3)
    return fig
