"""Output entropy: how sure the model is of its answers, per task."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn


def token_entropy(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Mean entropy (nats) of softmax(logits) at answer positions; logits (B, T, V), targets (B, T)."""
    logp = torch.log_softmax(logits[targets != -100].float(), dim=-1)  # (A, V)
    return float(-(logp.exp() * logp).sum(dim=-1).mean())


@torch.no_grad()
def answer_entropy(
    model: nn.Module,
    batches: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
    forward: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None,
) -> dict[str, float]:
    """{task: mean token entropy of the model's answer distribution on its batch}."""
    from raremix.probes.capture import default_forward

    fwd = forward or default_forward
    return {
        task: token_entropy(fwd(model, idx), targets) for task, (idx, targets) in batches.items()
    }
