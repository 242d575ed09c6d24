"""Batches of short ASCII strings as (B, W) byte arrays ("codes"), so tasks build and read
inputs with a few NumPy calls instead of a Python loop per character.

Zero bytes are padding and sit at the end of each row ("left-packed"), the layout that
`rows_to_strings` and the held-out hash expect. A variable-length field is a pair
(codes, lengths); `concat` joins fields without sorting, by writing each at a running offset.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from raremix.errors import RaremixError
from raremix.tasks.draws import I64, Draws

U8 = npt.NDArray[np.uint8]
Field = tuple[U8, I64]
"""Left-packed codes (B, W) and each row's length (B,)."""

DIGITS = b"0123456789"
LETTERS = b"abcdefghijklmnopqrstuvwxyz"
_POW10 = 10 ** np.arange(19, dtype=np.int64)  # (19,) 10**e, all that fits in int64


def rows_to_strings(codes: U8) -> list[str]:
    """(B, W) left-packed codes → B strings (trailing zero bytes dropped)."""
    b, w = codes.shape
    if w == 0:
        return [""] * b
    flat = np.ascontiguousarray(codes, dtype=np.uint8).view(f"S{w}").ravel()  # (B,)
    return [s.decode("ascii") for s in flat.tolist()]


def strings_to_rows(strings: Sequence[str]) -> U8:
    """B strings → (B, W) codes, zero-padded to the longest; non-ASCII is an error."""
    try:
        packed = np.array(strings, dtype="S")  # (B,) fixed width, NUL-padded
    except UnicodeEncodeError as err:
        bad = err.object[err.start : err.end]
        raise RaremixError(f"task input {bad!r} is not ASCII: task inputs are ASCII text") from None
    if packed.dtype.itemsize == 0:
        return np.zeros((len(strings), 0), dtype=np.uint8)
    return packed.view(np.uint8).reshape(len(strings), packed.dtype.itemsize)  # (B, W)


def choose(alphabet: bytes, picks: I64) -> U8:
    """Codes of `alphabet[picks]`, any shape."""
    return np.frombuffer(alphabet, dtype=np.uint8)[picks]


def draw_strings(draws: Draws, stream: int, alphabet: bytes, lo: int, hi: int) -> U8:
    """(B, hi) left-packed strings over `alphabet`, lengths uniform in [lo, hi]."""
    highs = np.full(hi + 1, len(alphabet))  # (hi + 1,) characters, then the length
    highs[hi] = hi - lo + 1
    picks = draws.ints(stream, highs, hi + 1)  # (B, hi + 1)
    codes = choose(alphabet, picks[:, :hi])  # (B, hi)
    if lo < hi:
        codes[np.arange(hi)[None, :] >= lo + picks[:, hi:]] = 0  # (B, hi) pad past each length
    return codes


def number_field(values: I64, width: int) -> Field:
    """Decimal digits of values < 10**width, left-packed (no leading zeros), with lengths."""
    n = 1 + np.searchsorted(_POW10[1:width], values, side="right")  # (B,) digit counts
    e = n[:, None] - 1 - np.arange(width)  # (B, W) power of ten at each column
    codes = (values[:, None] // _POW10[np.maximum(e, 0)] % 10 + ord("0")).astype(np.uint8)
    codes[e < 0] = 0  # (B, W) padding past the last digit
    return codes, n


def fixed_digits(values: I64, width: int) -> U8:
    """(B, width) zero-padded decimal digits, for fixed-width formats."""
    pows = _POW10[width - 1 :: -1] if width > 0 else _POW10[:0]  # (W,) most significant first
    return (values[:, None] // pows % 10 + ord("0")).astype(np.uint8)


def concat(*fields: U8 | Field | bytes) -> U8:
    """Join fixed-width codes (B, W), variable fields (codes, lengths) and constant
    separators (b"+") into one left-packed (B, ΣW) array."""
    parts: list[tuple[U8, int | I64]] = []
    for f in fields:
        if isinstance(f, bytes):
            parts.append((np.frombuffer(f, np.uint8)[None, :], len(f)))  # (1, W) broadcasts
        elif isinstance(f, tuple):
            parts.append(f)
        else:
            parts.append((f, f.shape[1]))
    b = max(len(codes) for codes, _ in parts)
    out = np.zeros((b, sum(codes.shape[1] for codes, _ in parts)), dtype=np.uint8)  # (B, ΣW)
    rows = np.arange(b)[:, None]  # (B, 1)
    off: int | I64 = 0  # a plain int until the first variable-length field
    for codes, length in parts:
        w = codes.shape[1]
        if isinstance(off, int):
            out[:, off : off + w] = codes
        else:
            out[rows, off[:, None] + np.arange(w)] = codes  # (B, W) at each row's own offset
        off = off + length
    return out


def number_strings(values: I64) -> list[str]:
    """Decimal strings of non-negative ints."""
    return [str(v) for v in values.tolist()]


def is_number(s: object, max_len: int) -> bool:
    """Whether `s` is a canonical decimal (digits only, no leading zero, at most max_len)."""
    return (
        isinstance(s, str)
        and 0 < len(s) <= max_len
        and s.isascii()
        and s.isdigit()
        and (s == "0" or s[0] != "0")
    )
