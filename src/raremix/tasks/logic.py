"""Counting, recall and parity tasks: the answer is one symbol summarising the input.

These are the tasks small models find hardest at a fixed budget (LAB_NOTES: kvrecall with
4 pairs and count were never learned), so their defaults are kept small.
"""

from __future__ import annotations

from functools import cache, partial

import numpy as np

from raremix.seeding import splitmix64
from raremix.tasks.core import Knob, SynthTask
from raremix.tasks.draws import I64, Draws, below
from raremix.tasks.text import DIGITS, LETTERS, U8, choose, concat, draw_strings, strings_to_rows

_D = DIGITS.decode()
_DIGIT_STR = np.array(list(_D))
_PARITY_BITS = 10
# A fixed order of the bit positions; parity(k) reads the first k of it, so the secret
# subsets are nested as k grows and never change between runs.
_SECRET_ORDER = np.argsort(splitmix64(np.arange(_PARITY_BITS, dtype=np.uint64) + np.uint64(7)))


def _digit_answers(values: np.ndarray) -> list[str]:
    return _DIGIT_STR[values].tolist()


# parity ------------------------------------------------------------------------------


def _bits(draws: Draws) -> U8:
    return draw_strings(draws, 0, b"01", _PARITY_BITS, _PARITY_BITS)


def _secret_parity(k: int, inputs: list[str], _draws: Draws) -> list[str]:
    if not inputs:
        return []
    rows = strings_to_rows(inputs)  # (B, 10)
    secret = np.sort(_SECRET_ORDER[:k])  # (k,)
    ones = (rows[:, secret] == ord("1")).sum(axis=1)  # (B,)
    return _digit_answers(ones % 2)


def parity(bits: int = 3) -> SynthTask:
    """Sparse parity: XOR of `bits` fixed secret positions out of 10; learned abruptly."""
    knob = Knob("bits", 1, _PARITY_BITS).checked("parity", bits)
    return SynthTask(
        name="parity",
        kind="structured",
        knob=knob,
        complexity=bits,
        instruction="say whether an odd number of the secret bits are one",
        output_space="answer with 0 or 1",
        alphabet="01",
        max_input_len=_PARITY_BITS,
        max_answer_len=1,
        draw_inputs=_bits,
        solve=partial(_secret_parity, bits),
    )


# majority ----------------------------------------------------------------------------


def _xo(length: int, draws: Draws) -> U8:
    return draw_strings(draws, 0, b"xo", length, length)


def _most_common(inputs: list[str], _draws: Draws) -> list[str]:
    return ["x" if 2 * s.count("x") > len(s) else "o" for s in inputs]


def majority(length: int = 9) -> SynthTask:
    """Which of x and o is more frequent in an odd-length string (so never a tie)."""
    knob = Knob("length", 7, 19, odd=True).checked("majority", length)
    return SynthTask(
        name="majority",
        kind="structured",
        knob=knob,
        complexity=length,
        instruction="name the letter that appears most often",
        output_space="answer with x or o",
        alphabet="xo",
        max_input_len=length,
        max_answer_len=1,
        draw_inputs=partial(_xo, length),
        solve=_most_common,
    )


# kvrecall ----------------------------------------------------------------------------


def _kv_inputs(pairs: int, draws: Draws) -> U8:
    b = len(draws)
    keys = draws.distinct(0, len(LETTERS), pairs)  # (B, P) distinct letters
    rows = np.empty((b, 2 * pairs + 2), dtype=np.uint8)  # (B, L) "k v k v ... : k"
    rows[:, 0 : 2 * pairs : 2] = np.frombuffer(LETTERS, np.uint8)[keys]
    rows[:, 1 : 2 * pairs : 2] = np.frombuffer(DIGITS, np.uint8)[draws.ints(1, 10, pairs)]
    rows[:, -2] = ord(":")
    rows[:, -1] = rows[np.arange(b), 2 * draws.ints(2, pairs)]  # (B,) one of the keys
    return rows


def _recall(inputs: list[str], _draws: Draws) -> list[str]:
    # Keys are distinct and precede the query, so the first occurrence is the key.
    return [s[s.index(s[-1]) + 1] for s in inputs]


def kvrecall(pairs: int = 2) -> SynthTask:
    """Key-value recall: the digit stored under the queried letter among `pairs` pairs."""
    knob = Knob("pairs", 1, 8).checked("kvrecall", pairs)
    return SynthTask(
        name="kvrecall",
        kind="structured",
        knob=knob,
        complexity=pairs,
        instruction="give the digit stored under the letter after the colon",
        output_space="answer with one digit",
        alphabet=LETTERS.decode() + _D + ":",
        max_input_len=2 * pairs + 2,
        max_answer_len=1,
        draw_inputs=partial(_kv_inputs, pairs),
        solve=_recall,
    )


# depth -------------------------------------------------------------------------------


@cache
def _dyck_table(pairs: int) -> tuple[U8, I64, I64]:
    """Every balanced string of 1..pairs pairs, grouped by pairs: codes (N, 2P), the row
    where each pair count starts (P + 1,), and how many there are (P + 1,)."""
    by_pairs: list[list[str]] = [[""]]
    for m in range(1, pairs + 1):
        # A balanced string is "(" inner ")" rest, with inner and rest balanced.
        by_pairs.append(
            [f"({a}){b}" for i in range(m) for a in by_pairs[i] for b in by_pairs[m - 1 - i]]
        )
    words = [w for group in by_pairs[1:] for w in group]
    codes = np.zeros((len(words), 2 * pairs), dtype=np.uint8)
    for r, w in enumerate(words):
        codes[r, : len(w)] = np.frombuffer(w.encode(), np.uint8)
    sizes = np.array([0] + [len(g) for g in by_pairs[1:]], dtype=np.int64)
    starts = np.concatenate([[0, 0], np.cumsum(sizes[1:])[:-1]]).astype(np.int64)
    codes.flags.writeable = False
    return codes, starts, sizes


def _brackets(pairs: int, draws: Draws) -> U8:
    # Pair count uniform in [1, pairs], then a uniform balanced string with that many.
    codes, starts, sizes = _dyck_table(pairs)
    w = draws.words(0, 2)  # (B, 2)
    m = 1 + below(w[:, 0], pairs)  # (B,)
    return codes[starts[m] + below(w[:, 1], sizes[m])]  # (B, 2P)


def _max_depth(inputs: list[str], _draws: Draws) -> list[str]:
    if not inputs:
        return []
    rows = strings_to_rows(inputs)  # (B, W)
    steps = (rows == ord("(")).astype(np.int64) - (rows == ord(")"))  # (B, W)
    return _digit_answers(np.cumsum(steps, axis=1).max(axis=1))


def depth(pairs: int = 6) -> SynthTask:
    """Maximum nesting depth of a balanced bracket string of 1 to `pairs` pairs."""
    knob = Knob("pairs", 5, 9).checked("depth", pairs)
    return SynthTask(
        name="depth",
        kind="structured",
        knob=knob,
        complexity=pairs,
        instruction="give the deepest nesting level of the brackets",
        output_space="answer with one digit",
        alphabet="()" + _D,
        max_input_len=2 * pairs,
        max_answer_len=1,
        draw_inputs=partial(_brackets, pairs),
        solve=_max_depth,
    )


# count -------------------------------------------------------------------------------

_COUNTED = b"abcd"


def _count_inputs(length: int, draws: Draws) -> U8:
    text = draw_strings(draws, 0, _COUNTED, length, length)  # (B, L)
    query = choose(_COUNTED, draws.ints(2, len(_COUNTED), 1))  # (B, 1)
    return concat(text, b":", query)


def _occurrences(inputs: list[str], _draws: Draws) -> list[str]:
    return [str(s[:-2].count(s[-1])) for s in inputs]


def count(length: int = 8) -> SynthTask:
    """How often the queried letter occurs in a string over a, b, c, d."""
    knob = Knob("length", 3, 9).checked("count", length)
    return SynthTask(
        name="count",
        kind="structured",
        knob=knob,
        complexity=length,
        instruction="count how often the letter after the colon appears before it",
        output_space="answer with one digit",
        alphabet=_COUNTED.decode() + ":" + _D,
        max_input_len=length + 2,
        max_answer_len=1,
        draw_inputs=partial(_count_inputs, length),
        solve=_occurrences,
    )
