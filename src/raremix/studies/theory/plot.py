"""Plot the theory lab's predicted-vs-learned features, and run it from the command line.

python -m raremix.studies.theory.plot src/raremix/studies/theory/theory.yaml theory.png
"""

from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from raremix.configbase import load_file
from raremix.studies.theory.lab import TheoryConfig, TheoryResult, run_theory


def plot_theory(result: TheoryResult) -> Figure:
    """Per width, a task × feature heatmap of learned overlap (mean over seeds) with the
    predicted top-N outlined; then rare coverage vs width, and learn step vs utility."""
    cfg, feats, summ = result.config, result.features, result.summary
    ups = list(cfg.upweight_widths)
    ncols = max(len(cfg.widths), len(ups) + 2)
    fig, axes = plt.subplots(
        2, ncols, figsize=(3.0 * ncols + 1.5, 7.0), squeeze=False, layout="constrained"
    )
    for ax in axes.ravel():
        ax.set_axis_off()
    image = None
    panels = [("natural", w, axes[0, i], i == 0) for i, w in enumerate(cfg.widths)]
    panels += [("upweight", w, axes[1, i], i == 0) for i, w in enumerate(ups)]
    for arm, width, ax, first in panels:
        sel = feats[(feats.arm == arm) & (feats.width == width)]
        s = summ[(summ.arm == arm) & (summ.width == width)].iloc[0]
        image = _heatmap(ax, sel, cfg, ylabels=first)
        name = "natural mix" if arm == "natural" else f"task {cfg.K} ×{cfg.upweight_factor:g}"
        ax.set_title(
            f"N={width}, {name}\nprecision {s.precision_mean:.2f}±{s.precision_sd:.2f}, "
            f"τ {s.rank_agreement_mean:.2f}",
            fontsize=8,
        )
    if image is not None:
        fig.colorbar(image, ax=axes[0, -1], shrink=0.9, label="overlap (mean over seeds)")
    _coverage(axes[1, len(ups)], summ, cfg)
    _learn_times(axes[1, len(ups) + 1], feats, cfg)
    fig.suptitle(
        "Theory lab: features a width-N model learns (colour) vs the top-N by utility "
        "π·λ (outlined)",
        fontsize=10,
    )
    return fig


def _heatmap(
    ax: Axes, sel: pd.DataFrame, cfg: TheoryConfig, ylabels: bool
) -> matplotlib.image.AxesImage:
    ax.set_axis_on()
    mean = sel.groupby(["task", "feature"]).overlap.mean().unstack().to_numpy()  # (K, d)
    pred = sel.groupby(["task", "feature"]).predicted_learned.first().unstack().to_numpy()
    freqs = sel.groupby("task").utility.first().to_numpy()  # utility of feature 1 = π_k
    image = ax.imshow(mean, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    for k, j in zip(*np.nonzero(pred), strict=True):
        ax.add_patch(Rectangle((j - 0.5, k - 0.5), 1, 1, fill=False, ec="red", lw=1.4))
    ax.set_xticks(range(cfg.d), [str(j + 1) for j in range(cfg.d)], fontsize=6)
    names = [
        f"task {k + 1}  π={p:.2f} β={b:g}"
        for k, (p, b) in enumerate(zip(freqs, cfg.betas, strict=True))
    ]
    ax.set_yticks(range(cfg.K), names if ylabels else [], fontsize=6)
    ax.set_xlabel("feature j (λ = j^-β)", fontsize=7)
    return image


def _coverage(ax: Axes, summ: pd.DataFrame, cfg: TheoryConfig) -> None:
    ax.set_axis_on()
    for arm, color in (("natural", "C0"), ("upweight", "C3")):
        s = summ[summ.arm == arm]
        label = "natural" if arm == "natural" else f"task {cfg.K} ×{cfg.upweight_factor:g}"
        ax.errorbar(
            s.width,
            s.rare_coverage_mean,
            yerr=s.rare_coverage_sd,
            marker="o",
            color=color,
            capsize=3,
            label=f"{label}: learned",
        )
        ax.plot(
            s.width,
            s.predicted_rare_coverage,
            "--",
            color=color,
            alpha=0.6,
            label=f"{label}: predicted",
        )
    ax.set_xscale("log", base=2)
    ax.set_xticks(cfg.widths, [str(w) for w in cfg.widths])
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel("width N", fontsize=7)
    ax.set_ylabel(f"task {cfg.K} (rarest) features learned", fontsize=7)
    ax.legend(fontsize=6)
    ax.set_title("rare-task coverage", fontsize=8)


def _learn_times(ax: Axes, feats: pd.DataFrame, cfg: TheoryConfig) -> None:
    ax.set_axis_on()
    width = max(cfg.widths)
    sel = feats[(feats.arm == "natural") & (feats.width == width) & feats.learn_step.notna()]
    for k in range(1, cfg.K + 1):
        s = sel[sel.task == k]
        ax.scatter(s.utility, s.learn_step, s=8, color=f"C{k - 1}", label=f"task {k}")
    if len(sel) >= 2:  # theory: step ∝ 1/utility; line through the median point
        u = np.geomspace(sel.utility.min(), sel.utility.max(), 10)
        c = np.median(sel.learn_step * sel.utility)
        ax.plot(u, c / u, "k--", lw=1, label="∝ 1/utility")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.tick_params(labelsize=6)
    ax.set_xlabel("utility π·λ", fontsize=7)
    ax.set_ylabel("step overlap first > threshold", fontsize=7)
    ax.legend(fontsize=5, ncol=2)
    ax.set_title(f"learning order, N={width}, all seeds", fontsize=8)


def main(argv: list[str] | None = None) -> None:
    """Run the study from a YAML config, print summary and verdict, save the figure."""
    args = sys.argv[1:] if argv is None else argv
    cfg = load_file(TheoryConfig, args[0]) if args else TheoryConfig()
    result = run_theory(cfg)
    with pd.option_context("display.width", 200, "display.max_columns", 40):
        print(result.summary.round(3).to_string(index=False))
    print(result.verdict())
    if len(args) > 1:
        plot_theory(result).savefig(args[1], dpi=110, bbox_inches="tight")


if __name__ == "__main__":
    main()
