"""The decomposition study's run function: raremix's trainer, plus the umbrella task's
accuracy on held-out inputs split by what is new in them (`raremix.tasks.tools.novelty`).

Rows are ordinary evaluation rows under the task name `fcall:<category>` (metrics `acc`,
`n` and the set's baselines), so the results store, the final table and the report treat
them like any task.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from raremix.callbacks import Callback
from raremix.data import EVAL_SEED

if TYPE_CHECKING:
    from raremix.trainer import TrainState

UMBRELLA = "fcall"
CATEGORIES = ("seen", "new-tool", "new-composition")
"""Held-out inputs with nothing new; that call a held-out tool; that nest or chain a
held-out verb pair."""


def category_sets(
    task: Any, n: int, seed: int = EVAL_SEED
) -> dict[str, tuple[list[str], list[str]]]:
    """Up to `n` distinct held-out (inputs, answers) of `task` per category."""
    from raremix.tasks.tools import novelty

    ex = task.generate(np.arange(16 * n), seed, "heldout")
    out: dict[str, dict[str, str]] = {c: {} for c in CATEGORIES}
    for x, y, cat in zip(ex.inputs, ex.answers, novelty(ex.inputs), strict=True):
        if cat in out and len(out[cat]) < n:
            out[cat].setdefault(x, y)
    return {c: (list(d), list(d.values())) for c, d in out.items()}


class NoveltyEval(Callback):
    """With each evaluation, greedy-decode the umbrella on each category and verify."""

    def __init__(self, task: str = UMBRELLA) -> None:
        self.task = task
        self.sets: dict[str, tuple[list[str], list[str]]] = {}
        self.evidence: dict[str, dict[str, float]] = {}
        """Per category: n and the set's baselines, written beside each accuracy."""

    def on_start(self, state: TrainState) -> None:
        from raremix.tasks import baselines

        task = state.data.tasks[self.task]
        self.sets = category_sets(task, state.cfg.eval_examples)
        self.evidence = {
            cat: {"n": float(len(ins)), **baselines(task, ins, ans)}
            for cat, (ins, ans) in self.sets.items()
        }

    def on_eval(self, state: TrainState, metrics: dict[str, dict[str, float]]) -> None:
        from raremix.evaluate import greedy_answers

        task = state.data.tasks[self.task]
        model, was_training = state.model, state.model.training
        model.eval()
        rows: dict[str, dict[str, float]] = {}
        for cat, (inputs, _) in self.sets.items():
            prefixes = [state.data.prefixes[self.task]] * len(inputs)
            outs = greedy_answers(
                model, state.data.tokenizer, prefixes, inputs, task.max_answer_len, state.device
            )
            acc = float(task.verify(inputs, outs).mean()) if inputs else float("nan")
            rows[f"{self.task}:{cat}"] = {"acc": acc, **self.evidence[cat]}
        model.train(was_training)
        state.writer.log_metrics(state.step, rows)


def run_decomposition(config: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Study-runner entry point: train one run with the umbrella's novelty evaluation."""
    from raremix.config import load_config
    from raremix.trainer import train

    cfg = load_config(data=config)
    state = train(cfg, run_dir, callbacks=[NoveltyEval()])
    return {**state.facts, "steps": state.step}
