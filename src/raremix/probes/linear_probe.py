"""Linear probes: is a label linearly readable from the residual stream?

The probe is shrinkage linear discriminant analysis: class means, one shared (shrunk)
covariance, a linear score per class. It is closed form (one d × d solve), and unlike
least squares on one-hot targets it does not miss classes that lie between others
along one direction (an ordinal feature such as a digit). Scored by k-fold
cross-validation, so every example is predicted by a probe that never saw it; folds
interleave examples (i mod k): deterministic, no random draws. Probe matrices are
small, so the fits run in NumPy float64 on the CPU.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import torch

F64 = npt.NDArray[np.float64]


class LDA(NamedTuple):
    """A fitted linear classifier: score = ((x − mean) / std) @ w + b."""

    mean: F64
    std: F64
    w: F64
    b: F64


def lda_fit(x: F64, y: npt.NDArray[np.int64], n_classes: int, shrink: float = 0.1) -> LDA:
    """Fit on features x (n, d) and labels y (n,) in [0, n_classes)."""
    mean, std = x.mean(axis=0), np.maximum(x.std(axis=0), 1e-6)  # (d,)
    z = (x - mean) / std  # (n, d) standardised, so the shrinkage target I has the right scale
    onehot = np.eye(n_classes)[y]  # (n, K)
    count = onehot.sum(axis=0)  # (K,)
    mu = (onehot.T @ z) / np.maximum(count, 1)[:, None]  # (K, d) class means
    resid = z - mu[y]  # (n, d)
    cov = (1 - shrink) * (resid.T @ resid) / len(z) + shrink * np.eye(z.shape[1])  # (d, d)
    w = np.linalg.solve(cov, mu.T)  # (d, K)
    with np.errstate(divide="ignore"):
        b = -0.5 * (mu * w.T).sum(axis=1) + np.log(count / len(z))  # (K,); -inf: absent class
    return LDA(mean, std, w, b)


def lda_predict(model: LDA, x: F64) -> npt.NDArray[np.int64]:
    """(n,) predicted labels."""
    return np.argmax(((x - model.mean) / model.std) @ model.w + model.b, axis=1)


def probe_accuracy(
    x: torch.Tensor | F64, y: torch.Tensor | npt.ArrayLike, folds: int = 4, shrink: float = 0.1
) -> float:
    """Held-out accuracy of a linear probe predicting labels `y` (n,) from features `x` (n, d).

    NaN when there are fewer examples than folds.
    """
    xs = (
        x.detach().cpu().double().numpy()
        if isinstance(x, torch.Tensor)
        else np.asarray(x, np.float64)
    )
    ys = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    n = len(ys)
    if n < max(folds, 2):
        return float("nan")
    _, labels = np.unique(ys, return_inverse=True)  # (n,) in [0, K)
    k = int(labels.max()) + 1
    fold = np.arange(n) % folds  # (n,)
    hits = 0
    for f in range(folds):
        test = fold == f
        model = lda_fit(xs[~test], labels[~test], k, shrink)
        hits += int((lda_predict(model, xs[test]) == labels[test]).sum())
    return hits / n
