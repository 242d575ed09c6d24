"""The laws and the search, on synthetic pilots whose truth is known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from raremix.advise.advisor import fit, sizes_of
from raremix.advise.law import FLOPS_SCALE, PARAMS_SCALE, fit_laws, logit, sigmoid
from raremix.advise.pilots import RunTable
from raremix.advise.recommend import Goal, mix_shares, recommend

NAMES = ["copy", "inc", "compare"]
COUNTS = np.array([600_000.0, 370_000.0, 30_000.0])  # compare: 3% of the mix
SIZES = {"small": (1e4, 1e8), "big": (1e5, 1e9)}  # params, FLOPs per step
CAP = 2e12  # every pilot run is followed to the same FLOPs (small: 20k steps, big: 2k)
BASE_STEPS = 1_000  # the reference run: the small model, natural mix, 1,000 steps (1e11 FLOPs)
SIGMA = 0.3  # spread of ln(FLOPs-to-learn) across seeds (logistic scale)


def pilot_table(
    median: float, share_slope: float, size_slope: float, common_slope: float, seed: int = 0
) -> RunTable:
    """Pilot runs small/big × factors 1, 3, 10 × 6 seeds whose FLOPs-to-learn is log-logistic:

        ln T = ln(median) − share_slope·ln(share/3%) + size_slope·ln(N/1e4) + SIGMA·logistic

    and whose common tasks' accuracy falls with their share (logit slope `common_slope`).
    Each run is evaluated on a log grid of budgets up to CAP and censored there."""
    rng = np.random.default_rng(seed)
    runs, points = [], []
    for size, (params, per_step) in SIZES.items():
        grid = np.unique(np.geomspace(10, CAP / per_step, 40).round())  # evaluation steps
        for factor in (1.0, 3.0, 10.0):
            share = mix_shares(NAMES, COUNTS, ["compare"], factor)
            nat = mix_shares(NAMES, COUNTS, ["compare"], 1.0)
            for _ in range(6):
                mu = np.log(median) - share_slope * np.log(share[2] / 0.03)
                mu += size_slope * np.log(params / 1e4)
                u = rng.uniform()
                onset = float(np.exp(mu + SIGMA * np.log(u / (1 - u))))
                i = len(runs)
                runs.append((size, params, per_step, factor, share, min(onset, CAP), onset <= CAP))
                common = sigmoid(2.0 + common_slope * np.log(share[:2] / nat[:2]))
                for step in grid:
                    acc = rng.binomial(256, [*common, 0.5]) / 256
                    points.append((i, step * per_step, acc))
    onset = np.array([[CAP, CAP, r[5]] for r in runs])
    learned = np.array([[False, False, r[6]] for r in runs])
    pr = np.array([p[0] for p in points])
    pf = np.array([p[1] for p in points])
    return RunTable(
        run_ids=[str(i) for i in range(len(runs))],
        sizes=[r[0] for r in runs],
        mixes=[str(r[3]) for r in runs],
        seeds=np.arange(len(runs)),
        params=np.array([r[1] for r in runs]),
        flops_per_step=np.array([r[2] for r in runs]),
        followed=np.full(len(runs), CAP),
        sec_per_step=np.full(len(runs), 0.01),
        tasks=NAMES,
        share=np.stack([r[4] for r in runs]),
        onset=onset,
        learned=learned,
        point_run=pr,
        point_flops=pf,
        point_acc=np.stack([p[2] for p in points]),
        point_learned=(learned[pr] & (onset[pr] <= pf[:, None])).astype(float),
    )


def advise(table: RunTable, tolerance: float):
    goal = Goal(["compare"], 0.8, tolerance, BASE_STEPS)
    return recommend(fit(table, ["compare"], boot=40), NAMES, sizes_of(table), COUNTS, goal)


def truth_quantile(
    p: float, median: float, share_slope: float, size_slope: float, factor: float, params: float
) -> float:
    share = mix_shares(NAMES, COUNTS, ["compare"], factor)[2]
    mu = np.log(median) - share_slope * np.log(share / 0.03) + size_slope * np.log(params / 1e4)
    return float(np.exp(mu + SIGMA * logit(p)))


@pytest.mark.parametrize(
    ("world", "truth", "tolerance", "want"),
    [
        # bigger costs FLOPs in proportion, mixing hurts the common tasks: train the small one longer
        ("longer", (4e11, 0.0, 1.0, 30.0), 0.005, ("longer", "small", 1.0)),
        # the big model learns in a tenth of the FLOPs; mixing hurts the common tasks
        ("bigger", (1.5e12, 0.0, -1.0, 30.0), 0.005, ("bigger", "big", 1.0)),
        # up-weighting speeds learning and costs the common tasks nothing
        ("remixed", (1.5e12, 1.5, 1.0, 0.0), 0.02, ("remixed", "small", 10.0)),
    ],
)
def test_the_recommendation_is_the_option_cheapest_by_construction(
    world: str, truth: tuple[float, float, float, float], tolerance: float, want: tuple
) -> None:
    advice = advise(pilot_table(*truth), tolerance)
    c = advice.chosen
    assert c is not None, advice.message
    assert (c.option, c.size, c.factor) == want, advice.message
    # the budget it names is the truth's 0.8-quantile, within the seed noise of 36 runs
    exact = truth_quantile(0.8, *truth[:3], c.factor, c.params)
    assert c.flops[1] <= exact * 1.3 and exact <= c.flops[2] * 1.3
    assert c.flops[0] == pytest.approx(exact, rel=0.35)
    # every other option is priced beside it, and none that meets the goal is cheaper
    priced = {(o.size, o.factor == 1) for o in advice.options}
    assert priced == {(s, nat) for s in SIZES for nat in (True, False)}  # bigger × remixed
    assert world in {o.option for o in advice.options}
    assert all(o.flops[0] >= c.flops[0] for o in advice.options if o.feasible)


def test_the_onset_law_recovers_a_known_log_logistic() -> None:
    """logit P(T ≤ F) = a + b ln s + c ln N + d ln F, sampled at many budgets per run."""
    a, b, c, d = 1.0, 2.0, 1.5, 3.0
    rng = np.random.default_rng(3)
    n = 400
    share = np.exp(rng.uniform(np.log(0.02), np.log(0.4), n))
    params = rng.choice([1e4, 3e4, 1e5, 3e5], n)
    x0 = a + b * np.log(share) + c * np.log(params / PARAMS_SCALE)
    u = rng.uniform(size=n)
    onset = FLOPS_SCALE * np.exp((np.log(u / (1 - u)) - x0) / d)
    budgets = FLOPS_SCALE * np.geomspace(0.05, 20, 25)
    run = np.repeat(np.arange(n), len(budgets))
    f = np.tile(budgets, n)
    y = (onset[run] <= f).astype(float)[:, None]
    law = fit_laws(["rare"], share[run, None], params[run], f, y, run, boot=20, seed=0)
    np.testing.assert_allclose(law.coef[0], [a, b, c, 0.0, d], atol=0.35)
    at, draws = law.flops_for(0.8, np.array([[0.1]]), np.array([1e5]))
    exact = FLOPS_SCALE * np.exp((logit(0.8) - a - b * np.log(0.1)) / d)
    assert at[0, 0] == pytest.approx(exact, rel=0.15)
    lo, hi = np.percentile(draws[:, 0, 0], [2.5, 97.5])
    assert lo < at[0, 0] < hi
