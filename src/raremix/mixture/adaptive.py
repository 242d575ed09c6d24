"""Adaptive (online) mixing: pure update rules from per-task signals to mixture weights.

One interface for every rule: `rule.init(prior, names, rare) -> state` and
`rule.update(signals, state) -> (weights, state)`. Weights are NumPy vectors in source
order; a state is a small JSON-able dict (lists and numbers) that a checkpoint stores,
so a resumed run continues exactly. Every rule's output goes through `bounded`: a
share of the prior mix (`smoothing`) and a minimum weight per task (`floor`), so
weights sum to 1 and never collapse to one task.

Rules (chosen by name from `RULES`):

* `doremi` — excess loss against a reference model, multiplicative weights (Xie et al.
  2023): w ← w·exp(η·max(L − L_ref, 0)), renormalised, then bounded.
* `exp3` — tasks as the arms of an EXP3 bandit rewarded by loss or learning progress
  (ODM, Albalak et al. 2023): s ← s + η_t·r̂, w = (1 − Kγ_t)·softmax(s) + γ_t.
* `protect` — raremix's own: raise a rare task's weight (a boost on its prior share)
  while it is not learned, is being forgotten, or its gradient conflicts with the common
  tasks'; lower it back while it is retained — looking for the least up-weighting that
  keeps it learned, so the common tasks give up as little as possible.
* `ledger` — boost a rare task only while the interference ledger's signal says the common
  tasks' updates raise its loss (a first-order prediction under AdamW's actual
  preconditioning); under positive transfer it leaves the mix alone.

`allreduce_signals` averages signals over DDP ranks, so every rank computes the same
weights.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from raremix.configbase import Config, load
from raremix.errors import RaremixError, lookup, unknown
from raremix.mixture.weights import lift, normalise

Signals = Mapping[str, np.ndarray]
"""{name: (K,) float array in source order}; scalars as 0-d arrays. Names: `loss`, `acc`,
`ref_loss`, `interference` (NaN for tasks not measured), `harm` (the predicted change
of a task's loss from one step on the common tasks; NaN where not measured), `steps` (steps since the last
update), `step`. With `exp3` bandit feedback, `reward`/`loss` is NaN for arms not drawn."""
State = dict[str, Any]


def bounded(w: np.ndarray, prior: np.ndarray, floor: float, smoothing: float) -> np.ndarray:
    """(1 − smoothing)·w + smoothing·prior, then every weight lifted to at least `floor`:
    floor + (1 − K·floor)·w. Sums to 1; each weight ≥ floor (exactly, not by clipping)."""
    k = len(w)
    if not 0 <= floor * k < 1:
        raise RaremixError(
            f"adaptive floor {floor} × {k} tasks = {floor * k:.3g} leaves no room to adapt: "
            f"use a floor below {1 / k:.3g}"
        )
    mixed = (1.0 - smoothing) * normalise(w, "adaptive weights") + smoothing * prior
    return floor + (1.0 - k * floor) * mixed / mixed.sum()


class Rule(Config):
    """Base of the update rules: the bounds every rule's weights pass through."""

    needs: ClassVar[frozenset[str]] = frozenset()
    """Signals the rule reads (the callback measures only these)."""

    floor: float = Field(0.01, ge=0, lt=1)
    """Minimum weight of every task after each update."""
    smoothing: float = Field(0.1, ge=0, le=1)
    """Share of the prior mix in every update: w = (1 − smoothing)·rule + smoothing·prior."""

    def init(self, prior: np.ndarray, names: Sequence[str], rare: Sequence[str]) -> State:
        """The state before the first update; its `weights` are the mix to start with."""
        return {"prior": _list(prior), "weights": _list(prior), "updates": 0}

    def update(self, signals: Signals, state: State) -> tuple[np.ndarray, State]:
        """New weights (sum 1, each ≥ floor) and the new state; `state` is not modified."""
        raise NotImplementedError

    def _finish(self, raw: np.ndarray, state: State, **extra: Any) -> tuple[np.ndarray, State]:
        w = bounded(raw, np.asarray(state["prior"]), self.floor, self.smoothing)
        return w, {**state, **extra, "weights": _list(w), "updates": state["updates"] + 1}


class DoReMi(Rule):
    """Excess-loss reweighting against a reference model (DoReMi, Xie et al. 2023).

    λ_i = max(L_i − L_ref,i, 0); w ← normalise(w_prev · exp(η λ)), then bounded — the
    previous *bounded* weights are the base, as in DoReMi's algorithm (where the
    smoothing is toward uniform; here toward the prior mix).
    """

    needs: ClassVar[frozenset[str]] = frozenset({"loss", "ref_loss"})
    eta: float = Field(1.0, gt=0)
    """Step size of the multiplicative update, per update (losses in nats)."""

    def update(self, signals: Signals, state: State) -> tuple[np.ndarray, State]:
        excess = np.maximum(_vec(signals, "loss") - _vec(signals, "ref_loss"), 0.0)
        prev = np.asarray(state["weights"])
        logits = np.log(prev) + self.eta * excess
        raw = np.exp(logits - logits.max())
        return self._finish(raw, state, excess=_list(excess))


class EXP3(Rule):
    """Tasks as arms of an EXP3 bandit (ODM, Albalak et al. 2023).

    Rewards r (loss, or learning progress: the loss drop since the last update) are scaled
    by their largest magnitude into [−1, 1]. With `feedback: full` (every task measured)
    r̂ = r; with `bandit`, only arms with a finite reward were drawn and r̂ = r / p (the
    EXP3 estimator). s ← s + η_t·r̂·steps; w = (1 − Kγ_t)·softmax(s) + γ_t. By default
    η_t = γ_t = min(1/K, sqrt(ln K / (K·t))) with t the training step, as in ODM, and an
    update after `steps` steps counts as that many rounds of the same reward.
    """

    needs: ClassVar[frozenset[str]] = frozenset({"loss"})
    reward: Literal["loss", "progress"] = "loss"
    """What an arm earns: its loss (harder tasks drawn more), or its loss drop since the last update."""
    eta: float | None = Field(None, gt=0)
    """Learning rate per round; null: ODM's schedule min(1/K, sqrt(ln K/(K t)))."""
    gamma: float | None = Field(None, ge=0)
    """Uniform exploration per arm (γ, K·γ < 1); null: the same schedule as eta."""
    feedback: Literal["full", "bandit"] = "full"
    """full: every task's reward is observed; bandit: only drawn arms (NaN elsewhere), importance-weighted."""
    start: Literal["prior", "uniform"] = "prior"
    """Initial weights: the configured mix, or uniform (EXP3's and ODM's)."""

    def init(self, prior: np.ndarray, names: Sequence[str], rare: Sequence[str]) -> State:
        k = len(prior)
        p0 = np.asarray(prior) if self.start == "prior" else np.full(k, 1.0 / k)
        return {
            **super().init(prior, names, rare),
            "weights": _list(p0),
            "scores": _list(np.log(np.maximum(p0, 1e-300))),
            "last": None,
        }

    def update(self, signals: Signals, state: State) -> tuple[np.ndarray, State]:
        loss = _vec(signals, "loss")
        k = len(loss)
        step = max(1.0, float(signals.get("step", state["updates"] + 1)))
        rounds = float(signals.get("steps", 1.0))
        if self.reward == "progress":
            last = loss if state["last"] is None else np.asarray(state["last"], dtype=np.float64)
            r = last - loss
        else:
            r = loss.copy()
        seen = np.isfinite(r)
        scale = float(np.abs(r[seen]).max()) if seen.any() else 0.0
        r = np.where(seen, r / scale if scale > 0 else 0.0, 0.0)
        p = np.asarray(state["weights"])
        if self.feedback == "bandit":
            r = np.where(seen, r / np.maximum(p, 1e-12), 0.0)
        schedule = min(1.0 / k, math.sqrt(math.log(k) / (k * step))) if k > 1 else 1.0
        eta = schedule if self.eta is None else self.eta
        gamma = min(schedule if self.gamma is None else self.gamma, (1.0 - 1e-9) / k)
        scores = np.asarray(state["scores"]) + eta * rounds * r
        scores -= scores.max()  # only differences matter: keep them finite
        raw = (1.0 - k * gamma) * np.exp(scores) / np.exp(scores).sum() + gamma
        last = np.where(np.isfinite(loss), loss, np.asarray(state["last"] or loss))
        return self._finish(raw, state, scores=_list(scores), last=_list(last))


class Boosting(Rule):
    """Rules that raise protected tasks' weights by a boost b ≥ 1 on their prior share.

    Each protected task's weight is its prior share × b (the other tasks keep their
    proportions). A subclass says when a task is *at risk*; at risk, b ← min(b·up,
    max_boost), otherwise b ← max(b/down, 1). With up > down the boost climbs fast and
    decays slowly, settling near the least boost that holds the task.
    """

    rule: ClassVar[str] = ""
    tasks: list[str] | None = None
    """Tasks to protect; null: the run's `rare` tasks."""
    up: float = Field(1.5, gt=1)
    """Boost multiplier per update while at risk."""
    down: float = Field(1.1, gt=1)
    """Boost divisor per update while not at risk."""
    max_boost: float = Field(10.0, ge=1)
    """Largest boost (× the prior share)."""
    max_share: float = Field(0.5, gt=0, lt=1)
    """Largest share of the mix all protected tasks may take together."""

    def init(self, prior: np.ndarray, names: Sequence[str], rare: Sequence[str]) -> State:
        tasks = list(rare) if self.tasks is None else self.tasks
        for t in tasks:
            if t not in names:
                raise unknown("task to protect", t, names)
        if not tasks:
            raise RaremixError(
                f"adaptive rule '{self.rule}' has no task to protect: set the run's rare tasks "
                "or params.tasks"
            )
        idx = [list(names).index(t) for t in tasks]
        return {**super().init(prior, names, rare), "protect": idx, "boost": [1.0] * len(idx)}

    def _boost(self, risk: np.ndarray, state: State, **extra: Any) -> tuple[np.ndarray, State]:
        """Raise each protected task's boost where `risk` (K,) holds; decay it elsewhere."""
        idx = np.asarray(state["protect"], dtype=np.int64)
        at_risk = risk[idx]
        boost = np.asarray(state["boost"])
        boost = np.where(
            at_risk, np.minimum(boost * self.up, self.max_boost), np.maximum(boost / self.down, 1.0)
        )
        prior = np.asarray(state["prior"])
        shares = prior[idx] * boost
        if shares.sum() > self.max_share:
            shares *= self.max_share / shares.sum()
        raw = lift(prior, idx, shares, what=self.rule) if len(idx) < len(prior) else prior
        return self._finish(
            raw, state, boost=_list(boost), risk=[bool(r) for r in at_risk], **extra
        )


class Protect(Boosting):
    """Interference-aware protection (raremix's own): the least boost that keeps a rare task learned.

    A task is at risk when its accuracy is below `target`, when it has fallen `drop` below
    its peak since reaching `target` (forgetting, as `raremix.probes.acquire_then_forget`
    defines it), or when its gradient's mean cosine with the common tasks'
    (`raremix.probes.interference`) is below `conflict`.
    """

    rule: ClassVar[str] = "protect"
    needs: ClassVar[frozenset[str]] = frozenset({"acc", "interference"})
    target: float = Field(0.8, gt=0, le=1)
    """Accuracy at which a task counts as learned."""
    drop: float = Field(0.1, gt=0, le=1)
    """Forgetting: accuracy this far below its peak (after reaching target)."""
    conflict: float = Field(-0.05, ge=-1, le=1)
    """Negative interference: mean gradient cosine with the common tasks below this."""

    def init(self, prior: np.ndarray, names: Sequence[str], rare: Sequence[str]) -> State:
        k = len(prior)
        return {**super().init(prior, names, rare), "peak": [0.0] * k, "acquired": [False] * k}

    def update(self, signals: Signals, state: State) -> tuple[np.ndarray, State]:
        acc = _vec(signals, "acc")
        cos = np.asarray(signals.get("interference", np.full(len(acc), np.nan)), dtype=np.float64)
        peak = np.maximum(np.asarray(state["peak"]), acc)
        acquired = np.asarray(state["acquired"], dtype=bool) | (acc >= self.target)
        forgetting = acquired & (peak - acc >= self.drop)
        conflict = np.isfinite(cos) & (cos < self.conflict)
        risk = (acc < self.target) | forgetting | conflict
        return self._boost(risk, state, peak=_list(peak), acquired=[bool(a) for a in acquired])


class LedgerRule(Boosting):
    """Boost a rare task only while the common tasks' updates raise its loss (the ledger's signal).

    At each update the callback measures `harm` per protected task: the first-order change
    of its loss that one AdamW step on the common tasks' gradients (weighted by the current
    mix) would make under the optimiser's current preconditioning
    (`raremix.probes.ledger.adamw_split`) — the interference ledger's `from_common` entry,
    predicted on the signal batches. A task is at risk while its harm exceeds `harm`
    (common updates hurting it). Unlike `protect` it does not boost a task merely for
    being unlearned: under positive transfer (harm < 0) it leaves the mix alone.
    """

    rule: ClassVar[str] = "ledger"
    needs: ClassVar[frozenset[str]] = frozenset({"harm"})
    harm: float = 0.0
    """Boost while one common step is predicted to raise the task's loss by more than this."""

    def update(self, signals: Signals, state: State) -> tuple[np.ndarray, State]:
        harm = _vec(signals, "harm")
        return self._boost(np.isfinite(harm) & (harm > self.harm), state)


RULES: dict[str, type[Rule]] = {
    "doremi": DoReMi,
    "exp3": EXP3,
    "protect": Protect,
    "ledger": LedgerRule,
}
"""Adaptive rules by name; adding one is one `Rule` subclass plus one line."""


class AdaptiveConfig(Config):
    """The `adaptive:` section of a training config: which rule steers the mix, and how often."""

    rule: str
    """Update rule: doremi | exp3 | protect | ledger (see `raremix.mixture.adaptive.RULES`)."""
    params: dict[str, Any] = Field(default_factory=dict)
    """The rule's own parameters (e.g. eta for doremi, reward for exp3, target for protect)."""
    every: int = Field(50, ge=1)
    """Steps between updates."""
    batch: int = Field(64, ge=2)
    """Examples per task in the fixed signal batch (training distribution, fixed seed)."""
    floor: float = Field(0.01, gt=0, lt=1)
    """Minimum weight of every task after each update (weights never collapse to one task)."""
    smoothing: float = Field(0.1, ge=0, le=1)
    """Share of the prior (configured) mix in every update."""
    reference: str | None = None
    """doremi: a finished run directory (config.yaml + checkpoint/) whose model is the
    reference; null: train one on the prior mix in RUN_DIR/reference first."""

    def build(self, where: str = "config.adaptive") -> Rule:
        """The rule object, its params validated (one-line errors)."""
        try:
            rule = lookup(RULES, "adaptive rule", self.rule)
        except RaremixError as err:
            raise RaremixError(f"{where}: {err}") from None
        for key in ("floor", "smoothing"):
            if key in self.params:
                raise RaremixError(f"{where}.params: set {key} as adaptive.{key}, not a param")
        data = {**self.params, "floor": self.floor, "smoothing": self.smoothing}
        return load(rule, data, f"{where}.params")


def make_rule(name: str, **params: Any) -> Rule:
    """A rule by name with its parameters: `make_rule("doremi", eta=0.5, floor=0.02)`."""
    return load(lookup(RULES, "adaptive rule", name), params, f"adaptive rule '{name}'")


def allreduce_signals(signals: Signals) -> dict[str, np.ndarray]:
    """The mean of each signal over DDP ranks (one all-reduce), or the signals as they are
    when torch.distributed is not initialised. Every rank must pass the same keys and shapes."""
    out = {k: np.asarray(v, dtype=np.float64) for k, v in signals.items()}
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover - torch is a dependency
        return out
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return out
    import torch

    keys = sorted(out)
    flat = np.concatenate([out[k].reshape(-1) for k in keys]) if keys else np.zeros(0)
    backend = dist.get_backend()
    device = torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else None
    buf = torch.from_numpy(flat.copy()).to(device or "cpu")
    dist.all_reduce(buf, op=dist.ReduceOp.SUM)
    mean = buf.cpu().numpy() / dist.get_world_size()
    res, at = {}, 0
    for k in keys:
        n = out[k].size
        res[k] = mean[at : at + n].reshape(out[k].shape)
        at += n
    return res


def _vec(signals: Signals, name: str) -> np.ndarray:
    if name not in signals:
        raise RaremixError(
            f"adaptive update needs the signal '{name}': measure it (see rule.needs)"
        )
    return np.asarray(signals[name], dtype=np.float64)


def _list(a: np.ndarray | Sequence[float]) -> list[float]:
    return [float(x) for x in np.asarray(a, dtype=np.float64)]
