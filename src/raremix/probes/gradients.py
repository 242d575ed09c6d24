"""Gradient interference between tasks: per-task gradients, their cosines and norms, and the
first-order effect of one common-task optimiser step on a rare task's loss.

Interference is measured as Huang et al. suggest (see REFERENCES.md): the cosine of
per-task gradients, and ΔL_rare ≈ ⟨g_rare, Δθ⟩ where Δθ is the update the optimiser
would actually make from a common-task gradient (for plain SGD, Δθ = −lr·g_common, so
ΔL_rare ≈ −lr·⟨g_rare, g_common⟩). The prediction is checked against the real change
by taking that step on the live model and undoing it bit for bit.

These functions use the model in the mode it is in; `probe()` switches to eval mode
(no dropout, so no random draws) and back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

import torch
from torch import nn

from raremix.errors import RaremixError
from raremix.loss import Forward, answer_loss, default_forward
from raremix.probes.capture import capture, trainable

Batches = Mapping[str, tuple[torch.Tensor, torch.Tensor]]
"""{task: (idx (B, T), targets (B, T) with -100 ignored)}."""


def task_gradients(
    model: nn.Module, batches: Batches, forward: Forward = default_forward
) -> dict[str, torch.Tensor]:
    """{task: (P,) gradient of its mean answer loss} over `trainable(model)`; `.grad` untouched."""
    params = trainable(model)
    out = {}
    for task, (idx, targets) in batches.items():
        grad = capture(model, idx, targets, params=params, forward=forward).grad
        assert grad is not None
        out[task] = grad
    return out


def cosine_matrix(grads: Mapping[str, torch.Tensor]) -> tuple[list[str], torch.Tensor]:
    """Task names and the (K, K) matrix of cosines between their gradients (0 for a zero gradient)."""
    names = list(grads)
    g = torch.stack([grads[t].double() for t in names])  # (K, P)
    unit = g / g.norm(dim=1, keepdim=True).clamp_min(1e-30)  # (K, P)
    return names, (unit @ unit.T).float()  # (K, K)


def grad_norms(grads: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """{task: L2 norm of its gradient}."""
    return {t: float(g.norm()) for t, g in grads.items()}


def pairwise_cosines(grads: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """{"a|b": cosine} for each unordered pair, in task order."""
    names, cos = cosine_matrix(grads)
    return {
        f"{names[i]}|{names[j]}": float(cos[i, j]) for i, j in combinations(range(len(names)), 2)
    }


def common_weights(
    tasks: Sequence[str], weights: Mapping[str, float] | None = None
) -> dict[str, float]:
    """{common task: its share among `tasks`}: as training weights them (`weights`, the
    mixture's current weights), or equal when the weights are not known."""
    w = {t: float(weights.get(t, 0.0)) if weights is not None else 1.0 for t in tasks}
    total = sum(w.values())
    if total <= 0:  # none of them is being trained on now: fall back to equal shares
        return dict.fromkeys(tasks, 1.0 / len(tasks))
    return {t: x / total for t, x in w.items()}


def common_gradient(
    grads: Mapping[str, torch.Tensor],
    rare: Sequence[str],
    weights: Mapping[str, float] | None = None,
) -> torch.Tensor | None:
    """(P,) the common (non-rare) tasks' gradient as training weights them; None if none."""
    common = [t for t in grads if t not in rare]
    if not common:
        return None
    share = common_weights(common, weights)
    return sum((share[t] * grads[t] for t in common), torch.zeros_like(grads[common[0]]))


def interference(
    grads: Mapping[str, torch.Tensor],
    rare: Sequence[str],
    weights: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """{rare task: mean cosine of its gradient with each common (non-rare) task's gradient,
    weighted by the common tasks' training `weights` (equal when None)}."""
    names, cos = cosine_matrix(grads)
    common = [t for t in names if t not in rare]
    if not common:
        return {}
    share = common_weights(common, weights)
    return {
        t: sum(share[c] * float(cos[names.index(t), names.index(c)]) for c in common)
        for t in rare
        if t in names
    }


@dataclass(frozen=True)
class FirstOrder:
    """A rare task's loss change from one common-task step: predicted to first order, and real."""

    predicted: float
    """⟨g_rare, Δθ⟩."""
    real: float
    """L_rare(θ + Δθ) − L_rare(θ), measured on the probe batch."""


def first_order(
    model: nn.Module,
    batches: Batches,
    rare: Sequence[str],
    grads: Mapping[str, torch.Tensor] | None = None,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    lr: float | None = None,
    clip: float = 0.0,
    marginal: bool = True,
    forward: Forward = default_forward,
    weights: Mapping[str, float] | None = None,
) -> dict[str, FirstOrder]:
    """{rare task: FirstOrder} for one step Δθ on the common tasks' gradient, weighted as
    training weights them (`weights`: the mixture's current weights; equal when None).

    With `optimizer`, Δθ is the update that optimiser makes from its current state (at
    learning rate `lr` if given), found by stepping it and restoring parameters and state
    exactly; `marginal` subtracts the update it makes from a zero gradient, so momentum
    and weight decay do not count as the common tasks' effect. Without `optimizer`,
    Δθ = −lr·g_common (plain SGD). `clip` clips g_common's norm as the trainer does.
    Predicted: ⟨g_rare, Δθ⟩; real: L_rare(θ + Δθ) − L_rare(θ).
    """
    common = [t for t in batches if t not in rare]
    rare = [t for t in rare if t in batches]
    if not common or not rare:
        return {}
    if optimizer is None and lr is None:
        raise RaremixError("first_order needs an optimizer or an lr: pass optimizer=… or lr=…")
    params = trainable(model)
    grads = grads if grads is not None else task_gradients(model, batches, forward)
    g_common = common_gradient({t: grads[t] for t in common}, rare, weights)  # (P,)
    assert g_common is not None
    if clip > 0:
        g_common = g_common * min(1.0, clip / (float(g_common.norm()) + 1e-6))
    if optimizer is None:
        assert lr is not None
        delta = -lr * g_common
    else:
        delta = trial_update(optimizer, params, g_common, lr)
        if marginal:
            delta = delta - trial_update(optimizer, params, torch.zeros_like(g_common), lr)
    before = _losses_at(model, params, None, batches, rare, forward)
    after = _losses_at(model, params, delta, batches, rare, forward)
    return {
        t: FirstOrder(
            predicted=float(grads[t].double() @ delta.double()), real=after[t] - before[t]
        )
        for t in rare
    }


def trial_update(
    optimizer: torch.optim.Optimizer,
    params: Sequence[nn.Parameter],
    grad: torch.Tensor,
    lr: float | None = None,
) -> torch.Tensor:
    """(P,) the change `optimizer.step()` would make to `params` given flat gradient `grad`.

    Parameters, optimiser state, learning rates and `.grad` are restored exactly afterwards.
    """
    owned = {id(p) for group in optimizer.param_groups for p in group["params"]}
    saved_p = [p.detach().clone() for p in params]
    saved_g = [p.grad for p in params]
    had_state = set(optimizer.state)
    saved_state = {
        key: {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in entries.items()}
        for key, entries in optimizer.state.items()
    }
    saved_lr = [group["lr"] for group in optimizer.param_groups]
    try:
        offset = 0
        for p in params:
            n = p.numel()
            p.grad = (
                grad[offset : offset + n].view_as(p).to(p.dtype).clone() if id(p) in owned else None
            )
            offset += n
        if lr is not None:
            for group in optimizer.param_groups:
                group["lr"] = lr
        optimizer.step()
        with torch.no_grad():
            return torch.cat(
                [(p - old).reshape(-1).float() for p, old in zip(params, saved_p, strict=True)]
            )
    finally:
        with torch.no_grad():
            for p, old, g in zip(params, saved_p, saved_g, strict=True):
                p.copy_(old)
                p.grad = g
        for key in list(optimizer.state):
            if key not in had_state:
                del optimizer.state[key]
        for key, entries in saved_state.items():
            live = optimizer.state[key]
            for name, value in entries.items():
                if isinstance(value, torch.Tensor) and isinstance(live.get(name), torch.Tensor):
                    live[name].copy_(value)  # in place: fused/foreach kernels keep their tensors
                else:
                    live[name] = value
        for group, value in zip(optimizer.param_groups, saved_lr, strict=True):
            group["lr"] = value


@torch.no_grad()
def _losses_at(
    model: nn.Module,
    params: Sequence[nn.Parameter],
    delta: torch.Tensor | None,
    batches: Batches,
    tasks: Sequence[str],
    forward: Forward,
) -> dict[str, float]:
    """{task: loss} at θ + delta (θ restored bit for bit afterwards)."""
    saved = [p.detach().clone() for p in params] if delta is not None else []
    try:
        if delta is not None:
            offset = 0
            for p in params:
                p.add_(delta[offset : offset + p.numel()].view_as(p).to(p.dtype))
                offset += p.numel()
        return {t: answer_loss(forward(model, batches[t][0]), batches[t][1]).item() for t in tasks}
    finally:
        for p, s in zip(params, saved, strict=False):
            p.copy_(s)
