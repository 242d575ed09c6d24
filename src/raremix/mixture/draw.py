"""Per-batch sampling math, as pure functions of arrays and integer keys.

`draw_iid` and `draw_stratified` decide which source fills each slot of one global
batch; `occurrence` turns that into each slot's draw number within its source. The
sampler owns the state; nothing here keeps any.
"""

from __future__ import annotations

import numpy as np

from raremix.mixture.permute import uniforms
from raremix.seeding import finalize64_int


class InverseCDF:
    """Maps uniforms in [0, 1) to sources by inverse CDF, exactly as `searchsorted`.

    A guide table over 2**g equal buckets answers most uniforms with one lookup (a
    bucket that holds no CDF boundary has one answer); only uniforms in buckets that
    straddle a boundary are binary-searched. Random-key `searchsorted` is ~10× slower
    than the lookup, and the answers are identical, so this is speed only.
    """

    def __init__(self, weights: np.ndarray, guide: bool = True) -> None:
        w = np.asarray(weights, dtype=np.float64)
        positive = np.flatnonzero(w > 0)
        assert len(positive), "no source has positive weight"
        cdf = np.cumsum(w)
        cdf /= cdf[-1]  # monotone, and exactly 1.0 at the end: u < 1 always finds a source
        cdf[positive[-1] :] = 1.0
        self.cdf = cdf
        self.buckets = 0
        if guide:
            # ~32 buckets per source: few buckets straddle a boundary even when many
            # small weights crowd the top of the CDF (Zipf)
            self.buckets = 1 << min(20, max(10, int(np.ceil(np.log2(32 * len(w))))))
            edges = np.arange(self.buckets + 1, dtype=np.float64) / self.buckets
            lo = np.searchsorted(cdf, edges[:-1], side="right")
            hi = np.searchsorted(cdf, edges[1:], side="left")
            self.guide = np.where(lo == hi, lo, -1)  # -1: the bucket straddles a boundary

    def __call__(self, u: np.ndarray) -> np.ndarray:
        """Source index for each uniform (int64)."""
        if not self.buckets:
            return np.searchsorted(self.cdf, u, side="right")
        bucket = (u * self.buckets).astype(np.int64)  # exact: the bucket count is a power of 2
        out = self.guide[bucket]
        unsure = np.flatnonzero(out < 0)
        if len(unsure):
            out[unsure] = np.searchsorted(self.cdf, u[unsure], side="right")
        return out


def draw_iid(
    key: int, batch: int, weights: np.ndarray, room: np.ndarray, choose: InverseCDF
) -> np.ndarray:
    """Sources for `batch` independent draws; shorter if every source runs out of room.

    `weights` must already be zero where `room` is zero, and `choose` built from them.
    Slot j uses uniform (key, j). When a source runs out mid-batch, the slots from
    the one that would overflow on are redrawn from the renormalised weights with
    fresh uniforms (key + round), so the result stays unbiased and deterministic.
    """
    k = len(weights)
    src = choose(uniforms(key, batch))
    counts = np.bincount(src, minlength=k)
    if np.all(counts <= room):
        return src
    parts, filled, rnd = [], 0, 0
    w, room = weights.copy(), room.copy()
    while True:
        over = np.flatnonzero(counts > room)
        if len(over) == 0:
            parts.append(src)
            break
        # the first slot at which some source would be drawn past its room
        cut = min(int(np.flatnonzero(src == j)[room[j]]) for j in over)
        parts.append(src[:cut])
        room = room - np.bincount(src[:cut], minlength=k)
        filled += cut
        w[room <= 0] = 0.0
        if filled == batch or w.sum() <= 0:
            break
        rnd += 1
        src = InverseCDF(w, guide=False)(
            uniforms(finalize64_int(key + rnd), np.arange(filled, batch))
        )
        counts = np.bincount(src, minlength=k)
    return np.concatenate(parts)


def apportion(quota: np.ndarray, total: int, eligible: np.ndarray | None = None) -> np.ndarray:
    """Largest remainder: integer counts >= 0 summing to `total`, each floor(q) or floor(q)+1.

    The leftover units go to the largest fractional parts, only among `eligible`
    entries (all by default); ties go to the lower index (a stable sort), so the
    result is deterministic.
    """
    counts = np.maximum(np.floor(quota), 0).astype(np.int64)
    short = total - int(counts.sum())
    frac = quota - counts
    if eligible is not None:
        frac = np.where(eligible, frac, -np.inf)
    if short > 0:
        order = np.argsort(-frac, kind="stable")
        if eligible is not None:
            order = order[: int(eligible.sum())]
        while short > 0 and len(order):  # several rounds only if quotas undershoot by > k
            take = order[: min(short, len(order))]
            counts[take] += 1
            short -= len(take)
    elif short < 0:
        held = [i for i in np.argsort(frac, kind="stable") if counts[i] > 0]
        for i in held[:-short]:
            counts[i] -= 1
    return counts


def draw_stratified(
    batch: int, weights: np.ndarray, carry: np.ndarray, room: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-source counts for one batch, and the carried remainder after it.

    Quotas are batch × weight + carry; largest remainder turns them into counts and
    the carry keeps what rounding took or gave, so the realised count never strays
    a full example from the cumulative target. A source that runs out of room is
    capped at its room and the rest of the batch re-apportioned over the others; a
    source that leaves the mix drops its carry (the targets are re-based).
    """
    counts = np.zeros(len(weights), dtype=np.int64)
    fixed = np.zeros(len(weights), dtype=bool)
    active = (weights > 0) & (room > 0)
    while True:
        free = active & ~fixed
        left = batch - int(counts.sum())
        if left <= 0 or not free.any():
            return counts, np.zeros(len(weights))
        p = np.where(free, weights, 0.0)
        quota = p * (left / p.sum()) + np.where(free, carry, 0.0)
        got = apportion(quota, left, free)
        over = got > room
        if not over.any():
            # Σ carry stays 0 so the next quotas again sum to the batch; re-centring also
            # absorbs carries dropped by sources that left and float rounding over 1e8 steps
            new_carry = np.where(free, quota - got, 0.0)
            new_carry -= np.where(free, new_carry.sum() / free.sum(), 0.0)
            return counts + got, new_carry
        counts[over] = room[over]  # rare: a source runs out within this batch
        fixed |= over


def arrange(counts: np.ndarray, key: int) -> tuple[np.ndarray, np.ndarray]:
    """The batch's slots: source ids with the given counts, each source spread evenly.

    Source i's j-th item goes to position (j + u_i) / n_i of the batch (u_i a seeded
    uniform), so every contiguous slice — a rank's part, a micro-batch — holds close
    to its proportional share of each source, not a run of one source. Returns the
    slots' sources and each slot's occurrence (j) within its source.
    """
    k = len(counts)
    grouped = np.repeat(np.arange(k), counts)
    occ = np.arange(len(grouped)) - (np.cumsum(counts) - counts)[grouped]
    if len(grouped) < 2:
        return grouped, occ
    place = (occ + uniforms(key, k)[grouped]) / counts[grouped]
    # within a source, places increase with j, so slot order keeps occurrence order;
    # below 2**15 slots, 16-bit keys get numpy's linear-time radix sort
    # (the min: a place that rounds up to exactly 1.0 must not wrap to -32768)
    keys = np.minimum(place * 32768, 32767).astype(np.int16) if len(grouped) < 2**15 else place
    order = np.argsort(keys, kind="stable")
    return grouped[order], occ[order]


def occurrence(
    src: np.ndarray, k: int, lo: int = 0, hi: int | None = None, counts: np.ndarray | None = None
) -> np.ndarray:
    """For slots lo..hi: how many earlier slots of the batch drew the same source.

    `counts` may pass `bincount(src[lo:hi], minlength=k)` if the caller has it.
    """
    part = src[lo:hi]
    # int16 ids take numpy's radix sort: linear and several times faster
    order = np.argsort(part.astype(np.int16) if k < 2**15 else part, kind="stable")
    if counts is None:
        counts = np.bincount(part, minlength=k)
    occ = np.empty(len(part), dtype=np.int64)
    # in sorted order each group of a source starts at its cumulative count
    occ[order] = np.arange(len(part)) - np.repeat(np.cumsum(counts) - counts, counts)
    if lo:
        occ += np.bincount(src[:lo], minlength=k)[part]
    return occ
