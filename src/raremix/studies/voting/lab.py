"""The math of extreme decomposition with voting (MAKER): the vote, red flags, closed forms.

Pure NumPy functions of arrays (and an explicit seed where random); the model-facing
executor is `voting_run.py`. Notation: a *sample* is one answer drawn from the model;
`p` is the probability that a valid (not red-flagged) sample is correct; a *step* is
decided by first-to-ahead-by-k voting over valid samples; a *task* of `s` steps
succeeds when every step is decided correctly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
FLAGGED = -1
"""A red-flagged sample in a vote stream: discarded, it counts for no answer."""


@dataclass(frozen=True)
class VoteResult:
    """The state of first-to-ahead-by-k votes after a block of samples."""

    winner: I64
    """(N,) the decided answer, or -1 where the vote is still open."""
    used: I64
    """(N,) samples of this block consumed: up to the deciding one, else all of them."""
    counts: I64
    """(N, V) valid votes per answer after the consumed samples."""


def vote(stream: I64, k: int | I64, n_answers: int, counts: I64 | None = None) -> VoteResult:
    """First-to-ahead-by-k over each row of `stream` (N, S): answers in [0, n_answers) or
    `FLAGGED`. Samples are read left to right, continuing from `counts` (N, V) if given;
    a row is decided at the first sample after which one answer leads every other by `k`.
    k = 1 is "the first valid sample"; `k` may differ per row ((N,) array)."""
    n, s = stream.shape
    kk = np.broadcast_to(np.asarray(k, dtype=np.int64), (n,))[:, None]  # (N, 1)
    if (kk < 1).any():
        raise ValueError(f"k must be >= 1, got {np.min(kk)}")
    start = np.zeros((n, n_answers), np.int64) if counts is None else counts
    onehot = stream[:, :, None] == np.arange(n_answers)  # (N, S, V); flagged rows are all False
    c = start[:, None, :] + np.cumsum(onehot, axis=1)  # (N, S, V) counts after each sample
    top2 = np.sort(c, axis=2)[:, :, -2:] if n_answers > 1 else np.pad(c, ((0, 0), (0, 0), (1, 0)))
    ahead = (top2[:, :, 1] - top2[:, :, 0] >= kk) & (stream != FLAGGED)  # (N, S)
    decided = ahead.any(axis=1)  # (N,)
    at = np.where(decided, ahead.argmax(axis=1), s - 1)  # (N,) last sample consumed
    final = c[np.arange(n), at] if s else start  # (N, V)
    winner = np.where(decided, final.argmax(axis=1), -1)
    used = np.where(decided, at + 1, s)
    return VoteResult(winner.astype(np.int64), used.astype(np.int64), final.astype(np.int64))


def red_flag(first: I64, second: I64, answer_ids: I64, eos_id: int) -> I64:
    """The answer a sampled reply stands for, or `FLAGGED` when it is malformed.

    `first`, `second` (N,) are the first two sampled tokens; a well-formed reply is one
    of `answer_ids` followed by `eos_id`. Anything else — a non-answer token, or a reply
    that goes on past its one answer token (too long) — is red-flagged. Returns (N,)
    indices into `answer_ids`.
    """
    lut = np.full(int(max(answer_ids.max(), first.max(initial=0))) + 1, FLAGGED, np.int64)
    lut[answer_ids] = np.arange(len(answer_ids))
    idx = lut[first]  # (N,)
    return np.where((idx != FLAGGED) & (second == eos_id), idx, FLAGGED)


def voted_success(p: float | F64, k: int) -> F64:
    """P(a step decided by first-to-ahead-by-k is right) when each valid sample is right
    with probability p and wrong answers are lumped as one (gambler's ruin):
    p^k / (p^k + (1-p)^k) = 1 / (1 + ((1-p)/p)^k). Splitting the wrong answers over
    several values only helps, so this is a lower bound for more than two answers."""
    q = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(q > 0, (1 - q) / np.where(q > 0, q, 1), np.inf)
        return np.where(q > 0, 1.0 / (1.0 + ratio**k), 0.0)


def task_success(p: float | F64, k: int, steps: int | I64 | F64) -> F64:
    """P(all `steps` voted steps are right) = voted_success(p, k) ** steps (independent steps)."""
    return np.power(voted_success(p, k), np.asarray(steps, dtype=np.float64))


def k_needed(p: float, steps: int, target: float) -> int:
    """The smallest k whose task success over `steps` steps reaches `target` (MAKER's
    ⌈ln(t^(-1/s) - 1) / ln((1-p)/p)⌉, at least 1). Needs p > 1/2."""
    if not 0.5 < p < 1 or not 0 < target < 1 or steps < 1:
        raise ValueError(
            f"k_needed wants 1/2 < p < 1, 0 < target < 1, steps >= 1; got {p}, {target}, {steps}"
        )
    k = math.ceil(math.log(target ** (-1 / steps) - 1) / math.log((1 - p) / p))
    return max(1, k)


def expected_samples(p: float, k: int) -> float:
    """Expected valid samples per two-outcome first-to-ahead-by-k vote (gambler's ruin
    duration from 0 to ±k): k/(2p-1) · (1 - 2·P_wrong), or k² at p = 1/2."""
    if abs(2 * p - 1) < 1e-12:
        return float(k * k)
    win = float(voted_success(p, k))
    return float(k / (2 * p - 1) * (2 * win - 1))


def simulate_votes(p: float, k: int, n: int, seed: int, n_answers: int = 2) -> VoteResult:
    """`n` independent votes where each sample is right (answer 0) with probability p, and
    otherwise one of the `n_answers - 1` wrong answers uniformly: for checking the closed forms."""
    rng = np.random.default_rng(seed)
    counts = np.zeros((n, n_answers), np.int64)
    winner = np.full(n, -1, np.int64)
    used = np.zeros(n, np.int64)
    open_ = np.arange(n)
    while open_.size:
        block = max(k, 4)
        right = rng.random((open_.size, block)) < p
        wrong = 1 + rng.integers(0, max(1, n_answers - 1), (open_.size, block))
        res = vote(np.where(right, 0, wrong), k, n_answers, counts[open_])
        counts[open_], used[open_] = res.counts, used[open_] + res.used
        winner[open_] = res.winner
        open_ = open_[res.winner < 0]
    return VoteResult(winner, used, counts)


def wilson(successes: float | F64, n: float | F64, alpha: float = 0.05) -> tuple[F64, F64]:
    """Wilson score intervals, elementwise: `raremix.stats.wilson` on each (successes, n)
    pair of the broadcast arrays (counts computed as rate × n are rounded to whole numbers);
    NaN where n is 0 or missing. Returns (low, high)."""
    from raremix.stats import wilson as wilson_one

    k, m = np.broadcast_arrays(np.asarray(successes), np.asarray(n))
    low, high = np.full(k.shape, np.nan), np.full(k.shape, np.nan)
    for i in np.ndindex(k.shape):
        if m[i] > 0:
            low[i], high[i] = wilson_one(round(float(k[i])), round(float(m[i])), alpha)
    return low, high


def survival(first_error: I64, lengths: I64) -> I64:
    """How many chains are still error-free after each of `lengths` steps, from the step
    (1-based) of each chain's first error (a chain with none holds a value > every length)."""
    return (first_error[None, :] > np.asarray(lengths)[:, None]).sum(axis=1).astype(np.int64)
