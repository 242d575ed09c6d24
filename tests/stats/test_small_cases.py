"""Hand-checked small cases: each expected number is worked out in the comment beside it."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from raremix.errors import RaremixError
from raremix.stats import (
    OUTCOMES,
    Comparison,
    compare_counts,
    compare_means,
    decide,
    holm,
    seeds_needed,
    wilson,
)


def test_independent_permutation_p_by_enumeration() -> None:
    # Pool {1, 2, 5, 6, 7, 8}; the treatment {5, 6, 7} sums to 18. With the total fixed,
    # the mean difference grows with the treatment sum, so p = share of the C(6,3) = 20
    # splits whose treatment sums to ≥ 18: {5,6,7}=18, {5,6,8}=19, {5,7,8}=20, {6,7,8}=21
    # ({2,7,8}=17 is the next). p = 4/20.
    c = compare_means([5, 6, 7], [1, 2, 8], direction="greater")
    assert c.p == pytest.approx(4 / 20)
    assert c.effect == pytest.approx(6 - 11 / 3)
    assert c.means == pytest.approx((6, 11 / 3))
    assert c.n == (3, 3)
    assert "exact, 20 splits" in c.test
    # the other tail: splits with sum ≤ 18 are the 16 others plus the observed one
    assert compare_means([5, 6, 7], [1, 2, 8], direction="less").p == pytest.approx(17 / 20)


def test_paired_permutation_p_by_enumeration() -> None:
    # differences (1, 2, 3), mean 2; of the 8 sign flips only (+, +, +) reaches mean ≥ 2
    # (the next, (−1, +2, +3), has mean 4/3). Two-sided: |mean| ≥ 2 twice in 8.
    c = compare_means([2, 4, 6], [1, 2, 3], paired=True)
    assert c.p == pytest.approx(1 / 8)
    assert compare_means([2, 4, 6], [1, 2, 3], paired=True, direction="two-sided").p == (
        pytest.approx(2 / 8)
    )
    assert "exact, 8 sign flips" in c.test


def test_paired_t_interval_by_hand() -> None:
    # differences (1, 2, 3): mean 2, sd 1, se 1/√3, t(0.975, 2) = 4.302653
    c = compare_means([2, 4, 6], [1, 2, 3], paired=True)
    half = 4.302653 / math.sqrt(3)
    assert c.ci == pytest.approx((2 - half, 2 + half), abs=1e-5)
    # one-sided 95% bounds: t(0.95, 2) = 2.919986
    assert c.bounds == pytest.approx((2 - 2.919986 / math.sqrt(3), 2 + 2.919986 / math.sqrt(3)))


def test_three_of_three_against_none_barnard() -> None:
    # The table 3/3 vs 0/3 is the only one with so large a Wald statistic, so Barnard's p
    # is max over the shared rate π of π³(1 − π)³ = (1/2)⁶ = 1/64 (Fisher would say 1/20).
    c = compare_counts(3, 3, 0, 3)
    assert c.p == pytest.approx(1 / 64, abs=1e-6)
    assert c.effect == 1.0 and c.means == (1.0, 0.0)
    assert c.ci[1] == pytest.approx(1.0) and 0 < c.ci[0] < 1
    assert decide(c, direction="greater")[0] == "supported"
    # no difference at all: nothing to report
    assert compare_counts(2, 5, 2, 5).p == pytest.approx(1.0, abs=1e-6)


def test_wilson_known_values() -> None:
    # 0/10: upper = z²/(n + z²) = 3.8415/13.8415 = 0.27753; 5/10: 0.5 ± 0.26341
    assert wilson(0, 10) == pytest.approx((0.0, 0.27753), abs=1e-5)
    assert wilson(5, 10) == pytest.approx((0.23659, 0.76341), abs=1e-5)
    with pytest.raises(RaremixError, match="0 ≤ k ≤ n"):
        wilson(11, 10)


def test_holm_known_vector() -> None:
    # sorted 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 → max(0.04, 0.06) = 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([]) == []
    with pytest.raises(RaremixError, match=r"\[0, 1\]"):
        holm([0.2, 1.3])


def test_contradicted_when_the_interval_excludes_the_published_effect() -> None:
    # eight paired seeds, differences within ±0.02: the upper bound is far below +0.30
    control = np.full(8, 0.5)
    treatment = control + np.array([0.01, -0.02, 0.0, 0.015, -0.01, 0.005, -0.005, 0.01])
    c = compare_means(treatment, control, paired=True)
    outcome, why = decide(c, direction="greater", published=0.3)
    assert outcome == "contradicted"
    assert "+0.30" in why and "excludes" in why
    # a published decrease, mirrored
    less = compare_means(treatment, control, paired=True, direction="less")
    assert decide(less, direction="less", published=-0.3)[0] == "contradicted"
    # two-sided: the 90% interval lies inside ±0.3 (TOST) → contradicted; inside ±0.001 not
    both = compare_means(treatment, control, paired=True, direction="two-sided")
    assert decide(both, direction="two-sided", published=0.3)[0] == "contradicted"
    assert decide(both, direction="two-sided", published=0.001)[0] == "inconclusive"


def test_inconclusive_for_an_underpowered_null() -> None:
    # three noisy seeds per arm cannot exclude a published +0.3, nor find anything
    c = compare_means([0.2, 0.9, 0.4], [0.5, 0.1, 0.7])
    outcome, why = decide(c, direction="greater", published=0.3)
    assert outcome == "inconclusive"
    assert "cannot exclude the published +0.30" in why
    assert decide(c, direction="greater")[0] == "inconclusive"


def test_supported_uses_the_adjusted_p() -> None:
    c = compare_means([0.9, 0.95, 0.92, 0.97, 0.91], [0.1, 0.2, 0.15, 0.12, 0.3])
    assert c.p < 0.05
    assert decide(c, direction="greater")[0] == "supported"
    outcome, why = decide(c, direction="greater", p_adjusted=0.08)
    assert outcome == "inconclusive" and "Holm-adjusted 0.08" in why
    # significant but in the wrong direction is never supported
    wrong = compare_means([0.1, 0.2, 0.15, 0.12, 0.3], [0.9, 0.95, 0.92, 0.97, 0.91])
    assert decide(wrong, direction="greater")[0] == "inconclusive"


def test_out_of_regime_needs_a_reason() -> None:
    c = compare_means([1, 2, 3], [1, 2, 3])
    outcome, why = decide(c, direction="greater", in_regime=False, regime_reason="RL post-training")
    assert outcome == "out of regime" and "RL post-training" in why
    assert outcome in OUTCOMES
    with pytest.raises(RaremixError, match="regime_reason"):
        decide(c, direction="greater", in_regime=False)


def test_decide_refuses_mismatched_direction_or_alpha() -> None:
    c = compare_means([1, 2, 3], [0, 1, 2], direction="greater")
    with pytest.raises(RaremixError, match="direction='less'"):
        decide(c, direction="less")
    with pytest.raises(RaremixError, match="same alpha"):
        decide(c, direction="greater", alpha=0.01)
    with pytest.raises(RaremixError, match="not in the declared direction"):
        decide(c, direction="greater", published=-0.2)


def test_no_spread_gives_no_interval_and_no_contradiction() -> None:
    # every seed 0 in both arms: the t interval would be the point 0, which three seeds
    # cannot justify; the comparison says so instead of contradicting a published +0.3
    c = compare_means([0, 0, 0], [0, 0, 0])
    assert all(math.isnan(x) for x in c.ci)
    assert c.p == 1.0
    assert decide(c, direction="greater", published=0.3)[0] == "inconclusive"
    assert "CI undefined" in c.text()
    assert json.loads(json.dumps(c.as_dict()))["ci"] == [None, None]


def test_nan_seeds_are_dropped_and_named() -> None:
    c = compare_means([1.0, float("nan"), 3.0, 4.0], [0.0, 1.0, float("nan"), 2.0], paired=True)
    assert c.n == (2, 2) and "2 NaN dropped" in c.test
    c = compare_means([1.0, float("nan"), 3.0], [0.0, 1.0, 2.0])
    assert c.n == (2, 3) and "1 NaN dropped" in c.test
    with pytest.raises(RaremixError, match=r"at least 2 seeds per arm.*1 NaN"):
        compare_means([1.0, float("nan")], [0.0, 1.0])


def test_bad_inputs_are_one_clear_error() -> None:
    with pytest.raises(RaremixError, match="at least 2 seeds"):
        compare_means([1.0], [0.0, 1.0])
    with pytest.raises(RaremixError, match="same seeds in both arms"):
        compare_means([1.0, 2.0, 3.0], [0.0, 1.0], paired=True)
    with pytest.raises(RaremixError, match="unknown direction 'bigger'"):
        compare_means([1.0, 2.0], [0.0, 1.0], direction="bigger")  # type: ignore[arg-type]
    with pytest.raises(RaremixError, match="infinity"):
        compare_means([1.0, math.inf], [0.0, 1.0])
    with pytest.raises(RaremixError, match="0 ≤ k ≤ n"):
        compare_counts(4, 3, 0, 3)


def test_text_and_dict() -> None:
    c = Comparison(effect=0.81, ci=(0.52, 1.0), p=0.014, test="Welch", n=(8, 8), means=(0.9, 0.09))
    assert c.text() == "+0.81 [+0.52, +1.00], p = 0.014 (Welch)"
    assert json.loads(json.dumps(c.as_dict()))["n"] == [8, 8]
    # a hand-built comparison has no one-sided bounds: decide falls back to the two-sided
    # CI, whose upper end is a one-sided 97.5% bound
    weak = Comparison(effect=0.2, ci=(-0.3, 1.0), p=0.3, test="Welch", n=(8, 8), means=(0.5, 0.3))
    outcome, why = decide(weak, direction="greater", published=2.0)
    assert outcome == "contradicted" and "97.5%" in why


def test_seeds_needed_known_values() -> None:
    # the textbook n = 64 per group for d = 0.5, two-sided α = 0.05, power 0.8 (63.77)
    assert seeds_needed(0.5, 1.0, direction="two-sided") == 64
    assert seeds_needed(1.0, 1.0, direction="two-sided") == 17  # 16.71
    assert seeds_needed(-1.0, 1.0, direction="less") == seeds_needed(1.0, 1.0)
    # a huge effect still needs the seeds at which the exact test can reach p < 0.05:
    # independent 1/C(8,4) = 1/70 (n = 4), paired 1/2⁵ = 1/32 (n = 5)
    assert seeds_needed(20.0, 1.0) == 4
    assert seeds_needed(20.0, 1.0, paired=True) == 5
    with pytest.raises(RaremixError, match="nonzero"):
        seeds_needed(0.0, 1.0)
    with pytest.raises(RaremixError, match="sd must be a positive"):
        seeds_needed(0.5, 0.0)
    with pytest.raises(RaremixError, match="not in the declared direction"):
        seeds_needed(-0.5, 1.0, direction="greater")
