"""Declared hypotheses: what a study claims before any of its runs exist (PROTOCOL §2).

A study YAML's `hypotheses:` section names, before anything trains, each claim as two
arms (axis labels), a per-run metric and a direction, plus α, the calibration and the
confirmation seeds and the "learned" rule. The verdict evaluates only what is declared
(`raremix.studies.outcomes`); `declaration_hash` fingerprints the section so a verdict can
say when it was edited after runs existed.

Per-run metrics (computed from the run's held-out evaluations):

- `rare_acc`: final accuracy on the rare tasks (mean over them);
- `common_acc`: final accuracy on the common tasks, weighted by each task's held-out n;
- `rare_learned`: 1 if every rare task met the learned rule, else 0 (compared as k of n);
- `flops_to_learn`: the training FLOPs at which every rare task met the learned rule,
  right-censored at the run's FLOPs (compared with the log-rank test and the restricted
  mean, both arms followed to the lower of their caps; "less" = learns sooner);
- `acc:TASK`: final accuracy on one task; `learned:TASK`: that task met the learned rule.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from raremix.configbase import Config
from raremix.errors import did_you_mean
from raremix.results.onset import LearnedRule

RUN_METRICS = ("rare_acc", "common_acc", "rare_learned", "flops_to_learn")
TASK_METRICS = ("acc", "learned")
Direction = Literal["greater", "less", "two-sided"]


def metric_kind(metric: str) -> Literal["mean", "count", "survival"]:
    """How a metric is compared across arms: a mean (accuracies), k of n (learned) or a
    right-censored time (FLOPs-to-learn)."""
    if metric == "flops_to_learn":
        return "survival"
    return "count" if metric == "rare_learned" or metric.startswith("learned:") else "mean"


def check_metric(metric: str, tasks: list[str] | None = None) -> None:
    """Raise ValueError unless `metric` is a known per-run metric (and names a known task)."""
    if metric in RUN_METRICS:
        return
    kind, sep, task = metric.partition(":")
    if not sep or kind not in TASK_METRICS:
        raise ValueError(
            f"unknown metric '{metric}': {did_you_mean(metric, RUN_METRICS)} "
            f"(or {' / '.join(k + ':TASK' for k in TASK_METRICS)})"
        )
    if tasks is not None and task not in tasks:
        raise ValueError(f"metric '{metric}' names task '{task}': {did_you_mean(task, tasks)}")


class Published(Config):
    """An effect a paper reports, in the metric's own units (treatment − control)."""

    effect: float
    """The published effect size in the metric's units (e.g. +0.062 for 6.2 points)."""
    source: str
    """Where it is published (paper, table or figure)."""


class Hypothesis(Config):
    """One declared claim: treatment vs control on one metric, in one direction."""

    id: str = Field(pattern=r"^[A-Za-z0-9][\w.-]*$")
    """Short name (letters, digits, '_', '-', '.'), unique in the study."""
    claim: str
    """The claim in one plain sentence."""
    metric: str
    """Per-run metric: rare_acc, common_acc, rare_learned, flops_to_learn, acc:TASK or learned:TASK."""
    treatment: dict[str, str]
    """The treatment arm: axis name → label (e.g. {arm: upweight-25k})."""
    control: dict[str, str]
    """The control arm: axis name → label."""
    direction: Direction = "greater"
    """The claimed sign of treatment − control."""
    paired: bool = False
    """Pair runs by seed (declare it when the arms share init and data stream)."""
    published: Published | None = None
    """The paper's effect, when it gives one: a null that excludes it is `contradicted`."""
    regime: str | None = None
    """Why this study cannot test the claim as published (then the outcome is `out of regime`)."""

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, metric: str) -> str:
        check_metric(metric)
        return metric

    @field_validator("treatment", "control")
    @classmethod
    def _not_empty(cls, arm: dict[str, str]) -> dict[str, str]:
        if not arm:
            raise ValueError("an arm needs at least one axis label, e.g. {arm: natural-25k}")
        return {str(k): str(v) for k, v in arm.items()}


class Declaration(Config):
    """A study's pre-registration: hypotheses, α, seeds and thresholds (PROTOCOL §2–3)."""

    alpha: float = Field(0.05, gt=0.0, lt=1.0)
    """Significance level, after Holm correction within the family."""
    family: Literal["study", "none"] = "study"
    """Multiple-comparison family: every hypothesis of the study (Holm), or none."""
    learned: LearnedRule = LearnedRule()
    """The rule that says a task was learned."""
    calibration_seeds: list[int] = Field(default_factory=list)
    """Seeds used to choose the design (documented as calibration, never reported)."""
    confirmation_seeds: list[int] = Field(min_length=2)
    """Fresh seeds the verdict reports (`raremix study run --confirm`)."""
    eval_seed: int = Field(1, ge=0)
    """Seed of the confirmation runs' held-out draw (calibration uses 0)."""
    tests: list[Hypothesis] = Field(min_length=1)
    """The hypotheses, primary first."""

    @model_validator(mode="after")
    def _consistent(self) -> Declaration:
        overlap = sorted(set(self.calibration_seeds) & set(self.confirmation_seeds))
        if overlap:
            raise ValueError(
                f"confirmation seeds {overlap} are also calibration seeds: "
                "confirm on fresh seeds only (PROTOCOL §3)"
            )
        if len(set(self.confirmation_seeds)) != len(self.confirmation_seeds):
            raise ValueError("confirmation_seeds repeats a seed: list each once")
        if self.eval_seed == 0:
            raise ValueError(
                "eval_seed 0 is the calibration held-out draw: give the confirmation another one"
            )
        ids = [h.id for h in self.tests]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"hypothesis id '{dupes[0]}' is declared twice: give each its own id")
        return self

    def check_against(self, axes: dict[str, list[str]], tasks: list[str]) -> None:
        """Raise ValueError unless every arm names real axis labels and every metric real tasks."""
        if "seed" not in axes:
            raise ValueError("hypotheses need a 'seed' axis to confirm on: add seed: [...]")
        for h in self.tests:
            check_metric(h.metric, tasks)
            for role in ("treatment", "control"):
                for axis, label in getattr(h, role).items():
                    if axis not in axes:
                        raise ValueError(
                            f"hypothesis '{h.id}': {role} names axis '{axis}': "
                            f"{did_you_mean(axis, axes)}"
                        )
                    if label not in axes[axis]:
                        raise ValueError(
                            f"hypothesis '{h.id}': {role} names '{axis}: {label}', not a label "
                            f"of that axis: {did_you_mean(label, axes[axis])}"
                        )
            if h.treatment == h.control:
                raise ValueError(f"hypothesis '{h.id}': treatment and control are the same arm")


def declaration_hash(declaration: Declaration | dict[str, Any]) -> str:
    """12 hex digits fingerprinting a declaration (its canonical JSON)."""
    data = declaration.model_dump(mode="json") if isinstance(declaration, Config) else declaration
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


DECLARED_FILE = "declared.json"
"""In a study directory: the declaration as it stood when the study's first run started."""


def git_commit() -> str:
    """The code's git commit (with '+dirty' for uncommitted changes), or 'unknown'."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return head.stdout.strip()[:12] + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def record_declaration(study_dir: Any, declaration: Declaration | None) -> dict[str, Any]:
    """Write `declared.json` before the first run (kept as it was on later invocations).

    Returns the recorded declaration info: {hash, commit, time}; {} when none is declared.
    """
    import os
    import time
    from pathlib import Path

    path = Path(study_dir) / DECLARED_FILE
    if path.exists():
        try:
            return dict(json.loads(path.read_text()))
        except (OSError, ValueError):
            pass  # a damaged record is rewritten from the current declaration
    if declaration is None:
        return {}
    info = {
        "hash": declaration_hash(declaration),
        "commit": git_commit(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "declaration": declaration.model_dump(mode="json"),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{DECLARED_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(info, indent=1))
    os.replace(tmp, path)
    return info
