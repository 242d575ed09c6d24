"""Curricula: orderings of the tasks, turned into schedule phases the sampler runs on.

A curriculum is chosen by name from `CURRICULA`, a registry of pure functions
`(facts, tasks, by, seed) → ordered tasks`. One dispatcher, `curriculum_schedule`,
turns an ordering into a `ScheduleSpec`, so a curriculum composes with everything a
schedule does (plans, anneals, the sampler's exact weights, resume):

    phase 0       [0, base_fraction)       the base mix over `base_tasks` (if base_fraction > 0)
    stage k       the rest, in `stages` equal parts:
                  w = (1 − focus) · base mix + focus · (uniform over stage k's tasks)

The ordered tasks are split into `stages` contiguous groups (default: one task each).
Every stage has the same length and the same `focus`, so two curricula over the same
tasks differ only in the order: each task gets the same share of the run.

Orderings:

| kind | order |
|---|---|
| `rarity-first` | rarest first: by `frequency` (the base-mix share, ascending) or by `loss` (the model's loss at the base phase end, descending: least familiar first) — CTFT |
| `easy-to-hard` | by `complexity` (`difficulty`, ascending) or by `loss` (ascending) |
| `structured-first` | structured tasks, then open ones (two stages) — Omni-Thinker |
| `open-first` | open tasks, then structured ones |
| `random` | a permutation drawn from `seed` |
| `bwt-guided` | the order that minimises total forgetting under a measured matrix F[a, b] (rise of b's loss from training on a): exact over permutations for ≤ 7 tasks, greedy beyond |

The facts an ordering needs are given in the curriculum's config (`losses`,
`difficulty`, `kinds`, `forgetting`) or derived: frequency from the base mix, kinds from
the registered task of each source's name. `raremix.studies.ordering.run` measures
losses and the forgetting matrix at the base phase end of a run and fills them in.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from raremix.errors import RaremixError
from raremix.mixture.spec import CurriculumSpec, PhaseSpec, ScheduleSpec

EXACT_MAX = 7
"""bwt-guided searches every permutation up to this many tasks (7! = 5,040), greedily beyond."""


@dataclass(frozen=True)
class TaskFacts:
    """What an ordering may look at, per source (in source order)."""

    names: tuple[str, ...]
    frequency: np.ndarray
    """Base-mix weights (sum to 1): how often each task is seen without a curriculum."""
    kinds: Mapping[str, str] = field(default_factory=dict)
    """structured | open, per task."""
    difficulty: Mapping[str, float] = field(default_factory=dict)
    """A number per task, larger = harder (e.g. the knob's position in its range)."""
    losses: Mapping[str, float] | None = None
    """The model's loss per task at the start of the curriculum."""
    forgetting: np.ndarray | None = None
    """(K, K) F[a, b]: rise of task b's loss from training on task a (diagonal ignored)."""


def _need(values: Mapping[str, object] | None, tasks: Sequence[str], what: str, fix: str) -> None:
    missing = [t for t in tasks if values is None or t not in values]
    if missing:
        raise RaremixError(f"{what} misses task '{missing[0]}': {fix}")


def _losses(facts: TaskFacts, tasks: Sequence[str]) -> Mapping[str, float]:
    _need(
        facts.losses,
        tasks,
        "curriculum.losses",
        "give each ordered task's loss at the base phase end, or run through "
        "raremix.studies.ordering.run:run_ordering, which measures them",
    )
    assert facts.losses is not None
    return facts.losses


def _ranked(tasks: Sequence[str], score: Mapping[str, float]) -> list[str]:
    """Tasks by ascending score; ties keep source order (stable)."""
    return sorted(tasks, key=lambda t: score[t])


def rarity_first(
    facts: TaskFacts, tasks: Sequence[str], by: str | None, seed: int | None
) -> list[str]:
    """Rarest first (CTFT): ascending base-mix share, or descending loss (least familiar first)."""
    if by == "loss":
        losses = _losses(facts, tasks)
        return _ranked(tasks, {t: -losses[t] for t in tasks})
    return _ranked(tasks, dict(zip(facts.names, facts.frequency.tolist(), strict=True)))


def easy_to_hard(
    facts: TaskFacts, tasks: Sequence[str], by: str | None, seed: int | None
) -> list[str]:
    """The classic curriculum: ascending difficulty (a complexity number) or ascending loss."""
    if by == "loss":
        return _ranked(tasks, _losses(facts, tasks))
    _need(
        facts.difficulty,
        tasks,
        "curriculum.difficulty",
        "give each ordered task a difficulty number, or rank by: loss",
    )
    return _ranked(tasks, facts.difficulty)


def _by_kind(facts: TaskFacts, tasks: Sequence[str], first: str) -> list[str]:
    _need(
        facts.kinds,
        tasks,
        "curriculum.kinds",
        "give curriculum.kinds: {task: structured|open} for sources that are not registered tasks",
    )
    return [t for t in tasks if facts.kinds[t] == first] + [
        t for t in tasks if facts.kinds[t] != first
    ]


def structured_first(
    facts: TaskFacts, tasks: Sequence[str], by: str | None, seed: int | None
) -> list[str]:
    """Structured tasks before open ones (Omni-Thinker)."""
    return _by_kind(facts, tasks, "structured")


def open_first(
    facts: TaskFacts, tasks: Sequence[str], by: str | None, seed: int | None
) -> list[str]:
    """Open tasks before structured ones."""
    return _by_kind(facts, tasks, "open")


def random_order(
    facts: TaskFacts, tasks: Sequence[str], by: str | None, seed: int | None
) -> list[str]:
    """A uniformly random permutation drawn from `seed`."""
    if seed is None:
        raise RaremixError("curriculum 'random' needs a seed: add curriculum.seed: N")
    perm = np.random.default_rng(seed).permutation(len(tasks))
    return [tasks[i] for i in perm]


def forgetting_cost(order: Sequence[int], f: np.ndarray) -> float:
    """Σ over stages i of Σ_{j before i} F[order[i], order[j]]: what later stages undo."""
    return float(sum(f[order[i], order[j]] for i in range(len(order)) for j in range(i)))


def min_forgetting_order(f: np.ndarray) -> list[int]:
    """The order of rows/columns of F minimising `forgetting_cost`: exact up to EXACT_MAX
    tasks; beyond, greedily from the back (the last stage is the task that makes the
    remaining ones forget least, then the one before it, …)."""
    m = np.asarray(f, dtype=np.float64)
    k = len(m)
    if k <= EXACT_MAX:
        best = min(itertools.permutations(range(k)), key=lambda p: forgetting_cost(p, m))
        return list(best)
    left, back = list(range(k)), []
    while left:
        last = min(left, key=lambda a: sum(m[a, b] for b in left if b != a))
        back.append(last)
        left.remove(last)
    return back[::-1]


def bwt_guided(
    facts: TaskFacts, tasks: Sequence[str], by: str | None, seed: int | None
) -> list[str]:
    """The order that minimises total forgetting under the measured matrix `facts.forgetting`."""
    if facts.forgetting is None:
        raise RaremixError(
            "curriculum 'bwt-guided' needs curriculum.forgetting: {a: {b: F}}: measure it with "
            "raremix.studies.ordering.run (or run through its run_ordering)"
        )
    idx = [facts.names.index(t) for t in tasks]
    order = min_forgetting_order(facts.forgetting[np.ix_(idx, idx)])
    return [tasks[i] for i in order]


Ordering = Callable[[TaskFacts, Sequence[str], "str | None", "int | None"], list[str]]
CURRICULA: dict[str, Ordering] = {
    "rarity-first": rarity_first,
    "easy-to-hard": easy_to_hard,
    "structured-first": structured_first,
    "open-first": open_first,
    "random": random_order,
    "bwt-guided": bwt_guided,
}
"""Curricula by name (`mixture.curriculum.kind`); adding one is one `Ordering` plus one line."""
BY: dict[str, tuple[str, ...]] = {
    "rarity-first": ("frequency", "loss"),
    "easy-to-hard": ("complexity", "loss"),
}
"""The rankings each kind accepts (the first is the default); other kinds take no `by`."""
TWO_STAGES = ("structured-first", "open-first")


def curriculum_order(spec: CurriculumSpec, facts: TaskFacts) -> list[str]:
    """The tasks the curriculum orders, in its order."""
    tasks = list(spec.tasks or facts.names)
    by = spec.by or BY.get(spec.kind, (None,))[0]
    return CURRICULA[spec.kind](facts, tasks, by, spec.seed)


def curriculum_schedule(spec: CurriculumSpec, facts: TaskFacts) -> ScheduleSpec:
    """The schedule a curriculum generates: a base phase, then one phase per stage."""
    groups = stage_groups(spec, facts, curriculum_order(spec, facts))
    base = facts.frequency
    phases: list[PhaseSpec] = []
    if spec.base_fraction > 0:
        keep = np.array([n in (spec.base_tasks or facts.names) for n in facts.names])
        if not (base * keep).sum() > 0:
            raise RaremixError(
                "curriculum.base_tasks all have zero weight in the base mix: choose tasks it trains"
            )
        phases.append(
            PhaseSpec(start=0, weights=_weights(facts.names, base * keep / (base * keep).sum()))
        )
    span = 1.0 - spec.base_fraction
    for k, group in enumerate(groups):
        focus = np.array([spec.focus / len(group) if n in group else 0.0 for n in facts.names])
        w = (1.0 - spec.focus) * base + focus
        start = spec.base_fraction + span * k / len(groups)
        anneal = spec.anneal if phases else "none"
        phases.append(PhaseSpec(start=start, weights=_weights(facts.names, w), anneal=anneal))
    return ScheduleSpec(unit="fraction", phases=phases)


def stage_groups(spec: CurriculumSpec, facts: TaskFacts, order: list[str]) -> list[list[str]]:
    """The ordered tasks split into stages: contiguous groups whose sizes differ by at most 1
    (structured-first/open-first: one group per kind)."""
    if spec.kind in TWO_STAGES:
        if spec.stages not in (None, 2):
            raise RaremixError(
                f"curriculum '{spec.kind}' has two stages (one per kind): drop curriculum.stages"
            )
        first = facts.kinds[order[0]]
        cut = next((i for i, t in enumerate(order) if facts.kinds[t] != first), len(order))
        return [g for g in (order[:cut], order[cut:]) if g]
    stages = spec.stages or len(order)
    if stages > len(order):
        raise RaremixError(
            f"curriculum.stages is {stages} but it orders {len(order)} tasks: use at most {len(order)}"
        )
    bounds = np.linspace(0, len(order), stages + 1).round().astype(int)
    return [order[bounds[i] : bounds[i + 1]] for i in range(stages)]


def _weights(names: Sequence[str], w: np.ndarray) -> dict[str, float]:
    assert math.isclose(float(w.sum()), 1.0), w
    return {n: float(v) for n, v in zip(names, w, strict=True)}


def task_facts(names: Sequence[str], base: np.ndarray, spec: CurriculumSpec) -> TaskFacts:
    """Facts from the base mix and the curriculum's config; kinds default to the registered
    task of each source's name (sources that are not tasks need curriculum.kinds)."""
    kinds = dict(spec.kinds or {})
    if spec.kind in TWO_STAGES:
        from raremix.tasks import TASKS, make_task

        for n in names:
            if n not in kinds and n in TASKS:
                kinds[n] = make_task(n).kind
    forgetting = None
    if spec.forgetting is not None:
        ordered = spec.tasks or list(names)
        f = np.zeros((len(names), len(names)))
        for a in ordered:
            for b in ordered:
                if a != b:
                    row = spec.forgetting.get(a, {})
                    if b not in row:
                        raise RaremixError(
                            f"curriculum.forgetting misses {a} → {b}: give forgetting[{a}][{b}] for every ordered pair"
                        )
                    f[names.index(a), names.index(b)] = row[b]
        forgetting = f
    return TaskFacts(
        tuple(names),
        np.asarray(base, dtype=np.float64),
        kinds,
        dict(spec.difficulty or {}),
        spec.losses,
        forgetting,
    )
