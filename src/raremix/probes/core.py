"""`probe(model, batches_by_task)`: every probe from one pass per task, as {metric: {task: value}}.

Probes are chosen by name from `PROBES`. Each declares what it reads from the shared
pass (`capture`), so asking for several costs one forward and at most one backward
per task. The model is probed in eval mode (no dropout, no random draws) and returned
to the exact modes, parameters, optimiser state and `.grad` it had.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from raremix.errors import RaremixError, lookup
from raremix.probes.capture import (
    Forward,
    TaskCapture,
    capture,
    default_forward,
    neuron_modules,
    residual_modules,
    trainable,
)
from raremix.probes.gradients import (
    common_gradient,
    first_order,
    grad_norms,
    interference,
    pairwise_cosines,
)
from raremix.probes.linear_probe import probe_accuracy
from raremix.probes.neurons import dead_fraction, neuron_share
from raremix.results.rows import metric_rows

Batches = Mapping[str, tuple[torch.Tensor, torch.Tensor]]
ProbeResults = dict[str, dict[str, float]]
"""{metric: {task: value}}; task is "" for model-wide values, "a|b" for pairs."""


@dataclass
class Probing:
    """Everything a probe may read: the model, its batches, and the pass over each task."""

    model: nn.Module
    batches: Batches
    caps: dict[str, TaskCapture]
    rare: Sequence[str]
    optimizer: torch.optim.Optimizer | None
    lr: float | None
    clip: float
    forward: Forward
    weights: Mapping[str, float] | None = None
    """The mixture's current weights by task (common gradients are weighted by them)."""

    def grads(self) -> dict[str, torch.Tensor]:
        return {t: c.grad for t, c in self.caps.items() if c.grad is not None}


def _interference(p: Probing) -> ProbeResults:
    g = p.grads()
    out: ProbeResults = {"probe/grad_norm": grad_norms(g), "probe/grad_cos": pairwise_cosines(g)}
    if rare := interference(g, p.rare, p.weights):
        out["probe/interference"] = rare
    if (common := common_gradient(g, p.rare, p.weights)) is not None:
        out["probe/common_grad_norm"] = {"": float(common.norm())}
    return out


def _first_order(p: Probing) -> ProbeResults:
    if p.optimizer is None and p.lr is None:
        return {}
    fo = first_order(
        p.model,
        p.batches,
        p.rare,
        p.grads(),
        optimizer=p.optimizer,
        lr=p.lr,
        clip=p.clip,
        forward=p.forward,
        weights=p.weights,
    )
    if not fo:
        return {}
    return {
        "probe/first_order": {t: f.predicted for t, f in fo.items()},
        "probe/first_order_real": {t: f.real for t, f in fo.items()},
    }


def _neurons(p: Probing) -> ProbeResults:
    attr = {t: c.attribution for t, c in p.caps.items() if c.attribution is not None}
    actives = [c.active for c in p.caps.values() if c.active is not None]
    if not attr or not actives or not len(actives[0]):
        return {}
    active = torch.stack(actives).any(dim=0)  # (N,)
    return {
        "probe/neuron_share": neuron_share(attr, active),
        "probe/dead_neurons": {"": dead_fraction(active)},
    }


def _linear(p: Probing) -> ProbeResults:
    caps = {
        t: c for t, c in p.caps.items() if c.features is not None and c.first_answer is not None
    }
    if not caps:
        return {}
    out: ProbeResults = {}
    if len(caps) > 1:
        x = torch.cat([c.features for c in caps.values()])  # type: ignore[misc]  # (ΣB, C)
        y = torch.cat([torch.full((len(c.features),), k) for k, c in enumerate(caps.values())])  # type: ignore[arg-type]
        out["probe/probe_task_acc"] = {"": probe_accuracy(x, y.to(x.device))}
    out["probe/probe_feature_acc"] = {
        t: probe_accuracy(c.features, c.first_answer)  # type: ignore[arg-type]
        for t, c in caps.items()
    }
    return out


def _entropy(p: Probing) -> ProbeResults:
    return {"probe/entropy": {t: c.entropy for t, c in p.caps.items() if c.entropy is not None}}


@dataclass(frozen=True)
class ProbeSpec:
    """A named probe: what it reads from the shared pass, and the function that reports it."""

    name: str
    """The name a config gives in `probes.probes` (and `probe(probes=...)`)."""
    needs: frozenset[str]
    """Subset of {"grad", "neurons", "residual", "entropy"}."""
    fn: Callable[[Probing], ProbeResults]


PROBES: dict[str, ProbeSpec] = {
    p.name: p
    for p in [
        ProbeSpec("interference", frozenset({"grad"}), _interference),
        ProbeSpec("first_order", frozenset({"grad"}), _first_order),
        ProbeSpec("neurons", frozenset({"neurons"}), _neurons),
        ProbeSpec("linear", frozenset({"residual"}), _linear),
        ProbeSpec("entropy", frozenset({"entropy"}), _entropy),
    ]
}
"""Probes by name; adding one is one function of `Probing` plus one line here."""
DEFAULT_PROBES: tuple[str, ...] = tuple(PROBES)


def probe(
    model: nn.Module,
    batches_by_task: Batches,
    *,
    probes: Sequence[str] = DEFAULT_PROBES,
    rare: Sequence[str] = (),
    optimizer: torch.optim.Optimizer | None = None,
    lr: float | None = None,
    clip: float = 0.0,
    forward: Forward = default_forward,
    neurons: Sequence[nn.Module] | None = None,
    residual: Sequence[nn.Module] | None = None,
    layer: int = -1,
    weights: Mapping[str, float] | None = None,
) -> ProbeResults:
    """Run the named `probes` on any PyTorch model whose `forward` gives logits (B, T, V).

    `batches_by_task` is {task: (idx (B, T), targets (B, T), -100 where no loss)}, targets
    already shifted (position t predicts token t + 1). `rare` names the rare tasks (for
    interference and the first-order effect); the rest count as common. `first_order`
    uses `optimizer` (its real update, at `lr` if given) or plain SGD at `lr`, and is
    skipped without either. `weights` ({task: mixture weight}) weights the common tasks'
    gradients as training does (equal shares when None). `neurons` and `residual` name the modules to hook (default:
    MLP activations, and the transformer blocks whose `layer`-th output the linear probes read).
    """
    specs = [lookup(PROBES, "probe", name) for name in probes]
    if not batches_by_task:
        raise RaremixError("probe needs at least one task batch: pass {task: (idx, targets)}")
    needs = frozenset().union(*(s.needs for s in specs))
    params = trainable(model) if "grad" in needs else []
    hooked = (
        (neuron_modules(model) if neurons is None else list(neurons)) if "neurons" in needs else []
    )
    blocks = (
        (residual_modules(model) if residual is None else list(residual))
        if "residual" in needs
        else []
    )
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        caps = {
            task: capture(
                model,
                idx,
                targets,
                params=params,
                neurons=hooked,
                residual=blocks[layer] if blocks else None,
                entropy="entropy" in needs,
                forward=forward,
            )
            for task, (idx, targets) in batches_by_task.items()
        }
        ctx = Probing(
            model, batches_by_task, caps, list(rare), optimizer, lr, clip, forward, weights
        )
        out: ProbeResults = {}
        for spec in specs:
            out.update(spec.fn(ctx))
        return out
    finally:
        for m, training in modes:
            m.training = training


def to_rows(results: ProbeResults, step: int, run: str = "") -> list[dict[str, object]]:
    """Metric rows `{run, step, task, metric, value}` of a `probe` result."""
    entries = ((t, m, v) for m, values in results.items() for t, v in values.items())
    return metric_rows(step, entries, run)
