"""Student beats teacher: a study run function for distillation on teacher-labelled data.

A larger *teacher* is an ordinary trainer run on a small labelled set (each mixture
source's finite `size`: the examples with indices 0..size-1, repeated). It labels a
pool of fresh inputs drawn from the task's whole training distribution: greedy decoding
gives the hard labels, and the teacher's logits at each answer position, kept as its
top-k tokens, give the soft targets. A smaller *student* trains on the labelled set
(true labels) plus `pool` teacher-labelled inputs per task, with one of three losses
(`LOSSES`), and both are evaluated on the tasks' true held-out sets.

Teachers and their labels are cached beside the study's runs (`<study>/teachers/`, see
`distill_teacher.TeacherCache`): every student of a seed shares one teacher.
`run_distill(config, run_dir)` is the runner's entry point (`run_fn`).

The student trains through the one loop (`raremix.loop`) as a `GPTStep` whose batches
are the teacher-labelled sequences (`StudentStream`, epochs of a seeded permutation)
and whose objective is `distill_loss`: it checkpoints and resumes like any run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from raremix.config import ModelSpec, OptimConfig, TrainConfig, config_hash
from raremix.configbase import Config, load
from raremix.errors import RaremixError
from raremix.schedules import budget_problem
from raremix.studies.distillation.teacher import LABEL_KEYS, TeacherCache, true_labelled
from raremix.studies.regime import Trained, trained

LOSSES = ("hard", "soft", "margin")
TEACHERS_DIR = "teachers"


class StudentConfig(Config):
    """The student and the data it learns from."""

    model: ModelSpec = ModelSpec(size="25k")
    """The student GPT (smaller than the teacher)."""
    pool: int = Field(0, ge=0)
    """Teacher-labelled inputs per task (0: the labelled set alone)."""
    include_labelled: bool = True
    """Also train on the teacher's labelled set, with its true labels."""
    loss: Literal["hard", "soft", "margin"] = "hard"
    """hard: cross-entropy on the teacher's greedy tokens; soft: cross-entropy on its top-k
    distribution at `temperature`; margin: MSE on its top-k logit margins (Margin-MSE)."""
    hard_weight: float = Field(0.0, ge=0, le=1)
    """Weight of the hard-label cross-entropy mixed into the soft and margin losses."""
    temperature: float = Field(1.0, gt=0)
    """Softmax temperature of the soft loss (scaled by T², as in Hinton et al.)."""
    steps: int = Field(1500, ge=1)
    """Optimiser steps (the same for every pool size: equal compute, more data)."""
    batch_size: int = Field(64, ge=1)
    """Examples per step."""
    eval_every: int = Field(250, ge=1)
    """Evaluate on the held-out sets every this many steps (and at the end)."""
    checkpoint_every: int = Field(500, ge=1)
    """Save a resumable checkpoint every this many steps (and at the end)."""
    optim: OptimConfig = OptimConfig()
    """Optimiser and learning-rate schedule."""

    @model_validator(mode="after")
    def _schedule_fits(self) -> StudentConfig:
        problem = budget_problem(self.optim, self.steps)
        if problem:
            raise ValueError(problem)
        return self


class DistillConfig(Config):
    """One run of the distillation study: the teacher itself, or one student."""

    seed: int = 0
    """Seeds the teacher (replacing its own seed), the pool and the student."""
    role: Literal["teacher", "student"] = "student"
    """teacher: report the (cached) teacher's own evaluations; student: train a student."""
    teacher: TrainConfig
    """The teacher's training run; every mixture source needs a finite `size` (the labelled set)."""
    student: StudentConfig = StudentConfig()
    """The student, its data and its loss."""
    top_k: int = Field(8, ge=2)
    """Teacher tokens kept per answer position for the soft and margin targets."""
    label_chunk: int = Field(4096, ge=1)
    """Pool inputs labelled (and cached) per file."""
    rare: list[str] = Field(default_factory=list)
    """Tasks the study's report draws as targets (learning curves per arm); from teacher.tasks."""

    @model_validator(mode="after")
    def _finite_labelled_sets(self) -> DistillConfig:
        for name in self.rare:
            if name not in self.teacher.tasks:
                raise ValueError(f"rare task '{name}' is not in teacher.tasks: fix the name")
        for s in self.teacher.mixture.sources:
            if s.size is None:
                raise ValueError(
                    f"teacher source '{s.name}' has no size: give it one (the labelled set's examples)"
                )
        return self

    def teacher_config(self) -> TrainConfig:
        """The teacher's run config under this run's seed."""
        return self.teacher.model_copy(update={"seed": self.seed})

    def student_config(self) -> TrainConfig:
        """The student's run as the loop reads it: the teacher's tasks and evaluation, the
        student's model, steps, batch and optimiser, on the CPU."""
        s = self.student
        return self.teacher_config().model_copy(
            update={
                "model": s.model,
                "steps": s.steps,
                "batch_size": s.batch_size,
                "optim": s.optim,
                "eval_every": s.eval_every,
                "eval_schedule": "linear",
                "checkpoint_every": s.checkpoint_every,
                "device": "cpu",
                "rare": self.rare,
                "probes": None,
                "adaptive": None,
                "stop_when_learned": None,
            }
        )

    def hash(self) -> str:
        """Short content hash (the run record, checkpoint checks)."""
        return config_hash(self.model_dump(mode="json"))


# --- the math: losses on teacher targets ---------------------------------------------


def soft_target_loss(
    logits: torch.Tensor, ids: torch.Tensor, t_logits: torch.Tensor, mask: torch.Tensor, T: float
) -> torch.Tensor:
    """T² · cross-entropy of the student against the teacher's top-k distribution at temperature T.

    logits (B, T, V) student; ids, t_logits (B, T, K) the teacher's top-k tokens and logits
    (-inf for an absent token); mask (B, T) the answer positions. Differs from the KL only
    by the teacher's entropy, a constant.
    """
    # off the answers every teacher logit is -inf: a softmax there would be NaN
    t = torch.where(mask[..., None], t_logits.float(), 0.0)  # (B, T, K)
    p = torch.softmax(t / T, dim=-1)  # (B, T, K)
    logq = torch.log_softmax(logits.float() / T, dim=-1).gather(-1, ids)  # (B, T, K)
    ce = -(p * logq).sum(-1)  # (B, T)
    return torch.where(mask, ce, 0.0).sum() / mask.sum().clamp(min=1) * T * T


def margin_loss(
    logits: torch.Tensor, ids: torch.Tensor, t_logits: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Margin-MSE: the student's logit gaps between the teacher's top token and its others
    should equal the teacher's. Shapes as in `soft_target_loss`; rows of `mask` False or
    with a non-finite teacher logit are left out."""
    s = logits.float().gather(-1, ids)  # (B, T, K)
    t = t_logits.float()
    ok = mask[..., None] & torch.isfinite(t[..., 1:])  # (B, T, K-1)
    err = ((s[..., 1:] - s[..., :1]) - (t[..., 1:] - t[..., :1])).masked_fill(~ok, 0.0)
    return (err**2).sum() / ok.sum().clamp(min=1)


def distill_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    ids: torch.Tensor,
    t_logits: torch.Tensor,
    s: StudentConfig,
) -> torch.Tensor:
    """The student's loss on a batch: targets (B, T) are the hard labels (-100 off answers)."""
    from raremix.loss import answer_loss

    hard = answer_loss(logits, targets)
    if s.loss == "hard":
        return hard
    mask = targets != -100  # (B, T)
    if s.loss == "soft":
        soft = soft_target_loss(logits, ids, t_logits, mask, s.temperature)
    else:
        soft = margin_loss(logits, ids, t_logits, mask)
    return s.hard_weight * hard + (1 - s.hard_weight) * soft


# --- the student and the run function ---------------------------------------------------


def student_data(cfg: DistillConfig, cache: TeacherCache) -> dict[str, torch.Tensor]:
    """Every training sequence of the student: the labelled set (true labels) and `pool`
    teacher-labelled inputs per task, in `label_with_teacher`'s layout."""
    data, s = cache.data, cfg.student
    parts = []
    for source in cfg.teacher_config().mixture.sources:
        task = source.name
        if s.include_labelled:
            assert source.size is not None  # checked by DistillConfig
            index = np.arange(source.size, dtype=np.int64)
            inputs, answers = data.examples(task, index, cfg.seed, "train")
            prefix = data.prefixes[task]
            parts.append(
                true_labelled(data.tokenizer, prefix, inputs, answers, cfg.top_k, data.block_size)
            )
        if s.pool:
            parts.append(cache.labels(task, s.pool))
    if not parts:
        raise RaremixError(
            "the student has no data: set student.pool > 0 or student.include_labelled: true"
        )
    return {k: torch.cat([p[k] for p in parts]) for k in LABEL_KEYS}


@dataclass(frozen=True)
class LabelledBatch:
    """A student batch: idx, targets (B, T) (hard labels, -100 off answers); the teacher's
    top-k tokens and logits at each position (B, T, K)."""

    idx: torch.Tensor
    targets: torch.Tensor
    topk_ids: torch.Tensor
    topk_logits: torch.Tensor


class StudentStream:
    """The student's batches: epochs of a seeded permutation of its training sequences (a
    short tail skipped). A pure function of the step, so resuming needs no state."""

    exhausted = False

    def __init__(self, train_set: dict[str, torch.Tensor], batch_size: int, seed: int) -> None:
        self.set, self.batch, self.seed = train_set, batch_size, seed
        self.n = train_set["idx"].shape[0]
        self._epoch, self._perm = -1, torch.empty(0, dtype=torch.long)
        self._gen = torch.Generator().manual_seed(seed)

    def _permutation(self, epoch: int) -> torch.Tensor:
        if epoch < self._epoch:  # a resume went back: draw the generator's sequence again
            self._epoch, self._gen = -1, torch.Generator().manual_seed(self.seed)
        while self._epoch < epoch:
            self._perm, self._epoch = torch.randperm(self.n, generator=self._gen), self._epoch + 1
        return self._perm

    def next(self, step: int) -> LabelledBatch:
        per_epoch = self.n // self.batch
        if per_epoch == 0:  # fewer sequences than a batch: a fresh permutation every step
            rows = self._permutation(step + 1)
        else:
            at = (step % per_epoch) * self.batch
            rows = self._permutation(step // per_epoch)[at : at + self.batch]
        s = self.set
        return LabelledBatch(
            s["idx"][rows].long(),
            s["targets"][rows].long(),
            s["topk_ids"][rows].long(),
            s["topk_logits"][rows],
        )

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def train_student(
    cfg: DistillConfig, cache: TeacherCache, run_dir: Path
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Train the student on `student_data` through the loop (resuming), evaluating on the
    teacher's held-out sets; rows go to `run_dir/metrics.jsonl`. Returns (model, facts)."""
    from raremix.distributed import Dist
    from raremix.loop import run
    from raremix.steps.gpt import GPTStep

    s = cfg.student

    def objective(logits: torch.Tensor, batch: LabelledBatch) -> torch.Tensor:
        return distill_loss(logits, batch.targets, batch.topk_ids, batch.topk_logits, s)

    def build(device: torch.device, dist: Dist) -> GPTStep:
        if dist.enabled:
            raise RaremixError(
                "the distillation student trains in one process: run it without torchrun"
            )
        train_set = student_data(cfg, cache)
        torch.manual_seed(cfg.seed)  # the student's init, whatever labelling drew
        stream = StudentStream(train_set, s.batch_size, cfg.seed)
        step = GPTStep(cfg.student_config(), device, dist, cache.data, stream, objective=objective)
        step.recorded, step.config_hash = cfg, cfg.hash()
        step.facts["train_examples"] = stream.n
        return step

    state = run(cfg.student_config(), run_dir, build)
    return state.model, {**state.facts, "steps": state.step}


def distill_models(config: dict[str, Any]) -> list[Trained]:
    """The model one run trains, for the regime header: the teacher (role teacher; cached,
    trained once per seed) or the student."""
    cfg = load(DistillConfig, config, "distillation run")
    return [trained(cfg.teacher_config() if cfg.role == "teacher" else cfg.student_config())]


def run_distill(config: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Study-runner entry point: the teacher's evaluations (role teacher) or one student's.

    The teacher cache is `<study dir>/teachers/`, i.e. next to `run_dir`'s parent `runs/`.
    """
    cfg = load(DistillConfig, config, "distillation run")
    if cfg.teacher.threads:
        torch.set_num_threads(cfg.teacher.threads)
    root = Path(run_dir).parent.parent / TEACHERS_DIR
    cache = TeacherCache(root, cfg.teacher_config(), cfg.top_k, cfg.label_chunk)
    teacher = cache.ensure()
    common = {"role": cfg.role, "teacher_params": teacher["params"], "pool": cfg.student.pool}
    if cfg.role == "teacher":
        from raremix.results.rows import MetricWriter, load_rows

        with MetricWriter(Path(run_dir) / "metrics.jsonl") as writer:
            writer.truncate_after(-1)
            writer.write([{**r, "run": writer.run} for r in load_rows(cache.dir / "metrics.jsonl")])
        keep = ("params", "flops", "d_model", "n_layer", "steps", "train_seconds")
        return {**common, **{k: teacher[k] for k in keep if k in teacher}}
    _, facts = train_student(cfg, cache, Path(run_dir))
    return {**common, **facts, "distill_loss": cfg.student.loss}
