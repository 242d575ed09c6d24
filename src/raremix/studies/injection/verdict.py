"""The injection verdict: at which rate does each model size learn each injected task?"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from raremix.studies.analysis import Verdict
from raremix.studies.analysis_final import LAST_EVALS, StudyResults

LEARNED = 0.8
"""Mean accuracy (over seeds) at which a task counts as learned."""


def learning_thresholds(final: pd.DataFrame, learned: float = LEARNED) -> pd.DataFrame:
    """Per injected (rare) task × size: the lowest rate whose mean acc over seeds ≥ `learned`.

    Columns: task, size, params, rate (label, None if never), per_batch (inf if never).
    """
    rare = final[final.role == "rare"]
    acc = rare.groupby(["task", "size", "rate"], as_index=False).agg(
        params=("params", "median"), per_batch=("rate_per_batch", "mean"), acc=("acc", "mean")
    )
    rows = []
    for (task, size), g in acc.groupby(["task", "size"], sort=False):
        hit = g[g.acc >= learned].sort_values("per_batch")
        rows.append(
            {
                "task": task,
                "size": size,
                "params": float(g.params.iloc[0]),
                "rate": hit.rate.iloc[0] if len(hit) else None,
                "per_batch": float(hit.per_batch.iloc[0]) if len(hit) else math.inf,
            }
        )
    return pd.DataFrame(rows).sort_values(["task", "params"], ignore_index=True)


def _compare(t: pd.DataFrame) -> tuple[str, str]:
    """(short answer, phrase) to 'do larger models learn this task at lower rates?'"""
    small, big = t.iloc[0], t.iloc[-1]
    if len(t) < 2:
        return "?", "one size only: cannot tell whether larger models learn at lower rates"
    if math.isinf(small.per_batch) and math.isinf(big.per_batch):
        return "?", "no size learned it at any rate tried"
    if big.per_batch < small.per_batch:
        ratio = small.per_batch / big.per_batch
        much = "" if math.isinf(ratio) else f", {ratio:.0f}× lower"
        return (
            "yes",
            f"yes: larger models learn it at lower rates ({big['size']} vs {small['size']}{much})",
        )
    if big.per_batch == small.per_batch:
        return "no", f"no: {small['size']} and {big['size']} need the same rate"
    return "no", f"no: the larger model ({big['size']}) needed a higher rate than {small['size']}"


def with_rates(final: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """The final table with `rate` (the mixture label) and `rate_per_batch` (the task's
    share × batch size): the injection record's own final-table columns."""
    batch = dict(zip(runs.run_id, runs.batch_size, strict=True))
    return final.assign(rate=final["mix"], rate_per_batch=final["share"] * final.run_id.map(batch))


def injection_verdict(results: StudyResults, out: Path) -> Verdict:
    """Learning thresholds per injected task and size; draws `figures/heatmap.png`."""
    final = results.final
    th = learning_thresholds(final)
    lines, heads = [], []
    for task, t in th.groupby("task", sort=True):
        short, phrase = _compare(t)
        each = ", ".join(
            f"{r['size']} {'never' if pd.isna(r.rate) else 'from ' + str(r.rate)}"
            for _, r in t.iterrows()
        )
        lines.append(f"{task}: learned (mean acc ≥ {LEARNED}) {each} — {phrase}.")
        heads.append(f"{task} {each} (larger learns at lower rate: {short})")
    # the injected (rare) tasks' rate: common tasks fill the rest of each batch
    rates = final[final.role == "rare"].groupby("rate")["rate_per_batch"].mean().sort_values()
    span = rates.max() / rates.min() if len(rates) and rates.min() > 0 else math.nan
    lines.append(
        f"Learning threshold = the lowest injection rate whose accuracy, averaged over seeds, "
        f"reaches {LEARNED}; each run's accuracy is the mean of its last {LAST_EVALS} evaluations. "
        f"Rates tried: {', '.join(map(str, rates.index))} ({span:.0f}× span)."
    )
    from raremix.figures.plots import heatmap_figure, save_figure

    tasks = sorted(th.task.unique())
    save_figure(heatmap_figure(final, tasks, LEARNED), out / "figures" / "heatmap.png")
    return Verdict(
        study=results.name,
        title="injection: the rate at which each model size learns each injected task",
        headline="learning threshold: " + "; ".join(heads),
        lines=lines,
        table=_table(final, th, list(rates.index)),
        figures=[
            {
                "file": "figures/heatmap.png",
                "caption": f"Accuracy per injected task over rate × size (red box: ≥ {LEARNED}).",
            }
        ],
    )


def _table(final: pd.DataFrame, th: pd.DataFrame, rates: list[str]) -> dict[str, list[Any]]:
    acc = final[final.role == "rare"].pivot_table(
        index=["task", "size"], columns="rate", values="acc", aggfunc="mean"
    )
    cell: dict[Any, Any] = acc.stack().to_dict()  # (task, size, rate) → acc
    rows = []
    for r in th.to_dict("records"):
        cells = [cell.get((r["task"], r["size"], rate), np.nan) for rate in rates]
        shown = [f"{v:.2f}" if np.isfinite(v) else "" for v in cells]
        rows.append(
            [
                r["task"],
                r["size"],
                f"{r['params']:,.0f}",
                *shown,
                "never" if pd.isna(r["rate"]) else r["rate"],
            ]
        )
    return {"columns": ["task", "size", "params", *rates, "learned from"], "rows": rows}
