"""The held-out split: a fixed hash of the input text, shared by every task.

Whether an input is held out depends on its characters only, not on the task, the seed or
the batch. So a held-out input never appears in any task's training stream: not as this
task's input, and not as the input of a task with the same format (chain and its steps
reverse and inc share their held-out strings), which keeps decomposition studies honest.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from raremix import seeding
from raremix.errors import RaremixError
from raremix.seeding import splitmix64
from raremix.tasks.text import U8, strings_to_rows

HELDOUT_FRACTION = 0.2
"""Share of all possible inputs that are held out, for every task."""

_SALT = np.uint64(seeding.salt("task.split"))
_THRESHOLD = np.uint64(int(HELDOUT_FRACTION * 2.0**64))
# One odd multiplier per 8-byte word of input (inputs up to 64 characters).
_WORD_MULT = splitmix64(np.arange(8, dtype=np.uint64) + _SALT) | np.uint64(1)


def codes_hash(rows: U8) -> npt.NDArray[np.uint64]:
    """(B,) uint64 hash of left-packed codes (B, W), the same whatever W the batch has.

    ASCII text has no zero byte, so padding words are zero and add nothing to the weighted
    sum of words: the hash does not depend on the width the batch was padded to.
    """
    b, w = rows.shape
    if w > 8 * len(_WORD_MULT):
        raise RaremixError(f"task inputs are limited to {8 * len(_WORD_MULT)} characters, got {w}")
    w8 = -(-w // 8) * 8
    if w8 != w:
        rows = np.concatenate([rows, np.zeros((b, w8 - w), dtype=np.uint8)], axis=1)
    words = np.ascontiguousarray(rows).view("<u8")  # (B, W8 / 8)
    mixed = (words * _WORD_MULT[: words.shape[1]]).sum(axis=1, dtype=np.uint64)  # (B,)
    return splitmix64(mixed ^ _SALT)


def heldout_codes(rows: U8) -> npt.NDArray[np.bool_]:
    """(B,) True where the left-packed input row belongs to the held-out split."""
    return codes_hash(rows) < _THRESHOLD


def in_heldout(inputs: Sequence[str]) -> npt.NDArray[np.bool_]:
    """(B,) True where the input string belongs to the held-out split."""
    if len(inputs) == 0:
        return np.zeros(0, dtype=bool)
    return heldout_codes(strings_to_rows(inputs))
