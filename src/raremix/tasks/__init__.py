"""The synthetic task suite: a registry of algorithmic tasks with known complexity.

`make_task("modadd", 17)` builds one; `TASKS` maps each name to its factory, whose default
argument is the default complexity. Adding a task is one factory function (in the module
of its theme) plus one line in `TASKS`.
"""

from __future__ import annotations

from typing import Protocol, TypedDict

import numpy as np

from raremix.errors import RaremixError, lookup
from raremix.tasks.arithmetic import (
    add,
    between,
    bigger,
    compare,
    modadd,
    pairsum,
    state,
    step,
    successor,
)
from raremix.tasks.baselines import BASELINES, HEURISTICS, baselines
from raremix.tasks.core import SPLITS, Examples, Kind, Knob, Split, SynthTask, Task
from raremix.tasks.heldout import EVAL_EXAMPLES, EVAL_SEED, MIN_HELDOUT, heldout_set
from raremix.tasks.logic import count, depth, kvrecall, majority, parity
from raremix.tasks.sequence import chain, copy, inc, permute, reverse, sort
from raremix.tasks.split import HELDOUT_FRACTION, in_heldout
from raremix.tasks.tools import fcall, fchain, fname, fnest, fnext, fpar, fparam, fresp


class TaskFactory(Protocol):
    """Builds a task; called with no argument it uses the default complexity."""

    def __call__(self, complexity: int = ..., /) -> SynthTask: ...


TASKS: dict[str, TaskFactory] = {  # adding a task: its factory plus one line here
    # sequence.py
    "copy": copy,
    "reverse": reverse,
    "sort": sort,
    "inc": inc,
    "chain": chain,
    "permute": permute,
    # arithmetic.py
    "successor": successor,
    "modadd": modadd,
    "add": add,
    "compare": compare,
    "step": step,
    "state": state,
    "pairsum": pairsum,
    "bigger": bigger,
    "between": between,
    # logic.py
    "parity": parity,
    "majority": majority,
    "kvrecall": kvrecall,
    "depth": depth,
    "count": count,
    # tools.py: function calling, an umbrella and its seven sub-tasks
    "fcall": fcall,
    "fnest": fnest,
    "fchain": fchain,
    "fpar": fpar,
    "fname": fname,
    "fparam": fparam,
    "fnext": fnext,
    "fresp": fresp,
}


def make_task(name: str, complexity: int | None = None) -> SynthTask:
    """The registered task `name`, at its default complexity unless one is given."""
    if not isinstance(name, str):
        raise RaremixError(f"task name must be a string, got {name!r}: pass one such as 'copy'")
    factory = lookup(TASKS, "task", name)
    return factory() if complexity is None else factory(complexity)


def sample_row(task: Task, seed: int = 0) -> tuple[str, str]:
    """One training example (input, answer), for tables and docs."""
    ex = task.generate(np.array([0]), seed, "train")
    return ex.inputs[0], ex.answers[0]


class TaskRow(TypedDict):
    """One row of the `raremix tasks` table."""

    name: str
    kind: Kind
    complexity: int
    knob: str
    subtasks: tuple[str, ...]
    instruction: str
    output_space: str
    input: str
    answer: str
    n: int
    """Held-out examples at the default `eval_examples` (fewer when the space is smaller)."""
    baselines: dict[str, float]
    """chance, majority and (where a rule exists) heuristic accuracy on that held-out set."""
    rule: str
    """The heuristic's rule, "" when the task has none."""


def task_table(seed: int = 0, n: int = EVAL_EXAMPLES) -> list[TaskRow]:
    """Every registered task at its default complexity: a sample example, and the size and
    baselines of the held-out set an evaluation of `n` examples scores it on."""
    rows: list[TaskRow] = []
    for name in TASKS:
        task = make_task(name)
        x, y = sample_row(task, seed)
        held = heldout_set(task, n)
        rule = HEURISTICS.get(name)
        rows.append(
            TaskRow(
                name=task.name,
                kind=task.kind,
                complexity=task.complexity,
                knob=str(task.knob),
                subtasks=task.subtasks,
                instruction=task.instruction,
                output_space=task.output_space,
                input=x,
                answer=y,
                n=len(held),
                baselines=baselines(task, held.inputs, held.answers),
                rule=rule.rule if rule else "",
            )
        )
    return rows


__all__ = [
    "BASELINES",
    "EVAL_EXAMPLES",
    "EVAL_SEED",
    "HELDOUT_FRACTION",
    "HEURISTICS",
    "MIN_HELDOUT",
    "SPLITS",
    "TASKS",
    "Examples",
    "Kind",
    "Knob",
    "Split",
    "SynthTask",
    "Task",
    "TaskFactory",
    "TaskRow",
    "baselines",
    "heldout_set",
    "in_heldout",
    "make_task",
    "sample_row",
    "task_table",
]
