""" "Satisfied early": when the common tasks' gradient has shrunk to a fraction of its start.

Huang et al.'s mechanism says a larger model satisfies the common tasks early, after which
their gradients are small and stop overwriting the rare task's features. The number per
run: the first step (and FLOPs) at which the common gradient norm — `probe/common_grad_norm`
(held-out probe batches, tasks weighted as training weights them) or
`ledger/common_grad_norm` (the training batches' common examples) — falls below
`fraction` × its first value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from raremix.errors import RaremixError

SATISFIED_FRACTION = 0.1
"""The declared default: satisfied once the common gradient norm is under 10% of its start."""
METRICS = ("probe/common_grad_norm", "ledger/common_grad_norm")
"""Where the common gradient norm is read from, in order of preference."""


def satisfied_step(
    steps: Sequence[int], norms: Sequence[float], fraction: float = SATISFIED_FRACTION
) -> int | None:
    """The first step whose norm is below `fraction` × the first norm; None if never."""
    if not 0 < fraction < 1:
        raise RaremixError(f"satisfied fraction {fraction}: give a number between 0 and 1")
    s, n = np.asarray(steps), np.asarray(norms, dtype=float)
    if n.size == 0:
        return None
    below = np.flatnonzero(n < fraction * n[0])
    return int(s[below[0]]) if below.size else None


def satisfied_flops(
    rows: pd.DataFrame, flops_per_step: float, fraction: float = SATISFIED_FRACTION
) -> float | None:
    """FLOPs at which one run's common gradient norm first falls below `fraction` of its start
    (rows: that run's metric rows); None if it never does or the run has no such rows."""
    for metric in METRICS:
        r = rows[(rows.metric == metric)].sort_values("step")
        if len(r):
            step = satisfied_step(r.step.tolist(), r.value.tolist(), fraction)
            return None if step is None else step * flops_per_step
    return None
