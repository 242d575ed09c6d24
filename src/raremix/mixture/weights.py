"""Weighting strategies: pure functions from per-source sizes to sampling weights.

Each strategy takes a `SourceStats` and keyword parameters and returns a weight
vector that sums to 1, in source order. They are chosen by name from `STRATEGIES`;
adding one is one function plus one line. A function's keyword-only parameters and
their type hints are its config schema: `check_params` validates `params:` against
them, and parameters annotated `SourceNames` / `SourceWeights` must name sources.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_type_hints

import numpy as np
from pydantic import Field, TypeAdapter, ValidationError

from raremix.errors import RaremixError, did_you_mean, unknown

SOURCE_REF = "source names"  # marker in Annotated[...]: the value names sources
SourceNames = Annotated[list[str], SOURCE_REF]
SourceWeights = Annotated[dict[str, Annotated[float, Field(ge=0, allow_inf_nan=False)]], SOURCE_REF]
Positive = Annotated[float, Field(gt=0)]


@dataclass(frozen=True)
class SourceStats:
    """What a strategy may look at: source names, sizes, and the run's example budget."""

    names: tuple[str, ...]
    sizes: np.ndarray
    """Examples per source (float64), in `names` order."""
    budget: int | None = None
    """Examples the whole run draws (steps × global batch), when known."""


def normalise(w: np.ndarray, what: str = "weights") -> np.ndarray:
    """`w / w.sum()`, refusing negative, non-finite and all-zero vectors."""
    w = np.asarray(w, dtype=np.float64)
    if not np.all(np.isfinite(w)):
        raise RaremixError(f"{what} must be finite numbers: replace inf/nan with a share >= 0")
    if np.any(w < 0):
        raise RaremixError(f"{what} cannot be negative: use 0 to leave a source out")
    total = w.sum()
    if total <= 0:
        raise RaremixError(f"{what} are all zero: give at least one source a positive weight")
    return w / total


def natural(stats: SourceStats) -> np.ndarray:
    """Proportional to size: every example equally likely (p_i = n_i / Σn)."""
    return normalise(stats.sizes, "sizes")


def uniform(stats: SourceStats) -> np.ndarray:
    """Every source equally likely, whatever its size."""
    return np.full(len(stats.names), 1.0 / len(stats.names))


def temperature(stats: SourceStats, *, tau: Positive) -> np.ndarray:
    """p_i ∝ (n_i / Σn)^(1/τ): τ = 1 is natural, τ → ∞ uniform (`tau: .inf` allowed)."""
    # in log space, so huge τ or size ratios cannot overflow or underflow to all-zero
    logits = np.log(stats.sizes) / tau
    return normalise(np.exp(logits - logits.max()))


def unimax(
    stats: SourceStats,
    *,
    max_epochs: Positive = 1.0,
    budget: Annotated[int, Field(gt=0)] | None = None,
) -> np.ndarray:
    """UniMax (Chung et al. 2023): a uniform budget, each source capped at `max_epochs`.

    Smallest sources first, each gets min(an equal share of what is left, max_epochs ×
    its size); the budget is `budget` examples, default the run's total. If even the
    caps do not fill the budget, weights follow the caps (∝ size) and the exhaustion
    policy decides what happens past them.
    """
    total = budget if budget is not None else stats.budget
    if total is None:
        raise RaremixError(
            "unimax needs the run's example budget: pass total_steps to the sampler "
            "or set params.budget"
        )
    alloc = np.zeros(len(stats.sizes))
    left = float(total)
    order = np.argsort(stats.sizes, kind="stable")
    for rank, i in enumerate(order):
        alloc[i] = min(left / (len(order) - rank), max_epochs * stats.sizes[i])
        left -= alloc[i]
    return normalise(alloc)


def upweight(
    stats: SourceStats,
    *,
    tasks: SourceNames,
    factor: Positive | None = None,
    floor: Annotated[float, Field(ge=0, lt=1)] | None = None,
    base: Literal["natural", "uniform", "temperature"] = "natural",
    tau: Positive = 1.0,
) -> np.ndarray:
    """Named (rare) tasks get `factor` × their `base` share, or at least `floor` each.

    With both, a task gets max(factor × share, floor). The named tasks' shares are
    exact; the other sources share what is left in their `base` proportions.
    """
    if factor is None and floor is None:
        raise RaremixError("upweight needs params.factor or params.floor (or both): add one")
    w = STRATEGIES[base](stats, tau=tau) if base == "temperature" else STRATEGIES[base](stats)
    idx = np.array([stats.names.index(t) for t in tasks], dtype=np.int64)
    shares = w[idx] * (factor if factor is not None else 1.0)
    if floor is not None:
        shares = np.maximum(shares, floor)
    return lift(w, idx, shares, what="upweight")


def explicit(stats: SourceStats, *, weights: SourceWeights) -> np.ndarray:
    """Weights given by name (normalised); every source must be listed."""
    missing = [n for n in stats.names if n not in weights]
    if missing:
        raise RaremixError(
            f"explicit weights miss source{'s' if len(missing) > 1 else ''} "
            f"{', '.join(map(repr, missing))}: give each a weight (0 leaves it out)"
        )
    return normalise(np.array([weights[n] for n in stats.names]))


def lift(w: np.ndarray, idx: np.ndarray, shares: np.ndarray, what: str) -> np.ndarray:
    """Set sources `idx` to exactly `shares`; scale the others to fill the rest."""
    rest = np.ones(len(w), dtype=bool)
    rest[idx] = False
    out = np.zeros(len(w))
    taken = float(shares.sum())
    if not rest.any() or w[rest].sum() <= 0:
        out[idx] = shares
        return normalise(out, f"{what} shares")
    if taken >= 1:
        raise RaremixError(
            f"{what}: the named tasks would take {taken:.3g} of the mix, leaving nothing "
            "for the rest: lower the factor, floor or fraction"
        )
    out[rest] = w[rest] / w[rest].sum() * (1.0 - taken)
    out[idx] = shares
    return out


Strategy = Callable[..., np.ndarray]
STRATEGIES: dict[str, Strategy] = {
    "natural": natural,
    "uniform": uniform,
    "temperature": temperature,
    "unimax": unimax,
    "upweight": upweight,
    "explicit": explicit,
}
"""Weightings by name (`mixture.strategy`); adding one is one function of `SourceStats` plus one line."""


def check_params(strategy: str, params: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """Validate `params` against the strategy's signature; raises ValueError (one line)."""
    if strategy not in STRATEGIES:
        raise ValueError(str(unknown("strategy", strategy, STRATEGIES)))
    fn = STRATEGIES[strategy]
    sig = inspect.signature(fn)
    hints = get_type_hints(fn, include_extras=True)
    allowed = [p.name for p in sig.parameters.values() if p.kind is p.KEYWORD_ONLY]
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key not in allowed:
            hint = (
                did_you_mean(key, allowed) if allowed else "it takes no parameters: remove params"
            )
            raise ValueError(f"strategy '{strategy}' has no parameter '{key}': {hint}")
        try:
            out[key] = TypeAdapter(hints[key]).validate_python(value)
        except ValidationError as err:
            first = err.errors()[0]
            at = "".join(f"[{p!r}]" for p in first["loc"])
            raise ValueError(f"params.{key}{at}: {first['msg']} (got {value!r})") from None
        if SOURCE_REF in getattr(hints[key], "__metadata__", ()):
            for name in out[key]:
                if name not in names:
                    raise ValueError(f"params.{key}: {unknown('source', name, names)}")
    for p in sig.parameters.values():
        if p.kind is p.KEYWORD_ONLY and p.default is p.empty and p.name not in out:
            raise ValueError(f"strategy '{strategy}' needs params.{p.name}: add it")
    return out


def compute(strategy: str, params: Mapping[str, Any], stats: SourceStats) -> np.ndarray:
    """Run a strategy on validated params; the result is a normalised float64 vector."""
    w = STRATEGIES[strategy](stats, **params)
    assert len(w) == len(stats.names) and math.isclose(float(w.sum()), 1.0), strategy
    return w
