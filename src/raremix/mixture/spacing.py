"""Spacing: when a source appears, as a pure function of (step, shares, state, seed).

A spaced source's examples are not drawn slot by slot; the sampler keeps what it is
*owed* (Σ batch × share since it last appeared, minus what it got) and places them
in the batches its spacing allows:

* `every: k` — exactly the batches k−1, 2k−1, … (every k-th), each holding the
  examples owed since the last one (round half up, so |owed| < 1 after it);
* `window: w` — at least once in every w consecutive batches: each batch takes
  floor(owed + u) examples (u a seeded uniform per step and source: randomised
  rounding, so gaps jitter), and a batch that would close a window without the
  source takes at least one.

The long-run count therefore follows the cumulative target within a couple of
examples, whatever the weights do (schedules, `set_weights`, adaptive rules). When
weights move so that the share can no longer fund the spacing, the spacing wins:
forced appearances run ahead of the target until the share pays the debt back. A
source with zero share (left out, exhausted) owes nothing and has no deadline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from raremix.errors import RaremixError


@dataclass(frozen=True)
class Spacing:
    """Per source: `every` (k, 0: none) and `window` (w, 0: none), int64 in source order."""

    every: np.ndarray
    window: np.ndarray

    @property
    def spaced(self) -> np.ndarray:
        """Which sources are spaced (bool)."""
        return (self.every > 0) | (self.window > 0)


def spaced_counts(
    step: int,
    shares: np.ndarray,
    room: np.ndarray,
    owed: np.ndarray,
    last: np.ndarray,
    spacing: Spacing,
    batch: int,
    u: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Examples of each spaced source in batch `step`, and the new (owed, last).

    `shares` are the effective weights normalised to sum 1 (0 where a source is out);
    `owed` the examples each spaced source is owed before this batch; `last` the step
    it last appeared (−1: never); `u` one uniform in [0, 1) per source for this step.
    Unspaced sources get 0 and keep owed 0. Nothing is modified in place.
    """
    spaced, every, window = spacing.spaced, spacing.every, spacing.window
    live = spaced & (shares > 0) & (room > 0)
    owed = np.where(live, owed + batch * shares, 0.0)
    due_every = (every > 0) & ((step + 1) % np.maximum(every, 1) == 0)
    deadline = (window > 0) & (step - last >= window)
    n = np.where(
        every > 0,
        np.where(due_every, np.floor(owed + 0.5), 0.0),
        np.where(window > 0, np.floor(owed + u), 0.0),
    )
    n = np.where(due_every | deadline, np.maximum(n, 1.0), np.maximum(n, 0.0))
    n = np.where(live, np.minimum(n, room), 0.0).astype(np.int64)
    # several spaced sources due in one batch: the batch bounds them (in source order);
    # what does not fit stays owed and comes in the next batch that takes the source
    free = batch - np.cumsum(n) + n
    n = np.minimum(n, np.maximum(free, 0))
    owed = owed - n
    last = np.where((n > 0) | ~live, step, last)
    return n, owed, last


def check_spacing(
    names: tuple[str, ...],
    spacing: Spacing,
    vectors: np.ndarray,
    batch: int,
    total_steps: int | None,
) -> None:
    """Refuse a spacing that cannot be met under any phase's weights (`vectors`, phases × sources)."""
    spaced = np.flatnonzero(spacing.spaced)
    if len(spaced) == 0:
        return
    need = np.zeros(len(vectors))
    for j in spaced.tolist():
        name, k, w = names[j], int(spacing.every[j]), int(spacing.window[j])
        key, gap = ("every", k) if k else ("window", w)
        if total_steps is not None and gap > total_steps:
            raise RaremixError(
                f"mixture: source '{name}' has {key}: {gap}, longer than the run ({total_steps} steps): "
                f"use {key} <= {total_steps} or drop it"
            )
        for p, row in enumerate(vectors):
            share = float(row[j])
            if share <= 0:
                continue  # left out in this phase: nothing to space
            per_batch = batch * share
            at = f" in phase {p}" if len(vectors) > 1 else ""
            if gap * per_batch < 1:
                least = math.ceil(1 / per_batch - 1e-9)
                raise RaremixError(
                    f"mixture: source '{name}' has {key}: {gap}, shorter than its share allows{at}: "
                    f"weight {share:.3g} of a {batch}-example batch is {per_batch:.3g} examples per "
                    f"batch, under one per {gap} batches: use {key} >= {least} or raise its weight"
                )
            if k and k * share > 1:
                most = max(1, math.floor(1 / share + 1e-9))
                raise RaremixError(
                    f"mixture: source '{name}' has every: {k}, longer than its share fits{at}: "
                    f"{k} batches' worth ({k * per_batch:.3g} examples) overflows one batch of {batch}: "
                    f"use every <= {most} or lower its weight"
                )
            # what one appearance holds on average (rounding past the batch stays owed)
            need[p] += k * per_batch if k else per_batch
    worst = int(np.argmax(need))
    if need[worst] > batch + 1e-9:
        raise RaremixError(
            f"mixture: the spaced sources can need {need[worst]:.0f} examples in one batch of "
            f"{batch}: raise batch_size, or lower their every or weights"
        )
