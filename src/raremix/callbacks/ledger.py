"""The interference ledger: what each part of the batch did to a victim task's held-out loss.

At every `every`-th step, before the optimiser moves, the callback takes the batch's
gradient apart by task (each task weighted by its share of the batch's answer tokens, as
the training loss weights it), splits the step's actual AdamW update into the parts
those gradients make under the step's own preconditioner (`raremix.probes.ledger`), and
predicts each part's first-order effect on every victim's held-out loss. After the step
it measures the victim's loss change and the update the optimiser really made.

Rows (step = the step whose update is measured; task = the victim):
`ledger/from_common`, `ledger/from_rare`, `ledger/from_history` (momentum of earlier
batches and weight decay), `ledger/predicted` (their sum), `ledger/measured`, and
`ledger/cum_*` of each (each measured step standing for `every` steps, so the cumulative
rows estimate the whole run's total); `ledger/from_task` per "source>victim";
run-level `ledger/update_error` (‖Δθ_real − Δθ_split‖ / ‖Δθ_real‖), `ledger/common_grad_norm`
and `ledger/common_loss` (the batch's common examples). "Rare" is the run's `rare`.

Training is untouched: gradients come from `torch.autograd.grad` (never `.grad`), the
random state is forked and restored around the batch's forward passes, modes are
restored, and nothing is written to parameters or optimiser state.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

import torch
from pydantic import Field

from raremix.callbacks import Callback
from raremix.configbase import Config
from raremix.errors import RaremixError
from raremix.loss import IGNORE
from raremix.probes.capture import capture, trainable
from raremix.probes.ledger import adamw_split, dot, heldout_losses, part_gradients
from raremix.results.rows import load_rows, metric_rows

if TYPE_CHECKING:
    from raremix.state import TrainState

PARTS = ("from_common", "from_rare", "from_history", "predicted", "measured")
"""The per-victim ledger entries, each also kept as a cumulative `cum_*` row."""


class Ledger(Config):
    """The `ledger:` section: how often to split the update, and whose loss to watch."""

    every: int = Field(40, ge=1)
    """Split every this many steps (1: every step; the default keeps the cost ≤ 15% of training
    wall time on the 25k–200k rungs, benchmarks/ledger_cost.py); each stands for `every` steps."""
    victims: list[str] | None = None
    """Tasks whose held-out loss the ledger watches; null: the run's `rare` tasks."""
    batch: int = Field(64, ge=2)
    """Held-out examples per victim (the first of its evaluation set)."""


class LedgerCallback(Callback):
    """Splits the actual update's first-order effect on each victim by the batch's tasks."""

    def __init__(self, cfg: Ledger) -> None:
        self.cfg = cfg
        self.victims: list[str] = []
        self.rare: set[str] = set()
        self.heldout: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.cum: dict[tuple[str, str], float] = {}  # (entry, victim) → running total
        self.pending: dict[str, Any] | None = None
        self.seconds = 0.0

    def on_start(self, state: TrainState) -> None:
        if state.dist.world_size > 1:
            raise RaremixError(
                "ledger: under torchrun each rank sees part of the batch, so the split would be "
                "wrong: run the ledger in one process or remove the ledger section"
            )
        self.victims = list(state.cfg.rare) if self.cfg.victims is None else self.cfg.victims
        if not self.victims:
            raise RaremixError(
                "ledger has no victim task: set the run's rare tasks or ledger.victims"
            )
        self.rare = set(state.cfg.rare)
        held = state.module.heldout_batches(self.cfg.batch)
        self.heldout = {v: held[v] for v in self.victims}
        self.cum = {(e, v): 0.0 for e in PARTS for v in self.victims}
        for row in load_rows(state.writer.path, missing_ok=True):  # resumed: the totals so far
            entry = str(row["metric"]).removeprefix("ledger/cum_")
            if row["metric"].startswith("ledger/cum_") and (entry, row["task"]) in self.cum:
                self.cum[(entry, row["task"])] = float(row["value"])

    def on_step_begin(self, state: TrainState) -> None:
        if (state.step + 1) % self.cfg.every == 0:
            t0 = time.perf_counter()
            self.pending = self._split(state)
            self.seconds += time.perf_counter() - t0

    def on_step_end(self, state: TrainState) -> None:
        if self.pending is None:
            return
        t0 = time.perf_counter()
        state.writer.write(self._settle(state, self.pending))
        self.pending = None
        self.seconds += time.perf_counter() - t0
        state.facts["ledger_seconds"] = self.seconds

    def _split(self, state: TrainState) -> dict[str, Any]:
        """Before the step: the predicted split for each victim, and what to measure after."""
        model, batch = state.model, state.batch
        source = getattr(batch, "source", None)
        if source is None:
            raise RaremixError(
                "ledger: this run's batches do not say which task each example is: the ledger "
                "needs raremix's GPT batches (TokenBatch with sources); remove the ledger section"
            )
        params = trainable(model)
        idx, targets = batch.idx.to(state.device), batch.targets.to(state.device)  # (B, T)
        names = state.sampler.names
        rows = {
            names[int(s)]: (source == s).nonzero().squeeze(1).to(state.device)
            for s in torch.unique(source)
        }
        rows = {t: r for t, r in rows.items() if bool((targets[r] != IGNORE).any())}
        modes = [(m, m.training) for m in model.modules()]
        autocast = getattr(state.module, "autocast", contextlib.nullcontext())
        devices = [state.device] if state.device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=devices, device_type="cuda"), autocast:
                parts = part_gradients(model, idx, targets, rows, params)  # training mode
            model.eval()
            victim = {v: capture(model, *self.heldout[v], params=params) for v in self.victims}
        finally:
            for m, training in modes:
                m.training = training
        grad = torch.stack([p.grad for p in parts.values()]).sum(dim=0)  # (P,) the batch's
        split = adamw_split(state.optimizer, params, grad, state.cfg.optim.grad_clip)
        moves = {t: split.part(p.grad) for t, p in parts.items()}  # (P,) each
        common = [t for t in parts if t not in self.rare]
        entries: dict[str, dict[str, float]] = {}
        for v, cap in victim.items():
            gv = cap.grad
            assert gv is not None
            by_task = {t: dot(gv, d) for t, d in moves.items()}
            e = {
                "from_common": sum(by_task[t] for t in common),
                "from_rare": sum(x for t, x in by_task.items() if t in self.rare),
                "from_history": dot(gv, split.history),
            }
            e["predicted"] = e["from_common"] + e["from_rare"] + e["from_history"]
            entries[v] = {**e, "before": cap.loss, **{f"task:{t}": x for t, x in by_task.items()}}
        g_common = sum((parts[t].grad for t in common), torch.zeros_like(grad))
        tokens = sum(parts[t].tokens for t in common)
        common_loss = sum(parts[t].loss * parts[t].tokens for t in common) / max(1, tokens)
        return {
            "entries": entries,
            "theta": torch.cat([p.detach().reshape(-1).float() for p in params]),
            "update": split.history + sum(moves.values(), torch.zeros_like(grad)),
            "common_grad_norm": float(g_common.norm()),
            "common_loss": common_loss,
        }

    def _settle(self, state: TrainState, pending: dict[str, Any]) -> list[dict[str, Any]]:
        """After the step: measured changes, the update check, and the rows to write."""
        model, params = state.model, trainable(state.model)
        modes = [(m, m.training) for m in model.modules()]
        model.eval()
        try:
            after = heldout_losses(model, self.heldout)
        finally:
            for m, training in modes:
                m.training = training
        real = torch.cat([p.detach().reshape(-1).float() for p in params]) - pending["theta"]
        error = float((real - pending["update"]).norm() / real.norm().clamp_min(1e-30))
        w = self.cfg.every
        out: list[tuple[str, str, float]] = []  # (task, metric, value), in the file's order

        def row(task: str, metric: str, value: float) -> None:
            out.append((task, metric, value))

        for v, e in pending["entries"].items():
            e = {**e, "measured": after[v] - e["before"]}
            for name in PARTS:
                self.cum[(name, v)] += w * e[name]
                row(v, f"ledger/{name}", e[name])
                row(v, f"ledger/cum_{name}", self.cum[(name, v)])
            for key, x in e.items():
                if key.startswith("task:"):
                    row(f"{key.removeprefix('task:')}>{v}", "ledger/from_task", x)
        row("", "ledger/update_error", error)
        row("", "ledger/common_grad_norm", pending["common_grad_norm"])
        row("", "ledger/common_loss", pending["common_loss"])
        return metric_rows(state.step, out, state.run_id)
