"""Theory lab: which features does a width-N linear bottleneck learn from a task mix?

K tasks each own one block of d orthogonal input directions (D = K·d; the standard
basis). Task k is drawn with frequency π_k ∝ k^-α; its features have variance
λ_{k,j} = j^-β_k (fast decay = simple task). The target is y = x, so every feature has a
unit-norm teacher, and the model is ŷ = W2 W1 x with W1: (N, D), trained with mini-batch
SGD or Adam on batches whose task mix follows π.

The expected loss is ½‖(W2W1 − I) Σ^½‖_F² with Σ = diag(π_k·λ_{k,j}). By Eckart–Young
the best rank-N map keeps the N features of largest utility u_{k,j} = π_k·λ_{k,j}; from
small init, gradient descent learns each one after ≈ ln(1/u₀)/(2η·u) steps (Saxe et
al. 2014; u₀ its strength at init), so features arrive in order of decreasing utility.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, ValidationInfo, field_validator

from raremix.configbase import Config

Array = np.ndarray


class TheoryConfig(Config):
    """Settings of the theory lab; defaults are tuned to show the effect in seconds."""

    K: int = Field(6, ge=2)
    """Number of tasks, each owning one block of features; task K is the rarest."""
    d: int = Field(8, ge=1)
    """Features per task (block size); the input has D = K·d dimensions."""
    alpha: float = Field(1.0, ge=0)
    """Task-frequency power law: π_k ∝ k^-alpha (task 1 commonest, task K rarest)."""
    betas: tuple[float, ...] = (1.4, 1.2, 1.0, 0.8, 0.6, 0.4)
    """Spectral decay per task: λ_{k,j} = j^-beta_k (larger = simpler task); one per task."""
    widths: tuple[int, ...] = Field((4, 8, 16, 32, 48), min_length=1)
    """Bottleneck widths N to sweep; each between 1 and D."""
    steps: int = Field(1500, gt=0)
    """Optimiser steps per run."""
    lr: float = Field(1.0, gt=0)
    """Learning rate."""
    optimizer: Literal["sgd", "adam"] = "sgd"
    """Optimiser: 'sgd' (plain mini-batch SGD) or 'adam'."""
    batch_size: int = Field(64, gt=0)
    """Examples per mini-batch; each example's task is drawn from the mix."""
    init_scale: float = Field(0.1, gt=0)
    """Init std: init_scale/√D for W1, init_scale/√N for W2 (small: features arrive one by one)."""
    seeds: tuple[int, ...] = Field((0, 1, 2), min_length=1)
    """Seeds; each fixes the init and the batches of a run."""
    upweight_factor: float = Field(10.0, gt=0)
    """Up-weighting arm: the rarest task's frequency is multiplied by this, then renormalised."""
    upweight_widths: tuple[int, ...] = (4, 8, 16)
    """Widths at which the up-weighting arm runs; each must also be in widths."""
    learned_threshold: float = Field(0.5, gt=0, lt=1)
    """Overlap above which a feature counts as learned."""
    evals: int = Field(100, ge=2)
    """Measurements of overlaps and per-task loss per run, log-spaced in step."""

    @field_validator("betas")
    @classmethod
    def _one_beta_per_task(cls, v: tuple[float, ...], info: ValidationInfo) -> tuple[float, ...]:
        K = info.data.get("K", len(v))
        if len(v) != K or min(v, default=0) < 0:
            raise ValueError(f"got {len(v)} betas for K={K} tasks: give one beta >= 0 per task")
        return v

    @field_validator("widths")
    @classmethod
    def _widths_fit(cls, v: tuple[int, ...], info: ValidationInfo) -> tuple[int, ...]:
        D = info.data.get("K", 1) * info.data.get("d", 1)
        if bad := [w for w in v if not 1 <= w <= D]:
            raise ValueError(f"widths {bad} are outside 1..D={D} (K·d): use widths in 1..{D}")
        return v

    @field_validator("upweight_widths")
    @classmethod
    def _upweight_in_widths(cls, v: tuple[int, ...], info: ValidationInfo) -> tuple[int, ...]:
        if bad := [w for w in v if w not in info.data.get("widths", v)]:
            raise ValueError(f"{bad} not in widths: add them to widths or drop them here")
        return v

    @property
    def D(self) -> int:
        """Input dimension K·d."""
        return self.K * self.d


# ---------------------------------------------------------------- the math (pure)


def frequencies(cfg: TheoryConfig, upweight: float = 1.0) -> Array:
    """Task mix π (K,): π_k ∝ k^-α, the rarest task multiplied by `upweight`, summing to 1."""
    pi = np.arange(1, cfg.K + 1, dtype=float) ** -cfg.alpha  # (K,)
    pi[-1] *= upweight
    return pi / pi.sum()


def eigenvalues(cfg: TheoryConfig) -> Array:
    """Feature variances λ (K, d): λ_{k,j} = j^-β_k, j = 1..d."""
    j = np.arange(1, cfg.d + 1, dtype=float)
    return j[None, :] ** -np.asarray(cfg.betas)[:, None]


def utilities(cfg: TheoryConfig, freqs: Array) -> Array:
    """Utility u (K, d) = π_k·λ_{k,j}: twice the expected loss a feature removes once learned."""
    return np.asarray(freqs, dtype=float)[:, None] * eigenvalues(cfg)


def predicted_top(util: Array, width: int) -> Array:
    """Boolean mask (K, d) of the `width` features of largest utility (ties: lower index)."""
    mask = np.zeros(util.size, dtype=bool)
    mask[np.argsort(-util.ravel(), kind="stable")[:width]] = True
    return mask.reshape(util.shape)


def rank_agreement(util: Array, learn_time: Array) -> float:
    """Kendall τ between utility and learning order (nan time = never learned = last).

    Pairs where neither feature was learned, or utilities or times tie, are skipped;
    1 means every higher-utility feature was learned earlier, 0 is chance.
    """
    u = np.ravel(util)
    t = np.nan_to_num(np.ravel(learn_time), nan=np.finfo(float).max)  # never: last, tied
    concordant = np.sign(u[:, None] - u[None, :]) * np.sign(t[None, :] - t[:, None])  # (F, F)
    comparable = np.count_nonzero(concordant)
    return float(concordant.sum() / comparable) if comparable else float("nan")


# ---------------------------------------------------------------- training


@dataclass(frozen=True)
class TrainedBottleneck:
    """One trained width-N model and what it learned over time."""

    width: int
    seed: int
    freqs: Array  # (K,) task mix it was trained on
    W1: Array  # (N, D)
    W2: Array  # (D, N)
    eval_steps: Array  # (E,)
    overlap_history: Array  # (E, K, d)
    task_loss_history: Array  # (E, K) expected loss per task

    @property
    def overlap(self) -> Array:
        """Final overlap (K, d)."""
        return self.overlap_history[-1]

    def learn_step(self, threshold: float) -> Array:
        """Step (K, d) where overlap first crosses `threshold`, interpolated; nan if never."""
        o = self.overlap_history.reshape(len(self.eval_steps), -1)  # (E, F)
        above, cols = o > threshold, np.arange(o.shape[1])
        e = np.argmax(above, axis=0)  # first measurement above
        lo, hi = o[np.maximum(e - 1, 0), cols], o[e, cols]
        frac = np.clip((threshold - lo) / np.where(hi > lo, hi - lo, 1.0), 0.0, 1.0)
        s0, s1 = self.eval_steps[np.maximum(e - 1, 0)], self.eval_steps[e]
        step = np.where(above.any(axis=0) & (e > 0), s0 + frac * (s1 - s0), np.nan)
        return step.reshape(self.overlap.shape)


def draw_batches(cfg: TheoryConfig, freqs: Array, seed: int) -> Array:
    """The training stream as per-task blocks (steps, K, d, d) of each batch's x xᵀ mean.

    Each example's task is drawn from `freqs`; its features x ~ N(0, Λ_k) live in its
    task's block only, so the batch moment mean_b x_b x_bᵀ is block-diagonal. Depends
    only on (seed, freqs): every width at one seed sees the same batches.
    """
    K, d, B = cfg.K, cfg.d, cfg.batch_size
    rng = np.random.default_rng([seed, 2])
    sqrt_lam = np.sqrt(eigenvalues(cfg))  # (K, d)
    out, chunk = np.empty((cfg.steps, K, d, d)), 50  # 50 steps at once stay in cache
    for t0 in range(0, cfg.steps, chunk):  # vectorised over a chunk of steps
        n = min(chunk, cfg.steps - t0)
        tasks = rng.choice(K, size=(n, B), p=np.asarray(freqs))  # (n, B)
        z = rng.standard_normal((n, B, d)) * sqrt_lam[tasks]  # (n, B, d) within-block x
        zz = (z[..., :, None] * z[..., None, :]).reshape(n, B, d * d)  # (n, B, d²)
        onehot = np.eye(K)[tasks].transpose(0, 2, 1)  # (n, K, B)
        out[t0 : t0 + n] = (onehot @ zz / B).reshape(n, K, d, d)
    return out


def batch_gradients(W1: Array, W2: Array, moments: Array) -> tuple[Array, Array]:
    """Gradients (N, D), (D, N) of the batch loss ½ mean_b ‖W2W1x_b − x_b‖² in W1, W2.

    With Ĉ = blockdiag(moments) the batch's x xᵀ mean, the loss is
    ½ tr((W − I) Ĉ (W − I)ᵀ) with W = W2W1, whose gradients W2ᵀ(W − I)Ĉ and
    (W − I)ĈW1ᵀ are expanded here so that every product is width-N thin.
    """
    (N, D), (K, d, _) = W1.shape, moments.shape
    both = np.concatenate([W1, W2.T]).reshape(2 * N, K, d).transpose(1, 0, 2)  # (K, 2N, d)
    PS = (both @ moments).transpose(1, 0, 2).reshape(2 * N, D)  # [W1Ĉ; W2ᵀĈ]: block by block
    P, S = PS[:N], PS[N:]
    return (W2.T @ W2) @ P - S, W2 @ (P @ W1.T) - P.T  # (N, D), (D, N)


def train_bottleneck(
    cfg: TheoryConfig, width: int, freqs: Array, seed: int, batches: Array | None = None
) -> TrainedBottleneck:
    """Train ŷ = W2 W1 x (width N) with SGD or Adam on batches whose task mix is `freqs`.

    `batches` (from `draw_batches`, drawn here if None) lets widths share one stream.
    The init depends on (seed, width) only, so two mixes at one seed and width are paired.
    """
    K, d, D = cfg.K, cfg.d, cfg.D
    lam = eigenvalues(cfg)  # (K, d)
    batches = draw_batches(cfg, freqs, seed) if batches is None else batches
    init_rng = np.random.default_rng([seed, 1, width])
    W1 = init_rng.normal(0.0, cfg.init_scale / np.sqrt(D), (width, D))
    W2 = init_rng.normal(0.0, cfg.init_scale / np.sqrt(width), (D, width))
    adam = [np.zeros_like(W1), np.zeros_like(W1), np.zeros_like(W2), np.zeros_like(W2)]
    steps_seen, overlaps, losses = [], [], []

    def measure(step: int) -> None:
        E = W2 @ W1 - np.eye(D)  # (D, D) error of the end-to-end map
        steps_seen.append(step)
        overlaps.append(np.clip(1.0 + np.diag(E), 0.0, 1.0).reshape(K, d))
        losses.append(0.5 * ((E**2).sum(axis=0).reshape(K, d) * lam).sum(axis=1))

    eval_at = set(np.geomspace(1, cfg.steps, cfg.evals).round().astype(int).tolist())
    measure(0)
    for t in range(1, cfg.steps + 1):
        g1, g2 = batch_gradients(W1, W2, batches[t - 1])
        if cfg.optimizer == "sgd":
            W1 -= cfg.lr * g1
            W2 -= cfg.lr * g2
        else:
            W1 -= _adam_step(adam[0], adam[1], g1, t, cfg.lr)
            W2 -= _adam_step(adam[2], adam[3], g2, t, cfg.lr)
        if t in eval_at:
            measure(t)
    return TrainedBottleneck(
        width,
        seed,
        np.asarray(freqs, dtype=float),
        W1,
        W2,
        np.asarray(steps_seen),
        np.stack(overlaps),
        np.stack(losses),
    )


def _adam_step(m: Array, v: Array, g: Array, t: int, lr: float) -> Array:
    """Update Adam moments in place (β = 0.9, 0.999) and return the parameter step."""
    m[:] = 0.9 * m + 0.1 * g
    v[:] = 0.999 * v + 0.001 * g * g
    return lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)


# ---------------------------------------------------------------- the study


@dataclass
class TheoryResult:
    """Everything one theory-lab run measured (see `run_theory`)."""

    config: TheoryConfig
    features: pd.DataFrame  # one row per arm × width × seed × task × feature
    runs: pd.DataFrame  # one row per arm × width × seed
    summary: pd.DataFrame  # one row per arm × width: mean and sd over seeds
    histories: dict[tuple[str, int, int], TrainedBottleneck] = field(repr=False)
    wall_s: float = 0.0

    def rows(self) -> list[dict[str, Any]]:
        """Append-only metric rows {run, step, task, metric, value}."""
        out: list[dict[str, Any]] = []
        last = self.config.steps

        def add(run: str, step: int, task: str, metric: str, value: float) -> None:
            if np.isfinite(value):  # e.g. no learn step for a feature never learned
                out.append(dict(run=run, step=step, task=task, metric=metric, value=float(value)))

        for (arm, width, seed), tb in self.histories.items():  # per-task loss curves
            run = f"theory/{arm}/N{width}/seed{seed}"
            for (e, k), v in np.ndenumerate(tb.task_loss_history):
                add(run, int(tb.eval_steps[e]), f"task{k + 1}", "loss", v)
        for f in self.features.to_dict("records"):  # final state of each feature
            run, task = f"theory/{f['arm']}/N{f['width']}/seed{f['seed']}", f"task{f['task']}"
            add(run, last, task, f"overlap/f{f['feature']}", f["overlap"])
            add(run, last, task, f"learn_step/f{f['feature']}", f["learn_step"])
        for r in self.runs.to_dict("records"):  # agreement with the prediction, per run
            for m in ("precision", "recall", "rank_agreement", "time_slope", "rare_coverage"):
                add(f"theory/{r['arm']}/N{r['width']}/seed{r['seed']}", last, "all", m, r[m])
        return out

    def verdict(self) -> str:
        """A few honest lines on whether the predictions held, computed from the runs."""
        return _verdict(self)


def _run_metrics(cfg: TheoryConfig, util: Array, width: int, tb: TrainedBottleneck) -> dict:
    pred = predicted_top(util, width)  # (K, d)
    learned = tb.overlap > cfg.learned_threshold  # (K, d)
    step = tb.learn_step(cfg.learned_threshold)  # (K, d), nan = never
    hit, timed = float((learned & pred).sum()), ~np.isnan(step) & learned
    slope = (
        np.polyfit(np.log(util[timed]), np.log(step[timed]), 1)[0] if timed.sum() > 2 else np.nan
    )
    u = np.sort(util.ravel())[::-1]
    return dict(
        precision=hit / max(learned.sum(), 1),
        recall=hit / width,
        rank_agreement=rank_agreement(util, step),
        time_slope=float(slope),
        rare_coverage=float(learned[-1].mean()),
        n_learned=float(learned.sum()),
        n_forgotten=float((~np.isnan(step) & ~learned).sum()),  # crossed, then fell back
        predicted_rare_coverage=float(pred[-1].mean()),
        # how far apart the N-th and (N+1)-th utilities are: near-ties resolve slowly
        boundary_gap=float(u[width - 1] / u[width] - 1) if width < u.size else np.nan,
    )


def run_theory(cfg: TheoryConfig) -> TheoryResult:
    """Sweep widths on the natural mix, plus the up-weighting arm; measure vs prediction."""
    t0 = time.perf_counter()
    arms = [
        ("natural", cfg.widths, frequencies(cfg)),
        ("upweight", cfg.upweight_widths, frequencies(cfg, cfg.upweight_factor)),
    ]
    feats, run_rows, histories = [], [], {}
    task, feature = (a.ravel() + 1 for a in np.indices((cfg.K, cfg.d)))
    for arm, widths, freqs in arms:
        util = utilities(cfg, freqs)  # (K, d)
        for seed in cfg.seeds:
            batches = draw_batches(cfg, freqs, seed)  # shared by every width: paired
            for width in widths:
                tb = train_bottleneck(cfg, width, freqs, seed, batches)
                histories[(arm, width, seed)] = tb
                overlap = tb.overlap.ravel()
                feats.append(
                    pd.DataFrame(
                        {
                            "arm": arm,
                            "width": width,
                            "seed": seed,
                            "task": task,
                            "feature": feature,
                            "utility": util.ravel(),
                            "predicted_learned": predicted_top(util, width).ravel(),
                            "overlap": overlap,
                            "learned": overlap > cfg.learned_threshold,
                            "learn_step": tb.learn_step(cfg.learned_threshold).ravel(),
                        }
                    )
                )
                metrics = _run_metrics(cfg, util, width, tb)
                run_rows.append({"arm": arm, "width": width, "seed": seed, **metrics})
    keys = ["arm", "width", "seed"]
    runs = pd.DataFrame(run_rows).sort_values(keys, ignore_index=True)
    features = pd.concat(feats).sort_values([*keys, "task", "feature"], ignore_index=True)
    return TheoryResult(cfg, features, runs, summarize(runs), histories, time.perf_counter() - t0)


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and sd over seeds of every run metric, one row per arm × width."""
    fixed = ["predicted_rare_coverage", "boundary_gap"]  # the same for every seed
    metrics = [c for c in runs.columns if c not in ("arm", "width", "seed", *fixed)]
    g = runs.groupby(["arm", "width"], sort=True)
    mean, sd = g[metrics].mean(), g[metrics].std(ddof=1).fillna(0.0)
    out = pd.concat([mean.add_suffix("_mean"), sd.add_suffix("_sd"), g[fixed].first()], axis=1)
    cols = [c for m in metrics for c in (f"{m}_mean", f"{m}_sd")] + fixed
    return out[cols].assign(n_seeds=g.size()).reset_index()


def _pm(r: dict[Any, Any], m: str, digits: int = 2) -> str:
    return f"{r[m + '_mean']:.{digits}f} ± {r[m + '_sd']:.{digits}f}"


OUTCOME_BY_FIT = ("contradicted", "inconclusive", "supported")
"""The headline's outcome (raremix.stats.OUTCOMES) when the worst precision or recall vs the
predicted top-N is below 0.7, in [0.7, 0.9), or at least 0.9."""


def fit_outcome(res: TheoryResult) -> str:
    """The outcome of "a width-N model learns the top-N features by utility" from the worst
    mean precision or recall over the narrow widths (N < D; '' when there is none)."""
    narrow = [
        r
        for r in res.summary.to_dict("records")
        if r["arm"] == "natural" and r["width"] < res.config.D
    ]
    if not narrow:
        return ""
    worst = min(min(r["precision_mean"], r["recall_mean"]) for r in narrow)
    return OUTCOME_BY_FIT[(worst >= 0.7) + (worst >= 0.9)]


def _verdict(res: TheoryResult) -> str:
    cfg = res.config
    at = {(r["arm"], r["width"]): r for r in res.summary.to_dict("records")}
    nat = {w: at["natural", w] for w in sorted(cfg.widths)}
    narrow = [(w, r) for w, r in nat.items() if w < cfg.D]
    lines = []
    if narrow:
        word = fit_outcome(res)
        per = "; ".join(f"N={w}: {_pm(r, 'precision')} / {_pm(r, 'recall')}" for w, r in narrow)
        lines.append(
            f"Width-N model learns the top-N features by utility: {word} (precision / recall "
            f"vs the prediction, mean ± sd over {len(cfg.seeds)} seeds — {per})."
        )
    tau = "; ".join(f"N={w}: {_pm(r, 'rank_agreement')}" for w, r in nat.items())
    lost = ", ".join(f"N={w}: {r['n_forgotten_mean']:.1f}" for w, r in nat.items())
    lines += [
        f"Rank agreement (Kendall τ, utility vs learning order, never-learned last): {tau}.",
        f"Features learned then lost again (crossed the threshold, ended below) per run: {lost}.",
    ]
    if cfg.D in nat:
        r = nat[cfg.D]
        lines.append(
            f"Full width N=D={cfg.D} learned {_pm(r, 'n_learned', 1)} of {cfg.D} features; learn "
            f"step ∝ utility^slope with slope {_pm(r, 'time_slope')} (theory: −1)."
        )
    for w in sorted(cfg.upweight_widths):
        b, r = nat[w], at["upweight", w]
        gain = r["rare_coverage_mean"] - b["rare_coverage_mean"]
        lines.append(
            f"Up-weighting task {cfg.K} ×{cfg.upweight_factor:g} at N={w}: its features "
            f"{'enter' if gain > 0.25 else 'do NOT clearly enter'} — rare coverage "
            f"{_pm(b, 'rare_coverage')} → {_pm(r, 'rare_coverage')} (predicted "
            f"{b['predicted_rare_coverage']:.2f} → {r['predicted_rare_coverage']:.2f}); "
            f"precision vs the re-computed top-N {_pm(r, 'precision')}."
        )
    lines.append(f"({len(res.runs)} runs, {cfg.optimizer}, {cfg.steps} steps, {res.wall_s:.1f} s.)")
    return "\n".join(lines)
