"""The training loop: one readable function, extended by callbacks.

`train(cfg, run_dir)` trains a GPT on the run's task mixture, evaluates every task on
its held-out set at a declared cadence, appends metric rows to `run_dir/metrics.jsonl`,
and checkpoints so that a killed run resumes to bit-identical results on CPU.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from raremix import __version__, distributed
from raremix.callbacks import Callback
from raremix.checkpoint import load_checkpoint, save_checkpoint
from raremix.config import OptimConfig, TrainConfig
from raremix.data import BatchStream, TaskData, to_device
from raremix.dirlock import dir_lock
from raremix.distributed import Dist
from raremix.errors import RaremixError
from raremix.evaluate import evaluate
from raremix.mixture import build_sampler
from raremix.model import GPT, count_params, flops_per_token
from raremix.outdir import check_output_dir, make_output_dir, write_file
from raremix.results.rows import MetricWriter, run_id_of_dir
from raremix.schedules import eval_steps, lr_at, peak_lr
from raremix.tokens import TokenBatch

SUMMARY = "summary.json"
"""Written when a run ends: {step, facts, final}, `final` the last evaluation's metrics."""


@dataclass
class TrainState:
    """What callbacks see: the live objects of the run and its progress."""

    cfg: TrainConfig
    run_dir: Path
    run_id: str
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    data: TaskData
    sampler: Any
    writer: MetricWriter
    device: torch.device
    step: int = 0
    loss: float = float("nan")
    lr: float = 0.0
    last_eval: dict[str, dict[str, float]] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    stop: bool = False  # a callback may set it to end the run early (after a checkpoint)
    dist: Dist = field(default_factory=Dist)  # rank and world size under torchrun
    batch: TokenBatch | None = None  # this rank's batch of the step just taken


def make_optimizer(
    model: torch.nn.Module, o: OptimConfig, fused: bool = False
) -> torch.optim.Optimizer:
    """AdamW with weight decay on matrices only (not biases, norms, embeddings)."""
    decay: list[torch.nn.Parameter] = []
    rest: list[torch.nn.Parameter] = []
    for name, p in model.named_parameters():
        (decay if p.dim() >= 2 and not name.startswith(("tok", "pos")) else rest).append(p)
    groups = [
        {"params": decay, "weight_decay": o.weight_decay},
        {"params": rest, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=o.lr, betas=(o.beta1, o.beta2), fused=fused or None)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Give every parameter group the learning rate `lr`."""
    for group in optimizer.param_groups:
        group["lr"] = lr


def update(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, loss: torch.Tensor, grad_clip: float
) -> None:
    """One optimiser step on `loss`: fresh gradients, clipped to `grad_clip` (0: no clip)."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()


def resolve_device(choice: str) -> torch.device:
    """The device `choice` (auto, cpu, cuda) names here; asking for absent CUDA is bad input."""
    if choice == "cuda" and not torch.cuda.is_available():
        build = "has no GPU in reach" if torch.version.cuda else "is a CPU-only build"
        raise RaremixError(
            f"device: cuda, but this PyTorch ({torch.__version__}) {build}: "
            "use device: auto or device: cpu"
        )
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def train(
    cfg: TrainConfig,
    run_dir: str | Path,
    callbacks: Sequence[Callback] = (),
    resume: bool = True,
) -> TrainState:
    """Train one run in `run_dir`, resuming from its checkpoint when there is one.

    The run directory is locked while it trains: a second process on it fails at once.
    Everything that can refuse the config (device, data, model shape) runs before
    `run_dir` is created, so a refused run leaves no empty directory behind.
    """
    run_dir = check_output_dir(run_dir, "run directory")
    with contextlib.ExitStack() as held:
        # rank 0 alone writes the run directory (torchrun sets RANK before `setup` reads it)
        rank0 = os.environ.get("RANK", "0") == "0"

        def lock() -> None:
            held.enter_context(dir_lock(run_dir, "run directory", enabled=rank0))

        return _train(cfg, run_dir, callbacks, resume, lock)


def _train(
    cfg: TrainConfig,
    run_dir: Path,
    callbacks: Sequence[Callback],
    resume: bool,
    lock: Callable[[], None],
) -> TrainState:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    dist = distributed.setup(device)  # torchrun: join the process group; else one process
    device = dist.device(device)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)

    sampler = build_sampler(
        cfg.mixture, seed=cfg.seed, batch_size=cfg.batch_size, total_steps=cfg.steps,
        rank=dist.rank, world_size=dist.world_size,
    )  # fmt: skip
    data = TaskData(cfg, list(sampler.names))
    stream = BatchStream(sampler, data, cfg.steps)
    model_cfg = cfg.model.build(data.tokenizer.size, data.block_size)
    model = GPT(model_cfg).to(device)
    optimizer = make_optimizer(model, cfg.optim, fused=device.type == "cuda")
    make_output_dir(run_dir, "run directory")
    lock()  # from here on this process alone writes run_dir
    params = count_params(model_cfg)
    flops_per_step = flops_per_token(model_cfg, data.block_size) * cfg.batch_size * data.block_size
    facts = {
        "params": params,
        "flops": flops_per_step * cfg.steps,
        "flops_per_step": flops_per_step,
        "lr_peak": peak_lr(cfg.optim, params),
        "d_model": model_cfg.d_model,
        "n_layer": model_cfg.n_layer,
    }
    writer = MetricWriter(run_dir / "metrics.jsonl" if dist.is_main else distributed.scratch_path(),
                          run=run_id_of_dir(run_dir))  # fmt: skip
    state = TrainState(cfg, run_dir, writer.run, model, optimizer, data, sampler, writer, device,
                       facts=facts, dist=dist)  # fmt: skip
    expect = {"model": model_cfg.model_dump(), "config_hash": cfg.hash()}

    ckpt = dist.find_checkpoint(run_dir) if resume else None
    loss_sum, loss_n = 0.0, 0
    if ckpt is not None:
        state.step, data_state = load_checkpoint(ckpt, model, optimizer, expect)
        state.last_eval = data_state.get("last_eval", {})
        if data_state.get("finished") and (done := finished_summary(run_dir, state.step)):
            state.facts = done["facts"]  # a rerun of a finished run: its summary stands
            close_run(writer, dist)
            return state
        stream.load_state_dict(data_state["stream"])
        loss_sum, loss_n = data_state["loss_sum"], data_state["loss_n"]
        writer.truncate_after(
            state.step
        )  # rows past the checkpoint will be written again, identically
    else:
        writer.truncate_after(-1)
        if dist.is_main:
            write_run_record(run_dir, cfg, facts)

    if cfg.probes is not None:
        from raremix.callbacks.probes import ProbeCallback

        callbacks = [*callbacks, ProbeCallback(cfg.probes)]
    if cfg.adaptive is not None:
        from raremix.callbacks.adaptive import AdaptiveCallback

        callbacks = [*callbacks, AdaptiveCallback(cfg.adaptive, stream)]
    if cfg.stop_when_learned is not None:
        from raremix.callbacks.stop import StopWhenLearnedCallback

        if dist.world_size > 1:  # it decides on rank 0's evaluations; the others would wait
            raise RaremixError(
                "stop_when_learned runs in one process only: remove it or run without torchrun"
            )
        callbacks = [*callbacks, StopWhenLearnedCallback(cfg.stop_when_learned)]
    if cfg.collapse_alarm is not None:
        from raremix.callbacks.collapse import CollapseAlarmCallback

        callbacks = [*callbacks, CollapseAlarmCallback(cfg.collapse_alarm, stream)]
    # rank 0 alone evaluates, writes and reports; a callback may opt in with `all_ranks = True`
    callbacks = [cb for cb in callbacks if dist.is_main or getattr(cb, "all_ranks", False)]
    net = dist.wrap(model, device)  # DistributedDataParallel under torchrun, else the model
    eval_sets = data.eval_sets(cfg.eval_examples)
    eval_at = set(eval_steps(cfg.steps, cfg.eval_every, cfg.eval_schedule, cfg.eval_per_decade))
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    model.train()
    for cb in callbacks:
        cb.on_start(state)
    if state.step == 0 and dist.is_main:
        _evaluate(state, eval_sets, callbacks, train_loss=None)

    t0 = time.perf_counter()
    while state.step < cfg.steps and not state.stop:
        state.lr = lr_at(state.step, cfg.steps, cfg.optim, params)
        set_lr(optimizer, state.lr)
        batch = stream.next(state.step)
        if batch is None:  # the stream had ended exactly at a chunk boundary
            break
        idx, targets = to_device(batch, device)
        state.batch = batch
        with autocast:
            loss, shown = dist.loss(net(idx), targets)  # one process: answer_loss, as before
        update(model, optimizer, loss, cfg.optim.grad_clip)
        state.step += 1
        state.loss = shown.item()
        loss_sum, loss_n = loss_sum + state.loss, loss_n + 1
        for cb in callbacks:
            cb.on_step_end(state)
        # every source drawn through under a `stop` policy ends the run early, cleanly
        state.stop = state.stop or stream.exhausted
        last = state.step == cfg.steps or state.stop
        if state.step in eval_at or last:
            if dist.is_main:
                _evaluate(state, eval_sets, callbacks, train_loss=loss_sum / max(1, loss_n))
            loss_sum, loss_n = 0.0, 0
        last = last or state.stop  # an evaluation may have ended the run (stop_when_learned)
        if (state.step % cfg.checkpoint_every == 0 or last) and dist.is_main:
            # finished: nothing is left to train (a callback's `stop` is a pause: resuming goes on)
            finished = state.step == cfg.steps or stream.exhausted
            save_checkpoint(run_dir, model, optimizer, state.step,
                            {"stream": stream.state_dict(), "loss_sum": loss_sum, "loss_n": loss_n,
                             "last_eval": state.last_eval, "finished": finished}, expect)  # fmt: skip
    state.facts["train_seconds"] = time.perf_counter() - t0
    for cb in callbacks:
        cb.on_end(state)
    if dist.is_main:
        summary = {"step": state.step, "facts": state.facts, "final": state.last_eval}
        write_file(run_dir / SUMMARY, json.dumps(summary, indent=1), "run summary")
    close_run(writer, dist)
    return state


def finished_summary(run_dir: Path, step: int) -> dict[str, Any] | None:
    """The run's `summary.json` if it is intact and was written at `step`, else None."""
    try:
        summary = json.loads((run_dir / SUMMARY).read_text())
    except (OSError, ValueError):
        return None
    fields_ok = isinstance(summary, dict) and isinstance(summary.get("facts"), dict)
    return summary if fields_ok and summary.get("step") == step else None


def close_run(writer: MetricWriter, dist: Dist) -> None:
    """Close the metrics file (other ranks' scratch one is deleted) and leave the group."""
    writer.close()
    if not dist.is_main:
        distributed.remove_scratch(writer.path)
    distributed.shutdown(dist)


def _evaluate(
    state: TrainState, sets: dict, callbacks: Sequence[Callback], train_loss: float | None
) -> None:
    metrics = evaluate(state.model, sets, state.data.tokenizer, state.device)
    rows = [
        {"run": state.run_id, "step": state.step, "task": task, "metric": metric, "value": value}
        for task, values in metrics.items()
        for metric, value in values.items()
    ]
    if train_loss is not None:
        rows.append(
            {
                "run": state.run_id,
                "step": state.step,
                "task": "",
                "metric": "train_loss",
                "value": train_loss,
            }
        )
        rows.append(
            {"run": state.run_id, "step": state.step, "task": "", "metric": "lr", "value": state.lr}
        )
    state.writer.write(rows)
    state.last_eval = metrics
    for cb in callbacks:
        cb.on_eval(state, metrics)


def write_run_record(
    run_dir: Path, cfg: Any, facts: dict[str, Any], versions: dict[str, str] | None = None
) -> None:
    """config.yaml and meta.json: what ran, with which versions, under which hash.

    `cfg` is any raremix run config (a pydantic model with `seed` and `hash()`);
    `versions` adds library versions beyond torch, NumPy and Python."""
    config = yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
    write_file(run_dir / "config.yaml", config, "run config")
    meta = {
        "config_hash": cfg.hash(),
        "seed": cfg.seed,
        "raremix": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        **(versions or {}),
        **facts,
    }
    write_file(run_dir / "meta.json", json.dumps(meta, indent=1), "run record")


def run_config(config: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Study-runner entry point: train a config dict in `run_dir` (resuming), return run facts."""
    from raremix.config import load_config

    state = train(load_config(data=config), run_dir)
    return {**state.facts, "steps": state.step}
