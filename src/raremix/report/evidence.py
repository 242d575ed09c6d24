"""The size of the evidence behind each accuracy (PROTOCOL §6): n, an interval, baselines.

`task_evidence(final)` summarises the final table per group × task: accuracy over seeds,
the held-out n each seed was scored on, a Wilson interval on the answers pooled over
seeds, the task's baselines and whether the accuracy clears the strongest of them.
`evidence_table` formats it for the report.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from raremix.stats import wilson
from raremix.studies.summary import pm, strongest_baseline

ABOVE, WITHIN, NOT_ABOVE = "above", "≈ within CI", "⚠ not above"
"""How an accuracy stands against its task's strongest baseline."""


def task_evidence(final: pd.DataFrame, order: list[str] | None = None) -> pd.DataFrame:
    """One row per group × task of the final table (rare tasks first, groups in `order`).

    Columns: group, task, role, seeds, acc_mean, acc_sd (over seeds), n (held-out examples
    per seed: the median, n_min/n_max where seeds differ), correct and total (answers pooled
    over seeds: round(Σ acc·n), Σ n), low and high (95% Wilson interval of correct/total),
    chance, majority, heuristic, baseline (the strongest of the three) and verdict
    (`ABOVE` when the interval's low end clears the baseline, `WITHIN` when only the mean
    does, `NOT_ABOVE` otherwise; "" when no baseline is recorded).

    A run's acc is the mean of its last evaluations on one fixed held-out set, so it
    counts n answers, not n × evaluations; pooling seeds treats their answers as
    independent, so the interval measures held-out sampling, and the sd the seeds.
    """
    f = final.assign(baseline=strongest_baseline(final))
    rows = []
    for (group, task), g in f.groupby(["group", "task"], sort=False):
        n = g["n"] if "n" in g else pd.Series(math.nan, index=g.index)
        known = bool(n.notna().all())
        nan = (math.nan, math.nan, math.nan)  # runs written before n was recorded
        v = n.to_numpy(dtype=float)
        n_mid, n_min, n_max = (
            (float(np.median(v)), float(v.min()), float(v.max())) if known else nan
        )
        correct = round(float((g.acc * n).sum())) if known else 0
        total = round(float(n.sum())) if known else 0
        low, high = wilson(min(correct, total), total) if total > 0 else (math.nan, math.nan)
        acc, bar = float(g.acc.mean()), float(g.baseline.mean())
        verdict = (
            ""
            if not np.isfinite(bar)
            else ABOVE
            if np.isfinite(low) and low > bar
            else WITHIN
            if acc > bar
            else NOT_ABOVE
        )
        rows.append(
            {
                "group": str(group),
                "task": str(task),
                "role": str(g.role.iloc[0]),
                "seeds": int(g.seed.nunique()),
                "acc_mean": acc,
                "acc_sd": float(g.acc.std()),
                "n": n_mid,
                "n_min": n_min,
                "n_max": n_max,
                "correct": correct,
                "total": total,
                "low": low,
                "high": high,
                **{
                    b: float(g[b].mean()) if b in g else math.nan
                    for b in ("chance", "majority", "heuristic")
                },
                "baseline": bar,
                "verdict": verdict,
            }
        )
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    rank = {g: i for i, g in enumerate(order or [])}
    keys = [
        (r != "rare", rank.get(g, len(rank)), g, t)
        for r, g, t in zip(out.role, out.group, out.task, strict=True)
    ]
    return out.iloc[sorted(range(len(out)), key=keys.__getitem__)].reset_index(drop=True)


def _num(v: float, fmt: str = ".2f") -> str:
    if not np.isfinite(v):
        return "—"
    return "< 0.01" if 0 < v < 0.005 and fmt == ".2f" else format(v, fmt)


def evidence_table(ev: pd.DataFrame) -> dict[str, Any]:
    """`task_evidence` as a report table; `flagged` marks the rows `NOT_ABOVE` a baseline."""
    columns = [
        "group",
        "task",
        "role",
        "acc (mean ± sd)",
        "n per seed",
        "seeds",
        "95% CI (Wilson, pooled)",
        "chance",
        "majority",
        "heuristic",
        "vs best baseline",
    ]
    rows = []
    for r in ev.to_dict("records"):
        n = _num(r["n"], ".0f")
        if np.isfinite(r["n_min"]) and r["n_min"] != r["n_max"]:
            n = f"{r['n_min']:.0f}–{r['n_max']:.0f}"
        ci = f"[{r['low']:.2f}, {r['high']:.2f}]" if np.isfinite(r["low"]) else "—"
        rows.append(
            [
                r["group"],
                r["task"],
                r["role"],
                pm(r["acc_mean"], r["acc_sd"]),
                n,
                r["seeds"],
                ci,
                _num(r["chance"]),
                _num(r["majority"]),
                _num(r["heuristic"]),
                r["verdict"],
            ]
        )
    return {"columns": columns, "rows": rows, "flagged": list(ev.verdict == NOT_ABOVE)}
