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

The student's loop is a small one written from the trainer's public pieces (`GPT`,
`make_optimizer`, `lr_at`, `answer_loss`, `evaluate`, `TaskData`), because the trainer
draws its data from task generators and has no hook for externally labelled batches.
Student runs are short and do not checkpoint: a killed one restarts from step 0.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from raremix.config import ModelSpec, OptimConfig, TrainConfig
from raremix.configbase import Config, load
from raremix.errors import RaremixError
from raremix.schedules import budget_problem
from raremix.studies.distillation.teacher import LABEL_KEYS, TeacherCache, true_labelled

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
    from raremix.evaluate import answer_loss

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


def train_student(
    cfg: DistillConfig, cache: TeacherCache, run_dir: Path
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Train the student on `student_data`, evaluating on the teacher's held-out sets; rows
    go to `run_dir/metrics.jsonl` as the trainer writes them. Returns (model, facts)."""
    from raremix.evaluate import evaluate
    from raremix.model import GPT, count_params, flops_per_token
    from raremix.results.rows import MetricWriter
    from raremix.schedules import lr_at
    from raremix.trainer import make_optimizer, set_lr, update

    s, data = cfg.student, cache.data
    train_set = student_data(cfg, cache)
    n = train_set["idx"].shape[0]
    torch.manual_seed(cfg.seed)
    order = torch.Generator().manual_seed(cfg.seed)
    model_cfg = s.model.build(data.tokenizer.size, data.block_size)
    model = GPT(model_cfg)
    optimizer = make_optimizer(model, s.optim)
    eval_sets = data.eval_sets(cfg.teacher.eval_examples)
    device = torch.device("cpu")
    writer = MetricWriter(run_dir / "metrics.jsonl")
    writer.truncate_after(-1)  # no checkpoints: a rerun starts over

    def log_eval(step: int, extra: dict[str, float]) -> None:
        metrics = evaluate(model, eval_sets, data.tokenizer, device)
        rows = [{"step": step, "task": t, "metric": m, "value": v}
                for t, vals in metrics.items() for m, v in vals.items()]  # fmt: skip
        rows += [{"step": step, "task": "", "metric": m, "value": v} for m, v in extra.items()]
        writer.write(rows)

    t0 = time.perf_counter()
    log_eval(0, {})
    perm, at, loss_sum, loss_n = torch.randperm(n, generator=order), 0, 0.0, 0
    model.train()
    for step in range(s.steps):
        lr = lr_at(step, s.steps, s.optim, count_params(model_cfg))
        set_lr(optimizer, lr)
        if at + s.batch_size > n:  # a fresh permutation each epoch; a short tail is skipped
            perm, at = torch.randperm(n, generator=order), 0
        rows = perm[at : at + s.batch_size]
        at += s.batch_size
        targets = train_set["targets"][rows].long()  # (B, T)
        logits = model(train_set["idx"][rows].long())  # (B, T, V)
        ids, t_logits = train_set["topk_ids"][rows].long(), train_set["topk_logits"][rows]
        loss = distill_loss(logits, targets, ids, t_logits, s)
        update(model, optimizer, loss, s.optim.grad_clip)
        loss_sum, loss_n = loss_sum + loss.item(), loss_n + 1
        if (step + 1) % s.eval_every == 0 or step + 1 == s.steps:
            log_eval(step + 1, {"train_loss": loss_sum / loss_n, "lr": lr})
            loss_sum, loss_n = 0.0, 0
    writer.close()
    facts = {
        "params": count_params(model_cfg), "d_model": model_cfg.d_model,
        "flops": flops_per_token(model_cfg, data.block_size) * s.batch_size * data.block_size * s.steps,
        "n_layer": model_cfg.n_layer, "steps": s.steps, "train_examples": n,
        "train_seconds": time.perf_counter() - t0,
    }  # fmt: skip
    return model, facts


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
