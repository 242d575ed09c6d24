"""The training-run config: what a YAML passed to `raremix train` holds.

Run-level settings sit at the top (so `steps=500` overrides read naturally); tasks,
mixture, model and optimiser are sections. Everything validates on load: a typo'd key,
a negative size or an unknown task is one `RaremixError` line naming the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from raremix.callbacks.collapse import CollapseAlarm
from raremix.callbacks.ledger import Ledger
from raremix.callbacks.stop import StopWhenLearned
from raremix.configbase import Config, load, load_file
from raremix.configbase import apply_overrides as apply_overrides  # its old home, still importable
from raremix.configbase import config_hash as config_hash
from raremix.errors import RaremixError, unknown
from raremix.mixture import MixtureConfig
from raremix.mixture.adaptive import AdaptiveConfig
from raremix.model import (
    LADDER,
    MAX_BLOCK,
    MAX_D_MODEL,
    MAX_LAYERS,
    MAX_MLP_RATIO,
    GPTConfig,
    heads_for,
    ladder_config,
)
from raremix.probes.config import ProbeConfig
from raremix.schedules import SCHEDULES, budget_problem
from raremix.tasks.heldout import EVAL_EXAMPLES


class TaskSpec(Config):
    """One task in the run's inventory."""

    task: str | None = None
    """Registered task to use (default: the entry's own name), so one task can appear twice with two knobs."""
    complexity: int | None = Field(None, ge=1)
    """The task's complexity knob (length, modulus, bits…); default: the task's own default."""


class ModelSpec(Config):
    """Which GPT to train: a ladder rung, optionally with its shape overridden."""

    size: str | None = "25k"
    """A rung of the size ladder (see `raremix.model.LADDER`), or null to give the shape below."""
    n_layer: int | None = Field(None, ge=1, le=MAX_LAYERS)
    """Depth; overrides the rung's."""
    d_model: int | None = Field(None, ge=4, le=MAX_D_MODEL)
    """Width; overrides the rung's."""
    n_head: int | None = Field(None, ge=1, le=MAX_D_MODEL)
    """Attention heads; overrides the rung's."""
    mlp_ratio: float = Field(4.0, gt=0, le=MAX_MLP_RATIO)
    """MLP hidden width as a multiple of d_model."""
    block_size: int | None = Field(None, ge=2, le=MAX_BLOCK)
    """Position table length; default: the longest sequence the tasks can make."""

    @model_validator(mode="after")
    def _known_size(self) -> ModelSpec:
        if self.size is not None and self.size not in LADDER:
            raise ValueError(
                f"unknown ladder size '{self.size}': choose one of {', '.join(LADDER)}"
            )
        if self.size is None and (self.n_layer is None or self.d_model is None):
            raise ValueError("with size: null give both n_layer and d_model")
        return self

    def build(self, vocab_size: int, block_size: int) -> GPTConfig:
        """Resolve to a concrete GPTConfig."""
        base = (
            ladder_config(self.size, vocab_size, block_size, self.mlp_ratio)
            if self.size
            else GPTConfig(vocab_size=vocab_size, block_size=block_size, mlp_ratio=self.mlp_ratio)
        )
        shape = {
            k: v
            for k, v in (
                ("n_layer", self.n_layer),
                ("d_model", self.d_model),
                ("n_head", self.n_head),
            )
            if v
        }
        if "d_model" in shape and "n_head" not in shape:
            shape["n_head"] = heads_for(shape["d_model"])
        return load(
            GPTConfig,
            {**base.model_dump(), **shape, "block_size": self.block_size or block_size},
            "config.model",
        )


class LrRule(Config):
    """Peak learning rate by model size: lr × (params / ref_params)^exponent."""

    ref_params: int = Field(25_000, ge=1)
    """Parameter count (embeddings included, as `facts.params`) at which the rate is `lr` itself."""
    exponent: float = Field(-0.5, allow_inf_nan=False)
    """Power of params / ref_params (negative: larger models get smaller rates)."""


class OptimConfig(Config):
    """AdamW with linear warm-up, a named learning-rate schedule, and gradient clipping."""

    lr: float = Field(3e-3, gt=0)
    """Peak learning rate (at `lr_rule.ref_params` parameters when `lr_rule` is set)."""
    weight_decay: float = Field(0.01, ge=0)
    """AdamW decoupled weight decay on matrices (not on biases, norms or embeddings)."""
    beta1: float = Field(0.9, ge=0, lt=1)
    """Adam β1."""
    beta2: float = Field(0.98, ge=0, lt=1)
    """Adam β2."""
    warmup_steps: int = Field(100, ge=0)
    """Linear warm-up length in steps."""
    schedule: str = "cosine"
    """After warm-up: cosine (to min_lr_ratio·lr over the run's steps), constant, or wsd (see raremix.schedules)."""
    min_lr_ratio: float = Field(0.1, ge=0, le=1)
    """Final learning rate as a fraction of the peak (cosine and wsd)."""
    decay_steps: int = Field(0, ge=0)
    """wsd: length of the linear decay in steps (≥ 1 for wsd)."""
    decay_start: int | None = Field(None, ge=0)
    """wsd: step at which the decay begins; default: steps − decay_steps (the decay ends the run)."""
    decay_start_fraction: float | None = Field(None, gt=0, lt=1)
    """wsd: the decay begins at this fraction of the run's steps (instead of decay_start)."""
    lr_rule: LrRule | None = None
    """Scale the peak rate with model size (recorded per run as `lr_peak`); null: `lr` for every size."""
    grad_clip: float = Field(1.0, ge=0)
    """Clip the global gradient norm to this value (0 disables)."""

    @field_validator("schedule")
    @classmethod
    def _known_schedule(cls, name: str) -> str:
        if name not in SCHEDULES:
            raise ValueError(str(unknown("schedule", name, SCHEDULES)))
        return name

    @model_validator(mode="after")
    def _schedule(self) -> OptimConfig:
        declared = [
            k for k in ("decay_start", "decay_start_fraction") if getattr(self, k) is not None
        ]
        if self.schedule != "wsd" and (declared or self.decay_steps):
            raise ValueError(
                f"{(declared or ['decay_steps'])[0]} applies to schedule: wsd only: remove it or set schedule: wsd"
            )
        if self.schedule == "wsd" and self.decay_steps < 1:
            raise ValueError("schedule: wsd needs decay_steps ≥ 1: declare the decay length")
        if len(declared) > 1:
            raise ValueError("give decay_start or decay_start_fraction, not both")
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        # fields added after runs existed stay out at their defaults, so old runs keep their hash
        for key in ("decay_steps", "decay_start", "decay_start_fraction", "lr_rule"):
            if data.get(key) == OptimConfig.model_fields[key].default:
                del data[key]
        return data


# Sane upper bounds, checked on load: past them a run would not allocate or never end.
MAX_SEED = 2**32 - 1  # NumPy's legacy seeding (np.random.seed) takes no more
MAX_STEPS = 10**9
MAX_BATCH = 65_536
MAX_EVAL_EXAMPLES = 100_000


class RunConfig(Config):
    """Base of a whole run's config (`TrainConfig`, `HFTrainConfig`): read by `load_file`,
    named by a short content hash (run directories, checkpoint checks), and building the
    callbacks its sections declare."""

    LATER_DEFAULTS: ClassVar[dict[str, Any]] = {}
    """Fields added after runs existed, left out of the hash at these values, so a config
    written before a field existed keeps its hash."""

    def hash(self) -> str:
        """Short content hash: identical configs share it (run ids, checkpoint checks)."""
        data = self.model_dump(mode="json")
        for key, default in self.LATER_DEFAULTS.items():
            if key in data and data[key] == default:
                del data[key]
        return config_hash(data)

    def callbacks(self, runner: Any = None) -> list[Any]:
        """The callbacks this config's sections declare (probes, adaptive, stop_when_learned,
        collapse_alarm); `runner(cfg, run_dir)` trains DoReMi's reference run (the family's
        `train`)."""
        from raremix.callbacks.configured import configured

        return configured(self, runner)


def adaptive_problem(adaptive: AdaptiveConfig, mixture: MixtureConfig) -> None:
    """Raise ValueError (a config validator's) when `adaptive` does not fit `mixture`."""
    sources = [s.name for s in mixture.sources]
    try:
        rule = adaptive.build("adaptive")  # a typo'd rule or param: one line
    except RaremixError as err:
        raise ValueError(str(err)) from None
    for name in getattr(rule, "tasks", None) or []:
        if name not in sources:
            raise ValueError(f"adaptive.params.tasks: {unknown('source', name, sources)}")
    if mixture.schedule is not None:
        raise ValueError(
            "adaptive mixing replaces the mixture's schedule: remove mixture.schedule or adaptive"
        )


class TrainConfig(RunConfig):
    """A whole training run."""

    LATER_DEFAULTS: ClassVar[dict[str, Any]] = {
        "probes": None,  # runs from before probes existed keep their hash
        "adaptive": None,  # likewise for runs from before adaptive mixing
        "eval_schedule": "linear",  # and for runs from before these fields
        "eval_per_decade": 10,
        "stop_when_learned": None,
        "collapse_alarm": None,
        "ledger": None,
        "eval_seed": 0,
    }

    seed: int = Field(0, ge=0, le=MAX_SEED)
    """Seeds model init, data order and evaluation sets."""
    steps: int = Field(2000, ge=1, le=MAX_STEPS)
    """Optimiser steps."""
    batch_size: int = Field(128, ge=1, le=MAX_BATCH)
    """Examples per step (global, across ranks)."""
    eval_every: int = Field(250, ge=1)
    """Evaluate every this many steps (and at the start and the end)."""
    eval_schedule: Literal["linear", "log"] = "linear"
    """linear: every eval_every steps; log: also at log-spaced steps, dense early, to place onsets."""
    eval_per_decade: int = Field(10, ge=1)
    """log: evaluations per tenfold of steps (steps round(10^(i/eval_per_decade)))."""
    eval_examples: int = Field(EVAL_EXAMPLES, ge=1, le=MAX_EVAL_EXAMPLES)
    """Held-out examples per task at each evaluation (fewer where a task's held-out space is
    smaller; ≥ 200 is the evidence standard)."""
    eval_seed: int = Field(0, ge=0, le=2**32 - 1)
    """Seed of the held-out draw (0: the calibration draw; a confirmation run takes a fresh one)."""
    checkpoint_every: int = Field(500, ge=1)
    """Save a resumable checkpoint every this many steps (and at the end)."""
    threads: int | None = Field(None, ge=1, le=4096)
    """CPU threads for this run (default: PyTorch's choice)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where to train; auto picks CUDA when present (with bf16 autocast)."""
    framing: Literal["token", "instruction", "empty", "wrong", "output_space"] = "token"
    """How each example announces its task."""
    tasks: dict[str, TaskSpec]
    """The task inventory: name → knobs. Mixture sources refer to these names."""
    mixture: MixtureConfig
    """How the tasks are mixed (weights, schedule, sampler mode)."""
    model: ModelSpec = ModelSpec()
    """The GPT to train."""
    optim: OptimConfig = OptimConfig()
    """Optimiser and learning-rate schedule."""
    rare: list[str] = Field(default_factory=list)
    """Tasks to report as rare targets (progress bar, summaries)."""
    probes: ProbeConfig | None = None
    """Probes run during training (interference, neurons, linear probes, entropy); null: none."""
    adaptive: AdaptiveConfig | None = None
    """Adaptive (online) mixing: a rule that re-weights the tasks while training; null: none."""
    stop_when_learned: StopWhenLearned | None = None
    """End the run once these tasks are learned (threshold, consecutive evaluations); null: run all steps."""
    collapse_alarm: CollapseAlarm | None = None
    """Flag acquire-then-forget while training (and optionally respond); null: no alarm."""
    ledger: Ledger | None = None
    """Split each sampled update's effect on a victim's held-out loss by the batch's tasks; null: none."""

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if not self.tasks:
            raise ValueError("tasks is empty: list at least one task")
        from raremix.tasks import TASKS

        for name, spec in self.tasks.items():
            task = spec.task or name
            if task not in TASKS:
                raise ValueError(str(unknown("task", task, TASKS)))
        sources = [s.name for s in self.mixture.sources]
        for name in sources:
            if name not in self.tasks:
                raise ValueError(f"mixture source '{name}' is not in tasks: add it under tasks")
        for name in self.rare:
            if name not in self.tasks:
                raise ValueError(
                    f"rare task '{name}' is not in tasks: add it under tasks or fix the name"
                )
        if self.adaptive is not None:
            adaptive_problem(self.adaptive, self.mixture)
        if self.eval_schedule == "linear" and self.eval_per_decade != 10:
            raise ValueError(
                "eval_per_decade applies to eval_schedule: log only: set eval_schedule: log or remove it"
            )
        problem = budget_problem(self.optim, self.steps)
        if problem:
            raise ValueError(problem)
        for name in self.stop_when_learned.tasks if self.stop_when_learned else []:
            if name not in self.tasks:
                raise ValueError(f"stop_when_learned.tasks: {unknown('task', name, self.tasks)}")
        alarm = self.collapse_alarm
        for name in (alarm.tasks or []) if alarm else []:
            if name not in sources:
                raise ValueError(f"collapse_alarm.tasks: {unknown('source', name, sources)}")
        for name in (self.ledger.victims or []) if self.ledger else []:
            if name not in self.tasks:
                raise ValueError(f"ledger.victims: {unknown('task', name, self.tasks)}")
        if self.ledger is not None and self.ledger.victims is None and not self.rare:
            raise ValueError("ledger has no victim task: set rare or ledger.victims")
        if alarm is not None and alarm.adaptive is not None and self.adaptive is not None:
            raise ValueError(
                "collapse_alarm.adaptive takes over the mix after an alarm, adaptive steers it "
                "from the start: keep one"
            )
        return self


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    data: dict[str, Any] | None = None,
) -> TrainConfig:
    """Read a YAML (or take a dict), apply overrides, validate (`configbase.load_file`)."""
    return load_file(TrainConfig, path, [] if overrides is None else overrides, data=data)
