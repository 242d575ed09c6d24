"""A study's runs as analysis tables: who each run is (size, mix, group) and how it ended.

`load_results` reads a study once into a `StudyResults` (runs, metrics, curves, final
table) that the verdict and the report are both handed. `load_study` reads the store and
`study.yaml`; `final_table` summarises each run × task
by the mean of its last `LAST_EVALS` evaluations (single checkpoints are noisy), beside
the evidence each accuracy rests on: the held-out size `n` and the set's baselines;
`common_accuracy` pools common tasks weighted by n; `task_curves` keeps every evaluation
for learning curves.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from raremix.configbase import read_yaml
from raremix.errors import RaremixError
from raremix.results.store import ResultStore, label_column

LAST_EVALS = 3
"""Evaluations averaged into a run's final accuracy and loss."""
EVAL_METRICS = ("acc", "loss")
EVIDENCE = ("n", "chance", "majority", "heuristic")
"""Written beside each accuracy (raremix.evaluate): held-out size and the set's baselines;
NaN in the tables for runs written before they existed (and `heuristic` for tasks
without a rule)."""
RUN_LEVEL_TASKS = ("", "all")
NAMED_AXES = {"seed", "model.size", "mixture", "arm"}  # shown as seed/size/mix already


@dataclass
class StudyData:
    """A finished study as read from its directory."""

    study_dir: Path
    name: str
    description: str
    spec: dict[str, Any]
    """The resolved study.yaml (base inlined), {} if absent."""
    runs: pd.DataFrame
    """Done runs with run facts plus seed, size, mix, group, rare, batch_size, shares."""
    metrics: pd.DataFrame
    """Every metric row of those runs: run_id, step, task, metric, value."""


def load_study(study_dir: Path) -> StudyData:
    """Read a study directory written by `raremix study run` (store and study.yaml)."""
    store = ResultStore.open(study_dir)
    runs = store.runs()
    spec_path = Path(study_dir) / "study.yaml"
    spec = read_yaml(spec_path) if spec_path.exists() else {}
    spec = spec if isinstance(spec, dict) else {}
    done = runs[runs["status"] == "done"]
    if spec_path.exists():  # runs of an earlier version of the spec do not belong in its verdict
        from raremix.studies.spec import expand, load_spec

        try:
            current = {run.run_id for run in expand(load_spec(spec_path))}
        except RaremixError:
            current = None  # a study.yaml this version cannot read: analyse every run
        if current is not None:
            done = done[done["run_id"].isin(current)]
    if done.empty:
        raise RaremixError(
            f"{study_dir}: no finished run in the store: run the study first (raremix study run)"
        )
    studies = sorted(set(done["study"].dropna()) - {""})
    name = studies[0] if studies else str(spec.get("name", Path(study_dir).name))
    metrics = store.metrics()
    info = run_info(done, list(spec.get("axes", {}) or {}))
    metrics = metrics[metrics["run_id"].isin(info["run_id"])].reset_index(drop=True)
    return StudyData(
        Path(study_dir), name, str(spec.get("description", "")).strip(), spec, info, metrics
    )


@dataclass(frozen=True)
class StudyResults:
    """A finished study read once: what its verdict and its report are computed from."""

    study_dir: Path
    name: str
    description: str
    spec: dict[str, Any]
    """The resolved study.yaml (base inlined), {} if absent."""
    runs: pd.DataFrame
    """Done runs of the current spec with run facts plus seed, size, mix, group, rare, shares."""
    metrics: pd.DataFrame
    """Every metric row of those runs: run_id, step, task, metric, value."""
    curves: pd.DataFrame
    """Every evaluation (`task_curves`)."""
    final: pd.DataFrame
    """One row per run × task (`final_table`, plus the study's own columns)."""

    @property
    def analysis(self) -> str | None:
        """The registered analysis the study YAML names (None: the default)."""
        value = self.spec.get("analysis")
        return str(value) if value else None


def load_results(study_dir: Path) -> StudyResults:
    """Read `study_dir`'s store and study.yaml once into a `StudyResults`.

    The one place an analysis or a report reads a study: the store is opened here and
    nowhere else on that path.
    """
    from raremix.studies.registry import study_record
    from raremix.studies.views import apply_views, declared_views

    study = load_study(Path(study_dir))
    # declared views (an arm's runs cut at a cap) join the runs before anything is summarised
    study, curves = apply_views(study, task_curves(study), declared_views(study.spec))
    final = final_table(study, curves)
    extend = study_record(study.spec.get("analysis")).final_columns_fn()
    if extend is not None:
        final = extend(final, study.runs)
    return StudyResults(
        study.study_dir,
        study.name,
        study.description,
        study.spec,
        study.runs,
        study.metrics,
        curves,
        final,
    )


def run_info(runs: pd.DataFrame, axes: list[str]) -> pd.DataFrame:
    """The run table with derived columns: seed, size, mix, group, rare, batch_size, shares."""
    out = runs.copy().reset_index(drop=True)
    configs = [json.loads(c) if isinstance(c, str) else {} for c in out["config"]]
    mix_col = label_column("mixture")
    seed_col = label_column("seed")
    out["seed"] = [
        int(r[seed_col]) if seed_col in out and _is_int(r[seed_col]) else int(c.get("seed", 0))
        for r, c in zip(out.to_dict("records"), configs, strict=True)
    ]
    records: list[dict[Any, Any]] = out.to_dict("records")
    out["size"] = [_size(c, r) for c, r in zip(configs, records, strict=True)]
    out["mix"] = [
        str(r[mix_col]) if "mixture" in axes and mix_col in out else _strategy(c)
        for r, c in zip(out.to_dict("records"), configs, strict=True)
    ]
    out["rare"] = [list(c.get("rare", []) or []) for c in configs]
    out["batch_size"] = [int(c.get("batch_size", 0) or 0) for c in configs]
    out["shares"] = pd.Series([_shares(c) for c in configs], index=out.index, dtype=object)
    for col in ("params", "flops", "wall_s"):
        out[col] = pd.to_numeric(out[col], errors="coerce") if col in out else math.nan
    out["group"] = _groups(out, [a for a in axes if a not in NAMED_AXES])
    return out


def _is_int(value: Any) -> bool:
    try:
        int(value)
    except (TypeError, ValueError):
        return False
    return True


def _size(config: dict[str, Any], row: dict[Any, Any]) -> str:
    model = config.get("model") or {}
    if isinstance(model, str):  # a Hugging Face model folder or hub name (raremix hf-train)
        return model.rstrip("/").rsplit("/", 1)[-1]
    if model.get("size"):
        return str(model["size"])
    d, n = row.get("d_model"), row.get("n_layer")
    return f"d{d}·L{n}" if d is not None and n is not None else ""


def _strategy(config: dict[str, Any]) -> str:
    mix = config.get("mixture")
    return str(mix.get("strategy") or "natural") if isinstance(mix, dict) else ""


def _shares(config: dict[str, Any]) -> dict[str, float]:
    """Each source's mean share of the examples over the run (from the mixture config)."""
    if not isinstance(config.get("mixture"), dict):
        return {}
    try:
        from raremix.configbase import load
        from raremix.mixture import MixtureConfig, resolve

        steps, batch = int(config["steps"]), int(config["batch_size"])
        plan = resolve(load(MixtureConfig, config["mixture"]), batch_size=batch, total_steps=steps)
        share = plan.schedule.cumulative(steps) / steps
    except Exception:  # a share is a nicety: never fail an analysis over it
        return {}
    return {n: float(s) for n, s in zip(plan.names, share, strict=True)}


def _groups(runs: pd.DataFrame, extra_axes: list[str]) -> list[str]:
    """'size · mix', plus any other axis label that varies within one size and mix; a study
    with an `arm` axis names its groups by arm (e.g. natural-25k and longer-25k)."""
    arm = label_column("arm")
    if arm in runs:
        return [str(a) for a in runs[arm]]
    keys = ["size", "mix"]
    for axis in extra_axes:
        col = label_column(axis)
        if col in runs and runs.groupby(keys)[col].nunique().max() > 1:
            keys.append(col)
    parts = runs[keys].astype(str).to_numpy().tolist()
    return [" · ".join(p for p in row if p) or "all" for row in parts]


def task_curves(study: StudyData) -> pd.DataFrame:
    """Every evaluation: run_id, step, task, acc, loss and the `EVIDENCE` columns, with the
    run's seed, size, mix, group, role."""
    m = study.metrics
    m = m[m["metric"].isin(EVAL_METRICS + EVIDENCE) & ~m["task"].isin(RUN_LEVEL_TASKS)]
    if m.empty or "acc" not in set(m["metric"]):
        raise RaremixError(
            f"{study.study_dir}: the store has no per-task 'acc' rows: analysis needs runs of "
            "raremix's trainer (run_fn raremix.trainer:run_config)"
        )
    wide = m.pivot_table(index=["run_id", "step", "task"], columns="metric", values="value")
    wide = wide.reindex(columns=[*EVAL_METRICS, *EVIDENCE])  # absent evidence: NaN columns
    wide = wide.reset_index().rename_axis(columns=None)
    keys = ["run_id", "seed", "size", "params", "flops", "mix", "group", "rare"]
    out = wide.merge(study.runs[keys], on="run_id")
    out["role"] = ["rare" if t in r else "common" for t, r in zip(out.task, out.rare, strict=True)]
    return out.drop(columns="rare").sort_values(["run_id", "task", "step"], ignore_index=True)


def final_table(study: StudyData, curves: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per run × task: acc and loss as the mean of the last `LAST_EVALS` evaluations.

    Columns: run_id, seed, size, params, flops, mix, group, task, role, acc, loss,
    n (held-out examples per evaluation), chance, majority, heuristic (baseline accuracies
    on that held-out set, see raremix.tasks.baselines), peak_acc and share (the task's mean
    share of training examples). A study's record may add columns (`Study.final_columns`).
    """
    curves = task_curves(study) if curves is None else curves
    last = curves.groupby(["run_id", "task"], sort=False).tail(LAST_EVALS)
    keys = ["run_id", "seed", "size", "params", "flops", "mix", "group", "task", "role"]
    cols = [*EVAL_METRICS, *EVIDENCE]
    # dropna=False: a run without a FLOP count (e.g. an HF model) still has a row
    final = last.groupby(keys, sort=False, dropna=False)[cols].mean().reset_index()
    peak = curves.groupby(["run_id", "task"])["acc"].max().rename("peak_acc")
    final = final.merge(peak.reset_index(), on=["run_id", "task"])
    shares: dict[str, dict[str, float]] = dict(
        zip(study.runs.run_id, study.runs.shares, strict=True)
    )
    final["share"] = [
        shares[r].get(t, math.nan) for r, t in zip(final.run_id, final.task, strict=True)
    ]
    return final.sort_values(["params", "mix", "seed", "task"], ignore_index=True)


def common_accuracy(final: pd.DataFrame, role: str = "common") -> pd.DataFrame:
    """Per run: accuracy pooled over its `role` tasks, each weighted by its held-out n.

    Pooling by n counts every held-out example once, so a task scored on 18 examples
    does not weigh as much as one scored on 256 (PROTOCOL §6). Columns: run_id, acc, n
    (examples pooled), tasks. A run with any task of unknown n (written before n was
    recorded) falls back to the unweighted mean, with n NaN to say so.
    """
    rows = final[final.role == role]
    out = []
    for run, g in rows.groupby("run_id", sort=False):
        n = g["n"] if "n" in g else pd.Series(math.nan, index=g.index)
        known = bool(n.notna().all() and n.sum() > 0)
        acc = float((g.acc * n).sum() / n.sum()) if known else float(g.acc.mean())
        out.append(
            {"run_id": run, "acc": acc, "n": float(n.sum()) if known else math.nan, "tasks": len(g)}
        )
    return pd.DataFrame(out, columns=["run_id", "acc", "n", "tasks"])


def forgetting_events(
    steps: np.ndarray, acc: np.ndarray, drop: float = 0.2, threshold: float = 0.5
) -> list[tuple[int, float, int, float]]:
    """Acquire-then-forget as (peak step, peak, step, acc at that step): the probes'
    `acquire_then_forget` (accuracy reaches `threshold`, then falls `drop` below its peak)."""
    from raremix.probes.retention import acquire_then_forget

    a = np.asarray(acc, dtype=float)
    s = np.asarray(steps)
    at = {int(step): float(v) for step, v in zip(s, a, strict=True)}
    return [
        (e.peak_step, e.peak, e.forgot_step, at[e.forgot_step])
        for e in acquire_then_forget(s, a, threshold=threshold, drop=drop)
    ]
