"""Adaptive mixing during a raremix run: measure per-task signals, update the weights, redraw.

Every `every` steps the callback measures what its rule needs on a small fixed batch
per task (drawn from the training distribution with a fixed seed, so every run of a
study measures on the same examples): answer loss and exact-match accuracy, per-task
gradient interference (`raremix.probes.interference`), and for DoReMi the reference
model's losses (measured once). Signals are averaged over DDP ranks, the rule updates
the weights, and the data stream drops its look-ahead and draws on under the new
weights. The rule's state travels in the stream's checkpoint state, so a killed run
resumes to the same weights, batches and metrics, bit for bit. Weights are written as
metric rows (`weight`, task) at step 0 and at every update; signals as `adaptive/*`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from raremix.callbacks import Callback
from raremix.errors import RaremixError
from raremix.loss import Batches, score
from raremix.mixture.adaptive import AdaptiveConfig, allreduce_signals
from raremix.probes import interference, task_gradients
from raremix.probes.capture import trainable
from raremix.probes.ledger import adamw_split, dot

if TYPE_CHECKING:
    from raremix.state import TrainState

SIGNAL_SEED = 1
"""Seed of the signal batches (training split): fixed, shared by every run."""
STATE_FORMAT = "raremix.adaptive/1"
REFERENCE_FACTS = ("reference_flops", "reference_seconds")
"""Facts of the reference model (DoReMi) kept in the controller state, so a resumed run
still reports them."""
Runner = Callable[[Any, Path], "TrainState"]
"""Trains a run config in a directory, resuming (`raremix.trainer.train`, `train_hf`)."""


class AdaptiveCallback(Callback):
    """Steers `stream`'s mixture weights with the rule of `cfg` (see `raremix.mixture.adaptive`)."""

    all_ranks = True  # under DDP every rank measures its share and sets the same weights

    def __init__(
        self, cfg: AdaptiveConfig, runner: Runner | None = None, rare: Sequence[str] | None = None
    ) -> None:
        """`runner` trains DoReMi's reference run when `cfg.reference` is not given."""
        self.cfg, self.runner, self.rare = cfg, runner, rare
        self.stream: Any = None  # the run's batch stream, whose weights this steers
        self.rule = cfg.build()
        self.names: list[str] = []
        self.batches: Batches = {}
        self.ctl: dict[str, Any] = {}
        self.seconds = 0.0
        self.flops_per_update = 0.0

    def on_start(self, state: TrainState) -> None:
        t0 = time.perf_counter()
        if state.sampler is None:
            raise RaremixError(
                "adaptive mixing needs a run whose batches come from a mixture: remove adaptive"
            )
        self.stream, self.names = state.module.stream, list(state.sampler.names)
        rank, world = state.dist.rank, state.dist.world_size
        self.batches = dict(state.module.train_batches(self.cfg.batch, SIGNAL_SEED, rank, world))
        rare = list(state.cfg.rare if self.rare is None else self.rare)
        saved = self.stream.controller
        if saved is not None and state.step > 0:  # resumed: the state saved with the stream
            if saved.get("format") != STATE_FORMAT or saved.get("names") != self.names:
                raise RaremixError(
                    "the checkpoint's adaptive state does not fit this run's tasks: use a new run directory"
                )
            self.ctl = saved
        else:
            prior = state.sampler.weights_at(0)
            rule_state = self.rule.init(prior, self.names, rare)
            ref = self._reference_losses(state) if "ref_loss" in self.rule.needs else None
            self.ctl = {
                "format": STATE_FORMAT,
                "rule": self.cfg.rule,
                "names": self.names,
                "state": rule_state,
                "ref_loss": ref,
                "last_step": 0,
                **{k: state.facts[k] for k in REFERENCE_FACTS if k in state.facts},
            }
            weights = np.asarray(rule_state["weights"])
            if not np.array_equal(weights, prior):  # e.g. exp3 starting uniform
                self.stream.set_weights(weights)
            self.stream.controller = self.ctl
            self._write(state, weights, {})
        per_example = state.facts.get("flops", 0.0) / max(1, state.cfg.batch_size * state.cfg.steps)
        gradients = {"interference", "harm"} & self.rule.needs
        passes = 1 / 3 + (1.0 if gradients else 0.0)  # forward ≈ ⅓ of a step
        self.flops_per_update = per_example * self.cfg.batch * len(self.names) * passes
        self.seconds += time.perf_counter() - t0

    def on_step_end(self, state: TrainState) -> None:
        step = state.step
        if step % self.cfg.every or step >= state.cfg.steps:
            return
        t0 = time.perf_counter()
        signals = allreduce_signals(self.measure(state))
        weights, rule_state = self.rule.update(signals, self.ctl["state"])
        self.ctl = {**self.ctl, "state": rule_state, "last_step": step}
        self.stream.set_weights(weights)
        self.stream.controller = self.ctl
        self._write(state, weights, signals)
        self.seconds += time.perf_counter() - t0

    def on_end(self, state: TrainState) -> None:
        state.facts.update({k: self.ctl[k] for k in REFERENCE_FACTS if k in self.ctl})
        state.facts["adaptive_seconds"] = self.seconds
        state.facts["adaptive_updates"] = int(self.ctl["state"]["updates"])
        state.facts["adaptive_flops"] = self.flops_per_update * self.ctl["state"]["updates"]

    def measure(self, state: TrainState) -> dict[str, np.ndarray]:
        """The signals the rule needs, on this rank's share of the signal batches."""
        model, needs = state.model, self.rule.needs
        out: dict[str, np.ndarray] = {
            "step": np.array(float(state.step)),
            "steps": np.array(float(state.step - self.ctl["last_step"])),
        }
        was_training = model.training
        model.eval()
        try:
            loss, acc = score(model, self.batches)
            out["loss"], out["acc"] = loss, acc
            if "interference" in needs:
                protected = [self.names[i] for i in self.ctl["state"].get("protect", [])]
                rare = protected or list(state.cfg.rare)
                cos = interference(task_gradients(model, self.batches), rare)
                out["interference"] = np.array([cos.get(n, np.nan) for n in self.names])
            if "harm" in needs:
                out["harm"] = self._harm(state)
        finally:
            model.train(was_training)
        if "ref_loss" in needs:
            out["ref_loss"] = np.asarray(self.ctl["ref_loss"], dtype=np.float64)
        return out

    def _harm(self, state: TrainState) -> np.ndarray:
        """(K,) per protected task: the first-order change of its signal-batch loss that one
        AdamW step on the common tasks' gradients would make (NaN for other tasks).

        The step's gradient is the tasks' mean-loss gradients weighted by the current mix
        (exact when tasks' answers are equally long); the optimiser's state is read, not
        changed: `raremix.probes.ledger.adamw_split` holds its preconditioner at this step's."""
        model = state.model
        grads = task_gradients(model, self.batches)
        params = trainable(model)
        protected = [self.names[i] for i in self.ctl["state"]["protect"]]
        rare = set(state.cfg.rare) | set(protected)
        if all(n in rare for n in self.names):
            raise RaremixError(
                "adaptive rule 'ledger' needs common tasks besides the protected ones"
            )
        g = torch.stack([grads[n] for n in self.names])  # (K, P)
        w = torch.tensor(self.ctl["state"]["weights"], dtype=g.dtype, device=g.device)
        is_common = torch.tensor([n not in rare for n in self.names], device=g.device)
        total, common = w @ g, (w * is_common) @ g
        split = adamw_split(state.optimizer, params, total, state.cfg.optim.grad_clip)
        step = split.part(common)
        return np.array([dot(grads[n], step) if n in protected else np.nan for n in self.names])

    def _write(
        self, state: TrainState, weights: np.ndarray, signals: dict[str, np.ndarray]
    ) -> None:
        table: dict[str, dict[str, float]] = {
            n: {"weight": float(w)} for n, w in zip(self.names, weights, strict=True)
        }
        for key in ("loss", "acc", "interference", "harm"):
            for n, v in zip(self.names, signals.get(key, ()), strict=False):
                if np.isfinite(v):
                    table[n][f"adaptive/{key}"] = float(v)
        state.writer.log_metrics(state.step, table)

    def _reference_losses(self, state: TrainState) -> list[float]:
        """DoReMi's reference: per-task losses of a model trained on the prior mix."""
        model = self._reference_model(state)
        model.eval()
        loss, _ = score(model, self.batches)
        return [float(x) for x in allreduce_signals({"ref": loss})["ref"]]

    def _reference_model(self, state: TrainState) -> torch.nn.Module:
        if self.cfg.reference is not None:
            return state.module.load_trained(Path(self.cfg.reference))
        if state.dist.world_size > 1:
            raise RaremixError(
                "adaptive rule doremi under DDP needs a trained reference: set adaptive.reference to its run dir"
            )
        if self.runner is None:
            raise RaremixError(
                "adaptive rule doremi needs a reference: set adaptive.reference to a finished run dir"
            )
        ref_cfg = state.cfg.model_copy(update={"adaptive": None, "probes": None})
        rng, np_rng = torch.get_rng_state(), np.random.get_state()
        try:  # the reference is its own run (resumable); the main run's RNG stays untouched
            ref = self.runner(ref_cfg, state.run_dir / "reference")
        finally:
            torch.set_rng_state(rng)
            np.random.set_state(np_rng)
        state.facts["reference_flops"] = ref.facts["flops"]
        state.facts["reference_seconds"] = ref.facts.get("train_seconds", 0.0)
        return ref.model
