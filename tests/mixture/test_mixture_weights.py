"""Weighting strategies: the math of each, as pure functions of sizes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raremix.errors import RaremixError
from raremix.mixture.weights import (
    STRATEGIES,
    SourceStats,
    check_params,
    explicit,
    natural,
    temperature,
    uniform,
    unimax,
    upweight,
)

NAMES = ("copy", "sort", "modadd", "parity")
SIZES = np.array([100_000.0, 20_000.0, 2_000.0, 50.0])
STATS = SourceStats(NAMES, SIZES, budget=60_000)


def test_natural_and_uniform() -> None:
    assert natural(STATS) == pytest.approx(SIZES / SIZES.sum())
    assert uniform(STATS).tolist() == [0.25] * 4


@given(st.lists(st.integers(1, 10**9), min_size=1, max_size=20))
@settings(max_examples=50, deadline=None)
def test_temperature_limits(sizes: list[int]) -> None:
    stats = SourceStats(tuple(f"s{i}" for i in range(len(sizes))), np.array(sizes, dtype=float))
    assert temperature(stats, tau=1.0) == pytest.approx(natural(stats))
    assert temperature(stats, tau=math.inf) == pytest.approx(uniform(stats))
    assert temperature(stats, tau=1e12) == pytest.approx(uniform(stats))
    # higher temperature flattens: the smallest source's share never falls
    small = int(np.argmin(sizes))
    assert temperature(stats, tau=3.0)[small] >= natural(stats)[small] - 1e-12


def test_temperature_formula() -> None:
    expected = (SIZES / SIZES.sum()) ** (1 / 2)
    assert temperature(STATS, tau=2.0) == pytest.approx(expected / expected.sum())


def test_unimax_follows_the_reference_algorithm() -> None:
    # budget 60,000 over 4 sources, 1 epoch cap; smallest first:
    # parity: min(15,000, 50) = 50; modadd: min(59,950/3, 2,000) = 2,000;
    # sort: min(57,950/2, 20,000) = 20,000; copy: min(37,950, 100,000) = 37,950
    w = unimax(STATS, max_epochs=1.0)
    assert w * 60_000 == pytest.approx([37_950, 20_000, 2_000, 50])
    # a 2-epoch cap doubles what small sources may take
    w2 = unimax(STATS, max_epochs=2.0, budget=60_000)
    assert w2 * 60_000 == pytest.approx([27_950, 27_950, 4_000, 100])
    # a budget beyond every cap: weights follow the caps
    assert unimax(STATS, max_epochs=1.0, budget=10**9) == pytest.approx(natural(STATS))


def test_upweight_factor_is_exact_and_the_rest_renormalised() -> None:
    base = natural(STATS)
    w = upweight(STATS, tasks=["modadd", "parity"], factor=10.0)
    assert w[2] == pytest.approx(10 * base[2]) and w[3] == pytest.approx(10 * base[3])
    rest = base[:2] / base[:2].sum() * (1 - w[2] - w[3])
    assert w[:2] == pytest.approx(rest)
    assert w.sum() == pytest.approx(1.0)


def test_upweight_floor_and_both() -> None:
    w = upweight(STATS, tasks=["parity"], floor=0.05)
    assert w[3] == pytest.approx(0.05)
    # a floor below the natural share leaves it alone
    assert upweight(STATS, tasks=["copy"], floor=0.01)[0] == pytest.approx(natural(STATS)[0])
    both = upweight(STATS, tasks=["modadd", "parity"], factor=2.0, floor=0.01)
    assert both[2] == pytest.approx(max(2 * natural(STATS)[2], 0.01))
    assert both[3] == pytest.approx(0.01)
    assert upweight(STATS, tasks=["parity"], factor=2, base="uniform") == pytest.approx(
        [1 / 6, 1 / 6, 1 / 6, 0.5]
    )
    assert upweight(
        STATS, tasks=["parity"], factor=1, base="temperature", tau=2.0
    ) == pytest.approx(temperature(STATS, tau=2.0))


def test_upweight_refusals() -> None:
    with pytest.raises(RaremixError, match=r"needs params\.factor or params\.floor"):
        upweight(STATS, tasks=["parity"])
    with pytest.raises(RaremixError, match=r"would take 1\.6 of the mix"):
        upweight(STATS, tasks=["modadd", "parity"], floor=0.8)


def test_explicit() -> None:
    w = explicit(STATS, weights={"copy": 2, "sort": 1, "modadd": 1, "parity": 0})
    assert w.tolist() == [0.5, 0.25, 0.25, 0.0]
    with pytest.raises(RaremixError, match="miss source 'parity': give each a weight"):
        explicit(STATS, weights={"copy": 2, "sort": 1, "modadd": 1})


def test_registry_and_param_checks() -> None:
    assert set(STRATEGIES) == {
        "natural",
        "uniform",
        "temperature",
        "unimax",
        "upweight",
        "explicit",
    }
    assert check_params("temperature", {"tau": "2"}, NAMES) == {"tau": 2.0}
    with pytest.raises(
        ValueError, match="strategy 'natural' has no parameter 'tau': it takes no parameters"
    ):
        check_params("natural", {"tau": 2}, NAMES)
    with pytest.raises(
        ValueError, match=r"params.weights\['copy'\]: Input should be greater than or equal to 0"
    ):
        check_params("explicit", {"weights": {"copy": -1}}, NAMES)
    with pytest.raises(ValueError, match="unknown source 'cpy': did you mean 'copy'"):
        check_params("explicit", {"weights": {"cpy": 1}}, NAMES)
