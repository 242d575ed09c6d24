"""`train(cfg, run_dir)`: a raremix GPT run on its task mixture, through the one loop.

The loop (`raremix.loop`) samples, evaluates, checkpoints, resumes and runs callbacks;
the step (`raremix.steps.gpt.GPTStep`) is the GPT's forward, loss and update. The
config builds its own callbacks (probes, adaptive mixing, stop_when_learned).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from raremix.callbacks import Callback
from raremix.config import TrainConfig
from raremix.distributed import Dist
from raremix.loop import SUMMARY as SUMMARY
from raremix.loop import close_run as close_run
from raremix.loop import finished_summary as finished_summary
from raremix.loop import resolve_device as resolve_device
from raremix.loop import run
from raremix.loop import write_run_record as write_run_record
from raremix.optim import make_optimizer as make_optimizer
from raremix.optim import set_lr as set_lr
from raremix.optim import update as update
from raremix.schedules import lr_at as lr_at
from raremix.state import TrainState as TrainState
from raremix.steps.gpt import GPTStep, gpt_step


def train(
    cfg: TrainConfig,
    run_dir: str | Path,
    callbacks: Sequence[Callback] = (),
    resume: bool = True,
) -> TrainState:
    """Train one GPT run in `run_dir`, resuming from its checkpoint when there is one.

    `callbacks` run before the ones the config declares (`cfg.callbacks`)."""

    def build(device: torch.device, dist: Dist) -> GPTStep:
        return gpt_step(cfg, device, dist)

    return run(cfg, run_dir, build, [*callbacks, *cfg.callbacks(train)], resume)


def run_config(config: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Study-runner entry point: train a config dict in `run_dir` (resuming), return run facts."""
    from raremix.config import load_config

    state = train(load_config(data=config), run_dir)
    return {**state.facts, "steps": state.step}
