"""The instructions study's run function: raremix's trainer, plus what each task's answers
look like when the model writes them itself.

Tasks listed under `tasks` but absent from the mixture are never trained on: they are
*held-out tasks*, evaluated (on held-out inputs) under the same framing as the rest, so
their instruction, wrong instruction or output-space text is met only at test time. With
every evaluation this callback greedy-decodes each task's evaluation set and writes
`format` (share of answers in the task's output space) and, once at step 0,
`random_acc`: the accuracy of answering with a random element of that output space.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from raremix.callbacks import Callback

if TYPE_CHECKING:
    from raremix.data import EvalSet
    from raremix.trainer import TrainState

BASELINE_DRAWS = 64
"""Random answers drawn per evaluation input for the output-space baseline."""


class FormatEval(Callback):
    """Format correctness of greedy answers per task, and the random-output-space baseline."""

    def __init__(self) -> None:
        self.sets: dict[str, EvalSet] = {}

    def on_start(self, state: TrainState) -> None:
        from raremix.studies.output_space import random_baseline

        self.sets = state.data.eval_sets(state.cfg.eval_examples)  # the trainer's own sets
        if state.step == 0:  # rows up to a checkpoint survive a resume
            baseline = {
                name: {"random_acc": random_baseline(es.task, es.inputs, BASELINE_DRAWS)}
                for name, es in self.sets.items()
            }
            state.writer.log_metrics(0, baseline)

    def on_eval(self, state: TrainState, metrics: dict[str, dict[str, float]]) -> None:
        from raremix.evaluate import greedy_answers
        from raremix.studies.output_space import in_output_space

        model, was_training = state.model, state.model.training
        model.eval()
        rows: dict[str, dict[str, float]] = {}
        for name, es in self.sets.items():
            outs = greedy_answers(
                model,
                state.data.tokenizer,
                es.prefixes,
                es.inputs,
                es.task.max_answer_len,
                state.device,
            )
            rows[name] = {"format": float(in_output_space(es.task, es.inputs, outs).mean())}
        model.train(was_training)
        state.writer.log_metrics(state.step, rows)


def run_instructions(config: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Study-runner entry point: train one run, scoring output formats at each evaluation."""
    from raremix.config import load_config
    from raremix.trainer import train

    cfg = load_config(data=config)
    state = train(cfg, run_dir, callbacks=[FormatEval()])
    trained = {s.name for s in cfg.mixture.sources}
    return {
        **state.facts,
        "steps": state.step,
        "heldout_tasks": ",".join(t for t in cfg.tasks if t not in trained),
    }
