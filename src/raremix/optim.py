"""Optimiser construction and the one update every training step makes."""

from __future__ import annotations

import torch

from raremix.config import OptimConfig


def make_optimizer(
    model: torch.nn.Module, o: OptimConfig, fused: bool = False
) -> torch.optim.Optimizer:
    """AdamW with weight decay on matrices only (not biases, norms, embeddings)."""
    decay: list[torch.nn.Parameter] = []
    rest: list[torch.nn.Parameter] = []
    for name, p in model.named_parameters():
        (decay if p.dim() >= 2 and not name.startswith(("tok", "pos")) else rest).append(p)
    groups = [
        {"params": decay, "weight_decay": o.weight_decay},
        {"params": rest, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=o.lr, betas=(o.beta1, o.beta2), fused=fused or None)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Give every parameter group the learning rate `lr`."""
    for group in optimizer.param_groups:
        group["lr"] = lr


def update(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, loss: torch.Tensor, grad_clip: float
) -> None:
    """One optimiser step on `loss`: fresh gradients, clipped to `grad_clip` (0: no clip)."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
