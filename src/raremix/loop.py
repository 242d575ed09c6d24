"""The one training loop: sampling cadence, evaluations, checkpoints, callbacks, DDP, resume.

`run(cfg, run_dir, build)` trains whatever step module `build(device, dist)` returns
(`raremix.steps`): raremix's GPT, a Hugging Face causal LM, the distillation student.
It evaluates at the module's cadence, appends metric rows to `run_dir/metrics.jsonl`,
and checkpoints so that a killed run resumes to bit-identical results on CPU. What a
batch is, the loss and the evaluation are the module's; behaviour beyond them is added
by callbacks, which see a `TrainState` and nothing of this module.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from raremix import __version__, distributed
from raremix.callbacks import Callback
from raremix.checkpoint import load_checkpoint, save_checkpoint
from raremix.dirlock import dir_lock
from raremix.distributed import Dist
from raremix.errors import RaremixError
from raremix.optim import set_lr
from raremix.outdir import check_output_dir, make_output_dir, write_file
from raremix.results.rows import METRICS_FILE, MetricWriter, run_id_of_dir
from raremix.state import TrainState
from raremix.steps import TrainModule

SUMMARY = "summary.json"
"""Written when a run ends: {step, facts, final}, `final` the last evaluation's metrics."""
Build = Callable[[torch.device, Dist], TrainModule]
"""Makes the run's step module on this process's device (after the seeds are set)."""


def run(
    cfg: Any,
    run_dir: str | Path,
    build: Build,
    callbacks: Sequence[Callback] = (),
    resume: bool = True,
) -> TrainState:
    """Train `build`'s module in `run_dir`, resuming from its checkpoint when there is one.

    `cfg` is the run's config (steps, seed, optim, checkpoint_every, threads, device).
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

        return _run(cfg, run_dir, build, callbacks, resume, lock)


def _run(
    cfg: Any,
    run_dir: Path,
    build: Build,
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
    module = build(device, dist)
    make_output_dir(run_dir, "run directory")
    lock()  # from here on this process alone writes run_dir
    path = run_dir / METRICS_FILE if dist.is_main else distributed.scratch_path()
    writer = MetricWriter(path, run=run_id_of_dir(run_dir))  # one id: the directory's name
    state = TrainState(cfg, run_dir, module, writer, dist, facts=dict(module.facts))
    stream, model, optimizer = module.stream, module.model, module.optimizer
    expect = module.expect()

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
        module.load_state_dict(data_state.get("module", {}))
        loss_sum, loss_n = data_state["loss_sum"], data_state["loss_n"]
        writer.truncate_after(state.step)  # rows past the checkpoint come again, identically
    else:
        writer.truncate_after(-1)
        if dist.is_main:
            recorded, versions = module.record()
            write_run_record(run_dir, recorded, state.facts, versions)

    # rank 0 alone evaluates, writes and reports; a callback may opt in with `all_ranks = True`
    callbacks = [cb for cb in callbacks if dist.is_main or getattr(cb, "all_ranks", False)]
    net = dist.wrap(model, device)  # DistributedDataParallel under torchrun, else the model
    eval_at = set(module.eval_steps())
    model.train()
    for cb in callbacks:
        cb.on_start(state)
    if state.step == 0 and dist.is_main:
        _evaluate(state, callbacks, train_loss=None)

    t0 = time.perf_counter()
    while state.step < cfg.steps and not state.stop:
        state.lr = state.lr_at(state.step)
        set_lr(optimizer, state.lr)
        batch = stream.next(state.step)
        if batch is None:  # the stream had ended with the previous batch
            break
        state.batch = batch
        for cb in callbacks:
            cb.on_step_begin(state)
        shown = module.train_step(net, batch)
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
                _evaluate(state, callbacks, train_loss=loss_sum / max(1, loss_n))
            loss_sum, loss_n = 0.0, 0
        last = last or state.stop  # an evaluation may have ended the run (stop_when_learned)
        if (state.step % cfg.checkpoint_every == 0 or last) and dist.is_main:
            # finished: nothing is left to train (a callback's `stop` is a pause: resuming goes on)
            finished = state.step == cfg.steps or stream.exhausted
            data_state = {
                "stream": stream.state_dict(),
                "loss_sum": loss_sum,
                "loss_n": loss_n,
                "last_eval": state.last_eval,
                "finished": finished,
            }
            if own := module.state_dict():
                data_state["module"] = own
            save_checkpoint(run_dir, model, optimizer, state.step, data_state, expect)
    state.facts["train_seconds"] = time.perf_counter() - t0
    module.finish(state)
    for cb in callbacks:
        cb.on_end(state)
    if dist.is_main:
        summary = {"step": state.step, "facts": state.facts, "final": state.last_eval}
        write_file(run_dir / SUMMARY, json.dumps(summary, indent=1), "run summary")
    close_run(writer, dist)
    return state


def _evaluate(state: TrainState, callbacks: Sequence[Callback], train_loss: float | None) -> None:
    metrics = state.module.evaluate()
    run_level = {} if train_loss is None else {"": {"train_loss": train_loss, "lr": state.lr}}
    state.writer.log_metrics(state.step, {**metrics, **run_level})
    state.last_eval = metrics
    for cb in callbacks:
        cb.on_eval(state, metrics)


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
