"""From a `Comparison` to one of the four outcomes, and how many seeds a test needs.

The vocabulary and its rules are the protocol's (docs/statistics.md, "Outcomes"):
supported, contradicted, inconclusive, out of regime — never "not reproduced".
"""

from __future__ import annotations

import math
import warnings
from typing import Literal, get_args

from raremix.errors import RaremixError
from raremix.stats.compare import Comparison, Direction, check_alpha, check_direction, signed

Outcome = Literal["supported", "contradicted", "inconclusive", "out of regime"]
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)


def decide(
    c: Comparison,
    *,
    direction: Direction,
    alpha: float = 0.05,
    p_adjusted: float | None = None,
    published: float | None = None,
    in_regime: bool = True,
    regime_reason: str = "",
) -> tuple[Outcome, str]:
    """The outcome of one declared hypothesis, and one sentence saying why, with numbers.

    supported: the effect lies in the declared direction and p (Holm-adjusted when given)
    is below alpha. contradicted: not supported, and the data exclude the published effect
    — the one-sided (1 − alpha) bound on the far side lies short of it (two-sided: the
    1 − 2·alpha interval lies inside ±published, a TOST equivalence test). inconclusive
    otherwise. out of regime: the study cannot test the claim as published.
    """
    check_direction(direction)
    check_alpha(alpha)
    if not in_regime:
        if not regime_reason.strip():
            raise RaremixError(
                "an out-of-regime outcome must say why: pass regime_reason (e.g. 'the paper "
                "fine-tunes a pretrained 7B model; raremix trains 1M-parameter models from scratch')"
            )
        return "out of regime", f"Out of regime: {regime_reason.strip()}."
    if c.direction != direction:
        raise RaremixError(
            f"the comparison was tested '{c.direction}' but the hypothesis says '{direction}': "
            f"pass direction='{direction}' to compare_means / compare_counts"
        )
    if c.bounds is not None and c.alpha != alpha:
        raise RaremixError(
            f"the comparison's intervals are at alpha = {c.alpha} but decide was given "
            f"alpha = {alpha}: pass the same alpha to both"
        )
    _check_published(published, direction)

    p = c.p if p_adjusted is None else p_adjusted
    p_said = f"p = {c.p:.3g}" + ("" if p_adjusted is None else f", Holm-adjusted {p_adjusted:.3g}")
    ci_low, ci_high = c.ci
    interval = (
        ""
        if math.isnan(ci_low) or math.isnan(ci_high)
        else f" [{1 - alpha:.0%} CI {signed(ci_low)}, {signed(ci_high)}]"
    )
    effect = f"the effect {signed(c.effect)}{interval} ({c.n[0]} vs {c.n[1]} seeds)"
    in_direction = {
        "greater": c.effect > 0,
        "less": c.effect < 0,
        "two-sided": c.effect != 0,
    }[direction]
    if in_direction and p < alpha:
        return (
            "supported",
            f"Supported: {effect} is {_said(direction, c.effect)}, {p_said} < α = {alpha}.",
        )

    why_not = f"{effect} is not significant ({p_said}, α = {alpha})"
    if published is None:
        return "inconclusive", f"Inconclusive: {why_not}, and no published effect to test."
    low, high = c.bounds if c.bounds is not None else c.ci
    confidence = f"{1 - alpha:.0%}" if c.bounds is not None else f"{1 - alpha / 2:.1%}"
    if math.isnan(low) or math.isnan(high):
        return "inconclusive", (
            f"Inconclusive: {why_not}, and with no spread across seeds the interval is "
            f"undefined, so the published {signed(published)} cannot be excluded."
        )
    published_said = (
        f"±{signed(abs(published))[1:]}" if direction == "two-sided" else signed(published)
    )
    if direction == "greater":
        excluded, bound = high < published, f"upper {confidence} bound {signed(high)}"
    elif direction == "less":
        excluded, bound = low > published, f"lower {confidence} bound {signed(low)}"
    else:
        excluded = within_margin(c, abs(published))
        bound = f"{1 - 2 * alpha:.0%} interval [{signed(low)}, {signed(high)}]"
    if excluded:
        return "contradicted", (
            f"Contradicted: {why_not}, and its {bound} excludes the published {published_said}."
        )
    return "inconclusive", (
        f"Inconclusive: {why_not}, but its {bound} cannot exclude the published "
        f"{published_said}: more seeds would be needed to tell."
    )


def within_margin(c: Comparison, margin: float) -> bool:
    """TOST equivalence: the one-sided (1 − alpha) bounds (the 1 − 2·alpha interval) lie
    inside ±margin, so both one-sided tests reject an effect as large as the margin. A
    comparison without one-sided bounds uses its two-sided interval (stricter); an
    undefined interval is never equivalent."""
    low, high = c.bounds if c.bounds is not None else c.ci
    if math.isnan(low) or math.isnan(high):
        return False
    return -margin < low and high < margin


def seeds_needed(
    effect: float,
    sd: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    paired: bool = False,
    direction: Direction = "greater",
) -> int:
    """Seeds per arm for a t-test to find `effect` with `power` (sd: of the per-seed
    differences when paired), and never fewer than the permutation test needs to be able
    to reach p < alpha at all (independent one-sided: 4; paired one-sided: 5)."""
    check_direction(direction)
    check_alpha(alpha)
    if not 0 < power < 1:
        raise RaremixError(f"power must lie in (0, 1); got {power}: the usual value is 0.8")
    if not math.isfinite(effect) or effect == 0:
        raise RaremixError(f"the effect to detect must be a nonzero number; got {effect}")
    if not math.isfinite(sd) or sd <= 0:
        raise RaremixError(
            f"the sd must be a positive number; got {sd}: estimate it from pilot seeds"
        )
    if (direction == "greater" and effect < 0) or (direction == "less" and effect > 0):
        raise RaremixError(
            f"an effect of {effect} is not in the declared direction '{direction}': "
            "flip its sign or the direction"
        )
    from statsmodels.stats.power import TTestIndPower, TTestPower

    analysis = TTestPower() if paired else TTestIndPower()
    # by symmetry a "less" test of -d has the power of a "greater" test of +d
    alternative = "two-sided" if direction == "two-sided" else "larger"
    size = abs(effect) / sd
    with warnings.catch_warnings():
        # the root finder warns and returns NaN when even 2 seeds exceed the power
        warnings.simplefilter("ignore")
        n = analysis.solve_power(
            effect_size=size, alpha=alpha, power=power, alternative=alternative
        )
        n = float(n)
        if math.isnan(n):
            if analysis.power(size, 2, alpha, alternative=alternative) < power:
                raise RaremixError(
                    f"could not solve for the seeds needed (effect {effect}, sd {sd}): "
                    "check the inputs"
                )
            n = 2.0
    return max(math.ceil(n), min_seeds_for_exact(alpha, paired=paired, direction=direction))


def min_seeds_for_exact(alpha: float, *, paired: bool, direction: Direction) -> int:
    """The fewest seeds per arm at which the exact permutation test can give p < alpha."""
    sides = 2 if direction == "two-sided" else 1
    n = 2
    while True:
        permutations = 2**n if paired else math.comb(2 * n, n)
        if sides / permutations < alpha:
            return n
        n += 1


def _said(direction: Direction, effect: float) -> str:
    if direction == "two-sided":
        return f"{'positive' if effect > 0 else 'negative'} (two-sided test)"
    return f"{'positive' if direction == 'greater' else 'negative'} as declared"


def _check_published(published: float | None, direction: Direction) -> None:
    if published is None:
        return
    if not math.isfinite(published) or published == 0:
        raise RaremixError(
            f"the published effect must be a nonzero number; got {published}: "
            "leave it out if the paper gives none"
        )
    if (direction == "greater" and published < 0) or (direction == "less" and published > 0):
        raise RaremixError(
            f"the published effect {published} is not in the declared direction "
            f"'{direction}': the hypothesis and the paper disagree; fix the study spec"
        )
