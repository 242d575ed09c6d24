"""Capacity allocation: which task each MLP neuron serves, and which neurons serve none.

A neuron's attribution to a task is Σ over the task's probe positions of
|activation × ∂loss/∂activation|: the first-order change of the task's loss if the
neuron were silenced there. Attributions are normalised per task (each task's sum over
neurons is 1), so a task with a large loss does not own neurons just by shouting; a
neuron is owned by the task with the largest normalised attribution.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from raremix.probes.capture import Forward, capture, default_forward, neuron_modules

Batches = Mapping[str, tuple[torch.Tensor, torch.Tensor]]


def neuron_attribution(
    model: nn.Module,
    batches: Batches,
    modules: Sequence[nn.Module] | None = None,
    forward: Forward = default_forward,
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """({task: (N,) attribution}, (N,) bool active on any task) over the neurons of `modules`.

    `modules` default to the model's MLP activations (`neuron_modules`); N is the total
    width of their outputs.
    """
    modules = neuron_modules(model) if modules is None else list(modules)
    attr: dict[str, torch.Tensor] = {}
    active: torch.Tensor | None = None
    for task, (idx, targets) in batches.items():
        cap = capture(model, idx, targets, neurons=modules, forward=forward)
        assert cap.attribution is not None and cap.active is not None
        attr[task] = cap.attribution
        active = cap.active if active is None else active | cap.active
    assert active is not None, "no batches"
    return attr, active


def owners(attr: Mapping[str, torch.Tensor], active: torch.Tensor | None = None) -> torch.Tensor:
    """(N,) index (in `attr`'s task order) of each neuron's top task; -1 for dead or unused ones."""
    a = torch.stack([v.double() for v in attr.values()])  # (K, N)
    a = a / a.sum(dim=1, keepdim=True).clamp_min(1e-30)  # each task's attribution sums to 1
    top = a.argmax(dim=0)  # (N,)
    unused = a.sum(dim=0) <= 0
    if active is not None:
        unused |= ~active
    return torch.where(unused, -1, top)


def neuron_share(
    attr: Mapping[str, torch.Tensor], active: torch.Tensor | None = None
) -> dict[str, float]:
    """{task: share of all neurons it owns}; shares plus the dead fraction sum to 1."""
    own = owners(attr, active)
    return {t: float((own == k).double().mean()) for k, t in enumerate(attr)}


def dead_fraction(active: torch.Tensor) -> float:
    """Share of neurons never active (activation > 0) on any probe position of any task."""
    return float((~active).double().mean())
