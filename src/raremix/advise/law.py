"""The advisor's laws: a task's outcome as a function of its share of the mix, the model's
size and the training budget.

    logit(y) = a + b·ln(s) + c·ln(N) + e·ln(s)·ln(N) + d·ln(F)

with s the task's share, N = params / 1e5 and F = training FLOPs / 1e11. Each point is one
run at one budget: with a budget-independent learning-rate schedule a run's evaluation
at step t *is* the run of budget t, so every evaluation is a budget point at no extra
cost. Two laws share this form:

- the **onset law** (y = 1 when the task was learned by F, by the declared rule): the
  CDF of FLOPs-to-learn, a log-logistic time-to-event model whose location moves with
  share and size. `flops_for` inverts it: the budget at which the task is learned with
  probability p.
- the **accuracy law** (y = held-out accuracy at F): what the common tasks keep.

Fitted per task by quasi-binomial logistic regression (IRLS, a small ridge on the slopes
so that a pilot with one size or one mix still fits), with a bootstrap over whole runs
(a run's budget points are not independent) for the uncertainty band. Pure NumPy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PARAMS_SCALE = 1e5
"""ln(params) is centred at 100k parameters."""
FLOPS_SCALE = 1e11
"""ln(FLOPs) is centred at 1e11 (a 25k model's ~1,000 lab steps)."""
RIDGE = 1e-3
"""L2 penalty on the slopes (not the intercept), relative to the number of runs."""
EPS = 1e-6
K = 5
"""Coefficients per task: a, b (share), c (size), e (share × size), d (budget)."""
BUDGET = K - 1
"""Index of the budget slope d."""


def design(share: np.ndarray, params: np.ndarray, flops: np.ndarray) -> np.ndarray:
    """The design matrix (..., 5): [1, ln s, ln N, ln s·ln N, ln F] (N, F scaled)."""
    s = np.log(np.clip(np.asarray(share, dtype=np.float64), EPS, 1.0))
    n = np.log(np.asarray(params, dtype=np.float64) / PARAMS_SCALE)
    f = np.log(np.asarray(flops, dtype=np.float64) / FLOPS_SCALE)
    s, n, f = np.broadcast_arrays(s, n, f)
    return np.stack([np.ones_like(s), s, n, s * n, f], axis=-1)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-z), without overflow."""
    return np.exp(-np.logaddexp(0.0, -np.asarray(z, dtype=np.float64)))


def logit(p: float) -> float:
    """ln(p / (1 − p))."""
    return float(np.log(p / (1 - p)))


def fit_logistic(x: np.ndarray, y: np.ndarray, ridge: float = RIDGE, iters: int = 60) -> np.ndarray:
    """Coefficients β (k,) of E[y] = σ(x·β) for y in [0, 1] (quasi-binomial IRLS).

    The ridge (× n) on every column but the first keeps a pilot without spread in a
    covariate (one size, one mix) or with perfectly separated outcomes finite.
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
    """Per-task laws fitted on all points, and on `boot` bootstrap resamples of the runs."""

    tasks: tuple[str, ...]
    coef: np.ndarray
    """(tasks, 5): a, b, c, e, d of each task's law fitted on every point."""
    boot: np.ndarray
    """(B, tasks, 5): the same fitted on B resamples of the runs (with replacement)."""
    resid_sd: np.ndarray
    """(tasks,): sd of a point around its task's law (seed noise, for the accuracy law)."""
    share_range: np.ndarray
    """(tasks, 2): the smallest and largest share of each task among the runs."""
    params_range: tuple[float, float]
    """The smallest and largest model among the runs."""
    flops_range: tuple[float, float]
    """The smallest and largest budget point among the runs."""

    def predict(
        self, share: np.ndarray, params: np.ndarray, flops: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Predicted y at (share (m, tasks), params (m,), flops (m,)): the fit (m, tasks)
        and the bootstrap draws (B, m, tasks)."""
        s = np.asarray(share, dtype=np.float64)
        x = design(s, np.asarray(params, dtype=np.float64)[:, None], np.asarray(flops)[:, None])
        mean = sigmoid(np.einsum("mtk,tk->mt", x, self.coef))
        draws = sigmoid(np.einsum("mtk,btk->bmt", x, self.boot))
        return mean, draws

    def flops_for(
        self, p: float, share: np.ndarray, params: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The budget at which y reaches `p` (onset law: learned with probability p), at
        (share (m, tasks), params (m,)): the fit (m, tasks) and the draws (B, m, tasks).

        Inf where the law does not rise with the budget (d ≤ 0: more FLOPs do not help)."""
        s = np.asarray(share, dtype=np.float64)
        x = design(s, np.asarray(params, dtype=np.float64)[:, None], np.array(FLOPS_SCALE))
        x = x[..., :BUDGET]

        def solve(coef: np.ndarray, eq: str) -> np.ndarray:
            rest = np.einsum(eq, x, coef[..., :BUDGET])
            d = coef[..., BUDGET]
            d = d[..., None, :] if d.ndim == 2 else d  # (B, tasks) → (B, 1, tasks)
            with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
                ln_f = (logit(p) - rest) / d
                out = FLOPS_SCALE * np.exp(ln_f)
            return np.where(d > 1e-9, out, np.inf)

        return solve(self.coef, "mtk,tk->mt"), solve(self.boot, "mtk,btk->bmt")


def fit_laws(
    tasks: list[str] | tuple[str, ...],
    share: np.ndarray,
    params: np.ndarray,
    flops: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    *,
    boot: int = 200,
    seed: int = 0,
) -> LawFit:
    """Fit every task's law on points × tasks arrays `share`, `y` (n, tasks) and points'
    `params`, `flops` (n,); `groups` (n,) says which run each point comes from.

    The bootstrap resamples whole runs, so a run's budgets and tasks stay together.
    """
    share, y = np.asarray(share, dtype=np.float64), np.asarray(y, dtype=np.float64)
    params, flops = np.asarray(params, dtype=np.float64), np.asarray(flops, dtype=np.float64)
    groups = np.asarray(groups)
    n, k = y.shape
    runs = np.unique(groups)
    if share.shape != (n, k) or params.shape != (n,) or flops.shape != (n,) or k != len(tasks):
        raise ValueError("fit_laws: share and y (points, tasks); params, flops, groups (points,)")
    if len(runs) < 2:
        raise ValueError("fit_laws: needs points from at least 2 runs")
    xs = [design(share[:, t], params, flops) for t in range(k)]
    ridge = RIDGE * len(runs) / n  # per run, not per point: a run's budgets are one observation
    coef = np.stack([fit_logistic(xs[t], y[:, t], ridge) for t in range(k)])
    members = [np.flatnonzero(groups == r) for r in runs]
    rng = np.random.default_rng(seed)
    draws = np.empty((boot, k, K))
    for b in range(boot):
        idx = np.concatenate([members[i] for i in rng.integers(0, len(runs), len(runs))])
        draws[b] = [fit_logistic(xs[t][idx], y[idx, t], ridge) for t in range(k)]
    fitted = np.stack([sigmoid(xs[t] @ coef[t]) for t in range(k)], axis=1)
    resid = np.sqrt(((y - fitted) ** 2).sum(axis=0) / max(n - K, 1))
    return LawFit(
        tuple(tasks),
        coef,
        draws,
        resid,
        np.stack([share.min(axis=0), share.max(axis=0)], axis=1),
        (float(params.min()), float(params.max())),
        (float(flops.min()), float(flops.max())),
    )


def band(draws: np.ndarray, coverage: float, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The central `coverage` interval of bootstrap draws along `axis` (percentiles)."""
    lo = (1 - coverage) / 2 * 100
    return np.percentile(draws, lo, axis=axis), np.percentile(draws, 100 - lo, axis=axis)
