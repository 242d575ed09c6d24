"""Per-batch math: inverse CDF, largest remainder, stratified counts, slot arrangement."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from raremix.mixture.draw import (
    InverseCDF,
    apportion,
    arrange,
    draw_iid,
    draw_stratified,
    occurrence,
)
from raremix.mixture.permute import uniforms

weights = st.lists(
    st.one_of(st.just(0.0), st.floats(1e-12, 1.0), st.floats(1.0, 1e6)), min_size=1, max_size=300
).filter(lambda w: sum(w) > 0)


@given(weights, st.integers(0, 2**63))
@settings(max_examples=60, deadline=None)
def test_guide_table_answers_exactly_as_searchsorted(w: list[float], key: int) -> None:
    u = np.concatenate([uniforms(key, np.arange(2000)), [0.0, 1 - 2**-53, 0.5]])
    choose = InverseCDF(np.array(w))
    plain = np.searchsorted(choose.cdf, u, side="right")
    assert np.array_equal(choose(u), plain)
    assert np.array_equal(InverseCDF(np.array(w), guide=False)(u), plain)
    assert all(w[i] > 0 for i in np.unique(plain))  # zero weights are never drawn


@given(st.lists(st.floats(0, 50), min_size=1, max_size=40), st.integers(0, 200))
@settings(max_examples=80, deadline=None)
def test_apportion_is_largest_remainder(quota: list[float], total: int) -> None:
    q = np.array(quota)
    if q.sum() > 0:
        q = q / q.sum() * total  # quotas summing to the total, as the sampler makes them
    counts = apportion(q, total)
    assert counts.sum() == total and (counts >= 0).all()
    if q.sum() > 0:
        assert np.all(counts >= np.floor(q) - 1e-9) and np.all(counts <= np.floor(q) + 1)


@given(weights, st.integers(1, 64), st.integers(1, 60))
@settings(max_examples=40, deadline=None)
def test_stratified_counts_track_the_cumulative_target(
    w: list[float], batch: int, steps: int
) -> None:
    p = np.array(w) / np.sum(w)
    carry = np.zeros(len(p))
    room = np.full(len(p), 10**12)
    realised = np.zeros(len(p))
    for t in range(1, steps + 1):
        counts, carry = draw_stratified(batch, p, carry, room)
        assert counts.sum() == batch
        realised += counts
        assert np.abs(realised - t * batch * p).max() < 1 + 1e-6


def test_stratified_respects_room_and_reapportions() -> None:
    p = np.array([0.5, 0.25, 0.25])
    counts, _ = draw_stratified(8, p, np.zeros(3), np.array([1, 100, 100]))
    assert counts.tolist()[0] == 1 and counts.sum() == 8
    counts, _ = draw_stratified(8, p, np.zeros(3), np.array([1, 2, 0]))
    assert counts.tolist() == [1, 2, 0]  # the stream runs dry: a short batch


def test_iid_redraws_past_an_exhausted_source_without_bias() -> None:
    w = np.array([0.5, 0.5])
    room = np.array([3, 10**9])
    src = draw_iid(123, 1000, w, room, InverseCDF(w))
    assert len(src) == 1000 and (src == 0).sum() == 3
    dry = draw_iid(123, 1000, w, np.array([3, 4]), InverseCDF(w))
    assert len(dry) == 7


@given(
    st.lists(st.integers(0, 30), min_size=1, max_size=12).filter(lambda c: sum(c) > 0),
    st.integers(0, 2**63),
)
@settings(max_examples=60, deadline=None)
def test_arrange_spreads_sources_and_reports_occurrences(counts: list[int], key: int) -> None:
    src, occ = arrange(np.array(counts), key)
    assert np.bincount(src, minlength=len(counts)).tolist() == counts
    assert np.array_equal(occ, occurrence(src, len(counts)))
    # any prefix holds each source's proportional share, give or take a few
    n = len(src)
    for cut in (n // 4, n // 2, 3 * n // 4):
        got = np.bincount(src[:cut], minlength=len(counts))
        assert np.all(np.abs(got - cut * np.array(counts) / n) <= len(counts) + 1)


def test_occurrence_of_a_slice_counts_the_slots_before_it() -> None:
    src = np.array([2, 0, 2, 1, 2, 0, 0])
    assert occurrence(src, 3).tolist() == [0, 0, 1, 0, 2, 1, 2]
    assert occurrence(src, 3, 3, 6).tolist() == [0, 2, 1]
