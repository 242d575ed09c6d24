"""`GPTStep`: raremix's GPT on its synthetic tasks, as a step module of the one loop.

A batch is a `TokenBatch` (idx, targets) made by `TaskData` from the sampler's choices;
the loss is the answer loss (normalised over the global batch under DDP); evaluation is
`raremix.evaluate.evaluate` on each task's fixed held-out set.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from raremix.checkpoint import CKPT, load_weights
from raremix.config import TrainConfig, load_config
from raremix.data import BatchStream, TaskData, to_device
from raremix.distributed import Dist
from raremix.errors import RaremixError
from raremix.evaluate import evaluate
from raremix.loss import Batches
from raremix.mixture import build_sampler
from raremix.model import GPT, count_params, flops_per_token
from raremix.optim import make_optimizer, update
from raremix.schedules import eval_steps, peak_lr
from raremix.steps import Stream

Objective = Callable[[torch.Tensor, Any], torch.Tensor]
"""(logits (B, T, V), batch) → the loss to backpropagate (one process only)."""


class GPTStep:
    """The GPT of `cfg.model` trained on `stream`'s batches, evaluated on `data`'s held-out sets.

    `objective` replaces the answer loss (the distillation student's); by default the
    loss is `dist.loss`, the answer loss over the global batch."""

    def __init__(
        self,
        cfg: TrainConfig,
        device: torch.device,
        dist: Dist,
        data: TaskData,
        stream: Stream,
        sampler: Any = None,
        objective: Objective | None = None,
    ) -> None:
        self.cfg, self.device, self.dist = cfg, device, dist
        self.data, self.stream, self.sampler, self.objective = data, stream, sampler, objective
        self.model_cfg = cfg.model.build(data.tokenizer.size, data.block_size)
        self.model: torch.nn.Module = GPT(self.model_cfg).to(device)
        self.optimizer = make_optimizer(self.model, cfg.optim, fused=device.type == "cuda")
        params = count_params(self.model_cfg)
        per_step = (
            flops_per_token(self.model_cfg, data.block_size) * cfg.batch_size * data.block_size
        )
        self.facts: dict[str, Any] = {
            "params": params,
            "flops": per_step * cfg.steps,
            "flops_per_step": per_step,
            "lr_peak": peak_lr(cfg.optim, params),
            "d_model": self.model_cfg.d_model,
            "n_layer": self.model_cfg.n_layer,
        }
        self.recorded: Any = cfg  # the config the run record writes
        self.config_hash = cfg.hash()  # what a checkpoint must carry
        self.eval_sets = data.eval_sets(cfg.eval_examples)
        self.autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")

    def expect(self) -> dict[str, Any]:
        return {"model": self.model_cfg.model_dump(), "config_hash": self.config_hash}

    def record(self) -> tuple[Any, dict[str, str]]:
        return self.recorded, {}

    def eval_steps(self) -> list[int]:
        c = self.cfg
        return eval_steps(c.steps, c.eval_every, c.eval_schedule, c.eval_per_decade)

    def train_step(self, net: torch.nn.Module, batch: Any) -> torch.Tensor:
        idx, targets = to_device(batch, self.device)  # (B, T) each
        with self.autocast:
            logits = net(idx)  # (B, T, V)
            if self.objective is None:
                loss, shown = self.dist.loss(logits, targets)
            else:
                loss = self.objective(logits, batch)
                shown = loss.detach()
        update(self.model, self.optimizer, loss, self.cfg.optim.grad_clip)
        return shown

    def evaluate(self) -> dict[str, dict[str, float]]:
        return evaluate(self.model, self.eval_sets, self.data.tokenizer, self.device)

    def heldout_batches(self, n: int) -> Batches:
        return {
            t: (s.batch.idx.to(self.device), s.batch.targets.to(self.device))
            for t, s in self.data.eval_sets(n).items()
        }

    def train_batches(self, n: int, seed: int, rank: int = 0, world: int = 1) -> Batches:
        out: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        data = self.data
        for name in data.names:
            ins, ans = data.examples(name, np.arange(n, dtype=np.int64), seed, "train")
            ins, ans = ins[rank::world], ans[rank::world]
            batch = data.tokenizer.encode([data.prefixes[name]] * len(ins), ins, ans)
            out[name] = (batch.idx.to(self.device), batch.targets.to(self.device))
        return out

    def load_trained(self, run_dir: Path) -> torch.nn.Module:
        return load_gpt(run_dir, self.device)

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def finish(self, state: Any) -> None:
        pass


def gpt_step(cfg: TrainConfig, device: torch.device, dist: Dist) -> GPTStep:
    """The step module of a `raremix train` run: its mixture sampled into token batches."""
    sampler = build_sampler(
        cfg.mixture,
        seed=cfg.seed,
        batch_size=cfg.batch_size,
        total_steps=cfg.steps,
        rank=dist.rank,
        world_size=dist.world_size,
    )
    data = TaskData(cfg, list(sampler.names))
    return GPTStep(cfg, device, dist, data, BatchStream(sampler, data, cfg.steps), sampler)


def load_gpt(run_dir: Path, device: torch.device) -> torch.nn.Module:
    """The model of a finished raremix run (its config.yaml and checkpoint/)."""
    if not (run_dir / "config.yaml").is_file() or not (run_dir / CKPT).is_dir():
        raise RaremixError(
            f"adaptive.reference {run_dir}: no config.yaml and checkpoint/ there: give a finished run directory"
        )
    cfg = load_config(run_dir / "config.yaml")
    data = TaskData(cfg, list(cfg.tasks))
    model = GPT(cfg.model.build(data.tokenizer.size, data.block_size)).to(device)
    load_weights(run_dir / CKPT, model)  # checksums verified
    return model
