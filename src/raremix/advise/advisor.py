"""The advisor's workflow: pilot runs (or a finished study) → the laws → the recommendation,
and `--validate`: the recommendation trained with fresh seeds, predicted vs measured
FLOPs-to-learn.

Reads and trains only through the study runner and the results store.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from raremix.advise.inventory import Inventory
from raremix.advise.law import fit_laws
from raremix.advise.pilots import RunTable, pilot_spec, read_runs, train_base, validation_spec
from raremix.advise.recommend import Advice, Candidate, Goal, Laws, Size, recommend
from raremix.errors import RaremixError

ADVICE_DIR = "advise"
BOOTSTRAP = 200
BOOT_SEED = 0
VALIDATE_CAP = 2.0
"""Validation runs are followed to this multiple of the predicted budget's band high edge."""


def goal_of(inv: Inventory, base: dict[str, Any], quick: bool = False) -> Goal:
    """The inventory's goal and budget; 'longer' means more steps than the pilots' config's."""
    steps = int(train_base(inv, base, quick)["steps"])
    return Goal(
        list(inv.targets),
        inv.probability,
        inv.common_tolerance,
        steps,
        inv.band,
        inv.max_flops,
        inv.max_minutes,
    )


def sizes_of(table: RunTable) -> list[Size]:
    """Each model size among the runs, with its params, FLOPs per step and wall s per step."""
    out = []
    for name in dict.fromkeys(table.sizes):
        m = np.array([s == name for s in table.sizes])
        sec = table.sec_per_step[m]
        sec = sec[np.isfinite(sec)]
        out.append(
            Size(
                name,
                float(np.median(table.params[m])),
                float(np.median(table.flops_per_step[m])),
                float(np.median(sec)) if sec.size else float("nan"),
            )
        )
    return sorted(out, key=lambda s: s.params)


def run_pilot(
    inv: Inventory, base: dict[str, Any], study_dir: Path, quick: bool, workers: int | None
) -> None:
    """Train the pilot study into `study_dir` (finished runs are kept and skipped)."""
    from raremix.studies.runner import run_study

    outcome = run_study(pilot_spec(inv, base, quick), study_dir, workers=workers)
    if outcome.failed:
        first = next(iter(outcome.failed.values()))
        raise RaremixError(
            f"{len(outcome.failed)} pilot run(s) failed ({first}): fix and rerun to retry them"
        )


def fit(table: RunTable, targets: list[str], boot: int = BOOTSTRAP, seed: int = BOOT_SEED) -> Laws:
    """The onset law of the targets and the accuracy law of the other tasks, on every
    budget point of the table's runs."""
    t_idx = [table.tasks.index(t) for t in targets]
    c_idx = [i for i in range(len(table.tasks)) if i not in t_idx]
    r = table.point_run
    share, params, flops = table.share[r], table.params[r], table.point_flops

    def law(idx: list[int], y: np.ndarray):
        names = [table.tasks[i] for i in idx]
        return fit_laws(names, share[:, idx], params, flops, y[:, idx], r, boot=boot, seed=seed)

    return Laws(law(t_idx, table.point_learned), law(c_idx, table.point_acc) if c_idx else None)


def fit_and_recommend(
    inv: Inventory, base: dict[str, Any], study_dir: Path, quick: bool = False
) -> tuple[Advice, Laws, RunTable]:
    """Read the study's runs, fit the laws on them and search for the recommendation."""
    tasks = list(inv.tasks)
    table = read_runs(study_dir, tasks, inv.learned)
    if len(table.run_ids) < 2:
        raise RaremixError(
            f"{study_dir}: advise needs at least 2 finished runs, found {len(table.run_ids)}"
        )
    laws = fit(table, list(inv.targets))
    counts = np.array(list(inv.counts().values()), dtype=np.float64)
    advice = recommend(laws, tasks, sizes_of(table), counts, goal_of(inv, base, quick))
    return advice, laws, table


def save_advice(advice: Advice, laws: Laws, study_dir: Path) -> Path:
    """Write `advise/recommendation.json` (the advice and the fitted laws) in the study dir."""
    out = Path(study_dir) / ADVICE_DIR
    out.mkdir(parents=True, exist_ok=True)
    form = "logit(y) = a + b·ln(share) + c·ln(params/1e5) + e·ln(share)·ln(params/1e5) + d·ln(FLOPs/1e11)"
    data = {
        **advice.to_json(),
        "laws": {
            "form": form,
            "onset (y = learned by FLOPs)": {
                t: [float(v) for v in laws.onset.coef[i]] for i, t in enumerate(laws.onset.tasks)
            },
            "accuracy (y = held-out accuracy)": {
                t: [float(v) for v in laws.accuracy.coef[i]]
                for i, t in enumerate(laws.accuracy.tasks)
            }
            if laws.accuracy
            else {},
        },
    }
    path = out / "recommendation.json"
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False))
    return path


@dataclass(frozen=True)
class Validation:
    """The recommendation's predicted FLOPs-to-learn beside what its fresh seeds measured."""

    size: str
    factor: float
    seeds: list[int]
    probability: float
    onset: list[float]
    """Per seed: FLOPs at which the slowest target was learned (or the cap, censored)."""
    learned: list[bool]
    predicted_budget: tuple[float, float, float]
    """FLOPs at which every target is learned with `probability`: (fit, band low, high)."""
    predicted_median: tuple[float, float, float]
    measured_median: tuple[float, float, float]
    """Kaplan–Meier median FLOPs-to-learn and its 95% CI (inf: not reached)."""
    by_budget: tuple[int, int, float, float]
    """Seeds learned within the predicted budget: (k, n, Wilson 95% low, high)."""
    outcome: str
    reason: str


def judge(probability: float, k: int, n: int) -> tuple[str, str, tuple[float, float]]:
    """The claim "learned within the predicted budget with probability ≥ p", against k of n:
    supported when the Wilson 95% interval lies above p, contradicted when below it."""
    from raremix.stats import wilson

    lo, hi = wilson(k, n)
    said = f"{k} of {n} seeds learned within the predicted budget (Wilson 95% [{lo:.2f}, {hi:.2f}])"
    if lo >= probability:
        return "supported", f"Supported: {said} lies above p = {probability:g}.", (lo, hi)
    if hi < probability:
        return "contradicted", f"Contradicted: {said} lies below p = {probability:g}.", (lo, hi)
    return "inconclusive", f"Inconclusive: {said} includes p = {probability:g}.", (lo, hi)


def km_median(onset: list[float], learned: list[bool]) -> tuple[float, float, float]:
    """Kaplan–Meier median of the FLOPs-to-learn and its 95% CI (inf where not reached)."""
    from raremix.stats import kaplan_meier

    km = kaplan_meier(onset, learned)

    def first(col: str) -> float:
        below = km.timeline[km[col] <= 0.5]
        return float(below.iloc[0]) if len(below) else math.inf

    return first("survival"), first("ci_lower"), first("ci_upper")


def validate(
    inv: Inventory,
    base: dict[str, Any],
    chosen: Candidate,
    study_dir: Path,
    quick: bool,
    workers: int | None,
) -> Validation:
    """Train the chosen (size, factor) with the validation seeds in `study_dir/advise/validate`,
    each followed to `VALIDATE_CAP` × the predicted budget's band high (or until learned),
    so that a late onset is measured, not censored at the prediction."""
    from raremix.studies.runner import run_study

    out = Path(study_dir) / ADVICE_DIR / "validate"
    high = chosen.flops[2] if math.isfinite(chosen.flops[2]) else chosen.flops[0]
    cap = VALIDATE_CAP * high  # an unbounded band (too few pilot runs): twice the fit
    spec = validation_spec(inv, base, chosen.size, chosen.factor, cap, quick)
    outcome = run_study(spec, out, workers=workers)
    if outcome.failed:
        raise RaremixError(f"validation runs failed: {next(iter(outcome.failed.values()))}")
    table = read_runs(out, list(inv.tasks), inv.learned)
    order = np.argsort(table.seeds, kind="stable")
    t_idx = [table.tasks.index(t) for t in inv.targets]
    onset: np.ndarray = table.onset[order][:, t_idx].max(axis=1)  # when its slowest target was
    learned = np.asarray(table.learned[order][:, t_idx].all(axis=1), dtype=bool)
    k = int((learned & (onset <= chosen.flops[0])).sum())
    verdict, reason, (lo, hi) = judge(inv.probability, k, len(order))
    result = Validation(
        chosen.size,
        chosen.factor,
        [int(s) for s in table.seeds[order]],
        inv.probability,
        [float(v) for v in onset],
        [bool(v) for v in learned],
        chosen.flops,
        chosen.median,
        km_median(list(onset), list(learned)),
        (k, len(order), lo, hi),
        verdict,
        reason,
    )
    data = {k: _json(v) for k, v in asdict(result).items()}
    (out.parent / "validation.json").write_text(json.dumps(data, indent=1, ensure_ascii=False))
    return result


def _json(v: Any) -> Any:
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, tuple | list):
        return [_json(x) for x in v]
    return v
