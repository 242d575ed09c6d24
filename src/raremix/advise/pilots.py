"""Pilot and validation runs as ordinary studies: built from an inventory, run by the study
runner into a study directory, and read back from its results store.

A pilot is `size × mixture × seed`, where each mixture up-weights the targets by a factor
(1 = the natural mix) and each size runs its own steps (equal FLOPs under `flops_cap`).
Every evaluation of a run is read back as a budget point. Nothing here trains by itself:
`run_study` does.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from raremix.advise.inventory import Inventory, PilotPlan, TaskEntry
from raremix.errors import RaremixError
from raremix.results.onset import LearnedRule, flops_to_learn
from raremix.schedules import BUDGET_FREE
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
    natural mix and its targets as the rare tasks (probes off: the laws need accuracy only).

    Its learning-rate schedule must not depend on the budget (constant, or WSD whose
    decay is declared): only then is a run's evaluation at step t the run of budget t.
    """
    out = deep_merge(base, inv.train)
    if quick and inv.quick is not None:
        out = deep_merge(out, inv.quick.train)
    schedule = (out.get("optim") or {}).get("schedule", "cosine")
    if schedule not in BUDGET_FREE:
        raise RaremixError(
            f"inventory '{inv.name}': the pilots' schedule '{schedule}' depends on the run's budget, "
            "so a run's prefix is not a shorter budget: set train: {optim: {schedule: constant}} (or wsd)"
        )
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


def step_flops(config: dict[str, Any], size: str) -> tuple[int, float]:
    """(params, training FLOPs per step) of `config` at model size `size`, before training:
    the trainer's own count (`flops_per_token` × batch × block)."""
    from raremix.config import load_config
    from raremix.data import TaskData
    from raremix.model import count_params, flops_per_token

    cfg = load_config(data=deep_merge(config, {"model": {"size": size}}))
    data = TaskData(cfg, list(cfg.tasks))
    model = cfg.model.build(data.tokenizer.size, data.block_size)
    per_step = flops_per_token(model, data.block_size) * cfg.batch_size * data.block_size
    return count_params(model), float(per_step)


def steps_for(flops: float, per_step: float, what: str) -> int:
    """Whole steps within `flops` (at least one), or one line when not even one step fits."""
    if flops < per_step:
        raise RaremixError(
            f"{what} {flops:.3g} FLOPs is below one training step ({per_step:.3g} FLOPs): raise it"
        )
    return int(flops // per_step)


def with_stop(config: dict[str, Any], inv: Inventory) -> dict[str, Any]:
    """`config` ending once every target is learned by the inventory's rule."""
    rule = {"tasks": list(inv.targets), **inv.learned.model_dump()}
    return {**config, "stop_when_learned": rule}


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
    """The pilot study: sizes (each with its steps) × up-weighting factors × seeds.

    A size's steps are the base's, or `flops_cap` over its FLOPs per step (equal FLOPs)."""
    plan = pilot_plan(inv, quick)
    shared = train_base(inv, base, quick)
    costs = {size: step_flops(shared, size) for size in plan.sizes}
    smallest = min(per_step for _, per_step in costs.values())
    if inv.max_flops is not None:
        steps_for(inv.max_flops, smallest, "max_flops")
    if plan.stop_when_learned:
        shared = with_stop(shared, inv)
    rungs = {}
    for size, (_, per_step) in costs.items():
        cap = plan.flops_cap
        steps = (
            int(shared["steps"])
            if cap is None
            else steps_for(cap, per_step, f"pilot.flops_cap at {size}")
        )
        rungs[size] = {"model": {"size": size}, "steps": steps}
    return StudySpec(
        name=f"advise-{inv.name}",
        description=f"raremix advise pilot for '{inv.name}': size × target up-weighting × budget",
        base=shared,
        axes={
            "rung": rungs,
            "mixture": {mix_label(f): mix_value(f, inv.targets) for f in plan.factors},
            "seed": list(plan.seeds),
        },
    )


def validation_spec(
    inv: Inventory,
    base: dict[str, Any],
    size: str,
    factor: float,
    flops: float,
    quick: bool = False,
) -> StudySpec:
    """The recommendation trained with the inventory's validation seeds, each followed to
    `flops` (or until every target is learned)."""
    seeds = inv.quick.validate_seeds if quick and inv.quick else inv.validate_seeds
    shared = train_base(inv, base, quick)
    _, per_step = step_flops(shared, size)
    steps = steps_for(flops, per_step, "the validation cap")
    return StudySpec(
        name=f"advise-{inv.name}-validate",
        description=f"raremix advise: the recommendation for '{inv.name}' with fresh seeds",
        base=with_stop({**shared, "steps": steps}, inv),
        axes={
            "model.size": [size],
            "mixture": {mix_label(factor): mix_value(factor, inv.targets)},
            "seed": list(seeds),
        },
    )


@dataclass(frozen=True)
class RunTable:
    """Finished runs of a study as arrays (tasks in inventory order), and their budget points:
    each evaluation after step 0 at which the run is the run of that budget."""

    run_ids: list[str]
    sizes: list[str]
    mixes: list[str]
    seeds: np.ndarray
    params: np.ndarray
    """(runs,) parameters."""
    flops_per_step: np.ndarray
    """(runs,) training FLOPs per step."""
    followed: np.ndarray
    """(runs,) FLOPs each run was followed to (its last evaluation)."""
    sec_per_step: np.ndarray
    """(runs,) wall seconds per step as it ran (under the study's parallelism)."""
    tasks: list[str]
    share: np.ndarray
    """(runs, tasks) each task's share of the training examples."""
    onset: np.ndarray
    """(runs, tasks) FLOPs-to-learn by the rule, or the FLOPs it was censored at."""
    learned: np.ndarray
    """(runs, tasks) whether the rule held (False: censored at `onset`)."""
    point_run: np.ndarray
    """(points,) the run (row index) of each budget point."""
    point_flops: np.ndarray
    """(points,) the budget: training FLOPs at that evaluation."""
    point_acc: np.ndarray
    """(points, tasks) held-out accuracy at that budget."""
    point_learned: np.ndarray
    """(points, tasks) 1 when the task's onset is at or before that budget."""


def budget_free_until(config: dict[str, Any]) -> float:
    """The last step at which a run of this config is also the run of that shorter budget:
    every step for a constant rate, the decay's start for WSD, none (−1) for cosine."""
    from raremix.config import load_config
    from raremix.schedules import decay_start

    optim = load_config(data=config).optim
    if optim.schedule == "constant":
        return float("inf")
    if optim.schedule == "wsd":
        return float(decay_start(int(config["steps"]), optim))
    return -1.0


def read_runs(study_dir: Path, tasks: list[str], rule: LearnedRule) -> RunTable:
    """The done runs of a study directory (only reads its store), for the given tasks.

    A run contributes a budget point at each evaluation its schedule leaves budget-free
    (and always its last); each task's onset is `flops_to_learn` by `rule` on the whole
    curve, censored where the run was last followed.
    """
    from raremix.studies.analysis_final import final_table, load_study, task_curves

    study = load_study(Path(study_dir))
    curves = task_curves(study)
    final = final_table(study, curves)
    have = set(final["task"])
    missing = [t for t in tasks if t not in have]
    if missing:
        raise RaremixError(
            f"{study_dir}: its runs have no accuracy for task '{missing[0]}': "
            "pass a study trained on the inventory's tasks (or run the pilot)"
        )
    share = final.pivot_table(index="run_id", columns="task", values="share").reindex(columns=tasks)
    if share.isna().to_numpy().any():
        raise RaremixError(
            f"{study_dir}: some runs lack one of the inventory's tasks, or their shares cannot be "
            "computed from their mixture: advise needs runs of raremix's trainer with a static mixture"
        )
    runs = study.runs.set_index("run_id").loc[share.index]
    configs = [json.loads(c) for c in runs["config"]]
    per_step = runs["flops_per_step"].to_numpy(dtype=np.float64)
    acc = curves.pivot_table(index=["run_id", "step"], columns="task", values="acc")[tasks]
    onset = np.empty((len(runs), len(tasks)))
    learned = np.zeros((len(runs), len(tasks)), dtype=bool)
    point_run, point_step, point_acc = [], [], []
    followed, sec = [], []
    for i, run_id in enumerate(share.index):
        curve = acc.loc[run_id].sort_index()  # (evals, tasks)
        steps = curve.index.to_numpy(dtype=np.float64)
        for t, task in enumerate(tasks):
            o = flops_to_learn(steps, curve[task].to_numpy(), rule, per_step[i])
            onset[i, t], learned[i, t] = o.flops, o.observed
        last = float(steps[-1])
        free = budget_free_until(configs[i])
        keep = (steps > 0) & ((steps <= free) | (steps == last))
        point_run += [i] * int(keep.sum())
        point_step += list(steps[keep])
        point_acc.append(curve.to_numpy()[keep])
        followed.append(last * per_step[i])
        sec.append(float(runs["wall_s"].iloc[i]) / max(last, 1.0))
    pr = np.array(point_run, dtype=np.int64)
    pf = np.array(point_step) * per_step[pr]
    return RunTable(
        run_ids=list(share.index),
        sizes=[str(s) for s in runs["size"]],
        mixes=[str(m) for m in runs["mix"]],
        seeds=runs["seed"].to_numpy(dtype=np.int64),
        params=runs["params"].to_numpy(dtype=np.float64),
        flops_per_step=per_step,
        followed=np.array(followed),
        sec_per_step=np.array(sec),
        tasks=list(tasks),
        share=share.to_numpy(dtype=np.float64),
        onset=onset,
        learned=learned,
        point_run=pr,
        point_flops=pf,
        point_acc=np.concatenate(point_acc),
        point_learned=(learned[pr] & (onset[pr] <= pf[:, None])).astype(np.float64),
    )
