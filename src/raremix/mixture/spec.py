"""Mixture spec: the sources, how much of each to draw, and what happens when one runs out.

Weights are over *examples drawn*. Stated, not guessed:

* A source's `size` is its number of examples (the row count; for a synthetic task a
  nominal pool size). One *source epoch* is `size` draws from it: one pass over a
  fresh permutation of its examples.
* Each source gives at most one of `weight | repeat | count`:
  - `weight: w` — a share: the source is drawn with probability w / Σ weights.
  - `repeat: r` — r × size examples per *mixture epoch*.
  - `count: c` — c examples per mixture epoch.
  With repeat/count a mixture epoch is Σ n_j examples (n_j = r_j·size_j or c_j), and
  source i is drawn with probability n_i / Σ n_j. Shares and counts do not mix in
  one mixture. If no source gives any, `strategy` computes the weights from the
  sizes (default `natural`).
* `exhaustion` — when a source has been drawn through: `reshuffle` (the default: a
  fresh permutation, forever), `stop` (after one epoch), or `{max_epochs: N}` (after
  N × size draws, N may be fractional). An exhausted source leaves the mix and the
  others are renormalised from the next draw on; when every source with positive
  weight is exhausted the stream ends (the last batch may be short).
* `every: k` | `window: w` — spacing (`raremix.mixture.spacing`): the source appears in
  exactly every k-th batch, or at least once in every w consecutive batches, at its
  declared long-run share; the other sources fill the rest of each batch.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from raremix.configbase import Config
from raremix.errors import did_you_mean, unknown
from raremix.mixture.weights import STRATEGIES, check_params

EXHAUSTION = ("reshuffle", "stop")


class MaxEpochs(Config):
    """Exhaustion policy: leave the mix after `max_epochs` × size draws."""

    max_epochs: float = Field(gt=0, allow_inf_nan=False)
    """Source epochs to draw before the source leaves the mix (may be fractional)."""


class SourceSpec(Config):
    """One source (task) of the mixture."""

    name: str = Field(min_length=1)
    """Unique name; tasks and data are looked up by it."""
    size: int | None = Field(None, ge=1)
    """Number of examples in the source (or passed to build_sampler as sizes=...)."""
    weight: float | None = None
    """Share of examples drawn (relative to the other sources' weights)."""
    repeat: float | None = None
    """Passes over the source per mixture epoch (r × size examples)."""
    count: int | None = None
    """Examples drawn from the source per mixture epoch."""
    exhaustion: Literal["reshuffle", "stop"] | MaxEpochs = "reshuffle"
    """When drawn through: reshuffle and repeat, stop, or {max_epochs: N}."""
    every: int | None = Field(None, ge=1)
    """Spacing: the source appears in exactly every k-th batch, holding the examples its share owes."""
    window: int | None = Field(None, ge=1)
    """Spacing: the source appears at least once in every `window` consecutive batches."""

    @field_validator("weight", "repeat", "count")
    @classmethod
    def _non_negative(cls, v: float | None, info: ValidationInfo) -> float | None:
        if v is not None and (not math.isfinite(v) or v < 0):
            raise ValueError(
                f"{info.field_name} must be a finite number >= 0: use 0 to leave the source out"
            )
        return v

    @field_validator("exhaustion", mode="before")
    @classmethod
    def _known_policy(cls, v: Any) -> Any:
        # checked here, so a typo reads as one line rather than pydantic's union report
        if isinstance(v, str) and v not in EXHAUSTION:
            raise ValueError(
                f"unknown exhaustion policy '{v}': {did_you_mean(v, EXHAUSTION)} (or {{max_epochs: N}})"
            )
        if not isinstance(v, str | MaxEpochs):
            epochs = (
                v.get("max_epochs") if isinstance(v, dict) and set(v) == {"max_epochs"} else None
            )
            if (
                not isinstance(epochs, int | float)
                or isinstance(epochs, bool)
                or not 0 < epochs < math.inf
            ):
                raise ValueError(
                    "exhaustion must be reshuffle, stop or {max_epochs: N} with N > 0: write one of those"
                )
        return v

    @model_validator(mode="after")
    def _one_mode(self) -> SourceSpec:
        given = [m for m in ("weight", "repeat", "count") if getattr(self, m) is not None]
        if len(given) > 1:
            raise ValueError(f"source '{self.name}' gives both {given[0]} and {given[1]}: keep one")
        if self.every is not None and self.window is not None:
            raise ValueError(
                f"source '{self.name}' gives both every and window: keep one (every is the stricter)"
            )
        return self

    @model_serializer(mode="wrap")
    def _without_unset_spacing(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # a source without spacing dumps (and hashes) as it did before spacing existed
        data: dict[str, Any] = handler(self)
        for key in ("every", "window"):
            if data.get(key, 0) is None:
                del data[key]
        return data

    @property
    def amount(self) -> str | None:
        """Which of weight/repeat/count this source gives, if any."""
        return next(
            (m for m in ("weight", "repeat", "count") if getattr(self, m) is not None), None
        )

    @property
    def max_epochs(self) -> float | None:
        """The exhaustion policy as an epoch cap (None: never exhausts)."""
        if self.exhaustion == "reshuffle":
            return None
        return 1.0 if self.exhaustion == "stop" else self.exhaustion.max_epochs


class PhaseSpec(Config):
    """One phase of a schedule: weights from its start until the next phase starts."""

    start: float = Field(ge=0, allow_inf_nan=False)
    """Where the phase begins, in the schedule's unit (the first phase starts at 0)."""
    weights: dict[str, float] | None = None
    """Explicit weights by source name (every source listed); or use strategy."""
    strategy: str | None = None
    """A weighting strategy for this phase (see `weights.STRATEGIES`)."""
    params: dict[str, Any] = Field(default_factory=dict)
    """The strategy's parameters."""
    anneal: Literal["none", "linear", "cosine"] = "none"
    """none: switch at `start`; linear/cosine: move from the previous phase's weights at
    `start` to this phase's at the next phase's start (or the end of training)."""

    @model_validator(mode="after")
    def _one_source_of_weights(self) -> PhaseSpec:
        if self.weights is not None and self.strategy is not None:
            raise ValueError("a phase gives both weights and strategy: keep one")
        if self.params and self.strategy is None:
            raise ValueError("a phase gives params without a strategy: add strategy or drop params")
        return self


class ReplaySpec(Config):
    """Rare-task replay: keep named tasks in every phase after they were first trained."""

    tasks: list[str] = Field(min_length=1)
    """Sources to replay."""
    fraction: float = Field(gt=0, lt=1)
    """Each replayed task's minimum share of every later phase (others renormalised)."""


class ScheduleSpec(Config):
    """Phases of weights over training, with optional anneals and rare-task replay."""

    unit: Literal["fraction", "steps"] = "fraction"
    """Unit of phase starts: a fraction of total steps, or a step number."""
    phases: list[PhaseSpec] = Field(min_length=1)
    """The phases, in order of start; a phase without weights/strategy uses the base mix."""
    replay: ReplaySpec | None = None
    """Optional rare-task replay."""

    @model_validator(mode="after")
    def _ordered(self) -> ScheduleSpec:
        starts = [p.start for p in self.phases]
        if starts[0] != 0:
            raise ValueError(
                f"the first phase must start at 0, not {starts[0]:g}: set phases[0].start: 0"
            )
        for i in range(1, len(starts)):
            if starts[i] <= starts[i - 1]:
                raise ValueError(
                    f"phase starts must increase: phases[{i}].start {starts[i]:g} <= {starts[i - 1]:g}"
                )
        if self.unit == "fraction" and starts[-1] >= 1:
            raise ValueError(
                f"fraction starts must be below 1, got {starts[-1]:g}: use unit: steps for step numbers"
            )
        if self.unit == "steps" and any(s != int(s) for s in starts):
            raise ValueError("step starts must be whole numbers: use unit: fraction for fractions")
        if self.phases[0].anneal != "none":
            raise ValueError(
                "the first phase has nothing to anneal from: set phases[0].anneal: none"
            )
        return self


class CurriculumSpec(Config):
    """A curriculum: an ordering of the tasks that generates the schedule's phases.

    Training is an optional base phase (`base_fraction` of the steps, on `base_tasks`),
    then `stages` equal phases; stage k gives `focus` of its examples to its group of
    tasks (equally) and the rest to the base mix. See `raremix.mixture.curricula`.
    """

    kind: str
    """The ordering: rarity-first, easy-to-hard, structured-first, open-first, random, bwt-guided."""
    by: Literal["frequency", "loss", "complexity"] | None = None
    """What ranks the tasks: rarity-first frequency (default) | loss; easy-to-hard complexity (default) | loss."""
    tasks: list[str] | None = None
    """The tasks the curriculum orders (default: every source); the others keep their base share."""
    base_fraction: float = Field(0.0, ge=0, lt=1)
    """Fraction of training before the first stage: the base phase (0: none)."""
    base_tasks: list[str] | None = None
    """Tasks of the base phase, in their base-mix proportions (default: every source)."""
    stages: int | None = Field(None, ge=1)
    """Number of stages the ordered tasks are split into (default: one per task)."""
    focus: float = Field(1.0, gt=0, le=1)
    """Share of each stage given to its tasks; the rest follows the base mix (1: only them)."""
    anneal: Literal["none", "linear", "cosine"] = "none"
    """How each stage's weights are reached from the previous phase's (see schedules)."""
    seed: int | None = None
    """Seed of the `random` order."""
    losses: dict[str, float] | None = None
    """Each task's loss at the base phase end (by: loss); measured by raremix.studies.ordering.run."""
    difficulty: dict[str, float] | None = None
    """Each task's difficulty (by: complexity), e.g. its knob's position in its range."""
    kinds: dict[str, Literal["structured", "open"]] | None = None
    """Task kinds for structured-first/open-first (default: the registered task of each source's name)."""
    forgetting: dict[str, dict[str, float]] | None = None
    """bwt-guided: `forgetting[a][b]` = rise of b's loss from training on a (measured by raremix.studies.ordering.run)."""

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, v: str) -> str:
        from raremix.mixture.curricula import (
            CURRICULA,
        )  # curricula builds ScheduleSpecs: import on use

        if v not in CURRICULA:
            raise ValueError(str(unknown("curriculum", v, CURRICULA)))
        return v

    @model_validator(mode="after")
    def _by_fits_kind(self) -> CurriculumSpec:
        from raremix.mixture.curricula import BY

        allowed = BY.get(self.kind, ())
        if self.by is not None and self.by not in allowed:
            fix = f"use one of: {', '.join(allowed)}" if allowed else "drop by"
            raise ValueError(f"curriculum '{self.kind}' cannot rank by {self.by}: {fix}")
        return self

    def names(self) -> dict[str, list[str]]:
        """Every field that names sources: field → the names it uses."""
        out = {"tasks": self.tasks or [], "base_tasks": self.base_tasks or []}
        for key in ("losses", "difficulty", "kinds"):
            out[key] = list(getattr(self, key) or {})
        pairs = self.forgetting or {}
        out["forgetting"] = [*pairs, *(b for row in pairs.values() for b in row)]
        return out


class MixtureConfig(Config):
    """A mixture of sources: what to draw, how much, in what order over training."""

    sources: list[SourceSpec] = Field(min_length=1)
    """The sources (tasks); names must be unique."""
    strategy: str | None = None
    """Weighting strategy when sources give no weight|repeat|count (default natural)."""
    params: dict[str, Any] = Field(default_factory=dict, validate_default=True)
    """Parameters of the strategy, e.g. {tau: 3} for temperature."""
    mode: Literal["iid", "stratified"] = "iid"
    """iid: each example drawn independently; stratified: each batch's per-source counts
    by largest remainder, never more than one example from target over any prefix."""
    schedule: ScheduleSpec | None = None
    """Optional phases/anneals/replay; without it the weights are constant."""
    curriculum: CurriculumSpec | None = None
    """Optional curriculum that generates the schedule (instead of `schedule`)."""

    @field_validator("sources")
    @classmethod
    def _consistent_sources(cls, sources: list[SourceSpec]) -> list[SourceSpec]:
        names = [s.name for s in sources]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"source name '{dup[0]}' appears twice: names must be unique")
        if all(s.every is not None or s.window is not None for s in sources):
            raise ValueError(
                "every source is spaced (every/window): leave at least one without, to fill the batches"
            )
        amounts = {s.name: s.amount for s in sources}
        if any(amounts.values()):
            bare = [n for n, a in amounts.items() if a is None]
            if bare:
                raise ValueError(
                    f"source '{bare[0]}' gives no weight|repeat|count while others do: "
                    "give every source one, or none and choose a strategy"
                )
            kinds = {a == "weight" for a in amounts.values()}
            if len(kinds) > 1:
                raise ValueError(
                    "weights (shares) and repeat/count (examples per mixture epoch) are mixed: "
                    "use one kind for every source"
                )
            if (
                all(s.weight is not None for s in sources)
                and sum(s.weight or 0 for s in sources) <= 0
            ):
                raise ValueError("weights are all zero: give at least one source a positive weight")
            if all(s.amount != "weight" for s in sources):
                total = sum((s.repeat or 0) + (s.count or 0) for s in sources)
                if total <= 0:
                    raise ValueError(
                        "repeat/count are all zero: give at least one source a positive amount"
                    )
        return sources

    @field_validator("strategy")
    @classmethod
    def _strategy_alone(cls, v: str | None, info: ValidationInfo) -> str | None:
        sources = info.data.get("sources")
        if v is not None and v not in STRATEGIES:
            raise ValueError(str(unknown("strategy", v, STRATEGIES)))
        if v is not None and sources and any(s.amount for s in sources):
            raise ValueError(
                "sources give weight|repeat|count and a strategy is set: choose one way to weight them"
            )
        return v

    @field_validator("params")
    @classmethod
    def _valid_params(cls, v: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        if "strategy" not in info.data or "sources" not in info.data:
            return v  # an earlier field failed; that error is reported first
        strategy = info.data["strategy"]
        if strategy is None:
            if v:
                raise ValueError("params given without a strategy: add strategy or drop params")
            return v
        return check_params(strategy, v, [s.name for s in info.data["sources"]])

    @field_validator("schedule")
    @classmethod
    def _schedule_names(cls, v: ScheduleSpec | None, info: ValidationInfo) -> ScheduleSpec | None:
        if v is None or "sources" not in info.data:
            return v
        names = [s.name for s in info.data["sources"]]
        for i, phase in enumerate(v.phases):
            for name in phase.weights or {}:
                if name not in names:
                    raise ValueError(f"phases[{i}].weights: {unknown('source', name, names)}")
            if phase.weights is not None:
                missing = [n for n in names if n not in phase.weights]
                if missing:
                    raise ValueError(
                        f"phases[{i}].weights misses '{missing[0]}': list every source (0 leaves it out)"
                    )
                if any(not math.isfinite(w) or w < 0 for w in phase.weights.values()):
                    raise ValueError(
                        f"phases[{i}].weights must be finite numbers >= 0: use 0 to leave a source out"
                    )
                if sum(phase.weights.values()) <= 0:
                    raise ValueError(
                        f"phases[{i}].weights are all zero: give a source a positive weight"
                    )
            if phase.strategy is not None:
                try:
                    check_params(phase.strategy, phase.params, names)
                except ValueError as err:
                    raise ValueError(f"phases[{i}]: {err}") from None
        for name in v.replay.tasks if v.replay else []:
            if name not in names:
                raise ValueError(f"replay.tasks: {unknown('source', name, names)}")
        return v

    @model_serializer(mode="wrap")
    def _without_unset_curriculum(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # a mixture without a curriculum dumps (and hashes) as it did before curricula existed
        data: dict[str, Any] = handler(self)
        if data.get("curriculum", 0) is None:
            del data["curriculum"]
        return data

    @field_validator("curriculum")
    @classmethod
    def _curriculum_names(
        cls, v: CurriculumSpec | None, info: ValidationInfo
    ) -> CurriculumSpec | None:
        if v is None or "sources" not in info.data:
            return v
        if info.data.get("schedule") is not None:
            raise ValueError(
                "both schedule and curriculum are given (a curriculum generates the schedule): keep one"
            )
        names = [s.name for s in info.data["sources"]]
        for key, used in v.names().items():
            for name in used:
                if name not in names:
                    raise ValueError(f"curriculum.{key}: {unknown('source', name, names)}")
        return v
