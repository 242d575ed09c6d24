"""Arm views: an arm defined as another arm's runs cut at a cap — a view, not a second run.

With a budget-independent schedule (constant, or WSD before its declared decay) a run's
first k steps do not depend on how long it goes on, so the small model's equal-tokens arm
*is* the prefix of its longer run. A study declares that once (`hypotheses.views`):

    views:
      - {name: natural-12k-short, of: {arm: natural-12k}, cap_steps: 2000}
      - {name: natural-12k, of: {arm: longer-12k}, steps_of: {arm: natural-100k}}

(`steps_of`: cut at the steps another arm's runs were planned for — equal tokens with it)

and the analysis adds, for every run of `of`, a copy of its curves up to the cap with the
view's label on `axis`, followed (and censored) only to the cap. Hypotheses and verdicts
then name the view like any arm. A cosine run is refused: its prefix is not a shorter run.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pydantic import Field, model_validator

from raremix.configbase import Config
from raremix.errors import RaremixError
from raremix.schedules import BUDGET_FREE

if TYPE_CHECKING:
    import pandas as pd

    from raremix.studies.analysis_final import StudyData

VIEW_SEP = "~"
"""A view run's id: the source run's id, this, the view's name."""


class ArmView(Config):
    """An arm that is another arm's runs cut at a step or FLOPs cap."""

    name: str = Field(pattern=r"^[A-Za-z0-9][\w.-]*$")
    """The view's label on `axis` (hypotheses name it like any arm label)."""
    of: dict[str, str] = Field(min_length=1)
    """The source arm: axis name → label (e.g. {arm: natural-12k})."""
    axis: str = "arm"
    """The axis the view's label is given on."""
    cap_steps: int | None = Field(None, ge=1)
    """Cut every source run after this many steps (equal tokens)."""
    cap_flops: float | None = Field(None, gt=0)
    """Cut every source run at this many training FLOPs (equal compute)."""
    steps_of: dict[str, str] | None = Field(None, min_length=1)
    """Cut every source run at the steps this arm's runs were planned for (equal tokens)."""

    @model_validator(mode="after")
    def _one_cap(self) -> ArmView:
        if sum(c is not None for c in (self.cap_steps, self.cap_flops, self.steps_of)) != 1:
            raise ValueError(
                f"view '{self.name}': give exactly one of cap_steps, cap_flops or steps_of"
            )
        return self


def check_views(views: list[ArmView], axes: dict[str, list[str]]) -> dict[str, list[str]]:
    """`axes` with each view's label added; ValueError if a view names an unknown arm."""
    out = {k: list(v) for k, v in axes.items()}
    for v in views:
        for axis, label in [*v.of.items(), *(v.steps_of or {}).items()]:
            if label not in axes.get(axis, []):
                raise ValueError(
                    f"view '{v.name}' names '{axis}: {label}', not an arm of the study"
                )
        if v.axis not in axes:
            raise ValueError(f"view '{v.name}': axis '{v.axis}' is not an axis of the study")
        if v.name in out[v.axis]:
            raise ValueError(f"view '{v.name}' reuses a label of axis '{v.axis}': rename it")
        out[v.axis].append(v.name)
    return out


def declared_views(spec: dict[str, Any]) -> list[ArmView]:
    """The views a study's `hypotheses:` section declares (none when it declares nothing)."""
    from raremix.configbase import load

    raw = (spec.get("hypotheses") or {}).get("views") or []
    return [load(ArmView, v, f"hypotheses.views[{i}]") for i, v in enumerate(raw)]


def apply_views(
    study: StudyData, curves: pd.DataFrame, views: list[ArmView]
) -> tuple[StudyData, pd.DataFrame]:
    """The study and its curves with every view's runs added (the stored runs untouched)."""
    import pandas as pd

    from raremix.results.store import label_column  # DuckDB: not at import time
    from raremix.studies.flops_to_learn import run_flops_per_step

    if not views:
        return study, curves
    runs, new_runs, new_curves = study.runs, [study.runs], [curves]
    fps = run_flops_per_step(runs)

    def arm_runs(arm: dict[str, str]) -> pd.DataFrame:
        mask = pd.Series(True, index=runs.index)
        for axis, label in arm.items():
            col = label_column(axis)
            mask &= runs[col].astype(str) == label if col in runs else False
        if not mask.any():
            raise RaremixError(f"view '{v.name}': no finished run of {arm}: run the study first")
        return runs[mask]

    for v in views:
        source = arm_runs(v.of)
        cap_steps = v.cap_steps
        if v.steps_of is not None:  # the steps the other arm's runs were planned for
            other = arm_runs(v.steps_of)
            planned = pd.to_numeric(other.flops, errors="coerce") / other.run_id.astype(str).map(
                fps
            )
            cap_steps = round(float(planned.max()))
        rows = []
        for r in source.to_dict("records"):
            per_step = fps[str(r["run_id"])]
            cap = float(v.cap_flops if v.cap_flops is not None else (cap_steps or 0) * per_step)
            _check_schedule(v, r, int(cap // per_step))
            if cap < per_step:
                raise RaremixError(
                    f"view '{v.name}': FLOPs cap {cap:.3g} is below one training step of run "
                    f"{r['run_id']} ({per_step:.3g} FLOPs): raise the cap"
                )
            view_id = f"{r['run_id']}{VIEW_SEP}{v.name}"
            rows.append(
                {
                    **r,
                    "run_id": view_id,
                    label_column(v.axis): v.name,
                    "group": v.name,
                    "cap": min(cap, float(r["flops"])),
                    "flops": min(cap, float(r["flops"])),
                }
            )
            c = curves[curves.run_id == r["run_id"]]
            c = c[c.step * per_step <= cap]
            new_curves.append(c.assign(run_id=view_id, group=v.name, flops=rows[-1]["flops"]))
        new_runs.append(pd.DataFrame(rows))
    all_runs = pd.concat(new_runs, ignore_index=True)
    return replace(study, runs=all_runs), pd.concat(new_curves, ignore_index=True)


def _check_schedule(v: ArmView, run: dict[Any, Any], cap_steps: int) -> None:
    """A view is a prefix only when the run's rate up to the cap did not depend on its budget."""
    config = json.loads(run["config"]) if isinstance(run.get("config"), str) else {}
    optim = (config or {}).get("optim") or {}
    schedule = optim.get("schedule", "cosine")
    if schedule not in BUDGET_FREE:
        raise RaremixError(
            f"view '{v.name}': run {run['run_id']} uses the {schedule} schedule, whose rate "
            "depends on the run's length, so its prefix is not a shorter run: use "
            "optim.schedule constant or wsd"
        )
    if schedule == "wsd":
        from raremix.config import OptimConfig
        from raremix.configbase import load
        from raremix.schedules import decay_start

        start = decay_start(int(config["steps"]), load(OptimConfig, optim))
        if cap_steps > start:
            raise RaremixError(
                f"view '{v.name}': its cap (step {cap_steps}) is past the WSD decay start ({start}) "
                "of its source runs: cut before the decay"
            )
