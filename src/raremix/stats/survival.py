"""Time-to-learn outcomes: Kaplan–Meier curves, the log-rank test and a Weibull AFT model.

"FLOPs-to-learn" is a duration right-censored at the run's cap: a run that never learned
says only "more than its cap". These wrap lifelines (imported inside the functions: it
takes seconds to import) and turn inputs it would quietly misread into RaremixErrors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from raremix.errors import RaremixError

if TYPE_CHECKING:
    from raremix.stats.compare import Comparison, Direction


def kaplan_meier(
    durations: Sequence[float] | np.ndarray,
    observed: Sequence[bool] | np.ndarray,
    label: str = "",
    *,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """The Kaplan–Meier survival curve ("not yet learned") with its (1 − alpha) band.

    Columns: timeline, survival, ci_lower, ci_upper; one row per distinct time, from 0.
    """
    t, e = _durations(durations, observed, label or "kaplan_meier")
    from lifelines import KaplanMeierFitter

    fitter = KaplanMeierFitter(alpha=alpha).fit(t, event_observed=e, label=label or "survival")
    band = fitter.confidence_interval_survival_function_
    return pd.DataFrame(
        {
            "timeline": fitter.survival_function_.index.to_numpy(dtype=float),
            "survival": fitter.survival_function_.iloc[:, 0].to_numpy(),
            "ci_lower": band.iloc[:, 0].to_numpy(),
            "ci_upper": band.iloc[:, 1].to_numpy(),
        }
    )


def logrank(
    durations_a: Sequence[float] | np.ndarray,
    observed_a: Sequence[bool] | np.ndarray,
    durations_b: Sequence[float] | np.ndarray,
    observed_b: Sequence[bool] | np.ndarray,
) -> dict[str, float | str]:
    """The log-rank test of equal survival curves (two-sided): statistic, p, test."""
    ta, ea = _durations(durations_a, observed_a, "arm a")
    tb, eb = _durations(durations_b, observed_b, "arm b")
    if not (ea.any() or eb.any()):
        raise RaremixError(
            "no run learned in either arm: the log-rank test needs at least one observed "
            "event; train longer (raise the cap) or report the learned counts"
        )
    from lifelines.statistics import logrank_test

    result = logrank_test(ta, tb, event_observed_A=ea, event_observed_B=eb)
    return {
        "statistic": float(result.test_statistic),
        "p": float(result.p_value),
        "test": f"log-rank ({int(ea.sum())}/{len(ta)} vs {int(eb.sum())}/{len(tb)} events)",
    }


def censor_at(
    durations: Sequence[float] | np.ndarray, observed: Sequence[bool] | np.ndarray, cap: float
) -> tuple[np.ndarray, np.ndarray]:
    """Durations and events as if every run had been followed only to `cap`."""
    t, e = _durations(durations, observed, "censor_at")
    return np.minimum(t, cap), e & (t <= cap)


def compare_survival(
    durations_t: Sequence[float] | np.ndarray,
    observed_t: Sequence[bool] | np.ndarray,
    durations_c: Sequence[float] | np.ndarray,
    observed_c: Sequence[bool] | np.ndarray,
    *,
    tau: float,
    direction: Direction = "less",
    alpha: float = 0.05,
) -> Comparison:
    """Treatment vs control times to learn, both followed to `tau`, as a `Comparison`.

    `tau` is where both arms were followed to (the lower of their caps): a later time
    is censored there, so neither arm is credited with time it was not followed. The test
    is the log-rank test (lifelines), one-sided in the declared direction by halving its
    two-sided p on the side the effect lies (else 1 − p/2). The effect is the difference
    of restricted mean times, mean(min(T, tau)) (treatment − control; "less": the
    treatment learns sooner), in units of `tau`, so it lies in [−1, 1], with Welch's t
    interval (scipy). That mean is exact only when every run was followed to
    `tau` or learned, so a run censored before `tau` is refused.
    """
    from scipy.stats import ttest_ind

    from raremix.stats.compare import Comparison

    ta, ea = _durations(durations_t, observed_t, "treatment")
    tb, eb = _durations(durations_c, observed_c, "control")
    if not tau > 0:
        raise RaremixError(
            f"compare_survival: tau must be positive (got {tau}): follow the runs longer"
        )
    early = [t for t, e in zip(np.r_[ta, tb], np.r_[ea, eb], strict=True) if not e and t < tau]
    if early:
        raise RaremixError(
            f"compare_survival: a run was censored at {early[0]:.3g}, before tau = {tau:.3g}: "
            "follow every run to the cap (or until it learns), or compare at a lower tau"
        )
    ta, ea = censor_at(ta, ea, tau)
    tb, eb = censor_at(tb, eb, tau)
    test = logrank(ta, ea, tb, eb)  # raises when neither arm learned by tau
    xa, xb = ta / tau, tb / tau
    effect, p2 = float(xa.mean() - xb.mean()), float(test["p"])
    with np.errstate(all="ignore"):  # no spread in either arm: NaN intervals, said as such
        ci = ttest_ind(xa, xb, equal_var=False).confidence_interval(1 - alpha)
        low = ttest_ind(xa, xb, equal_var=False, alternative="greater").confidence_interval(
            1 - alpha
        )
        high = ttest_ind(xa, xb, equal_var=False, alternative="less").confidence_interval(1 - alpha)
    if direction == "two-sided":
        p = p2
    else:
        toward = effect < 0 if direction == "less" else effect > 0
        p = p2 / 2 if toward else 1 - p2 / 2
    return Comparison(
        effect=effect,
        ci=(float(ci.low), float(ci.high)),
        p=p,
        test=f"{test['test']}; mean of min(FLOPs-to-learn, τ = {tau:.3g}) in units of τ, Welch t CI",
        n=(len(ta), len(tb)),
        means=(float(xa.mean()), float(xb.mean())),
        direction=direction,
        alpha=alpha,
        bounds=(float(low.low), float(high.high)),
    )


def survival_fit(
    df: pd.DataFrame,
    duration_col: str,
    event_col: str,
    formula_or_covariates: str | Sequence[str],
    *,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """A Weibull accelerated-failure-time model of the duration on the covariates.

    `formula_or_covariates` is a formula ("log_params * log_share") or a list of columns.
    Returns one row per coefficient: param, covariate, coef, time_ratio (exp(coef): the
    factor on the time to learn per unit of the covariate), se, ci_lower, ci_upper, p.
    """
    if isinstance(formula_or_covariates, str):
        formula: str = formula_or_covariates
    else:
        formula = " + ".join(formula_or_covariates)
    if not formula.strip():
        raise RaremixError("survival_fit needs at least one covariate or a formula")
    missing = [col for col in (duration_col, event_col) if col not in df.columns]
    if missing:
        raise RaremixError(
            f"survival_fit: no column '{missing[0]}'; the table has {', '.join(map(str, df.columns))}"
        )
    t, e = _durations(df[duration_col], df[event_col], duration_col)
    if (t <= 0).any():
        raise RaremixError(
            f"survival_fit: '{duration_col}' must be positive (the model works on log time); "
            f"got {t.min()}"
        )
    events = int(e.sum())
    if events == 0:
        raise RaremixError(
            f"survival_fit: no run learned ('{event_col}' is never true), so the data cannot "
            "support a survival model; train longer (raise the cap) or report learned counts"
        )

    from formulaic.errors import FormulaicError
    from lifelines import WeibullAFTFitter
    from lifelines.exceptions import ConvergenceError

    data = df.assign(**{duration_col: t, event_col: e})
    try:
        fitter = WeibullAFTFitter(alpha=alpha).fit(
            data, duration_col=duration_col, event_col=event_col, formula=formula
        )
    except FormulaicError as error:
        raise RaremixError(f"survival_fit: bad formula '{formula}': {error}") from None
    except ConvergenceError:
        raise RaremixError(
            f"survival_fit: the Weibull model did not converge on {len(data)} runs with "
            f"{events} events: the data cannot support this fit (too few events or a "
            "covariate that separates learned from not learned); simplify the formula or add runs"
        ) from None
    table = fitter.summary
    if events <= len(table):
        raise RaremixError(
            f"survival_fit: {events} events cannot support a model with {len(table)} "
            "parameters; add runs (or train longer) or simplify the formula"
        )
    level = round(100 * (1 - alpha))
    return pd.DataFrame(
        {
            "param": table.index.get_level_values(0),
            "covariate": table.index.get_level_values(1),
            "coef": table["coef"].to_numpy(),
            "time_ratio": table["exp(coef)"].to_numpy(),
            "se": table["se(coef)"].to_numpy(),
            "ci_lower": table[f"coef lower {level}%"].to_numpy(),
            "ci_upper": table[f"coef upper {level}%"].to_numpy(),
            "p": table["p"].to_numpy(),
        }
    )


def _durations(
    durations: Sequence[float] | np.ndarray | pd.Series,
    observed: Sequence[bool] | np.ndarray | pd.Series,
    what: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Durations as floats and events as bools, refusing what lifelines would misread."""
    t = np.asarray(durations, dtype=float)
    raw = np.asarray(observed)
    if t.ndim != 1 or raw.ndim != 1 or len(t) != len(raw):
        raise RaremixError(
            f"{what}: need one duration and one event flag per run; got {t.size} durations "
            f"and {raw.size} flags"
        )
    if len(t) == 0:
        raise RaremixError(f"{what}: no runs to analyse")
    if not np.isfinite(t).all():
        raise RaremixError(
            f"{what}: durations must be finite numbers; a run that never learned has its "
            "cap as duration and event False"
        )
    if (t < 0).any():
        raise RaremixError(f"{what}: durations must not be negative; got {t.min()}")
    flags = set(np.unique(raw).tolist())
    if not flags <= {0, 1}:  # True == 1, False == 0
        raise RaremixError(
            f"{what}: event flags must be True/False (or 1/0); got {sorted(map(str, flags))}"
        )
    return t, raw.astype(bool)
