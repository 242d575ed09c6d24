"""A study's own comparisons, judged as a family: the only words a verdict may decide with.

A study module (rarity-first, depth-width, …) compares several pairs of arms to answer
one question. `judge` compares each pair's per-seed values with `compare_means`, adjusts
the p-values with Holm within the family (the comparisons that decide one claim) and
calls each comparison:

- "greater" / "less": the Holm-adjusted p is below alpha; the sign of the effect;
- "equivalent": a margin was declared and the (1 − 2α) interval lies inside ±margin
  (TOST: two one-sided tests at α; equivalence is never read off a non-significant p);
- "indistinguishable": neither;
- "untested": an arm has fewer than 2 seeds (`note` says why).

`claim_outcome` turns the calls that decide one claim into one of `OUTCOMES`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from raremix.errors import RaremixError
from raremix.stats.compare import Comparison, Direction, compare_means, holm, signed
from raremix.stats.decide import Outcome, within_margin

Call = Literal["greater", "less", "equivalent", "indistinguishable", "untested"]


@dataclass(frozen=True)
class Judged:
    """One comparison of a study's family, with its Holm-adjusted p and its call."""

    name: str
    """What is compared, e.g. 'rarity-first (loss) − random, rare acc'."""
    family: str
    """The claim whose family it belongs to (Holm is applied within it)."""
    call: Call
    comparison: Comparison | None
    """None when untested."""
    p_adjusted: float
    """Holm-adjusted within the family (NaN when untested)."""
    margin: float | None = None
    """The declared equivalence margin, if any."""
    note: str = ""
    """Why it is untested, or what pairing was used."""

    def text(self) -> str:
        """'name: +0.12 [−0.05, +0.29], p = 0.1 (permutation …), Holm 0.2 → indistinguishable'."""
        if self.comparison is None:
            return f"{self.name}: untested ({self.note})"
        holm_said = (
            f", Holm-adjusted p = {self.p_adjusted:.3g}"
            if self.p_adjusted != self.comparison.p
            else ""
        )
        within = (
            f", 90% interval {'inside' if self.call == 'equivalent' else 'not inside'} "
            f"±{self.margin:g}"
            if self.margin is not None
            else ""
        )
        return f"{self.name}: {self.comparison.text()}{holm_said}{within} → {self.call}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-able: the comparison's fields flattened beside name, family, call."""
        out: dict[str, Any] = {
            "name": self.name,
            "family": self.family,
            "call": self.call,
            "p_adjusted": None if math.isnan(self.p_adjusted) else self.p_adjusted,
            "margin": self.margin,
            "note": self.note,
        }
        if self.comparison is not None:
            out.update(self.comparison.as_dict())
        return out


def judge(
    pairs: Mapping[str, tuple[npt.ArrayLike, npt.ArrayLike]],
    *,
    family: str,
    paired: bool = False,
    direction: Direction = "two-sided",
    alpha: float = 0.05,
    margin: float | None = None,
) -> list[Judged]:
    """Compare each named (treatment, control) pair of per-seed values; Holm within the family.

    `paired` only when the arms share seeds *and* initialisation and data stream (then the
    values must be aligned by seed). `margin` (> 0) turns on the equivalence call.
    """
    if margin is not None and not margin > 0:
        raise RaremixError(f"an equivalence margin must be positive; got {margin}")
    compared: list[tuple[str, Comparison | None, str]] = []
    for name, (treatment, control) in pairs.items():
        treat, ctrl = np.asarray(treatment, float), np.asarray(control, float)
        n_t, n_c = int(np.isfinite(treat).sum()), int(np.isfinite(ctrl).sum())
        if min(n_t, n_c) < 2:
            compared.append((name, None, f"{n_t} vs {n_c} seeds: a test needs at least 2 per arm"))
            continue
        comparison = compare_means(treat, ctrl, paired=paired, direction=direction, alpha=alpha)
        compared.append((name, comparison, "paired by seed" if paired else ""))
    adjusted = iter(holm([cmp.p for _, cmp, _ in compared if cmp is not None]))
    out = []
    for name, cmp, note in compared:
        if cmp is None:
            out.append(Judged(name, family, "untested", None, math.nan, margin, note))
            continue
        p_adj = next(adjusted)
        call = _call(cmp, p_adj, alpha, margin)
        out.append(Judged(name, family, call, cmp, p_adj, margin, note))
    return out


def claim_outcome(judged: Sequence[Judged], want: Call) -> tuple[Outcome, str]:
    """The outcome of a claim that needs every comparison in `judged` to be called `want`.

    supported: all are. contradicted (equivalence claims only): some comparison's one-sided
    bound lies beyond the margin, so the data exclude every effect the claim allows.
    inconclusive otherwise, or when nothing was tested.
    """
    if not judged:
        return "inconclusive", "nothing to compare"
    if all(j.call == want for j in judged):
        return "supported", f"all {len(judged)} comparisons {want}"
    if want == "equivalent":
        beyond = [j.name for j in judged if j.comparison is not None and _beyond_margin(j)]
        if beyond:
            return "contradicted", f"outside the ±{judged[0].margin:g} margin: {', '.join(beyond)}"
    calls = ", ".join(f"{j.name} {j.call}" for j in judged)
    return "inconclusive", f"not all {want}: {calls}"


def floor_note(judged: Sequence[Judged], alpha: float = 0.05) -> str:
    """'' — or a sentence saying the family cannot reach significance at its seeds: the
    smallest p an exact permutation test can give is at least Holm's first threshold α/m."""
    tested = [j.comparison for j in judged if j.comparison is not None]
    if not tested:
        return ""
    floors = []
    for c in tested:
        paired = c.test.startswith("paired")
        count = 2 ** c.n[0] if paired else math.comb(c.n[0] + c.n[1], c.n[0])
        sides = 2 if c.direction == "two-sided" else 1
        floors.append(sides / min(count, 10_000))
    floor, threshold = min(floors), alpha / len(tested)
    if floor < threshold:
        return ""
    return (
        f"Underpowered by design: with these seeds the smallest exact p is {floor:.3g}, not "
        f"below Holm's first threshold {alpha:g}/{len(tested)} = {threshold:.3g}, so no "
        "comparison in this family can be significant; more seeds are needed."
    )


def _call(c: Comparison, p_adjusted: float, alpha: float, margin: float | None) -> Call:
    if p_adjusted < alpha and c.effect != 0:
        sign_ok = {"greater": c.effect > 0, "less": c.effect < 0, "two-sided": True}[c.direction]
        if sign_ok:
            return "greater" if c.effect > 0 else "less"
    if margin is not None and within_margin(c, margin):
        return "equivalent"
    return "indistinguishable"


def _beyond_margin(j: Judged) -> bool:
    c, margin = j.comparison, j.margin
    if c is None or margin is None:
        return False
    low, high = c.bounds if c.bounds is not None else c.ci
    return bool(low > margin or high < -margin)


def effect_said(j: Judged) -> str:
    """The effect alone ('+0.12', or 'untested'): for a headline that names many comparisons."""
    return "untested" if j.comparison is None else signed(j.comparison.effect)
