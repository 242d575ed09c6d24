"""`HFTrainConfig`: the YAML that `raremix hf-train` reads.

Which Hugging Face causal LM and tokenizer, which data (task-tagged rows, or raremix's
own synthetic tasks), how they are mixed, and how the run trains, evaluates and logs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from raremix.config import (
    MAX_BATCH,
    MAX_SEED,
    MAX_STEPS,
    OptimConfig,
    RunConfig,
    TaskSpec,
    adaptive_problem,
)
from raremix.configbase import Config, load_file
from raremix.errors import unknown
from raremix.mixture import MixtureConfig
from raremix.mixture.adaptive import AdaptiveConfig
from raremix.probes.config import ProbeConfig
from raremix.schedules import budget_problem
from raremix.tagged.spec import TaggedSpec, path_beside


class LoraSpec(Config):
    """LoRA adapters (`peft.LoraConfig`): only they train; the model's own weights stay frozen."""

    r: int = Field(8, ge=1, le=4096)
    """Rank of each adapter's update matrices."""
    alpha: int = Field(16, ge=1)
    """Scale of the adapters' update (peft's lora_alpha; the update is scaled by alpha / r)."""
    dropout: float = Field(0.0, ge=0, lt=1)
    """Dropout on the adapters' input while training."""
    target_modules: list[str] | Literal["all-linear"] = "all-linear"
    """Module names (or name suffixes) to adapt, e.g. [q_proj, v_proj]; all-linear: every linear layer but the output head."""


class HFTrainConfig(RunConfig):
    """Train or fine-tune a Hugging Face causal LM on a raremix mixture."""

    LATER_DEFAULTS: ClassVar[dict[str, Any]] = {
        "adaptive": None
    }  # runs from before it keep their hash

    model: str
    """Model to load with AutoModelForCausalLM.from_pretrained: a local folder (next to the YAML, or from the working directory) or a hub name where the network allows."""
    tokenizer: str | None = None
    """Tokenizer to load with AutoTokenizer.from_pretrained (default: the model's)."""
    data: TaggedSpec | None = None
    """Task-tagged rows to train on (`raremix.tagged`: path, task/prompt/response columns or
    chat messages, format); leave out to train on `tasks`. A relative path is read from the YAML's folder."""
    heldout: float = Field(0.1, ge=0, lt=1)
    """Fraction of each task's tagged rows held out for evaluation, chosen by a hash of the prompt."""
    tasks: dict[str, TaskSpec] = Field(default_factory=dict)
    """Synthetic tasks (name → knobs), used when `data` is not given; mixture sources give their sizes."""
    framing: Literal["token", "instruction", "empty", "output_space"] = "instruction"
    """How a synthetic task's prompt announces it: '<name> ', its instruction, nothing, or its output format."""
    mixture: MixtureConfig
    """How the tasks are mixed; sources are task names (tagged data: sizes come from the row counts)."""
    seed: int = Field(0, ge=0, le=MAX_SEED)
    """Seeds the data order and anything random in training."""
    steps: int = Field(1000, ge=1, le=MAX_STEPS)
    """Optimiser steps."""
    batch_size: int = Field(32, ge=1, le=MAX_BATCH)
    """Examples per step (global, across ranks)."""
    max_length: int = Field(256, ge=4)
    """Longest training sequence in tokens; longer ones are cut on `truncation_side` and counted (facts `truncated*`)."""
    truncation_side: Literal["left", "right"] = "left"
    """Which end of a too-long sequence is cut: left (the prompt's start, after a BOS; keeps the response and eos) or right."""
    lost_response: Literal["count", "error"] = "count"
    """When a cut removes every trained token of an example: count it (fact `truncated_lost`) or stop with an error."""
    assistant_turns: Literal["all", "last"] = "all"
    """Chat data (`data.messages`): train on every assistant turn, or only on the final one."""
    grad_accum: int = Field(1, ge=1, le=MAX_BATCH)
    """Micro-batches per optimiser step: each rank's share of `batch_size` goes through in this many forward/backward passes (less memory, the same update)."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    """Dtype the model's weights are loaded in (`from_pretrained(dtype=...)`); float16 trains only LoRA adapters."""
    autocast: Literal["auto", "off", "bfloat16"] = "auto"
    """Mixed precision of the forward pass: bfloat16 (CPU or CUDA), off, or auto (bfloat16 on CUDA, off on CPU)."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass (`model.gradient_checkpointing_enable`): less memory, more compute."""
    lora: LoraSpec | None = None
    """Train LoRA adapters (`peft`) instead of every weight; null: full fine-tuning."""
    optim: OptimConfig = OptimConfig(lr=5e-4, warmup_steps=20)
    """Optimiser (AdamW) and learning-rate schedule; `optim.lr` is the peak learning rate."""
    eval_every: int = Field(100, ge=1)
    """Evaluate every this many steps (and at the start and the end)."""
    eval_examples: int = Field(64, ge=1)
    """Held-out examples per task at each evaluation."""
    max_new_tokens: int = Field(64, ge=1)
    """Most tokens generated per answer (fewer when every reference answer is shorter)."""
    checkpoint_every: int = Field(250, ge=1)
    """Save a resumable checkpoint every this many steps (and at the end)."""
    threads: int | None = Field(None, ge=1)
    """CPU threads for this run (default: PyTorch's choice)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where to train; auto picks CUDA when present (with bf16 autocast)."""
    rare: list[str] = Field(default_factory=list)
    """Tasks to report as rare targets (interference probes, progress)."""
    probes: ProbeConfig | None = None
    """Probes run with each evaluation or every `probes.every` steps; null: none."""
    adaptive: AdaptiveConfig | None = None
    """Adaptive (online) mixing: a rule that re-weights the tasks while training; null: none."""
    loggers: list[str] = Field(default_factory=list)
    """Trackers to log to (all local: TensorBoard event files, an MLflow file store, W&B offline)."""

    @field_validator("loggers")
    @classmethod
    def _known_loggers(cls, names: list[str]) -> list[str]:
        from raremix.callbacks.loggers import LOGGERS  # the trackers' packages load on use

        for name in names:
            if name not in LOGGERS:
                raise ValueError(str(unknown("logger", name, LOGGERS)))
        return names

    @model_validator(mode="after")
    def _consistent(self) -> HFTrainConfig:
        if self.data is None and not self.tasks:
            raise ValueError("give `data` (task-tagged rows) or `tasks` (synthetic tasks)")
        if self.data is not None and self.tasks:
            raise ValueError("give `data` or `tasks`, not both")
        if self.tasks:
            from raremix.tasks import TASKS

            for name, spec in self.tasks.items():
                if (spec.task or name) not in TASKS:
                    raise ValueError(str(unknown("task", spec.task or name, TASKS)))
            for s in self.mixture.sources:
                if s.name not in self.tasks:
                    raise ValueError(
                        f"mixture source '{s.name}' is not in tasks: add it under tasks"
                    )
        if self.adaptive is not None:
            adaptive_problem(self.adaptive, self.mixture)
        if self.grad_accum > self.batch_size:
            raise ValueError(
                f"grad_accum ({self.grad_accum}) is more than batch_size ({self.batch_size}): "
                "lower grad_accum or raise batch_size"
            )
        if self.dtype == "float16" and self.lora is None:
            raise ValueError(
                "dtype: float16 with full fine-tuning loses AdamW's small updates: add lora: {} "
                "or load in bfloat16 or float32"
            )
        problem = budget_problem(self.optim, self.steps)
        if problem:
            raise ValueError(problem)
        return self

    @classmethod
    def beside_file(cls, data: dict[str, Any], folder: Path) -> dict[str, Any]:
        """Relative paths in a YAML point next to it: the data path (as in `raremix mix`), and
        the model and tokenizer when such a folder exists there (else: cwd, then the hub)."""
        out = dict(data)
        if isinstance(out.get("data"), dict):
            out["data"] = path_beside(out["data"], folder)
        for key in ("model", "tokenizer"):
            if isinstance(out.get(key), str) and (folder / out[key]).is_dir():
                out[key] = str(folder / out[key])
        return out


def load_hf_config(
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    data: dict[str, Any] | None = None,
) -> HFTrainConfig:
    """Read a YAML (or take a dict), apply `key=value` overrides, validate (`configbase.load_file`)."""
    return load_file(HFTrainConfig, path, [] if overrides is None else overrides, data=data)
