"""The advisor's workflow: pilot runs (or a finished study) → the law → the recommendation,
and `--validate`: the recommendation trained with fresh seeds, predicted vs measured.

Reads and trains only through the study runner and the results store.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from raremix.advise.inventory import Inventory
from raremix.advise.law import LawFit, fit_laws
from raremix.advise.pilots import RunTable, pilot_spec, read_runs, validation_spec
from raremix.advise.recommend import Advice, Candidate, Goal, Size, recommend
from raremix.errors import RaremixError

ADVICE_DIR = "advise"
BOOTSTRAP = 200
BOOT_SEED = 0


def goal_of(inv: Inventory) -> Goal:
    """The inventory's goal and budget."""
    return Goal(
        list(inv.targets), inv.target_acc, inv.common_tolerance, inv.band,
        inv.max_flops, inv.max_minutes,
    )  # fmt: skip


def sizes_of(table: RunTable) -> list[Size]:
    """Each model size among the runs, with its median params, FLOPs and wall minutes."""
    out = []
    for name in dict.fromkeys(table.sizes):
        m = np.array([s == name for s in table.sizes])
        wall = table.wall_s[m]
        wall = wall[np.isfinite(wall)]
        out.append(
            Size(
                name,
                float(np.median(table.params[m])),
                float(np.median(table.flops[m])),
                float(np.median(wall) / 60) if wall.size else float("nan"),
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


def fit_and_recommend(inv: Inventory, study_dir: Path) -> tuple[Advice, LawFit, RunTable]:
    """Read the study's runs, fit the law on them and search for the recommendation."""
    tasks = list(inv.tasks)
    table = read_runs(study_dir, tasks)
    if len(table.run_ids) < 2:
        raise RaremixError(
            f"{study_dir}: advise needs at least 2 finished runs, found {len(table.run_ids)}"
        )
    law = fit_laws(tasks, table.share, table.params, table.acc, boot=BOOTSTRAP, seed=BOOT_SEED)
    counts = np.array(list(inv.counts().values()), dtype=np.float64)
    advice = recommend(law, sizes_of(table), counts, goal_of(inv))
    return advice, law, table


def save_advice(advice: Advice, law: LawFit, study_dir: Path) -> Path:
    """Write `advise/recommendation.json` (the advice and the fitted law) in the study dir."""
    out = Path(study_dir) / ADVICE_DIR
    out.mkdir(parents=True, exist_ok=True)
    data = {
        **advice.to_json(),
        "law": {
            "form": "logit(acc) = a + b·ln(share) + c·ln(params/1e5)",
            "tasks": {t: [float(v) for v in law.coef[i]] for i, t in enumerate(law.tasks)},
            "resid_sd": {t: float(law.resid_sd[i]) for i, t in enumerate(law.tasks)},
        },
    }
    path = out / "recommendation.json"
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False))
    return path


@dataclass(frozen=True)
class Validation:
    """The recommendation's prediction beside what its fresh-seed runs measured."""

    size: str
    factor: float
    seeds: list[int]
    rare_measured: list[float]
    """Per run: mean accuracy over the targets."""
    common_measured: list[float]
    """Per run: mean accuracy over the common tasks."""
    rare_predicted: tuple[float, float, float]
    common_predicted: tuple[float, float, float]
    target_acc: float

    def verdict(self) -> str:
        """Whether the measured seed mean landed in the band and met the target, in words."""
        r = float(np.mean(self.rare_measured))
        c = float(np.mean(self.common_measured))
        in_r = self.rare_predicted[1] <= r <= self.rare_predicted[2]
        in_c = self.common_predicted[1] <= c <= self.common_predicted[2]
        met = r >= self.target_acc
        band = "both inside" if in_r and in_c else ("mixed" if in_r or in_c else "both outside")
        goal = "target met" if met else "target NOT met"
        return f"measured seed means vs predicted bands: {band} (rare {'in' if in_r else 'out'}, common {'in' if in_c else 'out'}); {goal} (rare {r:.2f} vs {self.target_acc:g})"


def validate(
    inv: Inventory,
    base: dict[str, Any],
    chosen: Candidate,
    study_dir: Path,
    quick: bool,
    workers: int | None,
) -> Validation:
    """Train the chosen (size, factor) with the validation seeds in `study_dir/validate`."""
    from raremix.studies.runner import run_study

    out = Path(study_dir) / ADVICE_DIR / "validate"
    spec = validation_spec(inv, base, chosen.size, chosen.factor, quick)
    outcome = run_study(spec, out, workers=workers)
    if outcome.failed:
        raise RaremixError(f"validation runs failed: {next(iter(outcome.failed.values()))}")
    table = read_runs(out, list(inv.tasks))
    order = np.argsort(table.seeds, kind="stable")
    t_idx = [table.tasks.index(t) for t in inv.targets]
    c_idx = [i for i in range(len(table.tasks)) if i not in t_idx]
    acc = table.acc[order]
    common = acc[:, c_idx].mean(axis=1) if c_idx else np.ones(len(order))
    result = Validation(
        chosen.size,
        chosen.factor,
        [int(s) for s in table.seeds[order]],
        [float(v) for v in acc[:, t_idx].mean(axis=1)],
        [float(v) for v in common],
        chosen.rare,
        chosen.common,
        inv.target_acc,
    )
    (out.parent / "validation.json").write_text(json.dumps(asdict(result), indent=1))
    return result
