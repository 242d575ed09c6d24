"""Number tasks: the input holds decimal numbers and the answer is computed from them.

Structured: successor, modadd, add, compare, and the register tasks step and state.
Open (a verifier, many valid answers): pairsum, bigger, between.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from raremix.tasks.core import BoolArray, Knob, SynthTask
from raremix.tasks.draws import I64, U64, Draws, below
from raremix.tasks.text import (
    DIGITS,
    U8,
    concat,
    fixed_digits,
    is_number,
    number_field,
    number_strings,
    strings_to_rows,
)

_D = DIGITS.decode()


# The smallest number with n digits, and how many numbers have n digits.
_LO = np.array([0, 0] + [10 ** (n - 1) for n in range(2, 11)], dtype=np.int64)
_SPAN = np.array([0, 10] + [9 * 10 ** (n - 1) for n in range(2, 11)], dtype=np.int64)


def _numbers(words: U64, digits: int) -> I64:
    """(B,) ints with a digit count uniform in [1, digits], then uniform among those;
    so short numbers (and the carries of successor) are not vanishingly rare."""
    n = 1 + below(words[:, 0], digits)  # (B,) digit counts
    return _LO[n] + below(words[:, 1], _SPAN[n])  # (B,)


# successor -------------------------------------------------------------------------


def _successor_inputs(digits: int, draws: Draws) -> U8:
    return number_field(_numbers(draws.words(0, 2), digits), digits)[0]


def _plus_one(inputs: list[str], _draws: Draws) -> list[str]:
    return [str(int(s) + 1) for s in inputs]


def successor(digits: int = 4) -> SynthTask:
    """x + 1 for a number of up to `digits` digits: carries are the hard, rare case."""
    knob = Knob("digits", 2, 9).checked("successor", digits)
    return SynthTask(
        name="successor",
        kind="structured",
        knob=knob,
        complexity=digits,
        instruction="add one to the number",
        output_space="answer with a number",
        alphabet=_D,
        max_input_len=digits,
        max_answer_len=digits + 1,
        draw_inputs=partial(_successor_inputs, digits),
        solve=_plus_one,
    )


# modadd ------------------------------------------------------------------------------


def _modadd_inputs(modulus: int, draws: Draws) -> U8:
    ab = draws.ints(0, modulus, 2)  # (B, 2)
    w = len(str(modulus - 1))
    return concat(number_field(ab[:, 0], w), b"+", number_field(ab[:, 1], w))


def _sum_mod(modulus: int, inputs: list[str], _draws: Draws) -> list[str]:
    return [str((int(a) + int(b)) % modulus) for a, _, b in (s.partition("+") for s in inputs)]


def modadd(modulus: int = 17) -> SynthTask:
    """(a + b) mod p, operands below p: the lab's classic rare task (p² inputs in all)."""
    knob = Knob("modulus", 7, 100).checked("modadd", modulus)
    width = len(str(modulus - 1))
    return SynthTask(
        name="modadd",
        kind="structured",
        knob=knob,
        complexity=modulus,
        instruction=f"add the two numbers modulo {modulus}",
        output_space=f"answer with a number from 0 to {modulus - 1}",
        alphabet=_D + "+",
        max_input_len=2 * width + 1,
        max_answer_len=width,
        draw_inputs=partial(_modadd_inputs, modulus),
        solve=partial(_sum_mod, modulus),
    )


# add ---------------------------------------------------------------------------------


def _add_inputs(digits: int, draws: Draws) -> U8:
    ab = draws.ints(0, 10**digits, 2)  # (B, 2)
    return concat(fixed_digits(ab[:, 0], digits), b"+", fixed_digits(ab[:, 1], digits))


def _padded_sum(digits: int, inputs: list[str], _draws: Draws) -> list[str]:
    return [
        str(int(a) + int(b)).zfill(digits + 1) for a, _, b in (s.partition("+") for s in inputs)
    ]


def add(digits: int = 3) -> SynthTask:
    """Multi-digit addition in a fixed-width, zero-padded format: carries across digits."""
    knob = Knob("digits", 1, 6).checked("add", digits)
    return SynthTask(
        name="add",
        kind="structured",
        knob=knob,
        complexity=digits,
        instruction="add the two numbers",
        output_space=f"answer with exactly {digits + 1} digits",
        alphabet=_D + "+",
        max_input_len=2 * digits + 1,
        max_answer_len=digits + 1,
        draw_inputs=partial(_add_inputs, digits),
        solve=partial(_padded_sum, digits),
    )


# compare -----------------------------------------------------------------------------


def _compare_inputs(digits: int, draws: Draws) -> U8:
    w = draws.words(0, 5)  # (B, 5)
    u = below(w[:, 4], 10)  # (B,) b is: 2/10 equal to a, 4/10 as long as a, 4/10 independent
    n_a = 1 + below(w[:, 0], digits)  # (B,)
    n_b = np.where(u < 6, n_a, 1 + below(w[:, 2], digits))  # (B,)
    a = _LO[n_a] + below(w[:, 1], _SPAN[n_a])  # (B,)
    b = np.where(u < 2, a, _LO[n_b] + below(w[:, 3], _SPAN[n_b]))  # (B,)
    return concat(number_field(a, digits), b"?", number_field(b, digits))


def _comparison(inputs: list[str], _draws: Draws) -> list[str]:
    out = []
    for s in inputs:
        a, _, b = s.partition("?")
        x, y = int(a), int(b)
        out.append("<" if x < y else ">" if x > y else "=")
    return out


def compare(digits: int = 3) -> SynthTask:
    """Which of two numbers is larger: a three-symbol answer, unlike every other task."""
    knob = Knob("digits", 1, 6).checked("compare", digits)
    return SynthTask(
        name="compare",
        kind="structured",
        knob=knob,
        complexity=digits,
        instruction="compare the first number with the second",
        output_space="answer with one of < = >",
        alphabet=_D + "?<=>",
        max_input_len=2 * digits + 1,
        max_answer_len=1,
        draw_inputs=partial(_compare_inputs, digits),
        solve=_comparison,
    )


# step and state: a register updated mod 10 -------------------------------------------


def _register_inputs(steps: int, draws: Draws) -> U8:
    b = len(draws)
    rows = np.empty((b, 1 + 2 * steps), dtype=np.uint8)  # (B, L) "r op x op x ..."
    rows[:, 0::2] = np.frombuffer(DIGITS, np.uint8)[draws.ints(0, 10, steps + 1)]
    rows[:, 1::2] = np.frombuffer(b"+-*", np.uint8)[draws.ints(1, 3, steps)]
    return rows


def _run_register(inputs: list[str], _draws: Draws) -> list[str]:
    if not inputs:
        return []
    rows = strings_to_rows(inputs).astype(np.int64)  # (B, L), all inputs one length
    reg = rows[:, 0] - ord("0")  # (B,)
    for j in range(1, rows.shape[1], 2):
        op, x = rows[:, j], rows[:, j + 1] - ord("0")  # (B,), (B,)
        reg = np.where(op == ord("+"), reg + x, np.where(op == ord("-"), reg - x, reg * x)) % 10
    return np.array(list(_D))[reg].tolist()


def _register_task(name: str, steps: int, hi: int, instruction: str) -> SynthTask:
    knob = Knob("steps", 1, hi).checked(name, steps)
    return SynthTask(
        name=name,
        kind="structured",
        knob=knob,
        complexity=steps,
        instruction=instruction,
        output_space="answer with one digit",
        alphabet=_D + "+-*",
        max_input_len=1 + 2 * steps,
        max_answer_len=1,
        draw_inputs=partial(_register_inputs, steps),
        solve=_run_register,
        subtasks=() if name == "step" else ("step",),
    )


def step(steps: int = 1) -> SynthTask:
    """One register update, e.g. 3*4 → 2: state's single step (complexity is always 1)."""
    return _register_task("step", steps, 1, "apply the operation and keep the last digit")


def state(steps: int = 4) -> SynthTask:
    """A register updated by `steps` operations mod 10, left to right: multi-step execution."""
    return _register_task(
        "state", steps, 9, "apply the operations from left to right and keep the last digit"
    )


# open tasks --------------------------------------------------------------------------


def _pairsum_inputs(digits: int, draws: Draws) -> U8:
    return number_field(draws.ints(0, 10**digits), digits)[0]


def _some_split(inputs: list[str], draws: Draws) -> list[str]:
    x = np.array([int(s) for s in inputs], dtype=np.int64)  # (B,)
    a = draws.ints(0, x + 1)  # (B,) uniform in [0, x]
    return [f"{p} {q}" for p, q in zip(a.tolist(), (x - a).tolist(), strict=True)]


def _is_split(digits: int, inputs: list[str], outputs: list[str]) -> BoolArray:
    ok = []
    for x, o in zip(inputs, outputs, strict=True):
        parts = o.split(" ") if isinstance(o, str) else []
        ok.append(
            len(parts) == 2
            and all(is_number(p, digits) for p in parts)
            and int(parts[0]) + int(parts[1]) == int(x)
        )
    return np.array(ok, dtype=bool)


def pairsum(digits: int = 2) -> SynthTask:
    """Open: any two numbers that sum to x (x + 1 valid answers)."""
    knob = Knob("digits", 2, 6).checked("pairsum", digits)
    return SynthTask(
        name="pairsum",
        kind="open",
        knob=knob,
        complexity=digits,
        instruction="write the number as a sum of two numbers",
        output_space="answer with two numbers separated by a space",
        alphabet=_D + " ",
        max_input_len=digits,
        max_answer_len=2 * digits + 1,
        draw_inputs=partial(_pairsum_inputs, digits),
        solve=_some_split,
        accept=partial(_is_split, digits),
    )


def _bigger_inputs(digits: int, draws: Draws) -> U8:
    lo = 10 ** (digits - 1)
    return fixed_digits(lo + draws.ints(0, 10**digits - 1 - lo), digits)  # not all nines


def _some_bigger(digits: int, inputs: list[str], draws: Draws) -> list[str]:
    x = np.array([int(s) for s in inputs], dtype=np.int64)  # (B,)
    return number_strings(x + 1 + draws.ints(0, 10**digits - 1 - x))


def _is_bigger(digits: int, inputs: list[str], outputs: list[str]) -> BoolArray:
    return np.array(
        [
            is_number(o, digits) and len(o) == digits and int(o) > int(x)
            for x, o in zip(inputs, outputs, strict=True)
        ],
        dtype=bool,
    )


def bigger(digits: int = 3) -> SynthTask:
    """Open: any larger number with the same digit count as x."""
    knob = Knob("digits", 2, 9).checked("bigger", digits)
    return SynthTask(
        name="bigger",
        kind="open",
        knob=knob,
        complexity=digits,
        instruction="give any larger number with the same number of digits",
        output_space=f"answer with a number of {digits} digits",
        alphabet=_D,
        max_input_len=digits,
        max_answer_len=digits,
        draw_inputs=partial(_bigger_inputs, digits),
        solve=partial(_some_bigger, digits),
        accept=partial(_is_bigger, digits),
    )


def _between_inputs(digits: int, draws: Draws) -> U8:
    a = draws.ints(0, 10**digits - 2)  # (B,)
    b = a + 2 + draws.ints(1, 10**digits - a - 2)  # (B,) at least one number between
    return concat(number_field(a, digits), b",", number_field(b, digits))


def _some_between(inputs: list[str], draws: Draws) -> list[str]:
    ab = np.array([s.split(",") for s in inputs], dtype=np.int64).reshape(-1, 2)  # (B, 2)
    return number_strings(ab[:, 0] + 1 + draws.ints(0, ab[:, 1] - ab[:, 0] - 1))


def _is_between(digits: int, inputs: list[str], outputs: list[str]) -> BoolArray:
    ok = []
    for x, o in zip(inputs, outputs, strict=True):
        a, b = map(int, x.split(","))
        ok.append(is_number(o, digits) and a < int(o) < b)
    return np.array(ok, dtype=bool)


def between(digits: int = 3) -> SynthTask:
    """Open: any number strictly between a and b."""
    knob = Knob("digits", 2, 6).checked("between", digits)
    return SynthTask(
        name="between",
        kind="open",
        knob=knob,
        complexity=digits,
        instruction="give any number strictly between the two numbers",
        output_space="answer with a number",
        alphabet=_D + ",",
        max_input_len=2 * digits + 1,
        max_answer_len=digits,
        draw_inputs=partial(_between_inputs, digits),
        solve=_some_between,
        accept=partial(_is_between, digits),
    )
