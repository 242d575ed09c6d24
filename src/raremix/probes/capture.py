"""One probing pass over a task's batch: loss, parameter gradient, neuron and residual activity.

Every probe reads the same pass, so a probe costs one forward and (when gradients are
wanted) one backward per task. Activity is captured by forward hooks on modules the
caller names, never by editing the model. Batches follow raremix's convention:
`idx` (B, T) token ids and `targets` (B, T) with the token to predict at each position
and -100 where no loss is taken.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from raremix.errors import RaremixError

# the one answer loss and the model adapter (re-exported here) live below everything
from raremix.loss import IGNORE as IGNORE
from raremix.loss import Forward as Forward
from raremix.loss import answer_loss as answer_loss
from raremix.loss import default_forward as default_forward
from raremix.probes.entropy import token_entropy


def neuron_modules(model: nn.Module) -> list[nn.Module]:
    """The MLP activation modules (`*.mlp.act`, `*.mlp.act_fn`): raremix GPT, GPT-2, Llama-style."""
    return [m for name, m in model.named_modules() if name.endswith(("mlp.act", "mlp.act_fn"))]


def residual_modules(model: nn.Module) -> list[nn.Module]:
    """The transformer blocks, whose outputs are the residual stream (`blocks`, `h` or `layers`)."""
    for name, m in model.named_modules():
        if isinstance(m, nn.ModuleList) and name.rsplit(".", 1)[-1] in ("blocks", "h", "layers"):
            return list(m)
    return []


def trainable(model: nn.Module) -> list[nn.Parameter]:
    """Parameters that take gradients, in `named_parameters` order (tied weights once)."""
    return [p for p in model.parameters() if p.requires_grad]


@dataclass
class TaskCapture:
    """What one pass over a task's probe batch saw. N: neurons over all hooked modules."""

    loss: float
    grad: torch.Tensor | None = None
    """(P,) flat gradient of the task's mean answer loss over `trainable(model)`."""
    attribution: torch.Tensor | None = None
    """(N,) Σ over positions of |activation × ∂loss/∂activation|: first-order ablation impact."""
    active: torch.Tensor | None = None
    """(N,) bool: the neuron's activation was positive at some real position."""
    features: torch.Tensor | None = None
    """(B, C) residual stream at each example's first answer-predicting position."""
    first_answer: torch.Tensor | None = None
    """(B,) the first answer token of each example (the target at that position)."""
    entropy: float | None = None
    """Mean entropy (nats) of the predicted distribution at answer positions."""


def flat(grads: Sequence[torch.Tensor | None], params: Sequence[nn.Parameter]) -> torch.Tensor:
    """Concatenate per-parameter gradients into one (P,) vector (zeros where unused)."""
    return torch.cat(
        [
            (g if g is not None else torch.zeros_like(p)).reshape(-1).float()
            for g, p in zip(grads, params, strict=True)
        ]
    )


def capture(
    model: nn.Module,
    idx: torch.Tensor,
    targets: torch.Tensor,
    *,
    params: Sequence[nn.Parameter] = (),
    neurons: Sequence[nn.Module] = (),
    residual: nn.Module | None = None,
    entropy: bool = False,
    forward: Forward = default_forward,
) -> TaskCapture:
    """One forward (and a backward when `params` or `neurons` are given) over one task's batch.

    Uses `torch.autograd.grad`, so parameters' `.grad` are left untouched; the caller
    chooses train/eval mode (probes use eval: no dropout, no random draws).
    """
    answer = targets != IGNORE  # (B, T)
    if not bool(answer.any()):
        raise RaremixError(
            "a probe batch has no answer positions (all targets are -100): check its targets"
        )
    pos = torch.arange(targets.shape[1], device=targets.device)  # (T,)
    last = torch.where(answer, pos, -1).amax(dim=1)  # (B,) last answer-predicting position
    real = pos[None, :] <= last[:, None]  # (B, T) prompt and answer, not padding
    first = (
        torch.where(answer, pos, targets.shape[1]).amin(dim=1).clamp(max=targets.shape[1] - 1)
    )  # (B,)

    acts: list[torch.Tensor] = []
    resid: list[torch.Tensor] = []
    handles = [m.register_forward_hook(lambda _m, _i, out: acts.append(out)) for m in neurons]
    if residual is not None:
        handles.append(
            residual.register_forward_hook(
                lambda _m, _i, out: resid.append(
                    (out[0] if isinstance(out, tuple) else out).detach()
                )
            )
        )
    backward = bool(params) or bool(neurons)
    try:
        with torch.set_grad_enabled(backward):
            logits = forward(model, idx)  # (B, T, V)
    finally:
        for h in handles:
            h.remove()
    loss = answer_loss(logits, targets)
    out = TaskCapture(loss=loss.item())

    if backward:
        grads = torch.autograd.grad(loss, [*params, *acts], allow_unused=True)
        if params:
            out.grad = flat(grads[: len(params)], params)
        if neurons:
            attr, active = [], []
            for a, g in zip(acts, grads[len(params) :], strict=True):  # a, g: (B, T, n)
                g = torch.zeros_like(a) if g is None else g
                attr.append(((a * g).abs() * real[..., None]).sum(dim=(0, 1)).float())  # (n,)
                active.append(((a > 0) & real[..., None]).any(dim=1).any(dim=0))  # (n,)
            out.attribution, out.active = torch.cat(attr), torch.cat(active)
    if resid:
        rows = torch.arange(idx.shape[0], device=idx.device)
        out.features = resid[-1][rows, first].float()  # (B, C) where the answer starts
        out.first_answer = targets[rows, first]  # (B,)
    if entropy:
        out.entropy = token_entropy(logits.detach(), targets)
    return out


def shift_labels(labels: torch.Tensor) -> torch.Tensor:
    """Hugging Face causal-LM `labels` (B, T) (aligned with the inputs) → raremix targets (B, T)
    (position t holds the token t + 1), -100 kept as "no loss"."""
    targets = torch.full_like(labels, IGNORE)
    targets[:, :-1] = labels[:, 1:]
    return targets
