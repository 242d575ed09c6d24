"""Probes during a raremix run: interference, neuron allocation, linear probes and entropy,
written as `probe/*` metric rows next to the evaluation rows.

The probe batches are the first `cfg.batch` examples of each task's held-out set. The
callback leaves the run's trajectory untouched: it draws no random numbers, restores
the model's modes, parameters, optimiser state and `.grad`, so a run with probes has
the same accuracy and loss rows, bit for bit, as one without.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from raremix.callbacks import Callback
from raremix.probes import ProbeConfig, probe, to_rows

if TYPE_CHECKING:
    from raremix.state import TrainState


class ProbeCallback(Callback):
    """Runs `raremix.probes.probe` at `cfg.every` steps (or with each evaluation)."""

    def __init__(self, cfg: ProbeConfig | None = None, rare: Sequence[str] | None = None) -> None:
        self.cfg = cfg or ProbeConfig()
        self.rare = rare  # default: the run's `rare`
        self.batches: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.seconds = 0.0

    def on_start(self, state: TrainState) -> None:
        self.batches = dict(state.module.heldout_batches(self.cfg.batch))
        if self.cfg.every is not None and state.step == 0:
            self.run(state)

    def on_step_end(self, state: TrainState) -> None:
        every = self.cfg.every
        if every is not None and (state.step % every == 0 or state.step == state.cfg.steps):
            self.run(state)

    def on_eval(self, state: TrainState, metrics: dict[str, dict[str, float]]) -> None:
        if self.cfg.every is None:
            self.run(state)

    def run(self, state: TrainState) -> None:
        """Probe the model now and write the rows at `state.step`."""
        t0 = time.perf_counter()
        results = probe(
            state.model,
            self.batches,
            probes=self.cfg.probes,
            rare=state.cfg.rare if self.rare is None else self.rare,
            optimizer=state.optimizer,
            lr=state.lr_at(state.step),  # the next step's
            clip=state.cfg.optim.grad_clip,
            layer=self.cfg.layer,
            weights=_weights(state),
        )
        state.writer.write(to_rows(results, state.step, state.run_id))
        self.seconds += time.perf_counter() - t0
        state.facts["probe_seconds"] = self.seconds


def _weights(state: TrainState) -> dict[str, float] | None:
    """{task: the mixture's weight for the next batch}, None where the run has no sampler."""
    sampler = state.sampler
    if sampler is None or not hasattr(sampler, "weights_at"):
        return None
    return {
        str(n): float(w) for n, w in zip(sampler.names, sampler.weights_at(state.step), strict=True)
    }
