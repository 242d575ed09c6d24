"""Train or fine-tune any Hugging Face causal LM on a raremix mixture, through the one loop.

    state = train_hf(load_hf_config("hf.yaml"), "runs/hf")

The raremix `MixtureSampler` decides which task and which row fills every slot of every
batch; the loss is on response tokens only; every `eval_every` steps each task is scored
on held-out prompts by greedy generation (judged by the task's verifier, or exact match
for tagged data). The loop is raremix's own (`raremix.loop`), the step `HFStep`, so an HF
run has what a GPT run has: probes, adaptive mixing, bit-exact resume, DDP under
`torchrun`, callbacks. Rows go to `run_dir/metrics.jsonl`, the last evaluation also to
`run_dir/lm_eval/results_*.json` (lm-evaluation-harness layout), and the trained model
and tokenizer to `run_dir/model/` (`save_pretrained`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import torch

from raremix.callbacks import Callback
from raremix.distributed import Dist
from raremix.hf.config import HFTrainConfig
from raremix.hf.step import HFStep
from raremix.hf.step import load_model as load_model
from raremix.hf.step import make_examples as make_examples
from raremix.loop import run
from raremix.state import TrainState

HFState = TrainState
"""The state of an HF run: the one `TrainState` (kept under this name for callers)."""


def train_hf(
    cfg: HFTrainConfig,
    run_dir: str | Path,
    *,
    table: pa.Table | None = None,
    callbacks: Sequence[Callback] = (),
    resume: bool = True,
) -> TrainState:
    """Train in `run_dir`, resuming from its checkpoint when there is one.

    `table` (columns task, prompt, response) overrides `cfg.data`. `callbacks` run before
    the ones the config declares (probes, adaptive). The run directory is locked while it
    trains: a second process on it fails at once.
    """

    def build(device: torch.device, dist: Dist) -> HFStep:
        return HFStep(cfg, device, dist, table)

    def runner(ref_cfg: Any, ref_dir: Path) -> TrainState:  # DoReMi's reference, same rows
        return train_hf(ref_cfg, ref_dir, table=table)

    return run(cfg, run_dir, build, [*callbacks, *cfg.callbacks(runner)], resume)


def run_config(config: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Study-runner entry point (`run_fn: raremix.hf.train:run_config`): train an HF config
    dict in `run_dir` (resuming) and return the run's facts. Relative paths are from the cwd."""
    from raremix.hf.config import load_hf_config

    state = train_hf(load_hf_config(data=config), run_dir)
    return {**state.facts, "steps": state.step}
