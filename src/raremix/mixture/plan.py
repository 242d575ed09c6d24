"""Tables for people: the plan before training, and realised versus target during it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from raremix.mixture.resolve import NO_CAP, Plan
from raremix.mixture.sampler import MixtureSampler


def _given(plan: Plan) -> list[str]:
    """How each source's amount was specified, in words."""
    spec = plan.spec
    out = []
    for s in spec.sources:
        if s.amount is not None:
            out.append(f"{s.amount} {getattr(s, s.amount):g}")
        else:
            out.append(spec.strategy or "natural")
    return out


def _exhaustion(plan: Plan) -> list[str]:
    return [
        s.exhaustion if isinstance(s.exhaustion, str) else f"max {s.exhaustion.max_epochs:g} epochs"
        for s in plan.spec.sources
    ]


def phase_table(plan: Plan) -> pd.DataFrame:
    """One row per phase: where it starts and ends (steps), and how it gets there."""
    sched = plan.schedule
    rows = []
    for k in range(len(sched.starts)):
        end = sched.phase_end(k)
        rows.append(
            {"phase": k, "start": int(sched.starts[k]), "end": end, "anneal": sched.anneals[k]}
        )
    return pd.DataFrame(rows)


def plan_table(plan: Plan, *, batch_size: int, total_steps: int) -> pd.DataFrame:
    """Per source: size, spec, exhaustion, target weight per phase, expected draws, epochs.

    Expected draws are batch × Σ_steps weight in closed form; if some source would
    be exhausted before `total_steps`, the stratified sampler is run (without
    materialising indices) to find when, and how the others absorb its share.
    """
    k = len(plan.names)
    expected = batch_size * plan.schedule.cumulative(total_steps)
    exhausted_at = np.full(k, -1, dtype=np.int64)
    if np.any(expected >= plan.caps):
        expected, exhausted_at = _simulate(plan, batch_size, total_steps)
    frame = pd.DataFrame(
        {
            "source": plan.names,
            "size": plan.sizes,
            "given": _given(plan),
            "exhaustion": _exhaustion(plan),
        }
    )
    sched = plan.schedule
    if len(sched.starts) == 1:
        frame["weight"] = sched.vectors[0]
    else:
        for p in range(len(sched.starts)):
            frame[f"w@{int(sched.starts[p])}"] = sched.vectors[p]
    frame["examples"] = expected
    frame["epochs"] = expected / plan.sizes
    frame["ends at step"] = pd.array(
        [None if s < 0 else int(s) for s in exhausted_at], dtype="Int64"
    )
    return frame


def _simulate(plan: Plan, batch_size: int, total_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Counts after `total_steps` stratified batches, and the step each source ran out."""
    sampler = MixtureSampler(replace(plan, mode="stratified"), seed=0, batch_size=batch_size)
    exhausted_at = np.full(len(plan.names), -1, dtype=np.int64)
    for step in range(total_steps):
        try:
            sampler.skip_batch()
        except StopIteration:
            break
        newly = (sampler.counts >= plan.caps) & (exhausted_at < 0) & (plan.caps < NO_CAP)
        exhausted_at[newly] = step
    return sampler.counts.astype(np.float64), exhausted_at


def realised_report(sampler: MixtureSampler) -> pd.DataFrame:
    """Per source: target weight now, target and realised share so far, draws, epochs.

    `target share` is each source's share of Σ batch × target weight over the steps
    drawn; `realised share` its share of the examples actually drawn. They differ by
    sampling noise (iid), by at most one example (stratified), and wherever a source
    was exhausted.
    """
    counts = sampler.counts
    targets = sampler.targets
    drawn = max(int(counts.sum()), 1)
    return pd.DataFrame(
        {
            "source": sampler.names,
            "target weight": sampler.weights_at(sampler.step),
            "target share": targets / max(float(targets.sum()), 1e-300),
            "realised share": counts / drawn,
            "drawn": counts,
            "expected": targets,
            "epochs": counts / sampler.sizes,
            "exhausted": counts >= sampler.plan.caps,
        }
    )
