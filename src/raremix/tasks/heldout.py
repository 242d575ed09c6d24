"""The held-out set a task is scored on: up to n *distinct* held-out inputs, in draw order.

Every evaluation (the trainer's, the HF loop's, the distillation student's) draws its sets
here, so the n written beside each accuracy is the size of one well-defined set. Distinct
inputs only: a small input space (majority of 7 letters has 18 held-out strings) is scored
on each input once, not weighted by how often it happened to be drawn.
"""

from __future__ import annotations

import numpy as np

from raremix.tasks.core import Examples, Task

EVAL_SEED = 0
"""Seed of the held-out evaluation sets: shared by all runs so their scores compare."""
EVAL_EXAMPLES = 256
"""Default held-out examples per task and evaluation (the trainer's `eval_examples`)."""
MIN_HELDOUT = 200
"""The evidence standard: at least this many held-out examples where the space allows."""
_ROUNDS = 16  # most draws: _ROUNDS rounds of 4n candidates


def heldout_set(task: Task, n: int = EVAL_EXAMPLES, seed: int = EVAL_SEED) -> Examples:
    """Up to `n` distinct held-out examples of `task`, the first answer drawn for each input.

    Draws 4n held-out examples at a time and keeps the new inputs, until n are found or a
    whole round finds none (the held-out space is exhausted, to within chance: an input of
    a space of m has probability (1 - 1/m)^(4n) of being missed by a round). The first
    round alone decides any set it fills, so a set's first examples never change when n
    grows.
    """
    first: dict[str, str] = {}  # input → its first answer, in draw order
    width = 4 * n
    for r in range(_ROUNDS):
        ex = task.generate(np.arange(r * width, (r + 1) * width, dtype=np.int64), seed, "heldout")
        before = len(first)
        for x, y in zip(ex.inputs, ex.answers, strict=True):
            first.setdefault(x, y)
        if len(first) >= n or len(first) == before:
            break
    inputs = list(first)[:n]
    return Examples(inputs=inputs, answers=[first[x] for x in inputs])
