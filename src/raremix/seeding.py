"""One keyed-hash primitive and the named seed domains every random stream derives from.

Every stream raremix draws (task examples, held-out splits, answer draws, the mixture
sampler's order) is a pure function of a seed, hashed with splitmix64 (Steele, Lea and
Flood 2014). Two forms of that hash are used, and they differ on purpose:

- `splitmix64` is a whole splitmix64 step: add the golden gamma, then finalise. Task
  draws (`tasks/draws.py`) hash counters with it.
- `finalize64` is the finaliser alone, without the added gamma: the mixture sampler
  (`mixture/permute.py`) adds its own Weyl counters before it, so the gamma is already in.

`splitmix64(x) == finalize64(x + GOLDEN)` (mod 2**64), tested. Both were once named
`mix64`; each keeps its numbers, so every data stream is bit-identical to before.

A **seed domain** keeps two streams of one seed independent: a stream's key is its seed
combined with its domain's salt. Salts are named in `DOMAINS`, one line each; a new
stream adds a line there instead of inventing a constant where it is used. The values
are the ones the streams always used, so no data changed when they were gathered here.
"""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt

from raremix.errors import unknown

U64 = npt.NDArray[np.uint64]

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
"""splitmix64's gamma: 2**64 / the golden ratio, odd."""
_M1, _M2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


def _u64(x: int) -> U64:
    # 0-d arrays, not np.uint64 scalars: NumPy's array-with-0-d-array path is ~2x faster,
    # and these few-microsecond ops are most of the cost of a 128-example batch.
    return np.array(x, dtype=np.uint64)


_G, _N1, _N2 = _u64(GOLDEN), _u64(_M1), _u64(_M2)
_S27, _S30, _S31 = _u64(27), _u64(30), _u64(31)

DOMAINS: dict[str, int] = {
    "task.train": 0x7472_6169_6E00_0001,  # a task's training candidates ("train\0…")
    "task.heldout": 0x6865_6C64_6F75_7402,  # its held-out candidates ("heldout…")
    "task.answer": 0xA75E_0000_0000_0001,  # the answers drawn for an example's inputs
    "task.attempt": 0x7001_5000,  # redraws of a tool-use input (plus the attempt number)
    "task.split": 0x5EED_0F4E_1D00_0075,  # the input hash that puts an input in held-out
    "mixture.arrange": 0x5851F42D4C957F2D,  # where each source's examples sit in a batch
    "mixture.spacing": 0x2545F4914F6CDD1D,  # which batches a spaced source's examples fill
}
"""Seed domain → its 64-bit salt. The values are fixed: changing one changes the data."""


def salt(domain: str) -> int:
    """The salt of a named seed domain (`DOMAINS`)."""
    try:
        return DOMAINS[domain]
    except KeyError:
        raise unknown("seed domain", domain, DOMAINS) from None


def _finish(z: U64) -> U64:
    """The finaliser after its first xor-shift, in place on `z` (a fresh array)."""
    z *= _N1  # uint64 arrays wrap on overflow, which is the point
    z ^= z >> _S27
    z *= _N2
    z ^= z >> _S31
    return z


def finalize64(x: U64) -> U64:
    """splitmix64's finaliser, element-wise on a uint64 array (returns a new array)."""
    return _finish(x ^ (x >> _S30))


def finalize64_int(x: int) -> int:
    """splitmix64's finaliser on one Python int (same result as `finalize64`)."""
    x &= MASK64
    x ^= x >> 30
    x = (x * _M1) & MASK64
    x ^= x >> 27
    x = (x * _M2) & MASK64
    return x ^ (x >> 31)


def splitmix64(x: U64) -> U64:
    """A whole splitmix64 step of every element: a bijective, well-mixed hash of uint64 words."""
    z = x + _G
    z ^= z >> _S30
    return _finish(z)


def splitmix64_int(x: int) -> int:
    """A whole splitmix64 step of one Python int (same result as `splitmix64`)."""
    return finalize64_int(x + GOLDEN)


def key_of(*parts: int | str) -> int:
    """A stable 64-bit key from ints and strings (strings hashed with BLAKE2b).

    Stable across processes and Python versions, unlike `hash(str)`; keying sources
    by name (not list position) lets a resumed run reorder its sources safely.
    """
    key = 0x6A09E667F3BCC908
    for part in parts:
        if isinstance(part, str):
            value = int.from_bytes(hashlib.blake2b(part.encode(), digest_size=8).digest(), "little")
        else:
            value = part & MASK64
        key = finalize64_int(key ^ splitmix64_int(value))
    return key
