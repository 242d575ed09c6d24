"""Linear probes: is a label linearly readable from the residual stream?

The probe is shrinkage linear discriminant analysis: class means, one shared (shrunk)
covariance, a linear score per class. It is closed form (one d × d solve), and unlike
least squares on one-hot targets it does not miss classes that lie between others
along one direction (an ordinal feature such as a digit). Scored by k-fold
cross-validation, so every example is predicted by a probe that never saw it; folds
interleave examples (i mod k): deterministic, no random draws.
"""

from __future__ import annotations

import torch


def lda_fit(
    x: torch.Tensor, y: torch.Tensor, n_classes: int, shrink: float = 0.1
) -> tuple[torch.Tensor, ...]:
    """(mean, std, W, b) of a linear classifier; x (n, d) features, y (n,) labels in [0, n_classes)."""
    x = x.double()
    mean, std = x.mean(dim=0), x.std(dim=0, correction=0).clamp_min(1e-6)  # (d,)
    z = (x - mean) / std  # (n, d) standardised, so the shrinkage target I has the right scale
    onehot = torch.nn.functional.one_hot(y, n_classes).double()  # (n, K)
    count = onehot.sum(dim=0)  # (K,)
    mu = (onehot.T @ z) / count.clamp_min(1)[:, None]  # (K, d) class means
    resid = z - mu[y]  # (n, d)
    cov = (1 - shrink) * (resid.T @ resid) / len(z) + shrink * torch.eye(
        z.shape[1], dtype=z.dtype, device=z.device
    )
    w = torch.linalg.solve(cov, mu.T)  # (d, K)
    b = -0.5 * (mu * w.T).sum(dim=1) + torch.log(count / len(z))  # (K,); -inf for absent classes
    return mean, std, w, b


def lda_predict(model: tuple[torch.Tensor, ...], x: torch.Tensor) -> torch.Tensor:
    """(n,) predicted labels."""
    mean, std, w, b = model
    return (((x.double() - mean) / std) @ w + b).argmax(dim=1)


def probe_accuracy(x: torch.Tensor, y: torch.Tensor, folds: int = 4, shrink: float = 0.1) -> float:
    """Held-out accuracy of a linear probe predicting labels `y` (n,) from features `x` (n, d).

    NaN when there are fewer examples than folds.
    """
    n = len(y)
    if n < max(folds, 2):
        return float("nan")
    _, labels = torch.unique(y, return_inverse=True)  # (n,) in [0, K)
    k = int(labels.max()) + 1
    fold = torch.arange(n, device=y.device) % folds  # (n,)
    hits = 0
    for f in range(folds):
        test = fold == f
        model = lda_fit(x[~test], labels[~test], k, shrink)
        hits += int((lda_predict(model, x[test]) == labels[test]).sum())
    return hits / n
