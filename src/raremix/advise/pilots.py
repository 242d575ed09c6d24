"""Pilot and validation runs as ordinary studies: built from an inventory, run by the study
runner into a study directory, and read back from its results store.

A pilot is `model.size × mixture × seed`, where each mixture up-weights the targets by a
factor (1 = the natural mix). Nothing here trains by itself: `run_study` does.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from raremix.advise.inventory import Inventory, PilotPlan, TaskEntry
from raremix.errors import RaremixError
from raremix.studies.spec import StudySpec, deep_merge


def mix_label(factor: float) -> str:
    """'natural' for factor 1, else 'x3', 'x2.5', …"""
    return "natural" if factor == 1 else f"x{factor:g}"


def mix_value(factor: float, targets: list[str]) -> dict[str, Any]:
    """The mixture section (merged into the base's) that up-weights `targets` by `factor`."""
    if factor == 1:
        return {"strategy": "natural", "params": {}}
    return {"strategy": "upweight", "params": {"tasks": list(targets), "factor": float(factor)}}


def train_base(inv: Inventory, base: dict[str, Any], quick: bool = False) -> dict[str, Any]:
    """The training config every pilot shares: the base with the inventory's tasks as its
    natural mix and its targets as the rare tasks (probes off: the law needs accuracy only)."""
    out = deep_merge(base, inv.train)
    if quick and inv.quick is not None:
        out = deep_merge(out, inv.quick.train)
    old_tasks = out.get("tasks") or {}
    tasks: dict[str, Any] = {}
    for name, entry in inv.tasks.items():
        spec = dict(old_tasks.get(name) or {})
        if isinstance(entry, TaskEntry) and entry.complexity is not None:
            spec["complexity"] = entry.complexity
        tasks[name] = spec
    mixture = copy.deepcopy(out.get("mixture") or {})
    mixture.update(strategy="natural", params={})
    mixture["sources"] = [{"name": t, "size": n} for t, n in inv.counts().items()]
    out.update(tasks=tasks, mixture=mixture, rare=list(inv.targets))
    out.pop("probes", None)
    return out


def pilot_plan(inv: Inventory, quick: bool) -> PilotPlan:
    """The inventory's pilot plan, or its quick one."""
    if not quick:
        return inv.pilot
    if inv.quick is None:
        raise RaremixError(
            f"inventory '{inv.name}' has no 'quick' section: add one or drop --quick"
        )
    return inv.quick.pilot


def pilot_spec(inv: Inventory, base: dict[str, Any], quick: bool = False) -> StudySpec:
    """The pilot study: sizes × up-weighting factors × seeds on the inventory's mix."""
    plan = pilot_plan(inv, quick)
    return StudySpec(
        name=f"advise-{inv.name}",
        description=f"raremix advise pilot for '{inv.name}': size × target up-weighting",
        base=train_base(inv, base, quick),
        axes={
            "model.size": list(plan.sizes),
            "mixture": {mix_label(f): mix_value(f, inv.targets) for f in plan.factors},
            "seed": list(plan.seeds),
        },
    )


def validation_spec(
    inv: Inventory, base: dict[str, Any], size: str, factor: float, quick: bool = False
) -> StudySpec:
    """The recommendation trained with the inventory's validation seeds."""
    seeds = inv.quick.validate_seeds if quick and inv.quick else inv.validate_seeds
    return StudySpec(
        name=f"advise-{inv.name}-validate",
        description=f"raremix advise: the recommendation for '{inv.name}' with fresh seeds",
        base=train_base(inv, base, quick),
        axes={
            "model.size": [size],
            "mixture": {mix_label(factor): mix_value(factor, inv.targets)},
            "seed": list(seeds),
        },
    )


@dataclass(frozen=True)
class RunTable:
    """Finished runs of a study as arrays, tasks in inventory order."""

    run_ids: list[str]
    sizes: list[str]
    mixes: list[str]
    seeds: np.ndarray
    params: np.ndarray
    """(runs,) parameters."""
    flops: np.ndarray
    """(runs,) training FLOPs."""
    wall_s: np.ndarray
    """(runs,) wall seconds of each run as it ran (under the study's parallelism)."""
    tasks: list[str]
    share: np.ndarray
    """(runs, tasks) each task's share of the training examples."""
    acc: np.ndarray
    """(runs, tasks) held-out exact match, mean of the last evaluations."""


def read_runs(study_dir: Path, tasks: list[str]) -> RunTable:
    """The done runs of a study directory (only reads its store), for the given tasks."""
    from raremix.studies.analysis_final import final_table, load_study

    study = load_study(Path(study_dir))
    final = final_table(study)
    have = set(final["task"])
    missing = [t for t in tasks if t not in have]
    if missing:
        raise RaremixError(
            f"{study_dir}: its runs have no accuracy for task '{missing[0]}': "
            "pass a study trained on the inventory's tasks (or run the pilot)"
        )
    acc = final.pivot_table(index="run_id", columns="task", values="acc").reindex(columns=tasks)
    if acc.isna().to_numpy().any():
        raise RaremixError(
            f"{study_dir}: some runs lack one of the inventory's tasks: "
            "pass a study whose every run trains all of them"
        )
    share = final.pivot_table(index="run_id", columns="task", values="share")
    share = share.reindex(index=acc.index, columns=tasks)
    if share.isna().to_numpy().any():
        raise RaremixError(
            f"{study_dir}: some runs' task shares cannot be computed from their mixture: "
            "advise needs runs of raremix's trainer with a static mixture"
        )
    runs = study.runs.set_index("run_id").loc[acc.index]
    return RunTable(
        run_ids=list(acc.index),
        sizes=[str(s) for s in runs["size"]],
        mixes=[str(m) for m in runs["mix"]],
        seeds=runs["seed"].to_numpy(dtype=np.int64),
        params=runs["params"].to_numpy(dtype=np.float64),
        flops=runs["flops"].to_numpy(dtype=np.float64),
        wall_s=runs["wall_s"].to_numpy(dtype=np.float64),
        tasks=list(tasks),
        share=share.to_numpy(dtype=np.float64),
        acc=acc.to_numpy(dtype=np.float64),
    )
