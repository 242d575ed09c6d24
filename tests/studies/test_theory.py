"""Theory lab: the utility math, the predicted-vs-learned agreement, and the plumbing."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

from raremix.configbase import load
from raremix.errors import RaremixError
from raremix.studies.theory.lab import (
    TheoryConfig,
    TheoryResult,
    batch_gradients,
    frequencies,
    predicted_top,
    rank_agreement,
    run_theory,
    train_bottleneck,
    utilities,
)
from raremix.studies.theory.plot import plot_theory
from raremix.studies.theory.verdict import theory_verdict

ROOT = Path(__file__).resolve().parents[2]
TINY = dict(
    K=3,
    d=4,
    alpha=1.0,
    betas=[1.0, 0.7, 0.4],
    widths=[3, 12],
    steps=300,
    seeds=[0],
    upweight_widths=[3],
    evals=30,
)


@pytest.fixture(scope="module")
def default_result() -> TheoryResult:
    """The shipped config, run once (about 4 s)."""
    return run_theory(TheoryConfig())


def test_utilities_hand_case() -> None:
    cfg = TheoryConfig(K=2, d=2, alpha=2.0, betas=[1.0, 3.0], widths=[1], upweight_widths=[1])
    pi = frequencies(cfg)
    np.testing.assert_allclose(pi, [0.8, 0.2])  # ∝ 1, 1/4
    np.testing.assert_allclose(utilities(cfg, pi), [[0.8, 0.4], [0.2, 0.025]])
    assert predicted_top(utilities(cfg, pi), 3).tolist() == [[True, True], [True, False]]
    np.testing.assert_allclose(frequencies(cfg, upweight=4.0), [0.5, 0.5])


def test_rank_agreement_hand_case() -> None:
    util = np.array([3.0, 2.0, 1.0])
    assert rank_agreement(util, np.array([10.0, 20.0, np.nan])) == 1.0
    assert rank_agreement(util, np.array([np.nan, 20.0, 10.0])) == -1.0


def test_batch_gradients_match_per_example_gradients() -> None:
    rng = np.random.default_rng(0)
    K, d, N, B = 3, 4, 5, 20
    W1, W2 = rng.standard_normal((N, K * d)), rng.standard_normal((K * d, N))
    tasks = rng.integers(0, K, B)
    x = np.zeros((B, K * d))  # each example lives in its own task's block
    for b, k in enumerate(tasks):
        x[b, k * d : (k + 1) * d] = rng.standard_normal(d)
    blocks = [x[tasks == k, k * d : (k + 1) * d] for k in range(K)]
    moments = np.stack([xb.T @ xb / B for xb in blocks])  # (K, d, d)
    h = x @ W1.T
    e = h @ W2.T - x  # per-example errors of ½ mean ‖W2W1x − x‖²
    g1, g2 = batch_gradients(W1, W2, moments)
    np.testing.assert_allclose(g1, W2.T @ e.T @ x / B, atol=1e-10)
    np.testing.assert_allclose(g2, e.T @ h / B, atol=1e-10)


@pytest.mark.slow
def test_wide_model_learns_nearly_all_features(default_result: TheoryResult) -> None:
    runs = default_result.runs
    full = runs[(runs.arm == "natural") & (runs.width == default_result.config.D)]
    assert (full.n_learned >= 46).all()  # measured: 48 of 48 on every seed
    assert (full.rank_agreement >= 0.8).all()  # measured 0.91-0.93; learned in utility order
    assert full.time_slope.between(-1.5, -0.7).all()  # measured −1.14; theory −1


@pytest.mark.slow
def test_narrow_models_learn_the_top_n_by_utility(default_result: TheoryResult) -> None:
    runs = default_result.runs
    narrow = runs[(runs.arm == "natural") & (runs.width < default_result.config.D)]
    # measured over 10 seeds: every run ≥ 0.94, means ≥ 0.96
    assert (narrow.precision >= 0.85).all() and (narrow.recall >= 0.85).all()
    assert narrow.precision.mean() >= 0.9 and narrow.recall.mean() >= 0.9
    assert "by utility: supported" in default_result.verdict()


@pytest.mark.slow
def test_upweighting_brings_rare_features_into_a_narrow_model(
    default_result: TheoryResult,
) -> None:
    runs = default_result.runs.set_index(["arm", "width", "seed"]).rare_coverage
    for seed in default_result.config.seeds:
        assert runs["natural", 8, seed] <= 0.125  # measured 0
        assert runs["upweight", 8, seed] >= 0.75  # measured 0.875 = the prediction
    assert "its features enter" in default_result.verdict()


def test_verdict_says_contradicted_when_nothing_is_learned() -> None:
    result = run_theory(TheoryConfig(**{**TINY, "steps": 2}))
    assert "by utility: contradicted" in result.verdict()
    assert theory_verdict(result).finding == "contradicted"


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"widths": [0]}, "'widths': widths [0] are outside 1..D=48"),
        ({"widths": [49]}, "widths [49] are outside"),
        ({"betas": [1.0, 0.5]}, "'betas': got 2 betas for K=6 tasks"),
        ({"optimizer": "adma"}, "'optimizer': Input should be 'sgd' or 'adam'"),
        ({"alpah": 1.0}, "did you mean 'alpha'"),
        ({"upweight_widths": [12]}, "'upweight_widths': [12] not in widths"),
        ({"steps": 0}, "'steps': Input should be greater than 0"),
    ],
)
def test_bad_config_is_one_clear_line(change: dict, needle: str) -> None:
    with pytest.raises(RaremixError) as err:
        load(TheoryConfig, change, where="theory.yaml")
    message = str(err.value)
    assert needle in message and "\n" not in message and message.startswith("theory.yaml")


def test_shipped_yaml_is_the_default_config() -> None:
    from raremix.studies.theory.verdict import theory_config

    cfg, description = theory_config()
    assert cfg == TheoryConfig() and description


def test_results_are_deterministic_per_seed() -> None:
    cfg = TheoryConfig(**TINY)
    a, b = (train_bottleneck(cfg, 3, frequencies(cfg), seed=0) for _ in range(2))
    np.testing.assert_array_equal(a.W1, b.W1)
    np.testing.assert_array_equal(a.overlap_history, b.overlap_history)
    other = train_bottleneck(cfg, 3, frequencies(cfg), seed=1)
    assert not np.array_equal(a.W1, other.W1)
    alone = run_theory(cfg).features
    together = run_theory(TheoryConfig(**{**TINY, "seeds": [0, 1]})).features
    np.testing.assert_array_equal(
        alone.overlap.to_numpy(), together[together.seed == 0].overlap.to_numpy()
    )


def test_rows_and_plot() -> None:
    result = run_theory(TheoryConfig(**TINY))
    rows = result.rows()
    assert rows and all(set(r) == {"run", "step", "task", "metric", "value"} for r in rows)
    assert {"loss", "precision", "rank_agreement", "rare_coverage"} <= {r["metric"] for r in rows}
    assert all(np.isfinite(r["value"]) for r in rows)
    fig = plot_theory(result)
    assert isinstance(fig, Figure)
    assert sum(ax.axison for ax in fig.axes) >= len(TINY["widths"]) + 3
    plt.close(fig)
