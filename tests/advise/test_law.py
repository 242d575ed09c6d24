"""The data-mixing law and the search, on synthetic data whose truth is known."""

from __future__ import annotations

import numpy as np
import pytest

from raremix.advise.law import LawFit, design, fit_laws, sigmoid
from raremix.advise.recommend import Goal, Size, mix_shares, recommend

TRUE = np.array([[1.0, 1.2, 0.8], [2.5, 0.6, 0.3]])  # (tasks, [a, b, c])


def synthetic(n: int, examples: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs with log-uniform shares and four sizes; acc = exact match on `examples`."""
    rng = np.random.default_rng(seed)
    share = np.exp(rng.uniform(np.log(0.02), np.log(0.5), (n, 2)))
    params = rng.choice([1e4, 3e4, 1e5, 3e5], n)
    truth = np.stack([sigmoid(design(share[:, t], params) @ TRUE[t]) for t in range(2)], axis=1)
    return share, params, rng.binomial(examples, truth) / examples


def test_fit_recovers_known_parameters() -> None:
    share, params, acc = synthetic(80, 1000, seed=1)
    law = fit_laws(["rare", "common"], share, params, acc, boot=20, seed=0)
    np.testing.assert_allclose(law.coef, TRUE, atol=0.15)
    assert np.all(law.resid_sd < 0.02)  # binomial noise on 1,000 examples: sd ≤ 0.016


def test_band_covers_the_truth_and_narrows_with_more_runs() -> None:
    rng = np.random.default_rng(5)
    q_share = np.exp(rng.uniform(np.log(0.02), np.log(0.4), (40, 2)))
    q_params = rng.choice([1e4, 3e4, 1e5, 3e5], 40)
    truth = np.stack([sigmoid(design(q_share[:, t], q_params) @ TRUE[t]) for t in range(2)], 1)
    widths = []
    for n in (24, 96):
        share, params, acc = synthetic(n, 100, seed=n)
        law = fit_laws(["rare", "common"], share, params, acc, boot=200, seed=0)
        _, draws = law.predict(q_share, q_params)
        lo, hi = np.percentile(draws, 5, axis=0), np.percentile(draws, 95, axis=0)
        assert ((lo <= truth) & (truth <= hi)).mean() >= 0.8  # a 90% band
        widths.append(float((hi - lo).mean()))
    assert widths[1] < 0.7 * widths[0]


# --- the search, on a law given exactly (no bootstrap spread) -------------------------

NAMES = ["copy", "inc", "compare"]
COUNTS = np.array([600_000.0, 370_000.0, 30_000.0])  # compare: 3% of the mix
SIZES = [Size("small", 1e4, 1e12, 1.0), Size("mid", 1e5, 1e13, 5.0), Size("big", 1e6, 1e14, 40.0)]


def exact_law(rare: tuple[float, float, float], common: tuple[float, float, float]) -> LawFit:
    coef = np.array([common, common, rare])
    return LawFit(
        tuple(NAMES), coef, np.repeat(coef[None], 8, axis=0), np.zeros(3),
        np.array([[0.2, 0.7], [0.1, 0.4], [0.03, 0.3]]), (1e4, 1e6),
    )  # fmt: skip


def goal(**over: object) -> Goal:
    kw: dict[str, object] = {"targets": ["compare"], "target_acc": 0.8, "common_tolerance": 0.02}
    return Goal(**(kw | over))  # type: ignore[arg-type]


def rare_acc(size: Size, factor: float) -> float:
    share = mix_shares(NAMES, COUNTS, ["compare"], factor)[2]
    return float(sigmoid(np.array(2.0 + np.log(share) + 0.5 * np.log(size.params / 1e5))))


def test_recommend_picks_the_cheapest_feasible() -> None:
    # compare: logit = 2 + ln(share) + 0.5 ln(N/1e5). Only 'big' reaches 0.8 within the
    # pilot's shares (≤ 30%), first at factor 6 (18%): 5 (15%) falls just short.
    law = exact_law((2.0, 1.0, 0.5), (3.0, 0.5, 0.0))
    advice = recommend(law, SIZES, COUNTS, goal())
    assert advice.chosen is not None
    assert (advice.chosen.size, advice.chosen.factor) == ("big", 6)
    assert rare_acc(SIZES[2], 6) >= 0.8 > rare_acc(SIZES[2], 5)
    assert advice.chosen.rare[0] == pytest.approx(rare_acc(SIZES[2], 6))
    feasible = [c for c in advice.candidates if c.feasible]
    assert all(c.flops >= advice.chosen.flops for c in feasible)
    assert all(c.target_share <= 0.3 * 1.02 for c in advice.candidates)  # no extrapolation
    # a lower target makes the mid model enough: the cheaper one wins
    cheaper = recommend(law, SIZES, COUNTS, goal(target_acc=0.6)).chosen
    assert cheaper is not None and cheaper.size == "mid"


def test_the_common_tolerance_and_the_budget_bind() -> None:
    law = exact_law((2.0, 1.0, 0.5), (1.0, 1.0, 0.0))  # common tasks suffer from up-weighting
    strict = recommend(law, SIZES, COUNTS, goal(common_tolerance=0.001))
    assert strict.chosen is None and "common_tolerance" in strict.message
    poor = recommend(law, SIZES, COUNTS, goal(common_tolerance=1.0, max_flops=5e13))
    assert poor.chosen is None and "raise the budget" in poor.message


def test_an_infeasible_target_is_a_message_not_a_crash() -> None:
    law = exact_law((2.0, 1.0, 0.5), (3.0, 0.5, 0.0))
    advice = recommend(law, SIZES, COUNTS, goal(target_acc=0.99))
    assert advice.chosen is None
    assert "no candidate reaches rare acc ≥ 0.99" in advice.message
    assert "lower target_acc" in advice.message
    assert len(advice.alternatives) == 6  # natural and designed for each size, still shown
