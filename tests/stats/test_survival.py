"""Kaplan–Meier, log-rank and the Weibull AFT fit, against hand-computed small cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2

from raremix.errors import RaremixError
from raremix.stats import kaplan_meier, logrank, survival_fit

# FLOPs-to-learn in arbitrary units; False = still not learned at that time (censored)
A = ([1.0, 2.0, 3.0, 4.0], [True, False, True, True])
B = ([2.0, 3.0, 5.0, 6.0], [True, True, False, True])


def test_kaplan_meier_steps_by_hand() -> None:
    # A: t=1 one of 4 learns → 3/4; t=2 censored (no step); t=3 one of the 2 still at
    # risk learns → 3/4·1/2 = 3/8; t=4 the last learns → 0.
    curve = kaplan_meier(*A, label="a")
    assert curve["timeline"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert curve["survival"].tolist() == pytest.approx([1, 3 / 4, 3 / 4, 3 / 8, 0])
    # B: t=2 → 3/4; t=3 one of 3 → 3/4·2/3 = 1/2; t=5 censored; t=6 the last → 0.
    curve = kaplan_meier(*B)
    assert curve["survival"].tolist() == pytest.approx([1, 3 / 4, 1 / 2, 1 / 2, 0])
    assert list(curve.columns) == ["timeline", "survival", "ci_lower", "ci_upper"]
    inside = curve.iloc[1:3]
    assert (inside["ci_lower"] < inside["survival"]).all()
    assert (inside["survival"] < inside["ci_upper"]).all()


def test_logrank_by_hand() -> None:
    # At each event time: at risk in A (nA) and in all (N), events d; E_A = d·nA/N,
    # V = d·(nA/N)(1 − nA/N)(N − d)/(N − 1).
    #   t=1: nA=4 N=8 d=1 → E 1/2,  V 1/4
    #   t=2: nA=3 N=7 d=1 → E 3/7,  V 12/49   (A's censoring at 2 still counts at risk)
    #   t=3: nA=2 N=5 d=2 → E 4/5,  V 2·(2/5)(3/5)(3/4) = 9/25
    #   t=4: nA=1 N=3 d=1 → E 1/3,  V 2/9
    #   t=6: nA=0           → E 0,   V 0
    # O_A = 3 events; χ² = (O − E)²/V with one degree of freedom.
    expected = 1 / 2 + 3 / 7 + 4 / 5 + 1 / 3
    variance = 1 / 4 + 12 / 49 + 9 / 25 + 2 / 9
    statistic = (3 - expected) ** 2 / variance
    result = logrank(*A, *B)
    assert result["statistic"] == pytest.approx(statistic)  # 0.81701
    assert result["p"] == pytest.approx(chi2.sf(statistic, 1))
    assert "3/4 vs 3/4 events" in str(result["test"])


def test_logrank_with_no_events_refuses() -> None:
    with pytest.raises(RaremixError, match="no run learned in either arm"):
        logrank([1.0, 2.0], [False, False], [1.0, 2.0], [False, False])


def test_bad_durations_are_one_clear_error() -> None:
    with pytest.raises(RaremixError, match="one duration and one event flag"):
        kaplan_meier([1.0, 2.0], [True])
    with pytest.raises(RaremixError, match="finite"):
        kaplan_meier([1.0, float("nan")], [True, False])
    with pytest.raises(RaremixError, match="True/False"):
        kaplan_meier([1.0, 2.0], [1, 2])


def onset_table(seed: int = 0, runs: int = 120) -> pd.DataFrame:
    """Runs whose log FLOPs-to-learn fall by 0.8 per log-param and 0.5 per log-share
    (Weibull AFT, shape 1/0.3), censored at a cap that ~30% of runs do not reach."""
    rng = np.random.default_rng(seed)
    log_params = rng.uniform(4, 7, runs)
    log_share = rng.uniform(-4, -1, runs)
    # Weibull: log T = Xβ + σ·W with W minimum-Gumbel (numpy draws the maximum one)
    flops = np.exp(35 - 0.8 * log_params - 0.5 * log_share - 0.3 * rng.gumbel(size=runs))
    cap = np.quantile(flops, 0.7)
    return pd.DataFrame(
        {
            "flops": np.minimum(flops, cap),
            "learned": flops <= cap,
            "log_params": log_params,
            "log_share": log_share,
        }
    )


def test_survival_fit_recovers_the_coefficients() -> None:
    # durations ~1e13 FLOPs, as real FLOPs-to-learn are
    table = survival_fit(onset_table(), "flops", "learned", ["log_params", "log_share"])
    assert list(table.columns) == [
        "param",
        "covariate",
        "coef",
        "time_ratio",
        "se",
        "ci_lower",
        "ci_upper",
        "p",
    ]
    rows = table.set_index(["param", "covariate"])
    for name, truth in (("log_params", -0.8), ("log_share", -0.5)):
        row = rows.loc[("lambda_", name)]
        assert row["ci_lower"] < truth < row["ci_upper"], (name, row.to_dict())
        assert row["p"] < 1e-3
        assert row["time_ratio"] == pytest.approx(np.exp(row["coef"]))
    # a formula with the interaction the protocol asks for
    formula = survival_fit(onset_table(1), "flops", "learned", "log_params * log_share")
    assert "log_params:log_share" in set(formula["covariate"])


def test_survival_fit_refuses_data_that_cannot_support_it() -> None:
    table = onset_table()
    with pytest.raises(RaremixError, match="no run learned"):
        survival_fit(table.assign(learned=False), "flops", "learned", ["log_params"])
    few = table.assign(learned=[True, True] + [False] * (len(table) - 2))
    with pytest.raises(RaremixError, match="cannot support"):
        survival_fit(few, "flops", "learned", ["log_params", "log_share"])
    with pytest.raises(RaremixError, match="no column 'steps'"):
        survival_fit(table, "steps", "learned", ["log_params"])
    with pytest.raises(RaremixError, match="bad formula"):
        survival_fit(table, "flops", "learned", "log_parms")
    with pytest.raises(RaremixError, match="positive"):
        survival_fit(table.assign(flops=0.0), "flops", "learned", ["log_params"])


def test_flops_to_learn_comparison_calls_a_null_supported_at_most_alpha() -> None:
    """Two arms of 8 runs from one onset distribution, censored at one cap, through the
    verdict's decision: `supported` at most α of the time (99.9% binomial bound), and a
    large effect (onsets 5× sooner) found at least 80% of the time."""
    from raremix.stats import decide
    from raremix.studies.flops_to_learn import compare_flops_to_learn

    rng = np.random.default_rng(3)

    def arm(scale: float) -> tuple[np.ndarray, np.ndarray]:
        t = rng.weibull(1.5, 8) * scale
        return np.minimum(t, 2.0), t <= 2.0

    sims, false, found = 200, 0, 0
    for _ in range(sims):
        same = rng.uniform(0.5, 3.0)
        c = compare_flops_to_learn(arm(same), arm(same), direction="less", alpha=0.05)
        false += decide(c, direction="less")[0] == "supported"
        c = compare_flops_to_learn(arm(0.3), arm(1.5), direction="less", alpha=0.05)
        found += decide(c, direction="less")[0] == "supported"
    assert false / sims <= 0.05 + 3.1 * np.sqrt(0.05 * 0.95 / sims), false
    assert found / sims >= 0.8, found
