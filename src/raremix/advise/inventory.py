"""The advisor's input: which tasks there are and how many examples each has, which are the
rare targets, the accuracy they must reach, what the common tasks may lose, the compute
budget, and the pilot runs to fit the law on. Loaded from YAML with one-line errors.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from raremix.configbase import Config, load_file, read_yaml, resolve_config
from raremix.errors import RaremixError, did_you_mean, unknown
from raremix.results.onset import LearnedRule


class TaskEntry(Config):
    """A task of the inventory with its complexity set explicitly."""

    count: int = Field(gt=0)
    """Examples of this task in the training data (its natural share ∝ count)."""
    complexity: int | None = Field(None, ge=1)
    """The task's complexity knob (default: the base config's, else the task's default)."""


class PilotPlan(Config):
    """The pilot study: sizes × up-weighting factors × seeds, trained to fit the laws.

    Every evaluation of a pilot run is a budget point (budget-independent schedule), so
    the budget axis costs no extra runs; `flops_cap` gives every size the same FLOPs,
    which is what lets the small model's "train longer" option be seen in the pilot.
    """

    sizes: list[str] = Field(default_factory=lambda: ["12k", "25k", "100k"], min_length=1)
    """Model sizes (ladder rungs) to pilot; the recommendation chooses among them."""
    factors: list[float] = Field(default_factory=lambda: [1.0, 3.0, 10.0], min_length=1)
    """Up-weighting factors of the targets' natural shares to pilot (1 = the natural mix)."""
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    """Seeds of each pilot (size, factor)."""
    flops_cap: float | None = Field(None, gt=0)
    """Training FLOPs of every pilot run (steps = cap / the size's FLOPs per step); none: the base's steps."""
    stop_when_learned: bool = True
    """End a pilot run once every target is learned (its later budgets add nothing to the onset law)."""

    @model_validator(mode="after")
    def _valid(self) -> PilotPlan:
        from raremix.model import LADDER

        for size in self.sizes:
            if size not in LADDER:
                raise ValueError(f"unknown model size '{size}': {did_you_mean(size, LADDER)}")
        if any(f < 1 for f in self.factors):
            raise ValueError("factors must be >= 1 (1 is the natural mix, 10 is ten times it)")
        return self


class QuickPlan(Config):
    """A seconds-long variant of the pilot for smoke tests (`--quick`)."""

    train: dict[str, Any] = Field(default_factory=dict)
    """Overrides deep-merged into the training config (e.g. fewer steps)."""
    pilot: PilotPlan = Field(default_factory=lambda: PilotPlan(sizes=["12k"], factors=[1, 10]))
    """The quick pilot's sizes, factors and seeds."""
    validate_seeds: list[int] = Field(default_factory=lambda: [1], min_length=1)
    """Seeds of the quick `--validate` runs."""
    learned: LearnedRule | None = None
    """The quick run's learned rule (its short runs learn little); default: the inventory's."""


class Inventory(Config):
    """Tasks and their counts, the rare targets, the goal and the budget."""

    name: str = Field(pattern=r"^[A-Za-z0-9][\w.-]*$")
    """Names the pilot study (`studies/advise-<name>`)."""
    base: str | None = None
    """Training config YAML (relative to this file) the pilots use; default: the lab's."""
    train: dict[str, Any] = Field(default_factory=dict)
    """Overrides deep-merged into the base training config (e.g. steps, batch_size)."""
    tasks: dict[str, int | TaskEntry] = Field(min_length=2)
    """Task name → example count, or {count, complexity}."""
    targets: list[str] = Field(min_length=1)
    """The rare tasks that must be learned."""
    learned: LearnedRule = Field(default_factory=LearnedRule)
    """When a target counts as learned (accuracy ≥ threshold at `consecutive` evaluations)."""
    probability: float = Field(0.8, gt=0, lt=1)
    """The recommended run must learn every target with at least this probability (per target)."""
    common_tolerance: float = Field(0.02, ge=0, le=1)
    """Largest drop of mean common-task accuracy allowed vs the natural mix, same size and FLOPs."""
    max_flops: float | None = Field(None, gt=0)
    """Training-FLOP cap of the recommended run (none: no limit)."""
    max_minutes: float | None = Field(None, gt=0)
    """Wall-time budget of the recommended run, judged by the pilot runs' own wall time."""
    band: float = Field(0.8, gt=0, lt=1)
    """Coverage of the FLOPs' uncertainty band (0.8: the 10th to the 90th bootstrap percentile)."""
    pilot: PilotPlan = Field(default_factory=PilotPlan)
    """The pilot study to fit the law on."""
    validate_seeds: list[int] = Field(default_factory=lambda: [1, 2, 3], min_length=1)
    """Seeds `--validate` trains the recommendation with."""
    quick: QuickPlan | None = None
    """A seconds-long variant for `--quick`."""

    @model_validator(mode="after")
    def _valid(self) -> Inventory:
        from raremix.tasks import TASKS

        for task in self.tasks:
            if task not in TASKS:
                raise unknown("task", task, TASKS)
        for target in self.targets:
            if target not in self.tasks:
                raise ValueError(
                    f"target '{target}' is not in tasks: {did_you_mean(target, self.tasks)}"
                )
        if len(set(self.targets)) < len(self.targets):
            raise ValueError("targets lists a task twice: list each once")
        return self

    def for_quick(self) -> Inventory:
        """The inventory with its quick variant's learned rule, for `--quick`."""
        if self.quick is None or self.quick.learned is None:
            return self
        return self.model_copy(update={"learned": self.quick.learned})

    def counts(self) -> dict[str, int]:
        """Task → example count."""
        return {t: e if isinstance(e, int) else e.count for t, e in self.tasks.items()}

    @property
    def common(self) -> list[str]:
        """The tasks that are not targets."""
        return [t for t in self.tasks if t not in self.targets]


def resolve_inventory(path_or_name: str) -> Path:
    """An inventory YAML path as given, or the packaged inventory of that name."""
    return resolve_config(path_or_name, "advise", "inventory")


def load_inventory(path: str | Path) -> tuple[Inventory, dict[str, Any]]:
    """Read an inventory YAML; also return the base training config it names (a dict)."""
    p = Path(path)
    inv = load_file(Inventory, p)
    if inv.base is None:
        base_path = Path(str(resources.files("raremix"))) / "configs" / "lab.yaml"
    else:
        base_path = p.parent / inv.base
    base = read_yaml(base_path)
    if not isinstance(base, dict):
        raise RaremixError(f"{base_path}: a training config must be a mapping: fix the file")
    return inv, base
