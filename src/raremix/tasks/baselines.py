"""What an accuracy must beat: each task's chance and heuristic baselines on a held-out set.

Three numbers per task, all on the *actual* held-out inputs a run is scored on:

- `chance`: the expected accuracy of a uniformly random answer in the task's output space
  (e.g. 1/3 for compare, 1/p for modadd; for open tasks, the share of that space which is
  valid for each input, e.g. bigger: (10^d − 1 − x) / (9·10^(d−1))).
- `majority`: always giving the held-out set's most common reference answer.
- `heuristic`: the simplest rule that does well, where one exists (`HEURISTICS`): e.g.
  "longer is larger, equal is =" scores ~0.73 on 3-digit compare, so a model at 0.65 has
  not learned compare.

`baselines(task, inputs, answers)` gives all three. Adding a rule is one function on the
inputs plus one line in `HEURISTICS`; a task's output space is one line in `CHANCE`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from math import factorial, prod

import numpy as np
import numpy.typing as npt

from raremix.errors import RaremixError
from raremix.tasks.core import Task
from raremix.tasks.tools import plan

FloatArray = npt.NDArray[np.float64]
Rule = Callable[[list[str]], list[str]]
"""Inputs → the rule's answers."""
Chance = Callable[[Task, list[str], list[str]], FloatArray]
"""(task, inputs, answers) → (B,) probability that a uniform random answer is valid."""
BASELINES = ("chance", "majority", "heuristic")
"""Names of the baseline metrics, in display order."""
_MAJORITY_CANDIDATES = 32  # open tasks: the most common references tried as constant answers
_INC = str.maketrans("0123456789", "1234567890")


@dataclass(frozen=True)
class Heuristic:
    """A simple rule that scores well on a task without solving it."""

    rule: str
    """What the rule does, in a few words."""
    answer: Rule


# heuristic rules: pure functions of the inputs ----------------------------------------


def _echo(inputs: list[str]) -> list[str]:
    return list(inputs)


def _inc_only(inputs: list[str]) -> list[str]:
    return [s.translate(_INC) for s in inputs]


def _last_digit_plus_one(inputs: list[str]) -> list[str]:
    return [s[:-1] + str((int(s[-1]) + 1) % 10) for s in inputs]


def _sum_without_modulus(inputs: list[str]) -> list[str]:
    return [str(int(a) + int(b)) for a, _, b in (s.partition("+") for s in inputs)]


def _sum_without_carries(inputs: list[str]) -> list[str]:
    out = []
    for s in inputs:
        a, _, b = s.partition("+")
        out.append("0" + "".join(str((int(x) + int(y)) % 10) for x, y in zip(a, b, strict=True)))
    return out


def _length_then_equality(inputs: list[str]) -> list[str]:
    out = []
    for s in inputs:
        a, _, b = s.partition("?")
        if len(a) != len(b):
            out.append(">" if len(a) > len(b) else "<")
        else:  # same length: only equality is visible without reading digits; else guess
            out.append("=" if a == b else ">")
    return out


def _operator_blind_step(inputs: list[str]) -> list[str]:
    return [str((int(s[0]) + int(s[2])) % 10) for s in inputs]


def _first_three_letters(inputs: list[str]) -> list[str]:
    return ["x" if s[:3].count("x") >= 2 else "o" for s in inputs]


def _first_value(inputs: list[str]) -> list[str]:
    return [s[1] for s in inputs]


def _longest_open_run(inputs: list[str]) -> list[str]:
    return [str(max(len(run) for run in re.findall(r"\(+", s))) for s in inputs]


def _zero_and_x(inputs: list[str]) -> list[str]:
    return [f"0 {s}" for s in inputs]


def _all_nines(inputs: list[str]) -> list[str]:
    return ["9" * len(s) for s in inputs]


def _lower_plus_one(inputs: list[str]) -> list[str]:
    return [str(int(s.partition(",")[0]) + 1) for s in inputs]


def _request_digits(inputs: list[str]) -> list[str]:
    return [",".join(re.findall(r"\d", s.partition(":")[2])) for s in inputs]


def _first_tool(inputs: list[str]) -> list[str]:
    return [f"{s[1:3]}({s.partition(':')[2][1]})" for s in inputs]


HEURISTICS: dict[str, Heuristic] = {
    "reverse": Heuristic("echo the input", _echo),
    "sort": Heuristic("echo the input", _echo),
    "chain": Heuristic("inc without reversing", _inc_only),
    "permute": Heuristic("echo the input", _echo),
    "successor": Heuristic("last digit + 1, no carry", _last_digit_plus_one),
    "modadd": Heuristic("a + b, no modulus", _sum_without_modulus),
    "add": Heuristic("digit-wise sums, no carries", _sum_without_carries),
    "compare": Heuristic("longer is larger, equal is =, else >", _length_then_equality),
    "step": Heuristic("(r + x) mod 10, whatever the operator", _operator_blind_step),
    "pairsum": Heuristic("0 and x", _zero_and_x),
    "bigger": Heuristic("all nines", _all_nines),
    "between": Heuristic("a + 1", _lower_plus_one),
    "majority": Heuristic("majority of the first three letters", _first_three_letters),
    "kvrecall": Heuristic("the first stored digit", _first_value),
    "depth": Heuristic("longest run of (", _longest_open_run),
    "fparam": Heuristic("the request's digits, in order", _request_digits),
    "fnext": Heuristic("the first listed tool", _first_tool),
}
"""Task → its simplest well-scoring rule. Tasks absent here have none worth stating:
copy (echoing *is* the task), inc and count (nothing beats the majority answer), parity
(no rule beats chance: the point of the task), state and the remaining tool tasks."""


# chance: the output space, and how much of it is valid --------------------------------


def _one_in(k: Callable[[Task], int]) -> Chance:
    """Exactly one valid answer among k(task) possible ones."""
    return lambda task, inputs, _answers: np.full(len(inputs), 1.0 / k(task))


def _same_length(alphabet: int) -> Chance:
    """One valid string among every string over `alphabet` of the answer's length."""
    return lambda _task, _inputs, answers: np.array([alphabet ** -len(a) for a in answers])


def _permute_chance(_task: Task, inputs: list[str], _answers: list[str]) -> FloatArray:
    # the valid answers are the input's distinct rearrangements
    perms = [factorial(len(s)) // prod(factorial(c) for c in Counter(s).values()) for s in inputs]
    return np.array([p / 26 ** len(s) for p, s in zip(perms, inputs, strict=True)])


def _pairsum_chance(task: Task, inputs: list[str], _answers: list[str]) -> FloatArray:
    # pairs of numbers of ≤ d digits: (10^d)^2; the x + 1 pairs (a, x − a) are valid
    x = np.array([int(s) for s in inputs], dtype=np.float64)
    return (x + 1) / 10.0 ** (2 * task.complexity)


def _bigger_chance(task: Task, inputs: list[str], _answers: list[str]) -> FloatArray:
    d = task.complexity  # numbers of exactly d digits; those above x are valid
    x = np.array([int(s) for s in inputs], dtype=np.float64)
    return (10.0**d - 1 - x) / (9 * 10.0 ** (d - 1))


def _between_chance(task: Task, inputs: list[str], _answers: list[str]) -> FloatArray:
    ab = np.array([s.split(",") for s in inputs], dtype=np.float64).reshape(-1, 2)  # (B, 2)
    return (ab[:, 1] - ab[:, 0] - 1) / 10.0**task.complexity  # numbers of ≤ d digits


def _tool_chance(task: Task, inputs: list[str], answers: list[str]) -> FloatArray:
    """A random answer of the reference's shape: 64 names per name slot, 10 digits per digit
    slot; parallel calls are valid in either order (two answers when the calls differ)."""
    out = []
    for x, a in zip(inputs, answers, strict=True):
        names, digits = len(re.findall(r"[a-z]{2}", a)), len(re.findall(r"\d", a))
        p = plan(x)
        valid = 2 if task.kind == "open" and p.other is not None and p.other != p.call else 1
        out.append(valid / (64**names * 10**digits))
    return np.array(out, dtype=np.float64)


_ONE_DIGIT = _one_in(lambda _t: 10)


CHANCE: dict[str, Chance] = {
    "copy": _same_length(26),
    "reverse": _same_length(10),
    "sort": _same_length(26),
    "inc": _same_length(10),
    "chain": _same_length(10),
    "permute": _permute_chance,
    "successor": _one_in(lambda t: 10**t.max_answer_len),  # numbers of ≤ d + 1 digits
    "modadd": _one_in(lambda t: t.complexity),
    "add": _one_in(lambda t: 10**t.max_answer_len),  # exactly d + 1 digits
    "compare": _one_in(lambda _t: 3),
    "step": _ONE_DIGIT,
    "state": _ONE_DIGIT,
    "pairsum": _pairsum_chance,
    "bigger": _bigger_chance,
    "between": _between_chance,
    "parity": _one_in(lambda _t: 2),
    "majority": _one_in(lambda _t: 2),
    "kvrecall": _ONE_DIGIT,
    "depth": _ONE_DIGIT,
    "count": _ONE_DIGIT,
    **dict.fromkeys(
        ("fcall", "fnest", "fchain", "fpar", "fname", "fparam", "fnext", "fresp"), _tool_chance
    ),
}
"""Task → the chance that a uniform random answer in its stated output space is valid."""


# the three baselines ----------------------------------------------------------------


def _scored(task: Task, inputs: list[str], answers: list[str], outputs: list[str]) -> float:
    """Accuracy of `outputs`: equality with the reference for structured tasks, else verified."""
    if task.kind == "structured":
        return float(np.mean([o == a for o, a in zip(outputs, answers, strict=True)]))
    return float(task.verify(inputs, outputs).mean())


def random_answer(task: Task, inputs: Sequence[str], answers: Sequence[str]) -> float:
    """Expected accuracy of a uniformly random answer in the task's output space."""
    chance = CHANCE.get(task.name)
    if chance is None:
        raise RaremixError(
            f"task '{task.name}' has no output space in raremix.tasks.baselines.CHANCE: add one"
        )
    return float(chance(task, list(inputs), list(answers)).mean())


def majority_class(task: Task, inputs: Sequence[str], answers: Sequence[str]) -> float:
    """Accuracy of answering every input with one constant: the most common reference
    answer (open tasks: whichever of the most common references the verifier accepts most)."""
    counts = Counter(answers).most_common(_MAJORITY_CANDIDATES)
    ins, ans = list(inputs), list(answers)
    if task.kind == "structured":
        return counts[0][1] / len(ans)
    return max(_scored(task, ins, ans, [c] * len(ins)) for c, _ in counts)


def heuristic(task: Task, inputs: Sequence[str], answers: Sequence[str]) -> float | None:
    """Accuracy of the task's rule in `HEURISTICS`, or None when it has none."""
    h = HEURISTICS.get(task.name)
    if h is None:
        return None
    ins = list(inputs)
    return _scored(task, ins, list(answers), h.answer(ins))


def baselines(task: Task, inputs: Sequence[str], answers: Sequence[str]) -> dict[str, float]:
    """{"chance", "majority", "heuristic"} accuracies on these held-out examples; a task
    without a rule has no "heuristic" key. An empty set has no baselines: {}."""
    if len(inputs) != len(answers):
        raise RaremixError(
            f"task '{task.name}': baselines got {len(inputs)} inputs but {len(answers)} "
            "answers: pass one answer per input"
        )
    if not inputs:
        return {}
    out = {
        "chance": random_answer(task, inputs, answers),
        "majority": majority_class(task, inputs, answers),
    }
    rule = heuristic(task, inputs, answers)
    if rule is not None:
        out["heuristic"] = rule
    return out
