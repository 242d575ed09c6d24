"""Study plots from analysis tables: the scale-vs-mix frontier and the injection heatmaps.

Each function takes plain DataFrames and returns a matplotlib Figure (Agg backend);
`save_figure` writes and closes it. Nothing here reads a store or trains.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

DPI = 110


def check_figure_path(path: Path, what: str = "figure") -> Path:
    """`path`, if matplotlib can write its suffix and its folder can be made; else one line."""
    from matplotlib.backend_bases import FigureCanvasBase

    from raremix.errors import RaremixError
    from raremix.outdir import check_output_dir

    kinds = FigureCanvasBase.get_supported_filetypes()
    if path.suffix.lower().lstrip(".") not in kinds:
        raise RaremixError(
            f"{what} {path}: cannot write a '{path.suffix}' figure: "
            f"end the name in one of {', '.join('.' + k for k in sorted(kinds))} (e.g. .png)"
        )
    check_output_dir(path.parent, what)
    return path


def save_figure(fig: Figure, path: Path) -> Path:
    """Write `fig` at `path` (PNG, or the format its suffix names; parents created), close it."""
    check_figure_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, facecolor="white")  # constrained layout: no tight bbox pass
    plt.close(fig)
    return path


def mix_colors(mixes: Sequence[str]) -> dict[str, tuple[float, ...]]:
    """A stable colour per mix: tab10 for a few, viridis for many (e.g. injection rates)."""
    if len(mixes) <= 10:
        cmap = plt.get_cmap("tab10")
        return {m: cmap(i) for i, m in enumerate(mixes)}
    cmap = plt.get_cmap("viridis")
    return {m: cmap(i / max(len(mixes) - 1, 1)) for i, m in enumerate(mixes)}


def mix_order(groups: pd.DataFrame) -> list[str]:
    """Mixes ordered by the rare task's share of the data (natural first on ties or no share)."""
    share = groups.groupby("mix")["rare_share"].mean().fillna(-1.0)
    return sorted(share.index, key=lambda m: (m != "natural", share[m], m))


def params_axis(ax: Axes, params: Sequence[float], labels: Sequence[str]) -> None:
    """Log-scale x axis with a tick at each model size, labelled 'size\\nN params'."""
    ax.set_xscale("log")
    ticks = sorted(set(zip(params, labels, strict=True)))
    ax.set_xticks([p for p, _ in ticks], [f"{s}\n{p:,.0f}" for p, s in ticks], fontsize=7)
    ax.xaxis.set_minor_formatter(NullFormatter())
    if len(ticks) == 1:  # one size: give the log axis some room
        p = ticks[0][0]
        ax.set_xlim(p / 2, p * 2)
    ax.set_xlabel("parameters (log scale)")


def clipped_yerr(
    mean: npt.ArrayLike,
    sd: npt.ArrayLike,
    lo: float = 0.0,
    hi: float = 1.0,
) -> np.ndarray:
    """(2, N) error-bar lengths for mean ± sd that stop at [lo, hi]: an accuracy of 0.97 ± 0.05
    gets a bar up to 1.0, not past it. An unknown sd (one seed) draws no bar."""
    m = np.asarray(mean, dtype=float)
    s = np.nan_to_num(np.asarray(sd, dtype=float), nan=0.0)
    below, above = m - np.clip(m - s, lo, hi), np.clip(m + s, lo, hi) - m
    return np.maximum(np.stack([below, above]), 0.0)  # (2, N)


SEED_POINT: dict[str, Any] = {"s": 16, "alpha": 0.75, "lw": 0.9, "zorder": 3}
"""Per-seed markers: small hollow circles in the mix's colour, drawn beside the mean."""
SEEDS_GID = "seeds"
"""The gid of every per-seed scatter, so a figure's seeds can be found (and tested)."""


def seed_offsets(runs: pd.DataFrame) -> dict[str, float]:
    """Per group, the factor its seed points are shifted right on a log-params axis, so they
    sit beside the means, not on them: groups of one size step 2.5% of the axis span apart
    (the span taken as at least 4×, so that a narrow axis does not spread them)."""
    params = runs["params"].to_numpy(dtype=float)
    span = max(float(np.log(params.max() / params.min())), float(np.log(4.0)))
    out: dict[str, float] = {}
    for _, g in runs.groupby("params", sort=False):
        for k, group in enumerate(dict.fromkeys(g["group"])):
            out[str(group)] = float(np.exp(0.025 * span * (k + 1)))
    return out


def frontier_figure(
    groups: pd.DataFrame,
    study: str = "",
    runs: pd.DataFrame | None = None,
) -> Figure:
    """Rare- (left) and common-task (right) acc, mean ± sd over seeds (bars clipped to [0, 1]),
    vs params; one line per mix. `runs` (`studies.summary.per_run`) adds each seed as a point
    beside its group's mean."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), layout="constrained", sharey=True)
    order = mix_order(groups)
    colors = mix_colors(order)
    offsets = seed_offsets(runs) if runs is not None else {}
    for ax, role in zip(axes, ("rare", "common"), strict=True):
        for mix in order:
            g = groups[groups.mix == mix].sort_values("params")
            ax.errorbar(
                g.params,
                g[f"{role}_mean"],
                yerr=clipped_yerr(g[f"{role}_mean"], g[f"{role}_sd"]),
                marker="o",
                capsize=4,
                lw=2 if mix == "natural" else 1.4,
                color=colors[mix],
                label=mix,
            )
        if runs is not None:
            for group, r in runs.groupby("group", sort=False):
                x = r.params * offsets[str(group)]
                color = colors.get(str(r.mix.iloc[0]), "grey")
                ax.scatter(
                    x,
                    r[f"{role}_acc"],
                    facecolors="none",
                    edgecolors=[color],
                    gid=SEEDS_GID,
                    **SEED_POINT,
                )
        params_axis(ax, groups.params.tolist(), groups["size"].tolist())
        ax.set_title(f"{role}-task accuracy", fontsize=10)
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("held-out accuracy (mean of last 3 evals)")
    axes[0].legend(title="mix", fontsize=8)
    seeds = "; circles: single seeds" if runs is not None else ""
    fig.suptitle(f"{study}: accuracy vs model size, per mix (error bars: sd over seeds{seeds})")
    return fig


def heatmap_figure(final: pd.DataFrame, tasks: Sequence[str], threshold: float = 0.8) -> Figure:
    """Per injected task, final acc (mean over seeds) over injection rate × model size.

    Rows are rates (highest at the top), columns sizes by params; cells at or above
    `threshold` are outlined.
    """
    n = max(len(tasks), 1)
    fig, axes = plt.subplots(
        1, n, figsize=(3.2 + 2.0 * n, 4.2), layout="constrained", squeeze=False
    )
    image = None
    for ax, task in zip(axes[0], tasks, strict=False):
        sel = final[final.task == task]
        rates = sel.groupby("rate")["rate_per_batch"].mean().sort_values(ascending=False)
        sizes = sel.groupby("size")["params"].median().sort_values()
        grid = sel.pivot_table(index="rate", columns="size", values="acc", aggfunc="mean")
        grid = grid.reindex(index=rates.index, columns=sizes.index)
        image = ax.imshow(grid.to_numpy(), vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for (i, j), v in np.ndenumerate(grid.to_numpy()):
            if np.isfinite(v):
                ax.text(
                    j,
                    i,
                    f"{v:.2f}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="black" if v > 0.6 else "white",
                )
                if v >= threshold:
                    ax.add_patch(
                        plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="red", lw=1.5)
                    )
        ax.set_xticks(range(len(sizes)), [f"{s}\n{p:,.0f}" for s, p in sizes.items()], fontsize=7)
        names = [r if r == f"{v:.3g}/batch" else f"{r} ({v:.3g}/batch)" for r, v in rates.items()]
        ax.set_yticks(range(len(rates)), names, fontsize=7)
        ax.set_xlabel("model size (params)")
        ax.set_title(f"{task}: final accuracy", fontsize=10)
    axes[0, 0].set_ylabel("injection rate")
    if image is not None:
        fig.colorbar(image, ax=axes[0, -1], shrink=0.85, label=f"accuracy (red box: ≥ {threshold})")
    fig.suptitle("Rare-task injection: accuracy over rate × model size")
    return fig


def percent_formatter() -> FuncFormatter:
    """Tick labels as percentages."""
    return FuncFormatter(lambda v, _: f"{v:.0%}")
