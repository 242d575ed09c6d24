"""Train or fine-tune any Hugging Face causal LM on a raremix mixture: one readable loop.

    state = train_hf(load_hf_config("hf.yaml"), "runs/hf")

The raremix `MixtureSampler` decides which task and which row fills every slot of every
batch; the loss is on response tokens only; every `eval_every` steps each task is scored
on held-out prompts by greedy generation (judged by the task's verifier, or exact match
for tagged data), with the probes if configured. Rows `{run, step, task, metric, value}`
go to `run_dir/metrics.jsonl` as in `raremix train`, the last evaluation also to
`run_dir/lm_eval/results_*.json` (lm-evaluation-harness layout), and the trained model
and tokenizer to `run_dir/model/` (`save_pretrained`). Checkpoints (safetensors weights,
optimiser, RNG and sampler state) resume a killed run; under `torchrun` the batch is
split over ranks as in `raremix.distributed`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pyarrow as pa
import torch

from raremix import distributed
from raremix.callbacks import Callback
from raremix.checkpoint import load_checkpoint, save_checkpoint
from raremix.dirlock import dir_lock
from raremix.distributed import Dist
from raremix.errors import RaremixError
from raremix.hf.config import HFTrainConfig
from raremix.hf.data import EvalItems, Examples, SynthExamples, TaggedExamples, encode
from raremix.hf.evaluate import evaluate_hf
from raremix.hf.lmeval import lmeval_results, write_lmeval
from raremix.mixture import build_sampler
from raremix.outdir import write_file
from raremix.probes import probe, shift_labels, to_rows
from raremix.results.rows import MetricWriter, run_id_of_dir
from raremix.schedules import lr_at, peak_lr
from raremix.trainer import (
    SUMMARY,
    close_run,
    finished_summary,
    make_optimizer,
    resolve_device,
    set_lr,
    update,
    write_run_record,
)

if TYPE_CHECKING:
    from raremix.trainer import TrainState


@dataclass
class HFState:
    """What callbacks see: the same fields as raremix's `TrainState` that loggers read."""

    cfg: HFTrainConfig
    run_dir: Path
    run_id: str
    model: torch.nn.Module
    tokenizer: Any
    optimizer: torch.optim.Optimizer
    sampler: Any
    writer: MetricWriter
    device: torch.device
    dist: Dist = field(default_factory=Dist)
    step: int = 0
    loss: float = float("nan")
    lr: float = 0.0
    last_eval: dict[str, dict[str, float]] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    stop: bool = False
    batch: Any = None  # (input_ids, attention_mask, labels) of this rank's last step


def load_model(path: str, tokenizer: str | None) -> tuple[torch.nn.Module, Any]:
    """AutoModelForCausalLM and AutoTokenizer from local folders (or hub names)."""
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise RaremixError(
            "raremix hf-train needs transformers: pip install 'raremix[hf]'"
        ) from err
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # raremix's own bars say how the run goes
    try:
        tok = AutoTokenizer.from_pretrained(tokenizer or path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    except OSError as err:
        raise RaremixError(
            f"cannot load model or tokenizer '{tokenizer or path}' ({str(err).splitlines()[0][:120]}): give a local folder written by save_pretrained"
        ) from None
    if tok.eos_token_id is None:
        raise RaremixError(
            f"tokenizer '{tokenizer or path}' has no eos token: set one (responses end with it)"
        )
    return model, tok


def make_examples(cfg: HFTrainConfig, table: pa.Table | None = None) -> Examples:
    """The run's examples: `table` or `cfg.data` (tagged rows), else `cfg.tasks` (synthetic)."""
    if table is None and cfg.data is not None:
        from raremix.tagged import read_spec

        table = read_spec(cfg.data).table
    if table is not None:
        return TaggedExamples(table, cfg.heldout)
    return SynthExamples(cfg.tasks, cfg.framing, cfg.seed)


def train_hf(
    cfg: HFTrainConfig,
    run_dir: str | Path,
    *,
    table: pa.Table | None = None,
    callbacks: Sequence[Callback] = (),
    resume: bool = True,
) -> HFState:
    """Train in `run_dir`, resuming from its checkpoint when there is one.

    `table` (columns task, prompt, response) overrides `cfg.data`. Callbacks get an
    `HFState`, which has the fields loggers read (step, loss, lr, run_dir, run_id, cfg).
    The run directory is locked while it trains: a second process on it fails at once.
    """
    run_dir = Path(run_dir)
    # rank 0 alone writes the run directory (torchrun sets RANK before `setup` reads it)
    with dir_lock(run_dir, "run directory", enabled=os.environ.get("RANK", "0") == "0"):
        return _train_hf(cfg, run_dir, table, callbacks, resume)


def _train_hf(
    cfg: HFTrainConfig,
    run_dir: Path,
    table: pa.Table | None,
    callbacks: Sequence[Callback],
    resume: bool,
) -> HFState:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    dist = distributed.setup(device)
    device = dist.device(device)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)

    examples = make_examples(cfg, table)
    sampler = build_sampler(
        cfg.mixture,
        examples.sizes,
        seed=cfg.seed,
        batch_size=cfg.batch_size,
        total_steps=cfg.steps,
        rank=dist.rank,
        world_size=dist.world_size,
    )
    model, tok = load_model(cfg.model, cfg.tokenizer)
    model.to(device)
    optimizer = make_optimizer(model, cfg.optim, fused=device.type == "cuda")
    n_params = sum(p.numel() for p in model.parameters())
    writer = MetricWriter(
        run_dir / "metrics.jsonl" if dist.is_main else distributed.scratch_path(),
        run=run_id_of_dir(run_dir),
    )
    state = HFState(
        cfg,
        run_dir,
        writer.run,
        model,
        tok,
        optimizer,
        sampler,
        writer,
        device,
        dist,
        facts={"params": n_params, "model": cfg.model, "lr_peak": peak_lr(cfg.optim, n_params)},
    )
    expect = {"config_hash": cfg.hash(), "params": n_params}

    ckpt = dist.find_checkpoint(run_dir) if resume else None
    loss_sum, loss_n, tokens = 0.0, 0, 0  # tokens: trained (non-pad) tokens over all ranks
    if ckpt is not None:
        state.step, data_state = load_checkpoint(ckpt, model, optimizer, expect)
        state.last_eval = data_state.get("last_eval", {})
        if data_state.get("finished") and (done := finished_summary(run_dir, state.step)):
            state.facts = done["facts"]  # a rerun of a finished run: its outputs stand
            close_run(writer, dist)
            return state
        sampler.load_state_dict(data_state["sampler"])
        loss_sum, loss_n = data_state["loss_sum"], data_state["loss_n"]
        tokens = int(data_state.get("tokens", 0))
        writer.truncate_after(state.step)  # rows past the checkpoint will be written again
    else:
        writer.truncate_after(-1)
        if dist.is_main:
            import transformers

            write_run_record(run_dir, cfg, state.facts, {"transformers": transformers.__version__})

    items = examples.eval_items(cfg.eval_examples)
    callbacks = [cb for cb in callbacks if dist.is_main or getattr(cb, "all_ranks", False)]
    seen = cast("TrainState", state)  # callbacks read the fields the two states share
    net = dist.wrap(model, device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    model.train()
    for cb in callbacks:
        cb.on_start(seen)
    if state.step == 0 and dist.is_main:
        _evaluate(state, items, callbacks, train_loss=None)

    t0 = time.perf_counter()
    while state.step < cfg.steps and not state.stop:
        state.lr = lr_at(state.step, cfg.steps, cfg.optim, n_params)
        set_lr(optimizer, state.lr)
        try:
            sources, indices = sampler.next_batch()  # this rank's slice of the global batch
        except StopIteration:  # every source ran out under a `stop` policy
            break
        prompts, responses = examples.rows(sampler.names, sources, indices)
        state.batch = encode(tok, prompts, responses, cfg.max_length)
        ids, mask, labels = (t.to(device) for t in state.batch)
        tokens += int(state.batch[1].sum()) * dist.world_size  # ranks' slices are alike in size
        with autocast:
            logits = net(input_ids=ids, attention_mask=mask).logits  # (B, T, V)
            loss, shown = dist.loss(logits, shift_labels(labels))
        update(model, optimizer, loss, cfg.optim.grad_clip)
        state.step += 1
        state.loss = shown.item()
        loss_sum, loss_n = loss_sum + state.loss, loss_n + 1
        for cb in callbacks:
            cb.on_step_end(seen)
        last = state.step == cfg.steps or state.stop or sampler.ended
        if state.step % cfg.eval_every == 0 or last:
            if dist.is_main:
                _evaluate(state, items, callbacks, train_loss=loss_sum / max(1, loss_n))
            loss_sum, loss_n = 0.0, 0
        if (state.step % cfg.checkpoint_every == 0 or last) and dist.is_main:
            save_checkpoint(
                run_dir,
                model,
                optimizer,
                state.step,
                {
                    "sampler": sampler.state_dict(),
                    "loss_sum": loss_sum,
                    "loss_n": loss_n,
                    "tokens": tokens,
                    "last_eval": state.last_eval,
                    # nothing left to train (a callback's `stop` is a pause: resuming goes on)
                    "finished": state.step == cfg.steps or sampler.ended,
                },
                expect,
            )
        state.stop = state.stop or sampler.ended
    state.facts["train_seconds"] = time.perf_counter() - t0
    state.facts["flops"] = 6.0 * n_params * tokens  # the usual 6·N per trained token
    for cb in callbacks:
        cb.on_end(seen)
    if dist.is_main:
        _finish(state, items)
    close_run(writer, dist)
    return state


def _evaluate(
    state: HFState,
    items: dict[str, EvalItems],
    callbacks: Sequence[Callback],
    train_loss: float | None,
) -> None:
    cfg = state.cfg
    metrics = evaluate_hf(
        state.model, state.tokenizer, items, state.device, cfg.max_new_tokens, cfg.max_length
    )
    rows = [
        {"run": state.run_id, "step": state.step, "task": t, "metric": m, "value": v}
        for t, vs in metrics.items()
        for m, v in vs.items()
    ]
    if train_loss is not None:
        rows += [
            {
                "run": state.run_id,
                "step": state.step,
                "task": "",
                "metric": "train_loss",
                "value": train_loss,
            },
            {
                "run": state.run_id,
                "step": state.step,
                "task": "",
                "metric": "lr",
                "value": state.lr,
            },
        ]
    state.writer.write(rows)
    state.last_eval = metrics
    if cfg.probes is not None and (cfg.probes.every is None or state.step % cfg.probes.every == 0):
        _probe(state, items)
    for cb in callbacks:
        cb.on_eval(cast("TrainState", state), metrics)


def _probe(state: HFState, items: dict[str, EvalItems]) -> None:
    """raremix's probes on the first `probes.batch` held-out examples of each task."""
    assert state.cfg.probes is not None
    t0, pc = time.perf_counter(), state.cfg.probes
    batches = {}
    for task, it in items.items():
        ids, _, labels = encode(
            state.tokenizer, it.prompts[: pc.batch], it.responses[: pc.batch], state.cfg.max_length
        )
        batches[task] = (ids.to(state.device), shift_labels(labels).to(state.device))
    results = probe(
        state.model,
        batches,
        probes=pc.probes,
        rare=state.cfg.rare,
        optimizer=state.optimizer,
        lr=lr_at(state.step, state.cfg.steps, state.cfg.optim, state.facts["params"]),
        clip=state.cfg.optim.grad_clip,
        layer=pc.layer,
    )
    state.writer.write(to_rows(results, state.step, state.run_id))
    state.facts["probe_seconds"] = state.facts.get("probe_seconds", 0.0) + time.perf_counter() - t0


def _finish(state: HFState, items: dict[str, EvalItems]) -> None:
    """The trained model, the lm-eval results and the summary, written by rank 0."""
    out = state.run_dir / "model"
    state.model.save_pretrained(out)  # type: ignore[operator]
    state.tokenizer.save_pretrained(out)
    doc = lmeval_results(
        state.last_eval,
        {t: len(it.prompts) for t, it in items.items()},
        model="hf",
        model_args=f"pretrained={state.cfg.model}",
        judge={t: it.scored_by for t, it in items.items()},
        config={
            "step": state.step,
            "config_hash": state.cfg.hash(),
            "random_seed": state.cfg.seed,
            "device": str(state.device),
            "batch_size": state.cfg.batch_size,
        },
    )
    state.facts["lm_eval"] = str(write_lmeval(state.run_dir, doc))
    summary = {"step": state.step, "facts": state.facts, "final": state.last_eval}
    write_file(state.run_dir / SUMMARY, json.dumps(summary, indent=1), "run summary")


def run_config(config: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Study-runner entry point (`run_fn: raremix.hf.train:run_config`): train an HF config
    dict in `run_dir` (resuming) and return the run's facts. Relative paths are from the cwd."""
    from raremix.hf.config import load_hf_config

    state = train_hf(load_hf_config(data=config), run_dir)
    return {**state.facts, "steps": state.step}
