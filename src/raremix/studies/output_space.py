"""Output spaces: whether an answer has a task's declared format, and random answers in it.

A task declares its output space in words (`task.output_space`, the text of the
'output_space' framing). Each known wording maps to a format check and a sampler of
uniformly random answers in that space: the check scores format correctness, and the
sampler gives Kung & Peng's baseline, which answers with a random element of the right
output space (`random_baseline`: sampled answers, scored by the task's own verifier).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from raremix.errors import RaremixError
from raremix.tasks import Task

Check = Callable[[str, str], bool]
"""(input, output) → whether the output is in the space."""
Sample = Callable[[str, np.random.Generator], str]
"""(input, generator) → a uniformly random element of the space."""
Size = Callable[[str], float]
"""input → how many elements the space has."""
Space = tuple[Check, Sample, Size]
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_DIGITS = "0123456789"


def _number(s: str, max_len: int = 18) -> bool:
    return 0 < len(s) <= max_len and s.isdigit() and (s == "0" or s[0] != "0")


def _string(alphabet: str) -> Space:
    """Strings over `alphabet` as long as the input."""

    def check(x: str, o: str) -> bool:
        return len(o) == len(x) and all(c in alphabet for c in o)

    def sample(x: str, rng: np.random.Generator) -> str:
        return "".join(rng.choice(list(alphabet), size=len(x)))

    return check, sample, lambda x: float(len(alphabet)) ** len(x)


def _one_of(options: Sequence[str]) -> Space:
    return (
        lambda _x, o: o in options,
        lambda _x, rng: str(rng.choice(list(options))),
        lambda _x: float(len(options)),
    )


def _below(n: int) -> Space:
    """Canonical numbers 0 … n − 1."""
    return (
        lambda _x, o: _number(o) and int(o) < n,
        lambda _x, rng: str(rng.integers(n)),
        lambda _x: float(n),
    )


def _fixed_digits(n: int) -> Space:
    return (
        lambda _x, o: len(o) == n and o.isdigit(),
        lambda _x, rng: "".join(rng.choice(list(_DIGITS), size=n)),
        lambda _x: 10.0**n,
    )


def _n_digit_number(n: int) -> Space:
    lo = 10 ** (n - 1) if n > 1 else 0
    return (
        lambda _x, o: _number(o) and len(o) == n,
        lambda _x, rng: str(rng.integers(lo, 10**n)),
        lambda _x: float(10**n - lo),
    )


def _two_numbers() -> Space:
    """Two numbers each below 10**len(input) (pairsum: parts of a number of that length)."""

    def check(_x: str, o: str) -> bool:
        parts = o.split(" ")
        return len(parts) == 2 and all(_number(p) for p in parts)

    return (
        check,
        lambda x, rng: f"{rng.integers(10 ** len(x))} {rng.integers(10 ** len(x))}",
        lambda x: float(10 ** len(x)) ** 2,
    )


def _space(text: str, max_answer_len: int) -> Space:
    """The check, sampler and size of one output-space wording."""
    fixed: dict[str, Space] = {
        "answer with the same number of lowercase letters": _string(_LETTERS),
        "answer with the same number of digits": _string(_DIGITS),
        "answer with one digit": _one_of(list(_DIGITS)),
        "answer with x or o": _one_of(["x", "o"]),
        "answer with 0 or 1": _one_of(["0", "1"]),
        "answer with one of < = >": _one_of(["<", "=", ">"]),
        "answer with a number": _below(10**max_answer_len),
        "answer with two numbers separated by a space": _two_numbers(),
    }
    if text in fixed:
        return fixed[text]
    for pattern, make in (
        (r"answer with a number from 0 to (\d+)", lambda m: _below(int(m) + 1)),
        (r"answer with exactly (\d+) digits", lambda m: _fixed_digits(int(m))),
        (r"answer with a number of (\d+) digits", lambda m: _n_digit_number(int(m))),
    ):
        found = re.fullmatch(pattern, text)
        if found:
            return make(found.group(1))
    raise RaremixError(
        f"no format check for the output space '{text}': add its wording to "
        "raremix.studies.output_space"
    )


def in_output_space(
    task: Task, inputs: Sequence[str], outputs: Sequence[str]
) -> npt.NDArray[np.bool_]:
    """(B,) whether each output has the format `task.output_space` declares."""
    check, _, _ = _space(task.output_space, task.max_answer_len)
    return np.array(
        [isinstance(o, str) and check(x, o) for x, o in zip(inputs, outputs, strict=True)],
        dtype=bool,
    )


def random_answers(task: Task, inputs: Sequence[str], seed: int) -> list[str]:
    """One uniformly random answer from the task's output space per input."""
    _, sample, _ = _space(task.output_space, task.max_answer_len)
    rng = np.random.default_rng(seed)
    return [sample(x, rng) for x in inputs]


def random_baseline(task: Task, inputs: Sequence[str], draws: int = 64, seed: int = 0) -> float:
    """Expected accuracy of answering with a uniformly random element of the output space.

    Exact for structured tasks: an input's one right answer is drawn with probability
    1 / |space| when it lies in the space. Open tasks (many right answers) are estimated:
    `draws` random answers per input, scored by the task's verifier.
    """
    if not inputs:
        return float("nan")
    if task.kind == "structured":
        check, _, size = _space(task.output_space, task.max_answer_len)
        refs = task.reference(inputs)  # type: ignore[attr-defined]
        return float(np.mean([check(x, r) / size(x) for x, r in zip(inputs, refs, strict=True)]))
    return sampled_baseline(task, inputs, draws, seed)


def sampled_baseline(task: Task, inputs: Sequence[str], draws: int = 64, seed: int = 0) -> float:
    """The random-output-space baseline by sampling: `draws` random answers per input,
    scored by the task's verifier."""
    hits = [
        task.verify(inputs, random_answers(task, inputs, seed + d)).mean() for d in range(draws)
    ]
    return float(np.mean(hits)) if inputs else float("nan")
