"""Curricula that need the model: measure it at the base phase end, then train the run.

`rarity-first`/`easy-to-hard` with `by: loss` rank the tasks by the model's own loss at
the start of the curriculum, and `bwt-guided` by a forgetting matrix measured there. Both
depend on the run itself, so `run_ordering` (a study run function) does two things:

1. trains the run's own config up to the base phase end (with placeholder facts, which
   only affect phases after that step) in `run_dir/measure/`, and measures there:
   `task_losses` (answer loss on each task's training examples) and/or
   `forgetting_matrix` (first-order: F[a, b] = −⟨ĝ_a, g_b⟩, the rise of b's loss per
   unit step down a's gradient, from per-task gradients averaged over several batches);
2. writes the measurements into the curriculum and trains the whole run in `run_dir`.

The schedule before the base phase end does not depend on the curriculum's facts, and
the sampler, initialisation and learning rate are functions of the config's seed and
steps, so the measured model *is* the run's model at the phase start (tested). The base
phase is trained twice; a run is (1 + base_fraction)× the cost of one without `by: loss`.
Measurements are cached in `run_dir/measured.json`, so a resumed run does not redo them.

`prepare` also fills in what the run config already knows: the `random` order's seed
(the run's seed), task kinds and difficulties (the knob's position in its range) from
the config's tasks.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from raremix.callbacks import Callback

if TYPE_CHECKING:
    import torch

    from raremix.config import TrainConfig
    from raremix.data import TaskData
    from raremix.trainer import TrainState

MEASURED_FILE = "measured.json"
LOSS_EXAMPLES = 256
"""Training examples per task behind each measured loss and gradient."""
GRAD_BATCHES = 4
"""Batches the per-task gradients are averaged over (single-batch estimates are noisy)."""


def task_batches(data: TaskData, n: int, seed: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{task: (idx, targets)} for the first `n` training examples of each task (run `seed`)."""
    out = {}
    for name in data.tasks:
        ins, ans = data.examples(name, np.arange(n, dtype=np.int64), seed, "train")
        batch = data.tokenizer.encode([data.prefixes[name]] * n, ins, ans)
        out[name] = (batch.idx, batch.targets)
    return out


def task_losses(
    model: torch.nn.Module, data: TaskData, seed: int, n: int = LOSS_EXAMPLES
) -> dict[str, float]:
    """{task: mean answer loss of `model` on `n` of its training examples}."""
    import torch

    from raremix.evaluate import answer_loss

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = {
            t: float(answer_loss(model(idx.to(device)), tgt.to(device)))
            for t, (idx, tgt) in task_batches(data, n, seed).items()
        }
    model.train(was_training)
    return out


def forgetting_matrix(
    model: torch.nn.Module,
    data: TaskData,
    seed: int,
    n: int = LOSS_EXAMPLES,
    batches: int = GRAD_BATCHES,
) -> dict[str, dict[str, float]]:
    """F[a][b] = −⟨g_a/‖g_a‖, g_b⟩: first-order rise of task b's loss per unit-length step
    down task a's gradient (positive: training a makes b forget)."""
    from raremix.probes.gradients import task_gradients

    device = next(model.parameters()).device
    full = task_batches(data, n, seed)
    grads: dict[str, Any] = {}
    was_training = model.training
    model.eval()
    for k in range(batches):
        part = {
            t: (idx[k::batches].to(device), tgt[k::batches].to(device))
            for t, (idx, tgt) in full.items()
        }
        for t, g in task_gradients(model, part).items():
            grads[t] = g / batches if k == 0 else grads[t] + g / batches
    model.train(was_training)
    names = list(grads)
    return {
        a: {
            b: float(-(grads[a] / grads[a].norm().clamp_min(1e-30)) @ grads[b])
            for b in names
            if b != a
        }
        for a in names
    }


class MeasureAt(Callback):
    """Measure the model at step `at` (task losses and/or the forgetting matrix), then stop."""

    def __init__(self, at: int, losses: bool, forgetting: bool) -> None:
        self.at, self.losses, self.forgetting = at, losses, forgetting
        self.result: dict[str, Any] | None = None

    def _measure(self, state: TrainState) -> None:
        if state.step != self.at or self.result is not None:
            return
        seed = state.cfg.seed
        self.result = {}
        if self.losses:
            self.result["losses"] = task_losses(state.model, state.data, seed)
        if self.forgetting:
            self.result["forgetting"] = forgetting_matrix(state.model, state.data, seed)
        state.stop = True

    def on_start(self, state: TrainState) -> None:
        self._measure(state)  # a base phase of 0 steps, or a resume exactly at `at`

    def on_step_end(self, state: TrainState) -> None:
        self._measure(state)


def base_end(cfg: TrainConfig) -> int:
    """The step the curriculum's base phase ends at (0 without a curriculum)."""
    cur = cfg.mixture.curriculum
    return round(cur.base_fraction * cfg.steps) if cur is not None else 0


def _known_facts(cfg: TrainConfig) -> dict[str, Any]:
    """Curriculum facts the run config already holds: seed, kinds, difficulty."""
    from raremix.mixture.curricula import BY, TWO_STAGES
    from raremix.tasks import make_task

    cur = cfg.mixture.curriculum
    assert cur is not None
    tasks = {n: make_task(s.task or n, s.complexity) for n, s in cfg.tasks.items()}
    out: dict[str, Any] = {}
    if cur.kind == "random" and cur.seed is None:
        out["seed"] = cfg.seed
    if cur.kind in TWO_STAGES and cur.kinds is None:
        out["kinds"] = {n: t.kind for n, t in tasks.items()}
    by = cur.by or BY.get(cur.kind, (None,))[0]
    if by == "complexity" and cur.difficulty is None:
        out["difficulty"] = {
            n: (t.complexity - t.knob.lo) / max(1, t.knob.hi - t.knob.lo) for n, t in tasks.items()
        }
    return out


def prepare(config: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """`config` with its curriculum's facts filled in: known ones, and measured ones (losses,
    forgetting) from a run of the same config stopped at the base phase end."""
    from raremix.config import load_config

    cfg = load_config(data=config)
    cur = cfg.mixture.curriculum
    if cur is None:
        return config
    facts = _known_facts(cfg)
    by = cur.by
    want_losses = by == "loss" and cur.losses is None
    want_forgetting = cur.kind == "bwt-guided" and cur.forgetting is None
    if want_losses or want_forgetting:
        facts |= _measured(config, facts, run_dir, want_losses, want_forgetting)
    out = copy.deepcopy(config)
    out["mixture"]["curriculum"] = {**out["mixture"]["curriculum"], **facts}
    return out


def _measured(
    config: dict[str, Any], facts: dict[str, Any], run_dir: Path, losses: bool, forgetting: bool
) -> dict[str, Any]:
    from raremix.config import load_config
    from raremix.trainer import train

    path = run_dir / MEASURED_FILE
    if path.exists():
        cached: dict[str, Any] = json.loads(path.read_text())
        return cached
    names = [s["name"] for s in config["mixture"]["sources"]]
    placeholder = copy.deepcopy(config)
    cur = placeholder["mixture"]["curriculum"]
    cur.update(facts)
    if losses:
        cur["losses"] = dict.fromkeys(names, 0.0)
    if forgetting:
        cur["forgetting"] = {a: {b: 0.0 for b in names if b != a} for a in names}
    cfg = load_config(data=placeholder)
    probe = MeasureAt(base_end(cfg), losses, forgetting)
    train(cfg, run_dir / "measure", callbacks=[probe])
    assert probe.result is not None, "the measuring run ended before the base phase end"
    tmp = path.with_name(f".{MEASURED_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(probe.result))
    os.replace(tmp, path)
    return probe.result


def run_ordering(config: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Study run function: fill in the curriculum's facts (measuring at the base phase end if
    it ranks by loss or forgetting), then train the run. Facts: the trainer's plus `order`."""
    from raremix.config import load_config
    from raremix.mixture.curricula import curriculum_order, stage_groups, task_facts
    from raremix.trainer import run_config

    full = prepare(config, run_dir)
    facts = run_config(full, run_dir)
    cfg = load_config(data=full)
    cur = cfg.mixture.curriculum
    if cur is not None:
        names = [s.name for s in cfg.mixture.sources]
        tf = task_facts(names, _base_mix(cfg), cur)
        groups = stage_groups(cur, tf, curriculum_order(cur, tf))
        facts["order"] = " | ".join(" ".join(g) for g in groups)
        facts["base_end"] = base_end(cfg)
    return facts


def _base_mix(cfg: TrainConfig) -> np.ndarray:
    """The mixture's weights without its curriculum."""
    from raremix.mixture.resolve import resolve

    plain = cfg.mixture.model_copy(update={"curriculum": None})
    return resolve(plain, batch_size=cfg.batch_size, total_steps=cfg.steps).schedule.vectors[0]
