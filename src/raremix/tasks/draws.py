"""Counter-based random numbers: example i's draws depend only on (seed, split, i, attempt).

A Python RNG per example would be slow and would make example i depend on the batch it is
generated in. Hashing counters with splitmix64 in uint64 NumPy arithmetic gives every
example its own key, and every draw of that example its own stream, all vectorised.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt

from raremix import seeding
from raremix.seeding import GOLDEN, MASK64, splitmix64, splitmix64_int

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]

_MASK = MASK64
_N2 = np.array(0x94D049BB133111EB, dtype=np.uint64)  # an odd multiplier for the index


def _u64(x: int) -> U64:
    # 0-d arrays, not np.uint64 scalars: NumPy's array-with-0-d-array path is ~2x faster
    return np.array(x, dtype=np.uint64)


_S32 = _u64(32)
# seed domains keep the train and held-out candidate streams independent of each other
_SPLIT_SALT = {split: seeding.salt(f"task.{split}") for split in ("train", "heldout")}


def example_keys(seed: int, split: str, indices: I64, first_attempt: int, attempts: int) -> U64:
    """Keys (N, A) of candidates first_attempt ... first_attempt + A - 1 of each index (N,).

    Index and attempt enter linearly through two odd constants and one splitmix64 mixes
    them: two (index, attempt) pairs collide only if Δindex·M2 ≡ Δattempt·γ (mod 2**64),
    which at any realistic range practically never happens.
    """
    base = _u64(splitmix64_int((seed & _MASK) ^ _SPLIT_SALT[split]))
    per_index = indices.astype(np.uint64) * _N2 + base  # (N,)
    gammas = _gammas(first_attempt, attempts)  # (A,)
    return splitmix64(per_index[:, None] + gammas[None, :])  # (N, A)


@cache
def _gammas(start: int, n: int) -> U64:
    """(n,) the splitmix64 stream offsets (start + 1 ... start + n) * golden."""
    out = np.array([((start + j + 1) * GOLDEN) & _MASK for j in range(n)], dtype=np.uint64)
    out.flags.writeable = False
    return out


def below(words: U64, high: int | npt.ArrayLike) -> I64:
    """Uniform ints in [0, high) from 32-bit `words` (any shape; `high` broadcasts).

    Multiply-shift: no division, bias at most high / 2**32, irrelevant at these ranges.
    """
    return ((words * np.asarray(high, dtype=np.uint64)) >> _S32).astype(np.int64)


@dataclass(frozen=True)
class Draws:
    """Random numbers for a batch of examples: row i is a pure function of `keys[i]`.

    Each call names a `stream` (a small int, unique per draw within a task) so that draws
    are independent of each other and of how many columns another draw used.
    """

    keys: U64
    """(B,) one key per example."""

    def __len__(self) -> int:
        return len(self.keys)

    def fork(self, salt: int) -> Draws:
        """Independent draws for a second stage (answers), keyed off the same examples."""
        return Draws(self.keys ^ _u64(splitmix64_int(salt)))

    def bits(self, stream: int, n: int) -> U64:
        """(B, n) uniform uint64 words; column j does not depend on n."""
        return splitmix64(self.keys[:, None] + _gammas(stream << 20, n)[None, :])  # (B, n)

    def words(self, stream: int, n: int) -> U64:
        """(B, n) uniform 32-bit values (as uint64), to feed `below` several times."""
        return self.bits(stream, n) >> _S32

    def ints(self, stream: int, high: int | npt.ArrayLike, n: int | None = None) -> I64:
        """Uniform ints in [0, high): (B,) if n is None, else (B, n).

        `high` broadcasts against that shape: a scalar, (B,) per row without n, or (n,)
        per column with n (one call for several draws of different ranges).
        """
        if n is None:
            return below(self.words(stream, 1)[:, 0], high)  # (B,)
        return below(self.words(stream, n), high)  # (B, n)

    def distinct(self, stream: int, n: int, k: int) -> I64:
        """(B, k) uniform ordered samples of k distinct values from range(n).

        A partial Fisher-Yates shuffle: k vectorised swaps, instead of sorting n keys.
        """
        b = len(self.keys)
        rows = np.arange(b)  # (B,)
        pool = np.tile(np.arange(n), (b, 1))  # (B, n)
        picks = self.ints(stream, n - np.arange(k), k) + np.arange(k)  # (B, k) j + [0, n - j)
        for j in range(k):
            chosen = pool[rows, picks[:, j]]  # (B,)
            pool[rows, picks[:, j]] = pool[:, j]
            pool[:, j] = chosen
        return pool[:, :k]
