"""A study's family of comparisons: Holm within the family, calls only on significance,
equivalence only from an interval inside the margin."""

from __future__ import annotations

import numpy as np
import pytest

from raremix.errors import RaremixError
from raremix.stats import (
    claim_outcome,
    compare_means,
    floor_note,
    holm,
    judge,
    mean_sd,
    within_margin,
)

LOW = [0.20, 0.22, 0.25, 0.21, 0.23]
HIGH = [0.60, 0.62, 0.65, 0.61, 0.63]


def test_a_win_needs_the_holm_adjusted_p() -> None:
    judged = judge({"a − b": (HIGH, LOW), "b − a": (LOW, HIGH)}, family="f")
    assert [j.call for j in judged] == ["greater", "less"]
    raw = [compare_means(HIGH, LOW, direction="two-sided").p] * 2
    assert [j.p_adjusted for j in judged] == pytest.approx(holm(raw))
    assert judged[0].p_adjusted == pytest.approx(4 / 252)  # exact: 2 of 252 splits, ×2 (Holm)
    assert "→ greater" in judged[0].text() and "Holm-adjusted p = 0.0159" in judged[0].text()
    assert judged[0].as_dict()["effect"] == pytest.approx(0.4)


def test_three_seeds_cannot_call_a_winner_the_old_rule_would() -> None:
    # means 0.4 apart with sd 0.01: "difference larger than the larger sd" calls a win; the
    # exact two-sided permutation p with 3 vs 3 seeds cannot go below 2/20
    (j,) = judge({"a − b": (HIGH[:3], LOW[:3])}, family="f")
    assert j.call == "indistinguishable" and j.comparison is not None
    assert j.comparison.p == pytest.approx(0.1)


def test_one_seed_is_untested_not_a_win() -> None:
    (j,) = judge({"a − b": ([0.9], [0.1])}, family="f")
    assert j.call == "untested" and j.comparison is None and "1 vs 1 seeds" in j.note
    assert j.text() == "a − b: untested (1 vs 1 seeds: a test needs at least 2 per arm)"
    assert claim_outcome([j], "greater")[0] == "inconclusive"


def test_equivalence_needs_the_interval_inside_the_margin() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(0.5, 0.01, 10)
    tight = judge({"x": (base + 0.005, base[::-1])}, family="f", margin=0.05)[0]
    assert tight.call == "equivalent" and tight.comparison is not None
    assert within_margin(tight.comparison, 0.05)
    # the same mean difference with a wide spread: not significant, and not equivalent either
    wide = rng.normal(0.5, 0.2, 10)
    loose = judge({"x": (wide + 0.005, wide[::-1])}, family="f", margin=0.05)[0]
    assert loose.call == "indistinguishable"
    assert claim_outcome([tight], "equivalent")[0] == "supported"
    assert claim_outcome([tight, loose], "equivalent")[0] == "inconclusive"


def test_an_equivalence_claim_is_contradicted_by_an_effect_beyond_the_margin() -> None:
    judged = judge({"x": (HIGH, LOW)}, family="f", margin=0.05)
    outcome, why = claim_outcome(judged, "equivalent")
    assert outcome == "contradicted" and "x" in why


@pytest.mark.slow
def test_equivalence_is_rarely_called_when_the_truth_is_the_margin() -> None:
    # TOST at α = 0.05: with the true difference at the margin, 'equivalent' ≤ α of the time
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(200):
        a, b = rng.normal(0.55, 0.05, 5), rng.normal(0.5, 0.05, 5)
        hits += judge({"x": (a, b)}, family="f", margin=0.05)[0].call == "equivalent"
    assert hits / 200 <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / 200)


def test_a_margin_must_be_positive() -> None:
    with pytest.raises(RaremixError, match="margin must be positive"):
        judge({"x": (HIGH, LOW)}, family="f", margin=0.0)


def test_a_family_too_large_for_its_seeds_says_so() -> None:
    # 5 vs 5 two-sided: the exact floor is 2/252 ≈ 0.0079; Holm over 8 needs p < 0.00625
    eight = judge({f"c{i}": (HIGH, LOW) for i in range(8)}, family="f")
    assert {j.call for j in eight} == {"indistinguishable"}
    assert "Underpowered by design" in floor_note(eight) and "0.00625" in floor_note(eight)
    assert floor_note(eight[:6]) == ""  # 0.05 / 6 = 0.0083 > 0.0079: reachable
    assert floor_note(judge({"x": ([0.1], [0.2])}, family="f")) == ""  # nothing tested


def test_mean_sd_shows_no_spread_it_did_not_measure() -> None:
    assert mean_sd([0.5, 0.7]) == "0.60 ± 0.14"
    assert mean_sd([0.5, float("nan")]) == "0.50"  # one finite seed: no spread
    assert mean_sd([], digits=3) == "n/a"
