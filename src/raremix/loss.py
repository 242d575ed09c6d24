"""The answer loss and the teacher-forced exact-match score: the one definition of each.

Batches follow raremix's convention: `idx` (B, T) token ids and `targets` (B, T) holding
the token to predict at each position, -100 (`IGNORE`) where no loss is taken. This
module imports nothing of raremix, so the trainer, the probes, the distributed wrapper
and the evaluations all share it without an import circle.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

IGNORE = -100
Batches = Mapping[str, tuple[torch.Tensor, torch.Tensor]]
"""{task: (idx (B, T), targets (B, T))}: one batch per task, as probes and signals read them."""
Forward = Callable[[nn.Module, torch.Tensor], torch.Tensor]
"""(model, idx (B, T)) → logits (B, T, V): adapts any model to the probes and scorers."""


def default_forward(model: nn.Module, idx: torch.Tensor) -> torch.Tensor:
    """Logits of a model that returns a tensor, an output with `.logits` (Hugging Face) or a tuple."""
    out = model(idx)
    if isinstance(out, torch.Tensor):
        return out
    logits = getattr(out, "logits", None)
    if logits is None and isinstance(out, tuple | list):
        logits = out[0]
    if not isinstance(logits, torch.Tensor):
        from raremix.errors import RaremixError

        raise RaremixError(
            f"the model returned {type(out).__name__}, not logits: pass forward=lambda m, idx: ... returning (B, T, V)"
        )
    return logits


def answer_loss(
    logits: torch.Tensor, targets: torch.Tensor, reduction: Literal["mean", "sum"] = "mean"
) -> torch.Tensor:
    """Cross-entropy over answer positions (targets -100 elsewhere), their mean or sum; logits (B, T, V)."""
    return F.cross_entropy(
        logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE, reduction=reduction
    )


def exact_match(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(B,) bool: every answer token of the example is the argmax given the correct prefix.

    For structured tasks this equals exact match under greedy decoding, in one forward pass."""
    hit = (logits.argmax(-1) == targets) | (targets == IGNORE)  # (B, T)
    return hit.all(dim=1)


@torch.no_grad()
def score(
    model: nn.Module, batches: Batches, forward: Forward = default_forward
) -> tuple[np.ndarray, np.ndarray]:
    """Per task, in `batches` order: mean answer loss and teacher-forced exact-match accuracy."""
    loss, acc = [], []
    for idx, targets in batches.values():
        logits = forward(model, idx)  # (B, T, V)
        loss.append(answer_loss(logits, targets).item())
        acc.append(exact_match(logits, targets).float().mean().item())
    return np.array(loss), np.array(acc)
