"""Probes in a Hugging Face `transformers.Trainer`: `RaremixProbeCallback`.

    trainer = Trainer(model, args, train_dataset=ds)           # report_to=["tensorboard"], …
    add_probe_callback(trainer, batches, every=100, rare=["compare"])

Rows `{run, step, task, metric, value}` go to `callback.rows`, to a `MetricWriter` if one
is given, and through `trainer.log` to the Trainer's `state.log_history` (saved with its
checkpoints) and to every `report_to` tracker (TensorBoard, W&B, MLflow …) as
`probe/<name>/<task>`. A callback made without its trainer
(`Trainer(..., callbacks=[RaremixProbeCallback(...)])`) cannot reach the trackers: it
appends to `log_history` only. Needs the `hf` extra (`pip install raremix[hf]`). Single process or DDP
(probes run on the main process); not for sharded parameters (FSDP, ZeRO-3).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from raremix.errors import RaremixError
from raremix.probes import DEFAULT_PROBES, probe, to_rows
from raremix.probes.capture import Forward, default_forward
from raremix.results.rows import MetricWriter

try:
    from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
except ImportError as err:  # pragma: no cover - depends on the environment
    raise RaremixError(
        "raremix.callbacks.hf needs transformers: pip install 'raremix[hf]'"
    ) from err


class RaremixProbeCallback(TrainerCallback):
    """Runs `raremix.probes.probe` every `every` optimiser steps (and at step 0 and the last).

    `batches_by_task` is {task: (idx, targets)} in raremix's convention (targets shifted:
    use `raremix.probes.shift_labels` on Hugging Face labels). The first-order effect
    uses the Trainer's optimizer and its current learning rate.
    """

    def __init__(
        self,
        batches_by_task: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
        every: int = 100,
        *,
        probes: Sequence[str] = DEFAULT_PROBES,
        rare: Sequence[str] = (),
        writer: MetricWriter | None = None,
        run: str = "",
        forward: Forward = default_forward,
        layer: int = -1,
        trainer: Any = None,
    ) -> None:
        if every < 1:
            raise RaremixError(f"RaremixProbeCallback: every must be ≥ 1, got {every}")
        self.trainer = trainer
        """The Trainer whose `log` the probe metrics go through (to its report_to trackers)."""
        self.batches = dict(batches_by_task)
        self.every, self.probes, self.rare = every, list(probes), list(rare)
        self.writer, self.run, self.forward, self.layer = writer, run, forward, layer
        self.rows: list[dict[str, Any]] = []

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if state.global_step == 0:
            self._probe(args, state, kwargs)

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if state.global_step % self.every == 0 or state.global_step == state.max_steps:
            self._probe(args, state, kwargs)

    def _probe(self, args: TrainingArguments, state: TrainerState, kwargs: dict[str, Any]) -> None:
        model = kwargs.get("model")
        if model is None or not state.is_world_process_zero:
            return
        device = next(model.parameters()).device
        batches = {t: (i.to(device), y.to(device)) for t, (i, y) in self.batches.items()}
        optimizer = kwargs.get("optimizer")
        # accelerate wraps the optimiser; probes need the torch one underneath
        optimizer = getattr(optimizer, "optimizer", optimizer)
        results = probe(
            model,
            batches,
            probes=self.probes,
            rare=self.rare,
            optimizer=optimizer if isinstance(optimizer, torch.optim.Optimizer) else None,
            clip=float(getattr(args, "max_grad_norm", 0.0) or 0.0),
            forward=self.forward,
            layer=self.layer,
        )
        rows = to_rows(results, state.global_step, self.run)
        self.rows.extend(rows)
        if self.writer is not None:
            self.writer.write(rows)
        logged = {
            f"{metric}/{task}".rstrip("/"): v
            for metric, vs in results.items()
            for task, v in vs.items()
        }
        if self.trainer is not None:  # log_history and the report_to trackers' on_log
            self.trainer.log(logged)
        else:
            state.log_history.append({"step": state.global_step, **logged})


def add_probe_callback(
    trainer: Any, batches_by_task: Mapping[str, tuple[torch.Tensor, torch.Tensor]], **kwargs: Any
) -> RaremixProbeCallback:
    """Add a `RaremixProbeCallback` (same arguments) to `trainer`, bound to it so its
    metrics reach the trainer's `report_to` trackers; returns the callback."""
    callback = RaremixProbeCallback(batches_by_task, trainer=trainer, **kwargs)
    trainer.add_callback(callback)
    return callback
