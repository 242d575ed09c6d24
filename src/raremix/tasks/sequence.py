"""String-manipulation tasks: the answer rearranges or rewrites the input's characters.

Knob for all of them: `length`, the longest input; lengths are uniform in
[ceil(length / 2), length], so the model must find where the input ends.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from raremix.tasks.core import Accept, BoolArray, Kind, Knob, Solve, SynthTask
from raremix.tasks.draws import Draws
from raremix.tasks.text import DIGITS, LETTERS, U8, draw_strings, rows_to_strings, strings_to_rows

_MIN_LEN, _MAX_LEN = 2, 16
_INC = str.maketrans("0123456789", "1234567890")


def _letters(length: int, draws: Draws) -> U8:
    return draw_strings(draws, 0, LETTERS, (length + 1) // 2, length)


def _digits(length: int, draws: Draws) -> U8:
    return draw_strings(draws, 0, DIGITS, (length + 1) // 2, length)


def _same(inputs: list[str], _draws: Draws) -> list[str]:
    return list(inputs)


def _reversed(inputs: list[str], _draws: Draws) -> list[str]:
    return [s[::-1] for s in inputs]


def _sorted(inputs: list[str], _draws: Draws) -> list[str]:
    return ["".join(sorted(s)) for s in inputs]


def _incremented(inputs: list[str], _draws: Draws) -> list[str]:
    return [s.translate(_INC) for s in inputs]


def _reversed_then_incremented(inputs: list[str], draws: Draws) -> list[str]:
    # Literally the composition of the two registered sub-tasks' solvers.
    return _incremented(_reversed(inputs, draws), draws)


def _shuffled(inputs: list[str], draws: Draws) -> list[str]:
    rows = strings_to_rows(inputs)  # (B, W), zero-padded
    keys = draws.bits(0, rows.shape[1])  # (B, W); column j does not depend on W
    keys[rows == 0] = np.iinfo(np.uint64).max  # padding sorts last, stays padding
    order = np.argsort(keys, axis=1, kind="stable")  # (B, W)
    return rows_to_strings(np.take_along_axis(rows, order, axis=1))


def _is_permutation(inputs: list[str], outputs: list[str]) -> BoolArray:
    return np.array(
        [
            isinstance(o, str) and sorted(o) == sorted(i)
            for i, o in zip(inputs, outputs, strict=True)
        ],
        dtype=bool,
    )


def _string_task(
    name: str,
    length: int,
    letters: bool,
    instruction: str,
    solve: Solve,
    kind: Kind = "structured",
    accept: Accept | None = None,
    subtasks: tuple[str, ...] = (),
) -> SynthTask:
    knob = Knob("length", _MIN_LEN, _MAX_LEN).checked(name, length)
    what = "lowercase letters" if letters else "digits"
    return SynthTask(
        name=name,
        kind=kind,
        knob=knob,
        complexity=length,
        instruction=instruction,
        output_space=f"answer with the same number of {what}",
        alphabet=(LETTERS if letters else DIGITS).decode(),
        max_input_len=length,
        max_answer_len=length,
        draw_inputs=partial(_letters if letters else _digits, length),
        solve=solve,
        accept=accept,
        subtasks=subtasks,
    )


def copy(length: int = 8) -> SynthTask:
    """Copy a letter string: the easiest format, a baseline common task."""
    return _string_task("copy", length, True, "copy the letters", _same)


def reverse(length: int = 8) -> SynthTask:
    """Reverse a digit string: position bookkeeping without arithmetic."""
    return _string_task("reverse", length, False, "reverse the digits", _reversed)


def sort(length: int = 8) -> SynthTask:
    """Sort letters alphabetically: every answer position depends on the whole input."""
    return _string_task("sort", length, True, "sort the letters alphabetically", _sorted)


def inc(length: int = 8) -> SynthTask:
    """Add one to every digit mod 10: a per-position map, chain's second step."""
    return _string_task(
        "inc", length, False, "add one to every digit, nine becomes zero", _incremented
    )


def chain(length: int = 8) -> SynthTask:
    """Reverse, then inc: a composite whose steps are registered tasks of their own."""
    return _string_task(
        "chain",
        length,
        False,
        "reverse the digits, then add one to every digit",
        _reversed_then_incremented,
        subtasks=("reverse", "inc"),
    )


def permute(length: int = 8) -> SynthTask:
    """Open: any rearrangement of the letters is right (copy and sort included)."""
    return _string_task(
        "permute",
        length,
        True,
        "rearrange the letters in any order",
        _shuffled,
        kind="open",
        accept=_is_permutation,
    )
