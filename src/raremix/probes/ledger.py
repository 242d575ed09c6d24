"""The interference ledger's arithmetic: split one actual AdamW update by the batch's tasks.

Training takes one AdamW step on the batch's mean answer loss. Its gradient is a sum over
the batch's tasks, each weighted by its share of the batch's answer tokens (the real
mixture weights of that batch):

    g = Σ_k g_k,    g_k = (1/N) Σ_{answer tokens of task-k examples} ∇ℓ,    N = all answer tokens.

Clipping scales g by c = min(1, clip / (‖g‖ + 1e-6)). PyTorch's AdamW then makes

    Δθ = −η λ θ  −  (η / b₁) · (β₁ m + (1 − β₁) c g) / D,    D = √(v' / b₂) + ε,
    v' = β₂ v + (1 − β₂) (c g)²,   b₁ = 1 − β₁ᵗ,   b₂ = 1 − β₂ᵗ,

nonlinear in g only through the denominator D. The ledger holds D at its *actual* value for
this step (the second moment after this batch, as the optimiser really divides by) and
treats it as the step's diagonal preconditioner. Given D the update is affine in g, so it
splits exactly and uniquely:

    Δθ = h  +  Σ_k Δθ_k,    Δθ_k = −(η / b₁)(1 − β₁) c · g_k / D,
    h  = −η λ θ − (η / b₁) β₁ m / D      (earlier batches' momentum, and weight decay).

The first-order change of a victim task's held-out loss is ⟨∇L_v, Δθ⟩ = ⟨∇L_v, h⟩ +
Σ_k ⟨∇L_v, Δθ_k⟩: the parts sum to the full first-order prediction with no remainder.
The choice is that a task's share of D's dependence on g (through g²) is not credited to
it separately: D scales every part alike, as it scales the real update.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from raremix.errors import RaremixError
from raremix.loss import IGNORE, Forward, answer_loss, default_forward
from raremix.probes.capture import flat


@dataclass(frozen=True)
class AdamWSplit:
    """The actual AdamW update from gradient g, as Δθ = history − gain ⊙ g (all (P,))."""

    history: torch.Tensor
    """−ηλθ − (η/b₁) β₁ m / D: what the step does with no gradient from this batch."""
    gain: torch.Tensor
    """(η/b₁)(1 − β₁) c / D: a part g_k of the batch's gradient moves θ by −gain ⊙ g_k."""

    def part(self, g: torch.Tensor) -> torch.Tensor:
        """(P,) the update due to gradient part `g`."""
        return -self.gain * g


def adamw_split(
    optimizer: torch.optim.Optimizer,
    params: Sequence[nn.Parameter],
    grad: torch.Tensor,
    clip: float = 0.0,
) -> AdamWSplit:
    """The split of the step `optimizer` (AdamW, state as it is now) is about to take on
    flat gradient `grad` (P,) over `params`, clipped to norm `clip` (0: none) as the
    trainer clips. Reads the optimiser; changes nothing."""
    if not isinstance(optimizer, torch.optim.AdamW):
        raise RaremixError(
            f"ledger: the optimiser is {type(optimizer).__name__}; the ledger splits AdamW "
            "updates only: train with raremix's AdamW or remove the ledger section"
        )
    coef = 1.0
    if clip > 0:
        coef = min(1.0, clip / (float(grad.norm()) + 1e-6))
    group_of = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    history, gain, offset = [], [], 0
    for p in params:
        n = p.numel()
        g = grad[offset : offset + n].view_as(p).float() * coef
        offset += n
        group = group_of.get(id(p))
        if group is None:  # not trained by this optimiser: it does not move
            history.append(torch.zeros(n, device=grad.device))
            gain.append(torch.zeros(n, device=grad.device))
            continue
        if group.get("amsgrad") or group.get("maximize"):
            raise RaremixError(
                "ledger: AdamW with amsgrad or maximize is not split: use plain AdamW"
            )
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        state = optimizer.state.get(p, {})
        m = state.get("exp_avg", torch.zeros_like(p)).float()
        v = state.get("exp_avg_sq", torch.zeros_like(p)).float()
        t = float(state.get("step", 0)) + 1
        bc1, bc2 = 1 - b1**t, 1 - b2**t
        v_new = v * b2 + (1 - b2) * g * g  # the second moment after this batch
        denom = v_new.sqrt() / bc2**0.5 + eps  # D
        h = -(lr / bc1) * b1 * m / denom - lr * wd * p.detach().float()
        history.append(h.reshape(-1))
        gain.append(((lr / bc1) * (1 - b1) * coef / denom).reshape(-1))
    return AdamWSplit(torch.cat(history), torch.cat(gain))


@dataclass(frozen=True)
class Part:
    """One part of a batch (a task's examples): its share of the batch's mean-loss gradient."""

    grad: torch.Tensor
    """(P,) ∇ of the part's summed answer loss / the whole batch's answer tokens."""
    loss: float
    """The part's mean answer loss over its own answer tokens."""
    tokens: int
    """The part's answer tokens."""


def part_gradients(
    model: nn.Module,
    idx: torch.Tensor,
    targets: torch.Tensor,
    rows: Mapping[str, torch.Tensor],
    params: Sequence[nn.Parameter],
    forward: Forward = default_forward,
) -> dict[str, Part]:
    """{part: Part} for the example rows `rows[part]` of `idx`/`targets` (B, T): the parts'
    gradients sum to the gradient of the whole batch's mean answer loss.

    Uses `torch.autograd.grad`, so `.grad` is untouched; the caller picks the mode and RNG."""
    total = int((targets != IGNORE).sum())
    if total == 0:
        raise RaremixError("ledger: a training batch has no answer tokens: check its targets")
    out = {}
    for part, r in rows.items():
        summed = answer_loss(forward(model, idx[r]), targets[r], reduction="sum")
        tokens = int((targets[r] != IGNORE).sum())
        grad = flat(torch.autograd.grad(summed / total, params, allow_unused=True), params)
        out[part] = Part(grad, summed.item() / max(1, tokens), tokens)
    return out


@torch.no_grad()
def heldout_losses(
    model: nn.Module,
    batches: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
    forward: Forward = default_forward,
) -> dict[str, float]:
    """{task: mean answer loss on its batch} at the model's current parameters."""
    return {t: answer_loss(forward(model, idx), tg).item() for t, (idx, tg) in batches.items()}


def dot(a: torch.Tensor, b: torch.Tensor) -> float:
    """⟨a, b⟩ in double precision."""
    return float(a.double() @ b.double())
