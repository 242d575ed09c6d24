"""The statistics behind every raremix verdict (docs/statistics.md).

compare → a `Comparison` (effect, interval, p) of two arms: `compare_means` for per-seed
values, `compare_counts` for "k of n seeds learned". decide → one of `OUTCOMES` and a
sentence saying why. A study's own family of comparisons goes through `judge` (Holm within
the family, a call per comparison) and `claim_outcome`. Survival outcomes (FLOPs-to-learn, censored at the cap) go through
`kaplan_meier`, `logrank` and `survival_fit`. All built on scipy.stats, statsmodels and
lifelines; this package imports nothing else from raremix but its error type.
"""

from raremix.stats.compare import (
    DIRECTIONS,
    Comparison,
    Direction,
    compare_counts,
    compare_means,
    holm,
    mean_sd,
    wilson,
)
from raremix.stats.decide import (
    OUTCOMES,
    Outcome,
    decide,
    min_seeds_for_exact,
    seeds_needed,
    within_margin,
)
from raremix.stats.family import Call, Judged, claim_outcome, effect_said, floor_note, judge
from raremix.stats.survival import kaplan_meier, logrank, survival_fit

__all__ = [
    "DIRECTIONS",
    "OUTCOMES",
    "Call",
    "Comparison",
    "Direction",
    "Judged",
    "Outcome",
    "claim_outcome",
    "compare_counts",
    "compare_means",
    "decide",
    "effect_said",
    "floor_note",
    "holm",
    "judge",
    "kaplan_meier",
    "logrank",
    "mean_sd",
    "min_seeds_for_exact",
    "seeds_needed",
    "survival_fit",
    "wilson",
    "within_margin",
]
