"""A data-mixing law for one task: accuracy as a function of its share of the mix and model size.

    logit(acc) = a + b·ln(share) + c·ln(params / 1e5)

fitted per task over pilot runs by quasi-binomial logistic regression (IRLS, a small
ridge on the slopes so that a pilot with one size or one mix still fits), and a
bootstrap over runs for the uncertainty band. In the spirit of Ye et al. (2024, "Data
Mixing Laws") and RegMix (Liu et al. 2025): a small regression from the mixture to the
outcome, fitted on small runs. Pure NumPy: arrays and an explicit seed in, arrays out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PARAMS_SCALE = 1e5
"""ln(params) is centred at 100k parameters, so the intercept is the 100k model's logit."""
RIDGE = 1e-3
"""L2 penalty on the two slopes (not the intercept), relative to the number of runs."""
EPS = 1e-6


def design(share: np.ndarray, params: np.ndarray) -> np.ndarray:
    """The law's design matrix (n, 3): [1, ln(share), ln(params / 1e5)]."""
    s = np.clip(np.asarray(share, dtype=np.float64), EPS, 1.0)
    p = np.asarray(params, dtype=np.float64)
    return np.stack([np.ones_like(s), np.log(s), np.log(p / PARAMS_SCALE)], axis=-1)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-z), without overflow."""
    return np.exp(-np.logaddexp(0.0, -np.asarray(z, dtype=np.float64)))


def fit_logistic(x: np.ndarray, y: np.ndarray, ridge: float = RIDGE, iters: int = 50) -> np.ndarray:
    """Coefficients β (k,) of E[y] = σ(x·β) for y in [0, 1] (quasi-binomial IRLS).

    The ridge (× n) on every column but the first keeps a pilot without spread in a
    covariate (one size, one mix) or with perfectly learned tasks finite.
    """
    x, y = np.asarray(x, dtype=np.float64), np.clip(np.asarray(y, dtype=np.float64), 0.0, 1.0)
    n, k = x.shape
    penalty = np.full(k, ridge * n)
    penalty[0] = 1e-8 * n
    beta = np.zeros(k)
    beta[0] = np.log((y.mean() + 0.01) / (1.01 - y.mean()))
    for _ in range(iters):
        mu = sigmoid(x @ beta)
        w = np.maximum(mu * (1 - mu), 1e-6)  # (n,)
        grad = x.T @ (y - mu) - penalty * beta
        hess = (x * w[:, None]).T @ x + np.diag(penalty)
        step = np.linalg.solve(hess, grad)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-9:
            break
    return beta


@dataclass(frozen=True)
class LawFit:
    """Per-task laws fitted on all runs, and on `boot` bootstrap resamples of the runs."""

    tasks: tuple[str, ...]
    coef: np.ndarray
    """(tasks, 3): a, b, c of each task's law fitted on every run."""
    boot: np.ndarray
    """(B, tasks, 3): the same fitted on B resamples of the runs (with replacement)."""
    resid_sd: np.ndarray
    """(tasks,): standard deviation of a run's accuracy around its task's law (seed noise)."""
    share_range: np.ndarray
    """(tasks, 2): the smallest and largest share of each task among the runs."""
    params_range: tuple[float, float]
    """The smallest and largest model among the runs."""

    def predict(self, share: np.ndarray, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predicted accuracy at (share (m, tasks), params (m,)): the fit (m, tasks) and
        the bootstrap draws (B, m, tasks)."""
        s = np.asarray(share, dtype=np.float64)
        x = design(s, np.broadcast_to(np.asarray(params, dtype=np.float64)[:, None], s.shape))
        mean = sigmoid(np.einsum("mtk,tk->mt", x, self.coef))
        draws = sigmoid(np.einsum("mtk,btk->bmt", x, self.boot))
        return mean, draws


def fit_laws(
    tasks: list[str] | tuple[str, ...],
    share: np.ndarray,
    params: np.ndarray,
    acc: np.ndarray,
    *,
    boot: int = 200,
    seed: int = 0,
) -> LawFit:
    """Fit every task's law on runs × tasks arrays `share`, `acc` (n, tasks) and `params` (n,).

    Bootstrap resamples whole runs, so the tasks of one run stay together.
    """
    share, acc = np.asarray(share, dtype=np.float64), np.asarray(acc, dtype=np.float64)
    params = np.asarray(params, dtype=np.float64)
    n, k = acc.shape
    if share.shape != (n, k) or params.shape != (n,) or k != len(tasks) or n < 2:
        raise ValueError("fit_laws: share and acc (runs, tasks), params (runs,), ≥ 2 runs")
    xs = [design(share[:, t], params) for t in range(k)]
    coef = np.stack([fit_logistic(xs[t], acc[:, t]) for t in range(k)])
    rng = np.random.default_rng(seed)
    draws = np.empty((boot, k, 3))
    for b in range(boot):
        idx = rng.integers(0, n, n)
        draws[b] = [fit_logistic(xs[t][idx], acc[idx, t]) for t in range(k)]
    fitted = np.stack([sigmoid(xs[t] @ coef[t]) for t in range(k)], axis=1)
    resid = np.sqrt(((acc - fitted) ** 2).sum(axis=0) / max(n - 3, 1))
    return LawFit(
        tuple(tasks),
        coef,
        draws,
        resid,
        np.stack([share.min(axis=0), share.max(axis=0)], axis=1),
        (float(params.min()), float(params.max())),
    )


def band(draws: np.ndarray, coverage: float, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The central `coverage` interval of bootstrap draws along `axis` (percentiles)."""
    lo = (1 - coverage) / 2 * 100
    return np.percentile(draws, lo, axis=axis), np.percentile(draws, 100 - lo, axis=axis)
