"""The size of the evidence in reports: per-seed points, clipped intervals, the per-task table
with n, Wilson intervals and baselines, the scale table's rare n and baseline, flat probes."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from tiny_study import EVIDENCE, fake_study

from raremix.figures.plots import SEEDS_GID, clipped_yerr, frontier_figure
from raremix.report import build_report
from raremix.report.evidence import ABOVE, NOT_ABOVE, WITHIN, task_evidence
from raremix.report.plots_curves import (
    PROBE_TEXT,
    flat_probe,
    probe_figure,
    probe_table,
    rare_curves_figure,
)
from raremix.studies.analysis import Verdict
from raremix.studies.analysis_final import final_table, load_study, task_curves
from raremix.studies.summary import group_summary, per_run

# 12k · upweight: seeds at 0.99, 1.0, 1.0 (fake seeds add 0.01 each, capped at 1), so
# mean + sd passes 1; 100k · upweight at 0.75 sits just above compare's heuristic (0.73)
ACC = {
    ("12k", "natural"): 0.3,
    ("100k", "natural"): 0.7,
    ("12k", "upweight"): 0.99,
    ("100k", "upweight"): 0.74,
}
SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    root = fake_study(tmp_path_factory.mktemp("fake"), rare_acc=ACC, seeds=SEEDS, evidence=True)
    return root, final_table(load_study(root))


def md_table(md: str, section: str) -> pd.DataFrame:
    """The first Markdown table under `## section`, as strings (Markdown escapes undone)."""
    body = md.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    lines = [ln for ln in body.splitlines() if ln.startswith("|")]
    cells = [
        [re.sub(r"\\(.)", r"\1", c.strip()) for c in re.split(r"(?<!\\)\|", ln)[1:-1]]
        for ln in lines
    ]
    return pd.DataFrame(cells[2:], columns=cells[0])


def seeds_of(ax: plt.Axes) -> list[np.ndarray]:
    """The per-seed markers (scatter offsets) and lines (xy) drawn on `ax`."""
    marks = [c.get_offsets() for c in ax.collections if c.get_gid() == SEEDS_GID]
    lines = [ln.get_xydata() for ln in ax.lines if ln.get_gid() == SEEDS_GID]
    return [np.asarray(m) for m in marks + lines]


def test_clipped_error_bars_stop_at_zero_and_one() -> None:
    err = clipped_yerr([0.97, 0.5, 0.02, 0.4], [0.05, 0.1, 0.05, float("nan")])
    assert err.shape == (2, 4)
    np.testing.assert_allclose(err[:, 0], [0.05, 0.03])  # top cut at 1
    np.testing.assert_allclose(err[:, 1], [0.1, 0.1])  # inside: symmetric
    np.testing.assert_allclose(err[:, 2], [0.02, 0.05])  # bottom cut at 0
    np.testing.assert_allclose(err[:, 3], [0.0, 0.0])  # one seed: no bar


def test_frontier_draws_each_seed_beside_its_mean_and_clips_at_one(
    fake: tuple[Path, pd.DataFrame],
) -> None:
    _, final = fake
    groups, runs = group_summary(final), per_run(final)
    top = groups[groups.group == "12k · upweight"].iloc[0]
    assert top.rare_mean + top.rare_sd > 1.0  # an unclipped bar would pass 1
    fig = frontier_figure(groups, "fake", runs)
    for ax, role in zip(fig.axes, ("rare", "common"), strict=True):
        points = np.concatenate(seeds_of(ax))
        assert len(points) == len(runs) == 4 * len(SEEDS)
        expected = sorted(runs[f"{role}_acc"])
        np.testing.assert_allclose(sorted(points[:, 1]), expected)
        assert (points[:, 0] > runs.params.min()).all()  # beside the means, never on them
        bars = [c for c in ax.collections if c.get_gid() != SEEDS_GID]
        ys = np.concatenate([np.asarray(s)[:, 1] for c in bars for s in c.get_segments()])
        caps = [ln.get_ydata() for ln in ax.lines if ln.get_gid() != SEEDS_GID]
        ys = np.concatenate([ys, *(np.asarray(c, dtype=float) for c in caps)])
        assert ys.max() <= 1.0 and ys.min() >= 0.0
    plt.close(fig)


def test_learning_curves_draw_a_thin_line_per_seed(fake: tuple[Path, pd.DataFrame]) -> None:
    root, _ = fake
    curves = task_curves(load_study(root))
    fig = rare_curves_figure(curves, ["natural", "upweight"])
    lines = seeds_of(fig.axes[0])
    assert len(lines) == curves.run_id.nunique() == 4 * len(SEEDS)
    baseline = [ln for ln in fig.axes[0].lines if str(ln.get_label()).startswith("best baseline")]
    assert len(baseline) == 1 and baseline[0].get_ydata()[0] == pytest.approx(
        EVIDENCE["compare"]["heuristic"]
    )
    plt.close(fig)


def test_task_evidence_pools_seeds_and_flags_what_a_rule_beats(
    fake: tuple[Path, pd.DataFrame],
) -> None:
    _, final = fake
    ev = task_evidence(final, ["12k · natural", "100k · natural"]).set_index(["group", "task"])
    assert len(ev) == 4 * 3 and ev.index[0] == ("12k · natural", "compare")  # rare first
    for (_, task), r in ev.iterrows():
        assert r.n == EVIDENCE[task]["n"] and r.total == r.n * len(SEEDS)
        assert 0.0 <= r.low <= r.acc_mean <= r.high <= 1.0
    verdicts = ev.verdict.xs("compare", level="task")
    assert verdicts["12k · natural"] == NOT_ABOVE  # 0.31 < the heuristic 0.73
    assert verdicts["12k · upweight"] == ABOVE
    assert verdicts["100k · upweight"] == WITHIN  # 0.75 > 0.73, but not by its interval
    copy = ev.loc[("12k · natural", "copy")]
    assert np.isnan(copy.heuristic) and copy.baseline == EVIDENCE["copy"]["majority"]
    # fewer examples, wider interval: inc (40 per seed) vs copy (256) at the same accuracy
    inc = ev.loc[("12k · natural", "inc")]
    assert inc.acc_mean == pytest.approx(copy.acc_mean)
    assert inc.high - inc.low > 2 * (copy.high - copy.low)


def test_report_shows_the_per_task_table_and_the_evidence_size(
    reported: tuple[Path, str],
) -> None:
    study, _ = reported
    md, html = (study / "report.md").read_text(), (study / "report.html").read_text()
    final = pd.read_parquet(study / "analysis" / "final.parquet")
    table = md_table(md, "Per-task accuracy and baselines")
    assert len(table) == final.groupby(["group", "task"]).ngroups
    for r in table.to_dict("records"):
        f = final[(final.group == r["group"]) & (final.task == r["task"])]
        assert int(r["n per seed"]) == f["n"].median() > 0
        low, high = map(float, r["95% CI (Wilson, pooled)"].strip("[]").split(", "))
        assert 0.0 <= low <= float(r["acc (mean ± sd)"].split(" ")[0]) <= high <= 1.0
        assert r["majority"] == f"{f.majority.mean():.2f}" or r["majority"] == "< 0.01"
        assert r["vs best baseline"] in (ABOVE, WITHIN, NOT_ABOVE)
    flagged = (table["vs best baseline"] == NOT_ABOVE).sum()
    assert html.count('<tr class="flag">') == flagged
    about = md.split("## About this study", 1)[1].split("\n## ", 1)[0]
    rare = final[final.role == "rare"]
    assert "Evidence: 1 seed per group" in about and f"compare {rare.n.median():.0f}" in about
    # the verdict table (printed by `raremix demo`) carries the rare task's n and baseline
    v = Verdict.load(study / "analysis")
    cols = dict(zip(v.table["columns"], zip(*v.table["rows"], strict=True), strict=True))
    bar = rare[["chance", "majority", "heuristic"]].max(axis=1).mean()
    assert set(cols["rare n"]) == {f"{rare.n.median():.0f}"}
    assert set(cols["rare baseline"]) == {f"{bar:.2f}"}


def test_flat_probes_are_named_not_drawn_and_probes_say_what_they_measure(
    tmp_path: Path,
) -> None:
    root = fake_study(tmp_path, probes=True)
    _, md_path = build_report(root)
    md = md_path.read_text()
    probes = md.split("## Probes\n", 1)[1].split("\n## ", 1)[0]
    assert "Not drawn" in probes and "probe/dead_neurons (0)" in probes
    assert not (root / "figures" / "probe_dead_neurons.png").exists()
    assert "probe_dead_neurons.png" not in md
    captions = re.findall(r"^\*(.+)\*$", probes, flags=re.M)
    titles = [PROBE_TEXT[m][0] for m in ("probe/interference", "probe/neuron_share")]
    assert captions == [f"{titles[0]} (probe/interference).", f"{titles[1]} (probe/neuron_share)."]
    assert probes.count("How to read this") == 2 and PROBE_TEXT["probe/interference"][1] in probes
    # flat at any value counts, not only at 0; a probe that moves does not
    study = load_study(root)
    p = probe_table(study.metrics, study.runs)
    assert flat_probe(p.assign(value=0.25), "probe/interference") == 0.25
    assert flat_probe(p, "probe/interference") is None
    fig = probe_figure(p, "probe/interference", ["natural", "upweight"])
    assert fig.get_suptitle() == titles[0]  # the suptitle says what is measured
    assert len(np.concatenate(seeds_of(fig.axes[1]))) == study.runs.run_id.nunique()
    plt.close(fig)
