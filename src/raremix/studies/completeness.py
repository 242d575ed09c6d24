"""Whether a finished run's metric rows are all there, judged from its config and facts.

A run is stored as done only when its rows are complete: a curve cut short (a crash
mid-write, another process truncating the file) would otherwise be skipped by every
later `study run` and lost for good.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping
from typing import Any


def _int(value: Any) -> int | None:
    """`value` as an int when it is a whole number (not a bool, a label, None or NaN)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real) and float(value).is_integer():
        return int(float(value))
    return None


def missing_rows(
    config: Mapping[str, Any], facts: Mapping[str, Any], rows: Iterable[Mapping[str, Any]]
) -> str | None:
    """Why the rows of a finished run are incomplete, in words; None when they are complete.

    The run's last step is its `steps` fact (the step it reached; the trainer's runs may
    stop early) or else its config's `steps`; a run that states neither is not checked.
    The rows must end at that step. With an `eval_every` in the config, every evaluation
    step (0, each multiple of `eval_every`, the last) must have rows, each step with the
    held-out accuracy of every task that step 0 scored. (Other rows — adaptive weights,
    probes — follow cadences of their own, so only the evaluation is required everywhere.)
    """
    last = _int(facts.get("steps"))
    last = _int(config.get("steps")) if last is None else last
    if last is None or last <= 0:
        return None
    by_step: dict[int, set[str]] = {}
    for row in rows:
        scored = by_step.setdefault(int(row["step"]), set())
        if row["metric"] == "acc":
            scored.add(str(row["task"]))
    if not by_step:
        return f"it wrote no metric rows but reached step {last}"
    if max(by_step) != last:
        return f"its metric rows end at step {max(by_step)} but it reached step {last}"
    every = _int(config.get("eval_every"))
    if every is None or every <= 0:
        return None
    expected = sorted({0, *range(every, last + 1, every), last})
    absent = [s for s in expected if s not in by_step]
    if absent:
        return f"{len(absent)} of {len(expected)} evaluation steps have no rows (first: step {absent[0]})"
    short = [s for s in expected if not by_step[0] <= by_step[s]]
    if short:
        return f"step {short[0]} lacks the held-out accuracy of tasks that step 0 scored"
    return None
