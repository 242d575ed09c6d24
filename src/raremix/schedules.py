"""What changes over a run's steps: the learning rate, and when the run is evaluated.

Learning-rate schedules are pure functions `(step, total, optim) -> factor of the peak`
applied after the linear warm-up, chosen by name from `SCHEDULES`:

- `cosine` (the default) decays to `min_lr_ratio` over exactly the run's `steps`, so its
  rate at step t depends on the budget: a short run is not a prefix of a long one.
- `constant` holds the peak: the rate at step t does not depend on `steps`, so a run is
  an anytime curve and a longer run continues a shorter one exactly.
- `wsd` (warmup-stable-decay) holds the peak, then decays linearly to `min_lr_ratio`
  over a declared `decay_steps` from a declared start; until that start the rate does
  not depend on `steps`.

The peak itself may scale with model size (`optim.lr_rule`): see `peak_lr`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from raremix.errors import RaremixError

if TYPE_CHECKING:
    from raremix.config import OptimConfig

Schedule = Callable[[int, int, "OptimConfig"], float]


def cosine(step: int, total: int, o: OptimConfig) -> float:
    """Cosine from 1 to `min_lr_ratio` over the steps between warm-up and `total`."""
    progress = (step - o.warmup_steps) / max(1, total - o.warmup_steps)
    return o.min_lr_ratio + (1 - o.min_lr_ratio) * 0.5 * (
        1 + math.cos(math.pi * min(1.0, progress))
    )


def constant(step: int, total: int, o: OptimConfig) -> float:
    """The peak rate at every step after warm-up."""
    return 1.0


def wsd(step: int, total: int, o: OptimConfig) -> float:
    """1 until the declared decay start, then linear to `min_lr_ratio` over `decay_steps`."""
    done = (step - decay_start(total, o)) / o.decay_steps
    return 1.0 - (1.0 - o.min_lr_ratio) * min(1.0, max(0.0, done))


SCHEDULES: dict[str, Schedule] = {"cosine": cosine, "constant": constant, "wsd": wsd}
"""Learning-rate schedules by name (`optim.schedule`); adding one is one function + one line."""

BUDGET_FREE = frozenset({"constant", "wsd"})
"""Schedules whose rate before a declared decay does not depend on the run's `steps`."""


def decay_start(total: int, o: OptimConfig) -> int:
    """The step at which a WSD decay begins: declared, a declared fraction, or so it ends the run."""
    if o.decay_start is not None:
        return o.decay_start
    if o.decay_start_fraction is not None:
        return round(o.decay_start_fraction * total)
    return total - o.decay_steps


def peak_lr(o: OptimConfig, params: int | None) -> float:
    """The peak rate for a model of `params` parameters: `lr`, or `lr·(params/ref)^exponent`."""
    if o.lr_rule is None:
        return o.lr
    if params is None:
        raise RaremixError(
            "optim.lr_rule scales lr by model size: pass the model's parameter count"
        )
    return o.lr * (params / o.lr_rule.ref_params) ** o.lr_rule.exponent


def lr_at(step: int, total: int, o: OptimConfig, params: int | None = None) -> float:
    """The rate for step `step` of `total`: linear warm-up to the peak, then `o.schedule`."""
    peak = peak_lr(o, params)
    if step < o.warmup_steps:
        return peak * (step + 1) / o.warmup_steps
    return peak * SCHEDULES[o.schedule](step, total, o)


def budget_problem(o: OptimConfig, steps: int) -> str | None:
    """Why `o` cannot run for `steps` steps (a WSD decay outside the run), or None."""
    if o.schedule != "wsd":
        return None
    if o.decay_steps > steps:
        return f"optim: decay_steps ({o.decay_steps}) is longer than the run ({steps} steps): shorten it or raise steps"
    start = decay_start(steps, o)
    if start >= steps:
        return f"optim: the WSD decay starts at step {start}, beyond the run's {steps} steps: start it earlier or raise steps"
    if start + o.decay_steps > steps:
        return (
            f"optim: the WSD decay ends at step {start + o.decay_steps}, after the run's {steps} steps: "
            "start it earlier, shorten decay_steps or raise steps"
        )
    if start < o.warmup_steps:
        return f"optim: the WSD decay starts at step {start}, inside the warm-up ({o.warmup_steps} steps): start it later or shorten warmup_steps"
    return None


def eval_steps(steps: int, every: int, schedule: str = "linear", per_decade: int = 10) -> list[int]:
    """The steps in 1..`steps` after which a run evaluates (it also evaluates at step 0).

    linear: every `every` steps and at the end. log: also at round(10^(i/per_decade)),
    dense early where onsets are hard to place. Neither grid depends on `steps` except
    where it ends, so a longer run evaluates wherever a shorter one did before its end.
    """
    grid = set(range(every, steps + 1, every)) | {steps}
    if schedule == "log":
        i = 0
        while (at := round(10 ** (i / per_decade))) <= steps:
            grid.add(at)
            i += 1
    return sorted(grid)
