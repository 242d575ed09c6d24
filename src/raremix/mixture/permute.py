"""Counter-based randomness: uniforms keyed by counters, and a random-access permutation
(the 64-bit mixer and `key_of` live in `raremix.seeding`).

Everything here is a pure function of integers. Any element of any epoch's order can
be computed without materialising the permutation, which is what makes a resume cost
O(number of sources) instead of O(step).
"""

from __future__ import annotations

import functools

import numpy as np

from raremix.seeding import GOLDEN, MASK64, finalize64, finalize64_int, key_of

__all__ = ["SMALL", "feistel_domain", "key_of", "mix64", "mix64_int", "permute", "uniforms"]

_GOLDEN = GOLDEN
_U = np.uint64
_ROUNDS = 5  # measured: 5 rounds pass a pairwise chi-square test at every size above SMALL tried (4 do not)
_ROUND_MUL = [_U((_GOLDEN * (2 * r + 1)) & MASK64) for r in range(_ROUNDS)]
SMALL = 64  # at or below this size, rank exactly: few rounds on a few bits are biased
_S32 = _U(32)
_SCALAR_TAIL = 24  # walk this few leftover elements in Python rather than numpy


mix64 = finalize64
"""splitmix64's finaliser, element-wise (the name this module always exported)."""
mix64_int = finalize64_int
"""splitmix64's finaliser on one Python int (same result as `mix64`)."""


def uniforms(key: int, counters: np.ndarray | int) -> np.ndarray:
    """Uniform floats in [0, 1) with 53 random bits, one per counter, keyed by `key`.

    An int `counters` means range(counters) (the common case, with cached counters).
    """
    weyl = (
        _weyl(counters) if isinstance(counters, int) else counters.astype(np.uint64) * _U(_GOLDEN)
    )
    x = weyl + _U(key & MASK64)
    return (finalize64(x) >> _U(11)).astype(np.float64) * 2.0**-53


@functools.lru_cache(maxsize=16)
def _weyl(n: int) -> np.ndarray:
    """range(n) × the golden ratio in 64 bits, read-only: the counters of `uniforms`."""
    w = np.arange(n, dtype=np.uint64) * _U(_GOLDEN)
    w.flags.writeable = False
    return w


def feistel_domain(size: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per size: (h, 2**h - 1, c) with c = ceil(size / 2**h), the domain of `_feistel`.

    A caller permuting many positions of the same few sizes (the sampler) computes
    these once per source and passes them to `permute` as `domain`.
    """
    size = np.asarray(size, dtype=np.uint64)
    bits = np.frexp((np.maximum(size, _U(1)) - _U(1)).astype(np.float64))[1].astype(
        np.uint64
    )  # exact < 2**53
    # of h = bits//2 and bits//2 - 1 (both keep the halves near sqrt(size)), take the
    # one whose domain c·2**h overshoots size least: fewer results need a second walk
    h = bits >> _U(1)
    lower = np.maximum(h, _U(2)) - _U(1)
    over = (((size + (_U(1) << h) - _U(1)) >> h) << h) - size
    over_lower = (((size + (_U(1) << lower) - _U(1)) >> lower) << lower) - size
    h = np.where(over_lower < over, lower, h)
    mask = (_U(1) << h) - _U(1)
    return h, mask, (size + mask) >> h


def permute(
    pos: np.ndarray | int,
    size: np.ndarray | int,
    key: np.ndarray | int,
    domain: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Element-wise: where position `pos` lands in a seeded permutation of range(size).

    `pos`, `size` and `key` broadcast together; each (size, key) pair names its own
    permutation, and `0 <= pos < size`. `domain` is `feistel_domain(size)` per
    element, if the caller has it. Returns int64 indices.
    """
    pos, size, key = np.broadcast_arrays(
        np.asarray(pos, dtype=np.uint64),
        np.asarray(size, dtype=np.uint64),
        np.asarray(key, dtype=np.uint64),
    )
    shape = pos.shape
    pos, size, key = pos.ravel(), size.ravel(), key.ravel()
    h, mask, c = domain if domain is not None else feistel_domain(size)
    small = size <= _U(SMALL)
    if not small.any():
        return _feistel(pos, size, key, h, mask, c).reshape(shape)
    out = np.empty(pos.shape, dtype=np.int64)
    large = np.flatnonzero(~small)
    if len(large):
        out[large] = _feistel(pos[large], size[large], key[large], h[large], mask[large], c[large])
    out[small] = _ranked(pos[small], size[small], key[small])
    return out.reshape(shape)


def _ranked(pos: np.ndarray, size: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Small sizes: the permutation that sorts a hash of each index (exactly uniform).

    A Feistel network on a handful of bits reaches only a biased subset of the
    permutations, so tiny sources (often the rare tasks) are ranked instead.
    """
    # one table row per distinct (key, size); a batch holds few of them
    ident = finalize64(key ^ (size * _U(_GOLDEN)))
    uniq, first, inverse = np.unique(ident, return_index=True, return_inverse=True)
    ids = np.arange(int(size.max()), dtype=np.uint64)
    h = finalize64(uniq[:, None] ^ finalize64(ids[None, :] + _U(_GOLDEN)))
    h[ids[None, :] >= size[first][:, None]] = _U(MASK64)  # indices past the size sort last
    table = np.argsort(h, axis=1, kind="stable")
    return table[inverse.ravel(), pos.astype(np.int64)].astype(np.int64)


def _feistel(
    pos: np.ndarray,
    size: np.ndarray,
    key: np.ndarray,
    h: np.ndarray,
    mask: np.ndarray,
    c: np.ndarray,
) -> np.ndarray:
    """A keyed Feistel-style permutation of [0, c·2**h) ⊇ [0, size), with cycle walking.

    x splits into a (its h low bits) and b (in Z_c, c = ceil(size / 2**h), h = half
    the bits of size); rounds alternately add a keyed multiplicative hash of one part
    to the other (mod 2**h, mod c), each a bijection. The domain exceeds `size` by
    less than 2**h, so under 1/sqrt(size) of the results need another walk: far
    fewer passes than a power-of-two domain, whose walk loop dominated the cost.
    """
    # the key is already a 64-bit hash: per-round multipliers are cheap derivations
    arrays = [size, h, mask, c, key, *[key * m for m in _ROUND_MUL]]
    out = np.empty(pos.shape, dtype=np.int64)
    todo = np.arange(pos.size)
    x = pos
    while True:
        n, h, mask, c, key, *muls = arrays
        a, b = x & mask, x >> h
        t = np.empty_like(a)
        for r, mul in enumerate(muls):
            # in place: the rounds are the sampler's hot loop
            if r % 2 == 0:
                np.bitwise_xor(b, key, out=t)
                t *= mul
                t >>= _S32
                a += t
                a &= mask
            else:
                np.bitwise_xor(a, key, out=t)
                t *= mul
                t >>= _S32
                t *= c  # multiply-shift maps a 32-bit hash onto [0, c) without a division
                t >>= _S32
                b += t
                # b mod c, as b < 2c: unsigned b - c wraps past b exactly when b < c
                # (several times faster than a masked subtract)
                np.subtract(b, c, out=t)
                np.minimum(b, t, out=b)
        b <<= h
        b |= a
        x = b
        bad = x >= n
        if not bad.any():
            out[todo] = x
            return out
        good = np.flatnonzero(~bad)
        out[todo[good]] = x[good]
        keep = np.flatnonzero(bad)
        if len(keep) <= _SCALAR_TAIL:
            # a pass over a few elements is all call overhead: finish them in Python
            for i in keep.tolist():
                out[todo[i]] = _walk_one(int(x[i]), *(int(v[i]) for v in arrays))
            return out
        todo, x, arrays = todo[keep], x[keep], [v[keep] for v in arrays]


def _walk_one(x: int, n: int, h: int, mask: int, c: int, key: int, *muls: int) -> int:
    """`_feistel`'s rounds on one element in Python ints, walking until x < n."""
    while True:
        a, b = x & mask, x >> h
        for r, mul in enumerate(muls):
            if r % 2 == 0:
                a = (a + ((((b ^ key) * mul) & MASK64) >> 32)) & mask
            else:
                b += ((((((a ^ key) * mul) & MASK64) >> 32) * c) & MASK64) >> 32
                if b >= c:
                    b -= c
        x = (b << h) | a
        if x < n:
            return x
