"""Two-arm comparisons: a test, an interval and the effect, in one `Comparison`.

`compare_means` compares per-seed values (final accuracy, area under the curve) with an
exact permutation test and a t interval; `compare_counts` compares "k of n seeds
learned" with Barnard's exact test and a Newcombe interval. docs/statistics.md says why
each fits rare-task data and why the interval is a t interval rather than a bootstrap.

scipy and statsmodels are imported inside the functions: they take seconds to import
and most CLI commands never compare anything.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from typing import Any, Literal

import numpy as np

from raremix.errors import RaremixError

Direction = Literal["greater", "less", "two-sided"]
DIRECTIONS: tuple[Direction, ...] = ("greater", "less", "two-sided")


@dataclass(frozen=True)
class Comparison:
    """Treatment vs control: the effect, its interval and the test's p-value."""

    effect: float
    """Treatment − control: a difference of means, or of proportions."""
    ci: tuple[float, float]
    """Two-sided (1 − alpha) interval of the effect; NaN when the data cannot give one."""
    p: float
    """p-value of the test in the declared direction."""
    test: str
    """The test and the interval, e.g. "paired permutation (exact, 16 sign flips); paired t CI"."""
    n: tuple[int, int]
    """Observations (seeds) per arm: treatment, control."""
    means: tuple[float, float]
    """Treatment mean, control mean (or the two proportions)."""
    direction: Direction = "greater"
    """The direction the test was run in; `decide` checks it matches the hypothesis."""
    alpha: float = 0.05
    """The level the intervals were computed at."""
    bounds: tuple[float, float] | None = None
    """One-sided (1 − alpha) lower and upper bounds of the effect (the two-sided 1 − 2·alpha
    interval): what `decide` tests a published effect against. None: use `ci` (stricter)."""

    def within(self, low: float, high: float) -> Comparison:
        """The same comparison with its intervals cut to the effect's possible range, e.g.
        [-1, 1] for a difference of accuracies (a t interval on bounded data can overshoot)."""

        def cut(pair: tuple[float, float]) -> tuple[float, float]:
            return (max(pair[0], low), min(pair[1], high))

        return replace(self, ci=cut(self.ci), bounds=cut(self.bounds) if self.bounds else None)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able values; NaN becomes None."""
        return {key: _jsonable(value) for key, value in asdict(self).items()}

    def text(self, unit: str = "") -> str:
        """One line: "+0.81 [+0.52, +1.00], p = 0.014 (paired permutation …)"."""
        low, high = self.ci
        interval = (
            "[CI undefined]"
            if math.isnan(low) or math.isnan(high)
            else f"[{signed(low)}, {signed(high)}]"
        )
        return f"{signed(self.effect)}{unit} {interval}, {p_text(self.p)} ({self.test})"


def compare_means(
    treatment: Sequence[float] | np.ndarray,
    control: Sequence[float] | np.ndarray,
    *,
    paired: bool = False,
    direction: Direction = "greater",
    alpha: float = 0.05,
    seed: int = 0,
    n_resamples: int = 9999,
) -> Comparison:
    """Difference of means, tested by permutation, with a t interval.

    paired=True when the arms share seeds (the same init and data stream): the test flips
    the signs of the per-seed differences. Otherwise the pooled values are split every way
    between the arms. The test is exact when there are at most `n_resamples` permutations,
    else it draws that many (seeded) and stays valid. NaN values (a seed with no metric)
    are dropped — pairwise when paired — and the count is named in `test`.
    """
    check_direction(direction)
    check_alpha(alpha)
    t, c = _values(treatment, "treatment"), _values(control, "control")
    if paired and len(t) != len(c):
        raise RaremixError(
            f"a paired comparison needs one treatment and one control value per seed; got "
            f"{len(t)} treatment and {len(c)} control values: pass the same seeds in both arms"
        )
    if paired:
        keep = ~(np.isnan(t) | np.isnan(c))
        dropped = int((~keep).sum())
        t, c = t[keep], c[keep]
    else:
        dropped = int(np.isnan(t).sum() + np.isnan(c).sum())
        t, c = t[~np.isnan(t)], c[~np.isnan(c)]
    if len(t) < 2 or len(c) < 2:
        raise RaremixError(
            f"comparing means needs at least 2 seeds per arm; got {len(t)} treatment and "
            f"{len(c)} control"
            + (f" after dropping {dropped} NaN" if dropped else "")
            + ": run more seeds"
        )

    import scipy.stats

    if paired:
        permutations, unit = 2 ** len(t), "sign flips"
        result = scipy.stats.permutation_test(
            (t - c,),
            _mean,
            permutation_type="samples",
            vectorized=True,
            n_resamples=n_resamples,
            alternative=direction,
            rng=seed,
        )
    else:
        permutations, unit = math.comb(len(t) + len(c), len(t)), "splits"
        result = scipy.stats.permutation_test(
            (t, c),
            _mean_difference,
            permutation_type="independent",
            vectorized=True,
            n_resamples=n_resamples,
            alternative=direction,
            rng=seed,
        )
    how = (
        f"exact, {permutations:,} {unit}"
        if permutations <= n_resamples
        else f"{n_resamples:,} random {unit}"
    )
    name = "paired permutation" if paired else "permutation"
    ci_name = "paired t CI" if paired else "Welch t CI"
    test = f"{name} ({how}); {ci_name}"
    if dropped:
        test += f"; {dropped} NaN dropped"
    ci, bounds = _t_intervals(t, c, paired=paired, alpha=alpha)
    return Comparison(
        effect=float(t.mean() - c.mean()),
        ci=ci,
        p=float(result.pvalue),
        test=test,
        n=(len(t), len(c)),
        means=(float(t.mean()), float(c.mean())),
        direction=direction,
        alpha=alpha,
        bounds=bounds,
    )


def compare_counts(
    k_treat: int,
    n_treat: int,
    k_ctrl: int,
    n_ctrl: int,
    *,
    direction: Direction = "greater",
    alpha: float = 0.05,
) -> Comparison:
    """ "k of n seeds learned" in each arm: Barnard's exact test and a Newcombe interval.

    The effect is the difference of the two proportions; `means` are the proportions.
    """
    check_direction(direction)
    check_alpha(alpha)
    _check_count(k_treat, n_treat, "treatment")
    _check_count(k_ctrl, n_ctrl, "control")
    p = _barnard(k_treat, n_treat, k_ctrl, n_ctrl, direction)
    ci = _newcombe(k_treat, n_treat, k_ctrl, n_ctrl, alpha)
    bounds = _newcombe(k_treat, n_treat, k_ctrl, n_ctrl, 2 * alpha)
    rates = (k_treat / n_treat, k_ctrl / n_ctrl)
    return Comparison(
        effect=rates[0] - rates[1],
        ci=ci,
        p=p,
        test=f"Barnard exact ({k_treat}/{n_treat} vs {k_ctrl}/{n_ctrl}); Newcombe CI",
        n=(n_treat, n_ctrl),
        means=rates,
        direction=direction,
        alpha=alpha,
        bounds=bounds,
    )


def wilson(k: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n (never leaves [0, 1])."""
    check_alpha(alpha)
    _check_count(k, n, "wilson")
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(k, n, alpha=alpha, method="wilson")
    return float(low), float(high)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the order given (family-wise error control)."""
    values = [float(p) for p in pvalues]
    bad = [p for p in values if not 0.0 <= p <= 1.0]
    if bad:
        raise RaremixError(f"p-values must lie in [0, 1]; got {bad[0]}")
    if len(values) < 2:
        return values  # a family of one: nothing to adjust (and statsmodels' call costs a gc pass)
    from statsmodels.stats.multitest import multipletests

    return [float(p) for p in multipletests(values, method="holm")[1]]


def check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise RaremixError(
            f"unknown direction '{direction}': choose one of {', '.join(DIRECTIONS)}"
        )


def check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 0.5:
        raise RaremixError(f"alpha must lie in (0, 0.5); got {alpha}: the usual value is 0.05")


def signed(x: float) -> str:
    """An effect with its sign, two decimals unless it is very large or very small."""
    if x == 0 or 0.01 <= abs(x) < 1000:
        return f"{x:+.2f}"
    return f"{x:+.3g}"


def mean_sd(values: Sequence[float] | np.ndarray | Any, digits: int = 2) -> str:
    """'0.56 ± 0.05' over the finite values (one value: '0.56', no spread measured; none: 'n/a').
    Descriptive only: a verdict's decisions come from the tests."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not len(v):
        return "n/a"
    if len(v) < 2:
        return f"{v.mean():.{digits}f}"
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}"


def p_text(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3g}"


def _mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return x.mean(axis=axis)


def _mean_difference(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return x.mean(axis=axis) - y.mean(axis=axis)


def _values(values: Sequence[float] | np.ndarray, arm: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise RaremixError(f"the {arm} values must be a flat list, one per seed")
    if np.isinf(array).any():
        raise RaremixError(f"the {arm} values contain an infinity: check the metric")
    return array


def _t_intervals(
    t: np.ndarray, c: np.ndarray, *, paired: bool, alpha: float
) -> tuple[tuple[float, float], tuple[float, float]]:
    """The (1 − alpha) two-sided t interval and the one-sided (1 − alpha) bounds.

    Both are NaN when every seed gives the same value (paired: the same difference): the
    t interval would collapse to a point, which three seeds cannot justify.
    """
    spread = np.ptp(t - c) if paired else max(np.ptp(t), np.ptp(c))
    if spread == 0:
        nan = (math.nan, math.nan)
        return nan, nan
    import scipy.stats

    with warnings.catch_warnings():
        # near-identical values warn about precision; the interval is still right
        warnings.simplefilter("ignore", RuntimeWarning)
        result = (
            scipy.stats.ttest_rel(t, c) if paired else scipy.stats.ttest_ind(t, c, equal_var=False)
        )
        ci = result.confidence_interval(1 - alpha)
        one_sided = result.confidence_interval(1 - 2 * alpha)
    return (float(ci.low), float(ci.high)), (float(one_sided.low), float(one_sided.high))


def _check_count(k: int, n: int, arm: str) -> None:
    if int(k) != k or int(n) != n:
        raise RaremixError(f"{arm}: counts must be whole numbers; got k={k}, n={n}")
    if n < 1 or not 0 <= k <= n:
        raise RaremixError(f"{arm}: need 0 ≤ k ≤ n and n ≥ 1; got k={k}, n={n}")


# Outcomes are small integers, so studies and simulations hit the same few tables.
@lru_cache(maxsize=4096)
def _barnard(k_treat: int, n_treat: int, k_ctrl: int, n_ctrl: int, direction: Direction) -> float:
    import scipy.stats

    # columns are the two binomial samples: p1 = treatment, p2 = control
    table = [[k_treat, k_ctrl], [n_treat - k_treat, n_ctrl - k_ctrl]]
    return float(scipy.stats.barnard_exact(table, alternative=direction).pvalue)


@lru_cache(maxsize=4096)
def _newcombe(
    k_treat: int, n_treat: int, k_ctrl: int, n_ctrl: int, alpha: float
) -> tuple[float, float]:
    from statsmodels.stats.proportion import confint_proportions_2indep

    low, high = confint_proportions_2indep(
        k_treat, n_treat, k_ctrl, n_ctrl, method="newcomb", compare="diff", alpha=alpha
    )
    return float(low), float(high)


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
